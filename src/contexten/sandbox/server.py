"""`SandboxServer`: the four sandbox services on 127.0.0.1, each on its own port.

    with SandboxServer() as sandbox:            # ephemeral ports
        sandbox.state.github.add_run(...)       # seed
        env = sandbox.env()                     # GITHUB_API_URL, GITHUB_TOKEN, ...
        ...                                     # point contexten at it
        sandbox.faults["github"].add(error_rate=0.2)

Each service runs under uvicorn in a background thread. A service whose module does not
exist is skipped (its URL properties raise).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from contexten.sandbox.faults import FaultInjector, quiet_deliberate_drops
from contexten.sandbox.state import (
    SANDBOX_CODEGEN_ORG_ID,
    SANDBOX_CODEGEN_TOKEN,
    SANDBOX_GITHUB_TOKEN,
    SANDBOX_GITHUB_WEBHOOK_SECRET,
    SANDBOX_LINEAR_API_KEY,
    SANDBOX_LINEAR_TEAM_ID,
    SANDBOX_SLACK_BOT_TOKEN,
    SANDBOX_SLACK_CHANNEL,
    SANDBOX_SLACK_SIGNING_SECRET,
    SANDBOX_SLACK_WEBHOOK_PATH,
    SERVICES,
    SandboxState,
    service_module,
)

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 15.0


class SandboxError(Exception):
    """The sandbox could not start (e.g. a port is taken)."""


class _ServiceThread:
    """One uvicorn server in a daemon thread, on an already bound socket."""

    def __init__(self, name: str, app: Any, sock: socket.socket) -> None:
        import uvicorn

        self.name = name
        self.sock = sock
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            loop="asyncio",
            http="h11",
            ws="none",
            timeout_keep_alive=5,
        )
        self.server = uvicorn.Server(config)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"sandbox-{name}", daemon=True)

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        except BaseException as exc:  # reported by start()
            self.error = exc

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self.server.started:
            if self.error is not None or not self.thread.is_alive():
                raise SandboxError(f"sandbox {self.name} failed to start: {self.error!r}")
            if time.monotonic() > deadline:
                raise SandboxError(f"sandbox {self.name} did not start within 15 s")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def _bind(port: int) -> socket.socket:
    # proto=IPPROTO_TCP so asyncio disables Nagle on accepted sockets (else ~40 ms per reply).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise SandboxError(f"cannot listen on {HOST}:{port}: {exc.strerror}") from exc
    sock.set_inheritable(True)
    return sock


@contextmanager
def serve_asgi(app: Any, *, port: int = 0, name: str = "app") -> Iterator[str]:
    """Serve any ASGI app on 127.0.0.1 in a background thread; yields its base URL.

    Useful for a webhook receiver in tests: `with serve_asgi(receiver) as url: ...`.
    """
    thread = _ServiceThread(name, app, _bind(port))
    thread.start()
    try:
        yield f"http://{HOST}:{thread.port}"
    finally:
        thread.stop()


class SandboxServer:
    """Serve the sandbox services on 127.0.0.1; a context manager."""

    def __init__(
        self,
        state: SandboxState | None = None,
        *,
        port_base: int | None = None,
        services: tuple[str, ...] = SERVICES,
        fault_seed: int = 0,
        seed_demo: bool = False,
    ) -> None:
        unknown = [s for s in services if s not in SERVICES]
        if unknown:
            raise ValueError(f"unknown sandbox services {unknown}; expected some of {SERVICES}")
        self.state = state or SandboxState.create(seed_demo=seed_demo)
        self.port_base = port_base
        self.services = services
        self.faults: dict[str, FaultInjector] = {
            name: FaultInjector(service=name, seed=fault_seed + i)
            for i, name in enumerate(SERVICES)
        }
        self.ports: dict[str, int] = {}
        self._threads: list[_ServiceThread] = []

    def __repr__(self) -> str:
        return f"SandboxServer(ports={self.ports!r})"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SandboxServer:
        if self._threads:
            return self
        quiet_deliberate_drops()
        try:
            for index, name in enumerate(SERVICES):
                if name not in self.services:
                    continue
                app = self._build_app(name)
                if app is None:
                    continue
                port = 0 if self.port_base is None else self.port_base + index
                thread = _ServiceThread(name, self.faults[name].wrap(app), _bind(port))
                self._threads.append(thread)
                thread.start()
                self.ports[name] = thread.port
        except BaseException:
            self.stop()
            raise
        if "github" in self.ports:
            self.state.github.base_url = self.url("github")
        return self

    def _build_app(self, name: str) -> Any | None:
        service_state = self.state.of(name)
        module = service_module(name)
        if module is None or service_state is None:
            log.info("sandbox service %s is not available; skipped", name)
            return None
        return module.create_app(service_state, self.faults[name])

    def stop(self) -> None:
        for thread in reversed(self._threads):
            thread.stop()
        self._threads.clear()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ addresses

    def url(self, service: str) -> str:
        """http://127.0.0.1:<port> of a running service."""
        if service not in self.ports:
            raise SandboxError(f"sandbox service {service!r} is not running")
        return f"http://{HOST}:{self.ports[service]}"

    @property
    def github_url(self) -> str:
        return self.url("github")

    @property
    def linear_url(self) -> str:
        return self.url("linear") + "/graphql"

    @property
    def slack_api_url(self) -> str:
        return self.url("slack") + "/api/"

    @property
    def slack_webhook_url(self) -> str:
        path = getattr(self.state.slack, "webhook_path", SANDBOX_SLACK_WEBHOOK_PATH)
        return self.url("slack") + str(path)

    @property
    def codegen_url(self) -> str:
        return self.url("codegen")

    def env(self) -> dict[str, str]:
        """Environment variables that point contexten at this sandbox (running services)."""
        env: dict[str, str] = {}
        if "github" in self.ports:
            github = self.state.github
            env.update(
                GITHUB_API_URL=self.github_url,
                GITHUB_TOKEN=getattr(github, "token", SANDBOX_GITHUB_TOKEN),
                GITHUB_WEBHOOK_SECRET=getattr(
                    github, "webhook_secret", SANDBOX_GITHUB_WEBHOOK_SECRET
                ),
            )
            if github.default_repository:
                env["GITHUB_REPOSITORY"] = github.default_repository
        if "linear" in self.ports:
            linear = self.state.linear
            env.update(
                LINEAR_API_URL=self.linear_url,
                LINEAR_API_KEY=str(getattr(linear, "api_key", SANDBOX_LINEAR_API_KEY)),
                LINEAR_TEAM_ID=str(getattr(linear, "team_id", SANDBOX_LINEAR_TEAM_ID)),
            )
        if "slack" in self.ports:
            slack = self.state.slack
            env.update(
                SLACK_API_URL=self.slack_api_url,
                SLACK_WEBHOOK_URL=self.slack_webhook_url,
                SLACK_BOT_TOKEN=str(getattr(slack, "bot_token", SANDBOX_SLACK_BOT_TOKEN)),
                SLACK_CHANNEL=str(getattr(slack, "channel", SANDBOX_SLACK_CHANNEL)),
                SLACK_SIGNING_SECRET=str(
                    getattr(slack, "signing_secret", SANDBOX_SLACK_SIGNING_SECRET)
                ),
            )
        if "codegen" in self.ports:
            codegen = self.state.codegen
            env.update(
                CODEGEN_API_URL=self.codegen_url,
                CODEGEN_TOKEN=str(getattr(codegen, "token", SANDBOX_CODEGEN_TOKEN)),
                CODEGEN_ORG_ID=str(getattr(codegen, "org_id", SANDBOX_CODEGEN_ORG_ID)),
            )
        return env
