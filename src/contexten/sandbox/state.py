"""The sandbox's in-memory state: one object per service, seeded and inspected by tests.

Each service module `contexten.sandbox.<service>` (github, linear, slack, codegen) exposes
a state class constructible with no arguments (`GitHubState`, `LinearState`, `SlackState`,
`CodegenState`) and `create_app(state, faults) -> FastAPI`. `SandboxServer` wraps each app
with its FaultInjector (the app does not install the middleware itself).

`SandboxServer.env()` reads these optional attributes of the states, falling back to the
constants below, so the clients' credentials match what the service apps accept:
- GitHubState.token; LinearState.api_key, LinearState.team_id;
- SlackState.bot_token, SlackState.channel, SlackState.webhook_path;
- CodegenState.token, CodegenState.org_id.
A state may define `seed_demo()`; `SandboxState.create(seed_demo=True)` calls it.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from contexten.sandbox.github import GitHubState

log = logging.getLogger(__name__)

SERVICES: tuple[str, ...] = ("github", "linear", "slack", "codegen")
STATE_CLASSES: dict[str, str] = {
    "github": "GitHubState",
    "linear": "LinearState",
    "slack": "SlackState",
    "codegen": "CodegenState",
}

# Credentials the sandbox hands out and accepts. Not secrets: they only open the sandbox.
SANDBOX_GITHUB_TOKEN = "ghs_sandboxTokenForLocalUseOnly000000000"  # noqa: S105  # pragma: allowlist secret
SANDBOX_GITHUB_WEBHOOK_SECRET = "sandbox-webhook-secret"  # noqa: S105
SANDBOX_LINEAR_API_KEY = "lin_api_sandboxKeyForLocalUseOnly00000000"  # pragma: allowlist secret
SANDBOX_LINEAR_TEAM_ID = "sandbox-team"
SANDBOX_SLACK_BOT_TOKEN = "xoxb-sandbox-0000000000-local-use-only"  # noqa: S105
SANDBOX_SLACK_CHANNEL = "C0SANDBOX1"
# Signs the slash commands and button presses the sandbox sends (SLACK_SIGNING_SECRET).
SANDBOX_SLACK_SIGNING_SECRET = "sandbox-slack-signing-secret-local-use-only"  # noqa: S105
SANDBOX_SLACK_WEBHOOK_PATH = "/services/T0SANDBOX/B0SANDBOX/sandboxWebhookKey000000"
SANDBOX_CODEGEN_TOKEN = "sk-sandbox-codegen-local-use-only-0000"  # noqa: S105
SANDBOX_CODEGEN_ORG_ID = "1"


def service_module(service: str) -> Any | None:
    """The module `contexten.sandbox.<service>`, or None if it does not exist (yet)."""
    name = f"contexten.sandbox.{service}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


def new_service_state(service: str) -> Any | None:
    module = service_module(service)
    if module is None:
        return None
    cls = getattr(module, STATE_CLASSES[service], None)
    return None if cls is None else cls()


@dataclass
class SandboxState:
    """All four services' state. `linear`, `slack`, `codegen` are None when not available."""

    github: GitHubState
    linear: Any | None = None
    slack: Any | None = None
    codegen: Any | None = None

    @classmethod
    def create(cls, *, seed_demo: bool = False) -> SandboxState:
        from contexten.sandbox.github import GitHubState

        state = cls(
            github=GitHubState(),
            linear=new_service_state("linear"),
            slack=new_service_state("slack"),
            codegen=new_service_state("codegen"),
        )
        if seed_demo:
            for service in SERVICES:
                seed = getattr(state.of(service), "seed_demo", None)
                if callable(seed):
                    seed()
        return state

    def of(self, service: str) -> Any | None:
        if service not in SERVICES:
            raise KeyError(f"unknown sandbox service {service!r}; expected one of {SERVICES}")
        return getattr(self, service)
