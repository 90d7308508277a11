"""What every workflow body gets (WorkflowContext) and returns (WorkflowOutcome).

A workflow body is `async def run(params: <its parameters model>, ctx: WorkflowContext)
-> WorkflowOutcome` in `contexten.workflows.<type value>`. The Prefect flow in
`contexten.orchestration.flows` is a thin wrapper that builds the context, calls the body
and publishes the outcome as artifacts; the same body runs in-process without Prefect.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from contexten.analysis.markdown import Table as Table  # re-exported: part of the API
from contexten.config import Settings
from contexten.store.db import Store

if TYPE_CHECKING:
    from contexten.integrations.interface import CIProvider

T = TypeVar("T")


class WorkflowError(Exception):
    """A workflow could not do its job; the message says why, in one line."""


class WorkflowNotImplemented(WorkflowError):
    """This workflow type's logic has not landed yet."""


@dataclass(frozen=True, slots=True)
class WorkflowOutcome:
    """The result of one workflow run.

    `ok` False means the workflow ran but found the system failing (e.g. an unhealthy
    health check); raise WorkflowError instead when it could not do its job at all.
    """

    ok: bool
    summary: str
    markdown: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    tables: tuple[Table, ...] = ()
    images: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class ReportArtifact:
    """A report to publish: kind is markdown or table (JSON rows); key is lowercase-dashed."""

    kind: str
    key: str
    content: str


@dataclass
class WorkflowContext:
    settings: Settings
    store: Store
    run_id: str
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("contexten.workflow"))
    in_prefect: bool = False
    artifacts: list[ReportArtifact] = field(default_factory=list)

    @property
    def reports_dir(self) -> Path:
        path = self.settings.data_dir / "reports" / self.run_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def publish_markdown(self, key: str, markdown: str) -> None:
        """Publish a Markdown report (a Prefect artifact in a flow; a file otherwise)."""
        self.artifacts.append(ReportArtifact("markdown", artifact_key(key), markdown))
        (self.reports_dir / f"{artifact_key(key)}.md").write_text(markdown, encoding="utf-8")

    async def step(
        self,
        name: str,
        fn: Callable[[], Awaitable[T]],
        *,
        cache_key: str | None = None,
        cache_days: float = 7.0,
    ) -> T:
        """Run one step of the workflow: a Prefect task in a flow run (timed, cached by
        `cache_key` when given), a plain call otherwise (see orchestration.steps, which
        orchestration registers here with `register_step_runner`)."""
        if not self.in_prefect or _step_runner is None:
            return await fn()
        from datetime import timedelta

        result: T = await _step_runner(
            name, fn, cache_key=cache_key, cache_expiration=timedelta(days=cache_days)
        )
        return result

    def publish_table(self, key: str, table: Table) -> None:
        payload = json.dumps(
            {"columns": list(table.columns), "rows": [list(r) for r in table.rows]},
            default=str,
        )
        self.artifacts.append(ReportArtifact("table", artifact_key(key), payload))
        (self.reports_dir / f"{artifact_key(key)}.md").write_text(
            table.to_markdown(), encoding="utf-8"
        )


# How a step runs as a Prefect task: lent by orchestration (above workflows) on import.
_step_runner: Callable[..., Awaitable[Any]] | None = None


def register_step_runner(runner: Callable[..., Awaitable[Any]]) -> None:
    global _step_runner
    _step_runner = runner


def ci_provider(ctx: WorkflowContext) -> CIProvider:
    """The configured GitHub client (token or App); WorkflowError when not configured."""
    from contexten.integrations.factory import github_client

    client = github_client(ctx.settings, ctx.store)
    if client is None:
        raise WorkflowError("GitHub is not configured: set GITHUB_TOKEN or the GitHub App")
    return client


def artifact_key(key: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", key.lower()).strip("-") or "report"


def not_implemented(kind: str, missing: Sequence[str] = ()) -> WorkflowNotImplemented:
    detail = f" (missing: {', '.join(missing)})" if missing else ""
    return WorkflowNotImplemented(f"workflow {kind} is not implemented yet{detail}")
