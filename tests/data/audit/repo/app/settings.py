"""Settings for the billing service (test fixture: every credential here is fake)."""

import os

GITHUB_TOKEN = "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"
DEPLOY_BOT = {"token": "ghs_3sjC6VUep2G6pk5VRPb2X30jxIJAdv3gRFwt"}
AWS_ACCESS_KEY_ID = "AKIAMJCQ36IQPMBHJMPX"
AWS_SECRET_ACCESS_KEY = "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"
SLACK_WEBHOOK = "https://hooks.slack.com/services/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"
DATABASE_PASSWORD = "U206e5q6cPHDNZ7YPMsh"

# Not secrets: ids, names, lengths, URLs and values read from the environment.
REQUEST_ID = "06e0600d-46a5-43c8-a5bc-aa21e0a94d71"
SESSION_TOKEN_TTL = 3600
TOKEN_URL = "https://auth.example.com/oauth/token"
API_KEY = os.environ.get("BILLING_API_KEY", "")
SECRET_KEY = os.environ["SECRET_KEY"]
PASSWORD_MIN_LENGTH = 12
API_KEY_HEADER = "X-Billing-Api-Key-Version-2"
tokenizer = "bert-base-uncased-whole-word-masking"
password_hash_algorithm = "pbkdf2_sha256_iterations_600000"
