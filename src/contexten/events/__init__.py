"""Event intake: GitHub webhooks and GitHub Actions events in, workflow runs out.

- `signature`: X-Hub-Signature-256 verification (constant time).
- `routing`: routing rules as data; `route(event, payload, rules, settings)` is pure.
- `inbox`: the durable inbox in the store (insert, atomic claim, lease recovery).
- `receiver`: the FastAPI app that verifies and records deliveries (`create_app`).
- `dispatcher`: claims inbox rows and triggers workflow runs, idempotently.
- `gha`: `contexten gha`, the GitHub Actions entry point.

Nothing heavy is imported here: import the submodule you need.
"""
