"""The only network code: clients for GitHub, Linear, Slack and Codegen behind small interfaces.

`interface` holds the abstract interfaces, value types and errors; `http` the one shared
retry policy; `idempotency` the action ledger; `redaction` the secret scrubbing; `factory`
builds configured clients. Import the submodule you need: this package imports nothing heavy.
"""
