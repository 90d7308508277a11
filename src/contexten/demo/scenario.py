"""The demo's repository, runs, routing rules and webhooks.

Repository `contexten-demo/shop` on the sandbox GitHub, with three workflows:

- `CI` / job `build`: passes, then fails because a host name does not resolve (synthetic
  log); GitHub passes it on re-run.
- `Tests` / a pytest matrix job (a real pymatgen log): passes on `main`, then fails on a
  pull request branch, then fails the same way on `main`.
- `Build` / job `e2e` (a real kubernetes-client log pair): passes on `main`, then fails on a
  pull request branch with a Python SyntaxError; auto-fix is on for this workflow.
- `Perf` / job `bench`: about 300 s a run on `develop` (the baseline), about 480 s on a
  pull request branch: a significant regression (synthetic timings).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from contexten.events.routing import DEFAULT_RULE_DATA, RoutingRule, parse_rules
from contexten.events.signature import sign
from contexten.sandbox.clients import GitHubReader
from contexten.sandbox.github import JobSpec
from contexten.sandbox.state import SandboxState

REPO = "contexten-demo/shop"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TEST_JOB = "test (ubuntu-latest, >3.9, lowest-direct, ci,optional, 10)"
BUILD_WORKFLOW = "Build"
# Where the compile error is: the check run must carry an annotation there.
COMPILE_LOCATION = ("kubernetes/config/exec_provider.py", 74)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@dataclass(frozen=True, slots=True)
class SeededRuns:
    network: int
    test_pr: int
    test_main: int
    compile_pr: int
    test_pr_number: int
    compile_pr_number: int
    perf_run: int = 0  # the newest (slower) Perf run of the perf pull request
    perf_pr_number: int = 0


PERF_WORKFLOW = "Perf"
PERF_BRANCH = "perf/json-encoder"


def seed(state: SandboxState, github_url: str) -> SeededRuns:
    """Create the repository and its runs (passing runs first, then the failures)."""
    gh = state.github
    gh.add_repo(
        REPO,
        default_branch="main",
        files={"README.md": "# shop\n", "pyproject.toml": '[project]\nname = "shop"\n'},
    )
    start = datetime.now(UTC) - timedelta(hours=2)

    def at(minutes: int) -> datetime:
        return start + timedelta(minutes=minutes)

    network_pass, network_fail = fixture("network-pass.log"), fixture("network-fail.log")
    gh.add_run(
        REPO,
        workflow="CI",
        jobs=[JobSpec("build", log=network_pass)],
        created_at=at(0),
        display_title="Update the fonts",
    )
    gh.add_run(
        REPO,
        workflow="Tests",
        jobs=[JobSpec(TEST_JOB, log=fixture("pytest-pass.log"))],
        created_at=at(1),
        display_title="Update the fonts",
    )
    gh.add_run(
        REPO,
        workflow=BUILD_WORKFLOW,
        jobs=[JobSpec("e2e", log=fixture("compile-pass.log"))],
        created_at=at(2),
        display_title="Update the fonts",
    )
    gh.add_commit(REPO, "main", {"VERSION": "1.4.1\n"}, "Bump the version to 1.4.1")
    network = gh.add_run(
        REPO,
        workflow="CI",
        jobs=[JobSpec("build", conclusion="failure", log=network_fail, pass_log=network_pass)],
        rerun_outcomes=["success"],
        created_at=at(10),
        display_title="Bump the version to 1.4.1",
    )
    gh.add_branch(REPO, "feature/supercell")
    gh.add_commit(REPO, "feature/supercell", {"src/cells.py": "# faster\n"}, "Faster supercells")
    test_pr_ref = gh.add_pull_request(REPO, "feature/supercell", title="Faster cubic supercells")
    test_pr = gh.add_run(
        REPO,
        workflow="Tests",
        head_branch="feature/supercell",
        event="pull_request",
        jobs=[JobSpec(TEST_JOB, conclusion="failure", log=fixture("pytest-fail.log"))],
        pull_requests=[test_pr_ref.number],
        created_at=at(20),
        display_title="Faster cubic supercells",
    )
    gh.add_branch(REPO, "fix/exec-provider")
    gh.add_commit(
        REPO, "fix/exec-provider", {"kubernetes/config/exec_provider.py": "# edited\n"}, "Tidy up"
    )
    compile_pr_ref = gh.add_pull_request(REPO, "fix/exec-provider", title="Tidy up exec provider")
    compile_pr = gh.add_run(
        REPO,
        workflow=BUILD_WORKFLOW,
        head_branch="fix/exec-provider",
        event="pull_request",
        jobs=[JobSpec("e2e", conclusion="failure", log=fixture("compile-fail.log"))],
        pull_requests=[compile_pr_ref.number],
        created_at=at(25),
        display_title="Tidy up exec provider",
    )
    gh.add_commit(REPO, "main", {"src/cells.py": "# faster\n"}, "Merge: faster supercells")
    test_main = gh.add_run(
        REPO,
        workflow="Tests",
        jobs=[JobSpec(TEST_JOB, conclusion="failure", log=fixture("pytest-fail.log"))],
        created_at=at(30),
        display_title="Merge: faster supercells",
    )
    perf_pr, perf_run = seed_perf(state, at(40))
    if state.codegen is not None:
        # The agent's pull request links point at the sandbox repository.
        state.codegen.pr_url_base = f"{github_url}/{REPO}/pull/"
        state.codegen.script_next_run(
            pull_request={"head_branch_name": "codegen-bot/fix-exec-provider-syntax"}
        )
    return SeededRuns(
        network=network.id,
        test_pr=test_pr.id,
        test_main=test_main.id,
        compile_pr=compile_pr.id,
        test_pr_number=test_pr_ref.number,
        compile_pr_number=compile_pr_ref.number,
        perf_run=perf_run,
        perf_pr_number=perf_pr,
    )


def seed_perf(state: SandboxState, start: datetime) -> tuple[int, int]:
    """Eight Perf runs on develop and eight, 60 % slower, on a pull request branch;
    returns (pull request number, the newest run of the branch)."""
    gh = state.github
    gh.add_branch(REPO, "develop")
    gh.add_branch(REPO, PERF_BRANCH)
    gh.add_commit(REPO, PERF_BRANCH, {"src/encode.py": "# new encoder\n"}, "A new JSON encoder")
    number = gh.add_pull_request(REPO, PERF_BRANCH, title="A new JSON encoder").number
    newest = 0
    for i in range(8):
        for branch, seconds in (("develop", 300.0), (PERF_BRANCH, 480.0)):
            run = gh.add_run(
                REPO,
                workflow=PERF_WORKFLOW,
                head_branch=branch,
                event="push" if branch == "develop" else "pull_request",
                pull_requests=[number] if branch == PERF_BRANCH else [],
                jobs=[
                    JobSpec(
                        "bench",
                        steps=(("Set up job", "success"), ("Run benchmarks", "success")),
                        duration_seconds=seconds + (i * 7) % 11,
                    )
                ],
                created_at=start + timedelta(minutes=2 * i + (1 if branch != "develop" else 0)),
                display_title="A new JSON encoder" if branch != "develop" else "Nightly bench",
            )
            if branch == PERF_BRANCH:
                newest = run.id
    return number, newest


def demo_rules() -> list[RoutingRule]:
    """The default rules, with auto-fix for the Build workflow and recovery confirmation.

    - failed runs of `Build` go to failure_analysis with auto_fix_enabled (rule
      failed-build-auto-fix); other failed runs as by default;
    - a re-run attempt that passed goes to failure_analysis, which confirms the recovery
      (rule rerun-passed);
    - test report ingestion after successful runs is off (the demo has no reports).
    """
    defaults = {rule["name"]: rule for rule in DEFAULT_RULE_DATA}
    failed = json.loads(json.dumps(defaults["failed-workflow-run"]))
    failed["when"]["payload.workflow_run.name"] = {"not": BUILD_WORKFLOW}
    auto_fix = json.loads(json.dumps(defaults["failed-workflow-run"]))
    auto_fix.update(
        name="failed-build-auto-fix",
        description="A Build run failed: diagnose, and hand code fixes to the agent.",
    )
    auto_fix["when"]["payload.workflow_run.name"] = BUILD_WORKFLOW
    auto_fix["parameters"]["auto_fix_enabled"] = True
    rerun_passed = {
        "name": "rerun-passed",
        "description": "A re-run attempt passed: confirm the recovery that started it.",
        "event": "workflow_run",
        "when": {
            "payload.action": "completed",
            "payload.workflow_run.conclusion": "success",
            "payload.workflow_run.run_attempt": {"not": 1},
        },
        "workflow": "failure_analysis",
        "parameters": dict(failed["parameters"]),
        "key": failed["key"],
    }
    reports = dict(defaults["successful-run-test-reports"], enabled=False)
    return parse_rules({"mode": "extend", "rules": [failed, auto_fix, rerun_passed, reports]})


# ----------------------------------------------------------------------------- webhooks


@dataclass(frozen=True, slots=True)
class ScriptedWebhook:
    """A signed webhook to send: headers and the exact body bytes."""

    name: str
    title: str
    event: str
    delivery_id: str
    body: bytes

    def headers(self, secret: str) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/contexten-demo",
            "X-GitHub-Event": self.event,
            "X-GitHub-Delivery": self.delivery_id,
            "X-GitHub-Hook-ID": "1",
            "X-Hub-Signature-256": sign(secret, self.body),
        }


class Payloads:
    """Webhook bodies built from the sandbox's own API answers (the shapes GitHub sends)."""

    def __init__(self, github_url: str, token: str, repo: str = REPO) -> None:
        self.repo = repo
        self.client = GitHubReader(github_url, token)

    def close(self) -> None:
        self.client.close()

    def _get(self, path: str) -> dict[str, Any]:
        return self.client.get(path)

    def workflow_run(self, run_id: int, name: str, title: str) -> ScriptedWebhook:
        run = self._get(f"/repos/{self.repo}/actions/runs/{run_id}")
        body = {
            "action": "completed",
            "workflow_run": run,
            "workflow": {"id": run["workflow_id"], "name": run["name"], "path": run["path"]},
            "repository": run["repository"],
            "sender": run["actor"],
        }
        return self._delivery(name, title, "workflow_run", body)

    def workflow_job(self, run_id: int, name: str, title: str) -> ScriptedWebhook:
        jobs = self._get(f"/repos/{self.repo}/actions/runs/{run_id}/jobs")["jobs"]
        failed = next(j for j in jobs if j["conclusion"] in ("failure", "timed_out"))
        run = self._get(f"/repos/{self.repo}/actions/runs/{run_id}")
        body = {
            "action": "completed",
            "workflow_job": failed,
            "repository": run["repository"],
            "sender": run["actor"],
        }
        return self._delivery(name, title, "workflow_job", body)

    def pull_request(
        self, number: int, name: str, title: str, action: str = "opened"
    ) -> ScriptedWebhook:
        pull = self._get(f"/repos/{self.repo}/pulls/{number}")
        repository = self._get(f"/repos/{self.repo}")
        body = {
            "action": action,
            "number": number,
            "pull_request": pull,
            "repository": repository,
            "sender": pull["user"],
        }
        return self._delivery(name, title, "pull_request", body)

    def issue_comment(
        self,
        number: int,
        comment: str,
        name: str,
        title: str,
        *,
        login: str = "octocat",
        association: str = "MEMBER",
        comment_id: int | None = None,
    ) -> ScriptedWebhook:
        """A comment on pull request `number` as GitHub announces it (issue_comment created)."""
        pull = self._get(f"/repos/{self.repo}/pulls/{number}")
        repository = self._get(f"/repos/{self.repo}")
        user = {"login": login, "id": abs(hash(login)) % 10_000_000, "type": "User"}
        ident = comment_id or uuid.uuid4().int % 2_000_000_000
        body = {
            "action": "created",
            "issue": {
                "number": number,
                "title": pull["title"],
                "state": pull["state"],
                "html_url": pull["html_url"],
                "user": pull["user"],
                "pull_request": {"url": pull["url"], "html_url": pull["html_url"]},
            },
            "comment": {
                "id": ident,
                "body": comment,
                "user": user,
                "author_association": association,
                "html_url": f"{pull['html_url']}#issuecomment-{ident}",
            },
            "repository": repository,
            "sender": user,
        }
        return self._delivery(name, title, "issue_comment", body)

    @staticmethod
    def _delivery(name: str, title: str, event: str, body: dict[str, Any]) -> ScriptedWebhook:
        raw = json.dumps(body, separators=(",", ":")).encode("utf-8")
        return ScriptedWebhook(name, title, event, str(uuid.uuid4()), raw)
