"""`contexten demo`: the whole loop on one machine, with no credentials and no network.

- `scenario`: the demo repository, its runs (real logs from `fixtures/`, see its README for
  their sources and licence), the webhooks to deliver and what must happen.
- `loop`: starts the sandbox, the webhook receiver with its dispatcher and the orchestrator,
  delivers the signed webhooks, waits, and checks at the sandbox what was received.

Nothing here is imported by the product; the command imports it when it runs.
"""
