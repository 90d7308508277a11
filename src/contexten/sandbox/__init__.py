"""Local stand-ins for GitHub, Linear, Slack and Codegen that speak their real APIs.

`SandboxServer` (server.py) serves them on 127.0.0.1; `SandboxState` (state.py) is what
tests seed and inspect; `FaultInjector` (faults.py) adds errors, latency, rate limits and
dropped connections; `webhooks.py` delivers signed GitHub webhooks; `testing.py` has a
ready-made context manager for test fixtures. Importing this package imports nothing heavy.
"""
