"""What happens to a diagnosed CI failure after the diagnosis: records, renderings, actions.

Shared by failure_analysis (which diagnoses and decides), github_automation (PR comment and
check run), linear_sync (one issue per signature; close when fixed) and
codegen_task_execution (the agent hand-off), so every path uses the same keys and a run
handled by two of them gets each action once.

- Values (`analysis.failures`): `JobDiagnosis` (one failed job's diagnosis plus how it was
  made), `RunInfo` (the part of the workflow run the actions need), log locations.
- Records (`store.diagnoses`): DiagnosisRecord rows; the Linear issue tracking a signature
  lives in `store.state` (kind ESCALATION, `<repo>:<signature>`).
- Renderings (`workflows.escalation_report`): the issue, its comment, the PR comment, the
  check run, the Slack message and the agent prompt.
- Actions (here): `Escalator` (one per workflow run) performs each action once through the
  ActionLedger; unconfigured integrations give a `skipped` result that says what to set.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from contexten.analysis.failures import MAX_ANNOTATIONS as MAX_ANNOTATIONS
from contexten.analysis.failures import ActionResult as ActionResult
from contexten.analysis.failures import JobDiagnosis as JobDiagnosis
from contexten.analysis.failures import Location as Location
from contexten.analysis.failures import RunInfo as RunInfo
from contexten.analysis.failures import diagnosis_from_dict as diagnosis_from_dict
from contexten.analysis.failures import find_locations as find_locations
from contexten.analysis.failures import locations_for as locations_for
from contexten.analysis.failures import repository_path as repository_path
from contexten.analysis.logs.prompt import sanitize
from contexten.analysis.logs.report import preview
from contexten.analysis.taxonomy import FailureCategory
from contexten.config import Settings
from contexten.integrations.idempotency import ActionLedger, Result, idempotency_key
from contexten.integrations.interface import (
    CIProvider,
    CodingAgent,
    IntegrationError,
    IssueRef,
    IssueTracker,
    Notifier,
    PullRequestLink,
)
from contexten.store.db import Store
from contexten.store.diagnoses import load_run_diagnoses as load_run_diagnoses
from contexten.store.diagnoses import load_signature_state as load_signature_state
from contexten.store.diagnoses import record_escalation as record_escalation
from contexten.store.diagnoses import save_diagnosis as save_diagnosis
from contexten.store.diagnoses import save_signature_state as save_signature_state
from contexten.store.diagnoses import signatures_of_run as signatures_of_run
from contexten.store.diagnoses import tracked_signatures as tracked_signatures
from contexten.workflows.escalation_report import actions_table as actions_table
from contexten.workflows.escalation_report import agent_prompt as agent_prompt
from contexten.workflows.escalation_report import annotations_for as annotations_for
from contexten.workflows.escalation_report import check_run_text as check_run_text
from contexten.workflows.escalation_report import issue_comment as issue_comment
from contexten.workflows.escalation_report import issue_description as issue_description
from contexten.workflows.escalation_report import issue_title as issue_title
from contexten.workflows.escalation_report import job_section as job_section
from contexten.workflows.escalation_report import pr_comment as pr_comment

CHECK_RUN_NAME = "contexten / failure analysis"
AGENT_POLL_SECONDS = 2.0  # first poll interval; the client backs off from there
AGENT_WAIT_SECONDS = 300.0  # failure_analysis waits this long for the agent's PR
CLOSED_ISSUE_STATES = frozenset({"completed", "canceled", "cancelled", "duplicate"})
MAX_GENERATIONS = 20  # issues per signature that may have been closed before
LINEAR_PRIORITY = 3  # medium
# Categories whose fix is a code change the agent could propose (the policy's AGENT_FIXABLE).
AGENT_CATEGORIES = frozenset(
    {
        FailureCategory.TEST,
        FailureCategory.COMPILE,
        FailureCategory.LINT,
        FailureCategory.DEPENDENCY,
    }
)
SETUP_HINTS = {
    "github": "set GITHUB_TOKEN (or GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY, "
    "GITHUB_APP_INSTALLATION_ID)",
    "linear": "set LINEAR_API_KEY and LINEAR_TEAM_ID",
    "slack": "set SLACK_WEBHOOK_URL, or SLACK_BOT_TOKEN and SLACK_CHANNEL",
    "codegen": "set CODEGEN_TOKEN and CODEGEN_ORG_ID",
}


# ----------------------------------------------------------------------------- actions


def skipped(kind: str, service: str, target: str = "") -> ActionResult:
    return ActionResult(
        kind, "skipped", target, f"{service} is not configured ({SETUP_HINTS[service]})"
    )


def failed(kind: str, target: str, exc: BaseException) -> ActionResult:
    transient = isinstance(exc, IntegrationError) and exc.transient
    return ActionResult(
        kind, "failed", target, f"{type(exc).__name__}: {exc}"[:300], None, transient
    )


@dataclass
class Escalator:
    """Performs the escalation actions for one workflow run, each once (ActionLedger).

    Clients are None when their service is not configured: the action is then skipped.
    """

    settings: Settings
    store: Store
    ledger: ActionLedger
    ci: CIProvider | None = None
    tracker: IssueTracker | None = None
    notifier: Notifier | None = None
    agent: CodingAgent | None = None
    agent_poll_seconds: float | None = None  # default: AGENT_POLL_SECONDS
    _owned: list[Any] = field(default_factory=list)

    @classmethod
    def from_settings(
        cls, settings: Settings, store: Store, *, ci: CIProvider | None = None
    ) -> Escalator:
        """Clients from the factory; `ci` (already built by the caller) is reused."""
        from contexten.integrations import factory

        ledger = factory.action_ledger(settings, store) or ActionLedger(store)
        escalator = cls(settings, store, ledger, ci=ci)
        escalator.tracker = factory.linear_client(settings, store)
        escalator.notifier = factory.slack_notifier(settings, store)
        escalator.agent = factory.codegen_agent(settings, store)
        escalator._owned = [
            c for c in (escalator.tracker, escalator.notifier, escalator.agent) if c
        ]
        return escalator

    async def aclose(self) -> None:
        for client in self._owned:
            with contextlib.suppress(Exception):  # closing must not fail the workflow
                await client.aclose()

    def done_before(self, key: str) -> bool:
        """An earlier attempt (a retry, a second delivery) already did this action."""
        state = self.ledger.get(key)
        return state is not None and state.status == "done"

    async def _guard(
        self, kind: str, target: str, action: Callable[[], Awaitable[ActionResult]]
    ) -> ActionResult:
        try:
            return await action()
        except IntegrationError as exc:
            return failed(kind, target, exc)

    # --- Linear ---
    async def ensure_issue(
        self, run: RunInfo, job: JobDiagnosis, *, comment_if_open: bool = True
    ) -> ActionResult:
        """The open issue for the signature: created once, or commented on for this run."""
        target = f"{run.repository} {job.signature}"
        if self.tracker is None:
            return skipped("linear_issue", "linear", target)
        tracker = self.tracker

        async def act() -> ActionResult:
            return await self._ensure_issue(tracker, run, job, comment_if_open=comment_if_open)

        return await self._guard("linear_issue", target, act)

    async def _ensure_issue(
        self, tracker: IssueTracker, run: RunInfo, job: JobDiagnosis, *, comment_if_open: bool
    ) -> ActionResult:
        repo, sig = run.repository, job.signature
        state = load_signature_state(self.store, repo, sig)
        title = str(state.get("title") or issue_title(repo, job))
        generation = int(state.get("generation") or 0)
        me = f"{repo}#{run.run_id}@{run.run_attempt}"
        created_for = None
        # A retry of the run that created the current issue must not comment on it.
        prior = self.ledger.get(_issue_key(repo, sig, generation))
        if prior is not None and prior.status == "done" and prior.result:
            if prior.result.get("created_for") == me:
                open_issue: IssueRef | None = IssueRef.from_dict(prior.result)
                created_for = me
            else:
                open_issue = await tracker.find_open_issue(title=title)
        else:
            open_issue = await tracker.find_open_issue(title=title)
        if open_issue is None and state.get("issue_id"):
            generation += 1  # the tracked issue was closed: this failure is a regression
        if open_issue is None:
            for _ in range(MAX_GENERATIONS):
                result = await self._create_issue(tracker, run, job, title, generation, me)
                ref = IssueRef.from_dict(result)
                if (ref.state or "") not in CLOSED_ISSUE_STATES:
                    open_issue, created_for = ref, str(result.get("created_for"))
                    break
                generation += 1  # a fresh store met an issue closed long ago
            else:
                raise RuntimeError(f"more than {MAX_GENERATIONS} closed issues for {sig}")
        assert open_issue is not None
        save_signature_state(
            self.store,
            repo,
            sig,
            title=title,
            generation=generation,
            issue_id=open_issue.id,
            identifier=open_issue.identifier,
            url=open_issue.url,
            category=job.category.value,
            job_name=job.job_name,
            workflow_id=run.workflow_id,
            workflow_name=run.workflow_name,
            branch=run.head_branch,
            last_failed_run_id=run.run_id,
            last_failed_at=max(str(state.get("last_failed_at") or ""), run.created_at),
            status="open",
        )
        target = f"{open_issue.identifier} ({sig})"
        if created_for == me:
            if prior is not None and prior.status == "done":
                detail = "created earlier for this run"
                return ActionResult("linear_issue", "existing", target, detail, open_issue.url)
            return ActionResult("linear_issue", "done", target, "created", open_issue.url)
        if not comment_if_open:
            return ActionResult("linear_issue", "existing", target, "already open", open_issue.url)
        key = idempotency_key(
            "escalation", "linear_comment", repo, sig, run.run_id, run.run_attempt
        )
        status = "existing" if self.done_before(key) else "done"
        await tracker.comment(open_issue.id, issue_comment(run, job), key=key)
        return ActionResult(
            "linear_comment", status, target, "commented on the open issue", open_issue.url
        )

    async def _create_issue(
        self,
        tracker: IssueTracker,
        run: RunInfo,
        job: JobDiagnosis,
        title: str,
        generation: int,
        me: str,
    ) -> Result:
        key = _issue_key(run.repository, job.signature, generation)

        async def perform() -> Result:
            ref = await tracker.create_issue(
                title=title,
                description=issue_description(run, job),
                priority=LINEAR_PRIORITY,
                labels=("ci-failure", "contexten", job.category.value),
                key=idempotency_key("linear_issue", key),
            )
            return {**ref.to_dict(), "created_for": me}

        return await self.ledger.once(
            key, "escalation_issue", f"{run.repository}:{job.signature}", perform
        )

    # --- Slack ---
    async def notify(
        self, run: RunInfo, job: JobDiagnosis, issue: ActionResult | None, actions: Sequence[str]
    ) -> ActionResult:
        """One Slack message per tracked issue (a recurrence only comments on the issue)."""
        target = f"slack {job.signature}"
        if self.notifier is None:
            return skipped("slack_message", "slack", target)
        notifier = self.notifier
        from contexten.integrations.slack import render_diagnosis_message

        state = load_signature_state(self.store, run.repository, job.signature)
        occurrence = state.get("issue_id") or f"generation-{state.get('generation', 0)}"
        key = idempotency_key("escalation", "slack", run.repository, job.signature, occurrence)
        links = {"Linear issue": issue.url} if issue is not None and issue.url else {}
        d = job.diagnosis
        message = render_diagnosis_message(
            title=f"{d.category.value} failure in job {job.job_name}",
            summary=d.summary,
            repository=run.repository,
            run_url=run.html_url,
            job_name=job.job_name,
            category=d.category.value,
            confidence=d.confidence,
            evidence=[f"{e.line}: {sanitize(e.text)}" for e in preview(d, 10)],
            failing_tests=d.failing_tests,
            actions=actions,
            links=links,
            signature=job.signature,
            key=key,
        )

        async def act() -> ActionResult:
            status = "existing" if self.done_before(key) else "done"
            posted = await notifier.post(message)
            where = posted.channel or posted.via
            return ActionResult("slack_message", status, target, f"posted to {where}")

        return await self._guard("slack_message", target, act)

    # --- GitHub ---
    async def comment_on_prs(
        self, run: RunInfo, jobs: Sequence[JobDiagnosis], links: Sequence[str]
    ) -> list[ActionResult]:
        if not run.pull_requests:
            return []
        if self.ci is None:
            return [skipped("pr_comment", "github", f"#{n}") for n in run.pull_requests]
        ci = self.ci
        body = pr_comment(run, jobs, links)
        results = []
        for number in run.pull_requests:
            target = f"{run.repository}#{number}"
            key = idempotency_key(
                "escalation", "pr_comment", run.repository, number, run.run_id, run.run_attempt
            )

            async def act(
                number: int = number, target: str = target, key: str = key
            ) -> ActionResult:
                status = "existing" if self.done_before(key) else "done"
                ref = await ci.create_issue_comment(run.repository, number, body, key=key)
                return ActionResult("pr_comment", status, target, "commented", ref.html_url)

            results.append(await self._guard("pr_comment", target, act))
        return results

    async def check_run(
        self, run: RunInfo, jobs: Sequence[JobDiagnosis], *, only_with_annotations: bool = True
    ) -> ActionResult | None:
        """A neutral check run with the diagnosis and one annotation per known file/line."""
        annotations = annotations_for(jobs)
        if only_with_annotations and not annotations:
            return None
        target = f"{run.repository}@{run.head_sha[:12]}"
        if self.ci is None:
            return skipped("check_run", "github", target)
        ci = self.ci
        title, summary, text = check_run_text(run, jobs)
        key = idempotency_key(
            "escalation", "check_run", run.repository, run.head_sha, run.run_id, run.run_attempt
        )

        async def act() -> ActionResult:
            status = "existing" if self.done_before(key) else "done"
            ref = await ci.create_check_run(
                run.repository,
                name=CHECK_RUN_NAME,
                head_sha=run.head_sha,
                title=title,
                summary=summary,
                text=text,
                conclusion="neutral",  # the failing job already marks the commit red
                annotations=annotations,
                details_url=run.html_url or None,
                key=key,
            )
            detail = f"check run with {len(annotations)} annotation(s)"
            return ActionResult("check_run", status, target, detail, ref.html_url)

        return await self._guard("check_run", target, act)

    # --- Codegen ---
    async def run_agent(
        self,
        prompt: str,
        *,
        key: str,
        metadata: dict[str, Any],
        wait_seconds: float,
        target: str,
    ) -> tuple[list[ActionResult], PullRequestLink | None]:
        """Start an agent run once per `key`, wait for it, and return its pull request."""
        if self.agent is None:
            return [skipped("agent_run", "codegen", target)], None
        agent = self.agent
        again = self.done_before(key)
        try:
            started = await agent.create_run(prompt, metadata=metadata, key=key)
        except IntegrationError as exc:
            return [failed("agent_run", target, exc)], None
        name = f"agent run {started.id}"
        results = [
            ActionResult(
                "agent_run",
                "existing" if again else "done",
                name,
                "started earlier" if again else "started",
                started.web_url,
            )
        ]
        try:
            finished = (
                started
                if started.finished
                else await agent.wait(
                    started.id,
                    timeout=wait_seconds,
                    poll_interval=self.agent_poll_seconds or AGENT_POLL_SECONDS,
                )
            )
        except IntegrationError as exc:
            if not exc.unavailable:
                results.append(failed("agent_pr", name, exc))
                return results, None
            detail = f"not finished after {wait_seconds:g}s ({exc}); follow it at its web URL"
            results.append(ActionResult("agent_pr", "skipped", name, detail, started.web_url))
            return results, None
        if not finished.succeeded:
            detail = f"the agent run ended {finished.status}"
            results.append(ActionResult("agent_pr", "failed", name, detail, finished.web_url))
            return results, None
        if not finished.pull_requests:
            detail = "finished without a pull request"
            results.append(ActionResult("agent_pr", "skipped", name, detail, finished.web_url))
            return results, None
        pr = finished.pull_requests[0]
        status = "existing" if again else "done"
        results.append(ActionResult("agent_pr", status, name, pr.title or "pull request", pr.url))
        return results, pr

    async def hand_to_agent(
        self,
        run: RunInfo,
        job: JobDiagnosis,
        *,
        create_pr: bool,
        wait_seconds: float,
    ) -> list[ActionResult]:
        """One agent run per signature and issue; wait for its PR and link it on the issue."""
        state = load_signature_state(self.store, run.repository, job.signature)
        occurrence = state.get("issue_id") or f"generation-{state.get('generation', 0)}"
        key = idempotency_key("escalation", "agent_run", run.repository, job.signature, occurrence)
        metadata = {
            "repository": run.repository,
            "workflow_run_id": run.run_id,
            "signature": job.signature,
        }
        results, pr = await self.run_agent(
            agent_prompt(run, job, create_pr=create_pr),
            key=key,
            metadata=metadata,
            wait_seconds=wait_seconds,
            target=f"agent {job.signature}",
        )
        if pr is None:
            return results
        save_signature_state(self.store, run.repository, job.signature, agent_pr=pr.url)
        if self.tracker is not None and state.get("issue_id"):
            tracker = self.tracker
            issue_id = str(state["issue_id"])
            link_key = idempotency_key("escalation", "agent_pr_link", issue_id, pr.url)

            async def link() -> ActionResult:
                body = f"The Codegen agent opened a pull request for this failure: {pr.url}"
                status = "existing" if self.done_before(link_key) else "done"
                await tracker.comment(issue_id, body, key=link_key)
                identifier = str(state.get("identifier"))
                return ActionResult(
                    "linear_comment", status, identifier, "linked the agent's PR", pr.url
                )

            results.append(await self._guard("linear_comment", issue_id, link))
        return results

    # --- Linear: closing ---
    async def close_issue(self, state: dict[str, Any], reason: str) -> ActionResult:
        target = f"{state.get('identifier')} ({state.get('signature')})"
        if self.tracker is None:
            return skipped("linear_close", "linear", target)
        tracker = self.tracker
        issue_id = str(state["issue_id"])

        async def act() -> ActionResult:
            key = idempotency_key("escalation", "linear_close_comment", issue_id)
            await tracker.comment(issue_id, reason, key=key)
            ref = await tracker.close_issue(issue_id)
            save_signature_state(
                self.store,
                str(state["repository"]),
                str(state["signature"]),
                status="closed",
                closed_at=datetime.now(UTC).isoformat(),
            )
            return ActionResult("linear_close", "done", target, reason, ref.url)

        return await self._guard("linear_close", target, act)


def _issue_key(repository: str, signature: str, generation: int) -> str:
    return idempotency_key("escalation", "linear_issue", repository, signature, generation)


def agent_wanted(job: JobDiagnosis) -> bool:
    return job.category in AGENT_CATEGORIES
