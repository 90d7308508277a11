"""The intake service: the receiver app with a dispatcher inside, and its triggers.

`contexten webhook serve` and `contexten server` both build it with `build_app`; the
dispatcher runs in the app's lifespan, so any ASGI server that runs lifespans runs it.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute

from contexten.config import Settings
from contexten.events.dispatcher import Dispatcher, Trigger
from contexten.events.inbox import Inbox
from contexten.events.receiver import create_app
from contexten.events.routing import RoutingRule, load_rules
from contexten.store.db import Store

TriggerFactory = Callable[[Settings, Store], Trigger]
T = TypeVar("T")
DEFAULT_LEASE_SECONDS = 300.0


class TriggerLoadError(ValueError):
    """A --trigger MODULE:FACTORY cannot be loaded; the message is one line."""


class _LoopThread:
    """An event loop in a daemon thread, for work that must not stall the receiver's loop."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop))


class OrchestratorTrigger:
    """PrefectOrchestrator.trigger_workflow as a Trigger, plus `sweep` for the dispatcher."""

    def __init__(self, orchestrator: Any, worker: _LoopThread) -> None:
        self.orchestrator = orchestrator
        self.worker = worker

    async def __call__(self, workflow_type: str, parameters: dict[str, Any], key: str) -> str:
        return await self.worker.call(
            self.orchestrator.trigger_workflow(workflow_type, parameters, idempotency_key=key)
        )

    async def warm_up(self) -> None:
        """Find the server, import the flows, open the clients: before the first delivery."""
        await self.worker.call(self.orchestrator.warm_up())

    async def sweep(self) -> int:
        """Take over the runs whose process died; they re-run in the background."""

        async def start() -> int:
            return len(await self.orchestrator.recover_stale_runs(wait=False))

        return await self.worker.call(start())


def orchestrator_trigger(settings: Settings, store: Store) -> Trigger:
    """PrefectOrchestrator.trigger_workflow: a deployment run on a server, else in-process.

    The orchestrator runs on its own loop thread: finding the server makes a blocking
    health check, and an in-process run executes the whole workflow; neither may hold up
    the receiver answering GitHub. Its `sweep` takes over runs of dead processes.
    """
    from contexten.orchestration import PrefectOrchestrator

    orchestrator = PrefectOrchestrator(settings=settings, store=store)
    return OrchestratorTrigger(orchestrator, _LoopThread("contexten-orchestrator"))


def load_trigger_factory(spec: str) -> TriggerFactory:
    """`package.module:factory`, where factory(settings, store) returns a trigger."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise TriggerLoadError(f"--trigger {spec!r} must look like package.module:factory")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TriggerLoadError(f"--trigger {spec!r}: cannot import {module_name}: {exc}") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise TriggerLoadError(f"--trigger {spec!r}: {module_name} has no callable {attribute}")
    return factory  # type: ignore[no-any-return]


def build_dispatcher(
    settings: Settings,
    store: Store,
    trigger: Trigger,
    *,
    rules: Sequence[RoutingRule] | None = None,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    **options: Any,
) -> Dispatcher:
    # A trigger may run the workflow to its end (in-process mode): allow its full timeout.
    options.setdefault("trigger_timeout", float(settings.workflow_default_timeout + 60))
    inbox = Inbox(store, lease_seconds=lease_seconds)
    return Dispatcher(inbox, trigger, settings, rules=rules, **options)


def build_app(
    settings: Settings,
    store: Store,
    *,
    trigger: Trigger | None = None,
    dispatch: bool = True,
    insecure: bool = False,
    rules: Sequence[RoutingRule] | None = None,
    extra_routes: Iterable[BaseRoute | APIRouter] = (),
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    **dispatcher_options: Any,
) -> FastAPI:
    """The receiver, with a dispatcher in its lifespan unless dispatch is False."""
    rule_set = list(rules) if rules is not None else load_rules()
    dispatcher = None
    chosen: Trigger | None = None
    if dispatch:
        chosen = trigger or orchestrator_trigger(settings, store)
        dispatcher = build_dispatcher(
            settings,
            store,
            chosen,
            rules=rule_set,
            lease_seconds=lease_seconds,
            **dispatcher_options,
        )
    from contexten.events.slack_interactivity import slack_router

    # Slack's slash command and buttons (503 until SLACK_SIGNING_SECRET is set).
    extra_routes = [*extra_routes, slack_router(settings, store, chosen)]
    return create_app(
        settings,
        store,
        insecure=insecure,
        extra_routes=extra_routes,
        rules=rule_set,
        inbox=dispatcher.inbox if dispatcher is not None else None,
        dispatcher=dispatcher,
    )
