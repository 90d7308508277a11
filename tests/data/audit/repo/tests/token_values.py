"""Token-shaped test values (test fixture)."""

RANDOM_LOOKING = "ghp_JcLufQex3Qnk8xfwWgSNhlUVbMWZc7bs6xkO"
ALLOWED = "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"  # pragma: allowlist secret
PLACEHOLDER = "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"


def check_token_shape() -> None:
    assert RANDOM_LOOKING.startswith("ghp_")
