"""The GitHub REST API app over a GitHubState."""

from __future__ import annotations

from fastapi import FastAPI

from contexten.sandbox.faults import FaultInjector
from contexten.sandbox.github.responses import Abort, _GitHubHeaders, abort_response
from contexten.sandbox.github.routes_actions import _routes_actions
from contexten.sandbox.github.routes_misc import _routes_misc
from contexten.sandbox.github.routes_repo import _routes_repo
from contexten.sandbox.github.state import GitHubState


def create_app(state: GitHubState, faults: FaultInjector | None = None) -> FastAPI:
    """The GitHub REST API over `state`."""
    faults = faults or FaultInjector(service="github")
    app = FastAPI(
        title="contexten sandbox: GitHub", docs_url=None, redoc_url=None, openapi_url=None
    )
    app.add_middleware(_GitHubHeaders, state=state)
    app.add_exception_handler(Abort, abort_response)
    app.state.github = state
    _routes_actions(app, state, faults)
    _routes_repo(app, state)
    _routes_misc(app, state)
    return app
