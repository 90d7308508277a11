"""Which workflow runs for which GitHub event: routing rules as data, and a pure `route()`.

A rule matches one or more event names and a set of conditions, and names the workflow
type to run with its parameters. Every matching rule yields one route; a delivery can start
several workflows (a push to `develop` that edits `.github/workflows/` runs both
performance_monitoring and workflow_optimization).

Rule fields (JSON or YAML, all but `name`, `event` and `workflow` optional):

    name         unique name; a rule file may replace a default rule by reusing its name
    event        an event name or a list (X-GitHub-Event / GITHUB_EVENT_NAME)
    when         {path: condition}; every condition must hold
    workflow     the workflow type (see `contexten workflows`)
    parameters   {parameter: value}; strings may hold ${...} placeholders
    key          idempotency key template; deliveries that render the same key start one
                 run (default: the delivery id and the workflow type)
    enabled      false switches a rule off (default true)
    description  one line for people

Paths and placeholders read a context of four namespaces: `payload.<dotted path>` (the
event body), `settings.<name>` (baseline_branch, github_repository), `event` (the event
name) and `derived.<name>`: `ref_name` (ref without refs/heads/ or refs/tags/), `ref_type`
(branch or tag) and `changed_files` (paths added, modified or removed by a push). A
placeholder that is the whole string keeps its type (`"${payload.workflow_run.id}"` is an
int), otherwise it is interpolated as text.

Conditions: a scalar (equal), a list (equal to one of), `{"prefix": "x" | [...]}` (a string
that starts with one of; for a list value, any element that does), `{"not": value | [...]}`
(not equal to any; a missing value passes) and `{"exists": true | false}`.

A rule file is named by the ROUTING_RULES_FILE environment variable. It is either a list of
rules, which replaces the defaults, or `{"mode": "extend" | "replace", "rules": [...]}`;
`extend` (the default for a mapping) keeps the defaults and replaces those that share a name.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contexten.config import Settings
from contexten.orchestration.workflows import (
    WorkflowParameterError,
    parse_workflow_type,
    validate_parameters,
)

RULES_FILE_ENV = "ROUTING_RULES_FILE"
MAX_RULES_FILE_BYTES = 1024 * 1024
MAX_RULES = 500
MAX_CHANGED_FILES = 20_000
PING_EVENT = "ping"

_PLACEHOLDER = re.compile(r"\$\{([^}]{1,200})\}")
_RULE_FIELDS = frozenset(
    {"name", "event", "when", "workflow", "parameters", "key", "enabled", "description"}
)
_SETTINGS_VISIBLE = ("baseline_branch", "github_repository")


class RoutingError(ValueError):
    """A rule set is invalid, or a delivery cannot be routed; the message is one line."""


@dataclass(frozen=True, slots=True)
class RoutingRule:
    name: str
    events: tuple[str, ...]
    workflow: str
    when: Mapping[str, Any] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    key: str | None = None
    enabled: bool = True
    description: str = ""


@dataclass(frozen=True, slots=True)
class Route:
    """One workflow run to start: type, validated parameters, the rule, the dedupe key."""

    workflow_type: str
    parameters: dict[str, Any]
    rule: str
    key: str | None = None

    def __iter__(self) -> Any:
        # Unpacks as (workflow_type, parameters), the shape callers mostly want.
        return iter((self.workflow_type, self.parameters))


DEFAULT_RULE_DATA: tuple[dict[str, Any], ...] = (
    {
        "name": "failed-workflow-run",
        "description": "A workflow run finished with failure or timed out: diagnose and recover.",
        "event": "workflow_run",
        "when": {
            "payload.action": "completed",
            "payload.workflow_run.conclusion": ["failure", "timed_out"],
        },
        "workflow": "failure_analysis",
        "parameters": {
            "repository": "${payload.repository.full_name}",
            "workflow_run_id": "${payload.workflow_run.id}",
        },
        # One analysis per run attempt, whether the run or one of its jobs reported it.
        "key": "failure_analysis:${payload.repository.full_name}:${payload.workflow_run.id}"
        ":${payload.workflow_run.run_attempt}",
    },
    {
        "name": "rerun-passed",
        "description": "A re-run attempt passed: failure_analysis confirms the recovery that "
        "started it (MTTR, auto-recovery rate) and closes nothing else.",
        "event": "workflow_run",
        "when": {
            "payload.action": "completed",
            "payload.workflow_run.conclusion": "success",
            "payload.workflow_run.run_attempt": {"not": 1},
        },
        "workflow": "failure_analysis",
        "parameters": {
            "repository": "${payload.repository.full_name}",
            "workflow_run_id": "${payload.workflow_run.id}",
        },
        "key": "failure_analysis:${payload.repository.full_name}:${payload.workflow_run.id}"
        ":${payload.workflow_run.run_attempt}",
    },
    {
        "name": "failed-workflow-job",
        "description": "A job finished with failure or timed out: diagnose its run "
        "(once per run attempt, shared with failed-workflow-run).",
        "event": "workflow_job",
        "when": {
            "payload.action": "completed",
            "payload.workflow_job.conclusion": ["failure", "timed_out"],
        },
        "workflow": "failure_analysis",
        "parameters": {
            "repository": "${payload.repository.full_name}",
            "workflow_run_id": "${payload.workflow_job.run_id}",
        },
        "key": "failure_analysis:${payload.repository.full_name}:${payload.workflow_job.run_id}"
        ":${payload.workflow_job.run_attempt}",
    },
    {
        "name": "push-to-baseline",
        "description": "A push to the baseline branch: compare CI durations against history.",
        "event": "push",
        "when": {
            "payload.ref": "refs/heads/${settings.baseline_branch}",
            "payload.deleted": {"not": True},
        },
        "workflow": "performance_monitoring",
        "parameters": {
            "repository": "${payload.repository.full_name}",
            "baseline_branch": "${settings.baseline_branch}",
        },
    },
    {
        "name": "successful-run-test-reports",
        "description": "A workflow run succeeded: its artifacts may hold JUnit reports.",
        "event": "workflow_run",
        "when": {"payload.action": "completed", "payload.workflow_run.conclusion": "success"},
        "workflow": "test_optimization",
        "parameters": {
            "repository": "${payload.repository.full_name}",
            "workflow_run_id": "${payload.workflow_run.id}",
        },
        "key": "test_optimization:${payload.repository.full_name}:${payload.workflow_run.id}"
        ":${payload.workflow_run.run_attempt}",
    },
    {
        "name": "successful-check-suite",
        "description": "A check suite succeeded: refresh flaky/slow test statistics "
        "(subscribe to workflow_run instead where possible: it names the run).",
        "event": "check_suite",
        "when": {"payload.action": "completed", "payload.check_suite.conclusion": "success"},
        "workflow": "test_optimization",
        "parameters": {"repository": "${payload.repository.full_name}"},
        "key": "test_optimization:${payload.repository.full_name}:suite:${payload.check_suite.id}",
    },
    {
        "name": "workflow-files-changed",
        "description": "A branch push touched .github/workflows/: lint the workflows.",
        "event": "push",
        "when": {
            "derived.ref_type": "branch",
            "payload.deleted": {"not": True},
            "derived.changed_files": {"prefix": ".github/workflows/"},
        },
        "workflow": "workflow_optimization",
        "parameters": {"repository": "${payload.repository.full_name}"},
    },
    {
        "name": "tag-pushed",
        "description": "A tag was pushed: draft the release notes for it.",
        "event": "push",
        "when": {"derived.ref_type": "tag", "payload.deleted": {"not": True}},
        "workflow": "release_management",
        "parameters": {"repository": "${payload.repository.full_name}"},
        "key": "release_management:${payload.repository.full_name}:${derived.ref_name}",
    },
    {
        "name": "release-published",
        "description": "A release was published (shares its key with the tag push).",
        "event": "release",
        "when": {"payload.action": ["published", "created"]},
        "workflow": "release_management",
        "parameters": {"repository": "${payload.repository.full_name}"},
        "key": "release_management:${payload.repository.full_name}:${payload.release.tag_name}",
    },
    {
        "name": "push-security-audit",
        "description": "A branch push: audit dependencies, code and secrets of the checkout "
        "at `path` (the working copy the dispatcher runs in), once per pushed commit.",
        "event": "push",
        "when": {"derived.ref_type": "branch", "payload.deleted": {"not": True}},
        "workflow": "security_audit",
        "parameters": {"repository": "${payload.repository.full_name}"},
        "key": "security_audit:${payload.repository.full_name}:${payload.after}",
    },
    {
        "name": "ci-run-performance",
        "description": "A push's or pull request's CI run passed off the baseline branch: "
        "compare its branch's durations with the baseline; a regression alerts and puts a "
        "check run on the head commit.",
        "event": "workflow_run",
        "when": {
            "payload.action": "completed",
            "payload.workflow_run.conclusion": "success",
            "payload.workflow_run.event": ["push", "pull_request"],
            "payload.workflow_run.run_attempt": 1,
            "payload.workflow_run.head_branch": {"not": "${settings.baseline_branch}"},
        },
        "workflow": "performance_monitoring",
        "parameters": {
            "repository": "${payload.repository.full_name}",
            "baseline_branch": "${settings.baseline_branch}",
            "head_branch": "${payload.workflow_run.head_branch}",
            "head_sha": "${payload.workflow_run.head_sha}",
            "workflow_name": "${payload.workflow_run.name}",
        },
        "key": "performance_monitoring:${payload.repository.full_name}"
        ":${payload.workflow_run.head_sha}:${payload.workflow_run.name}",
    },
    {
        "name": "pull-request-workflow-lint",
        "description": "A pull request was opened or pushed to: lint the workflow files it "
        "changes under .github/workflows/ and annotate them with a check run.",
        "event": "pull_request",
        "when": {"payload.action": ["opened", "synchronize", "reopened"]},
        "workflow": "workflow_optimization",
        "parameters": {
            "repository": "${payload.repository.full_name}",
            "pull_request": "${payload.pull_request.number}",
            "head_sha": "${payload.pull_request.head.sha}",
        },
        "key": "workflow_lint:${payload.repository.full_name}:${payload.pull_request.number}"
        ":${payload.pull_request.head.sha}",
    },
    {
        "name": "pull-request-command",
        "description": "A `/contexten rerun|diagnose|explain` comment on a pull request: "
        "answer it (owners, members and collaborators; others are told, once).",
        "event": "issue_comment",
        "when": {
            "payload.action": "created",
            "payload.issue.pull_request": {"exists": True},
            "payload.comment.body": {"prefix": "/contexten"},
            "payload.comment.user.type": {"not": "Bot"},
        },
        "workflow": "github_automation",
        "parameters": {
            "repository": "${payload.repository.full_name}",
            "issue_number": "${payload.issue.number}",
            "comment_id": "${payload.comment.id}",
            "comment_body": "${payload.comment.body}",
            "comment_author": "${payload.comment.user.login}",
            "author_association": "${payload.comment.author_association}",
        },
        "key": "pr_command:${payload.repository.full_name}:${payload.comment.id}",
    },
    # ----- internal events (see contexten.monitoring.internal_events): a run's outcome -----
    {
        "name": "diagnosis-linear-sync",
        "description": "failure_analysis escalated a diagnosis: make sure each signature has "
        "its one Linear issue.",
        "event": "diagnosis.created",
        "workflow": "linear_sync",
        "parameters": {"repository": "${payload.repository.full_name}"},
        "key": "linear_sync:${payload.repository.full_name}:${payload.workflow_run.id}"
        ":${payload.workflow_run.run_attempt}",
    },
    {
        "name": "diagnosis-github-automation",
        "description": "failure_analysis escalated a diagnosis: the PR comment and check run "
        "(the same keys: a run already commented on gets no second comment).",
        "event": "diagnosis.created",
        "workflow": "github_automation",
        "parameters": {
            "repository": "${payload.repository.full_name}",
            "workflow_run_id": "${payload.workflow_run.id}",
        },
        "key": "github_automation:${payload.repository.full_name}:${payload.workflow_run.id}"
        ":${payload.workflow_run.run_attempt}",
    },
    {
        "name": "diagnosis-auto-fix",
        "description": "A diagnosis asks for an automatic fix: hand it to the Codegen agent "
        "(one agent run per signature and occurrence).",
        "event": "diagnosis.auto_fix",
        "workflow": "codegen_task_execution",
        "parameters": {
            "repository": "${payload.repository.full_name}",
            "workflow_run_id": "${payload.workflow_run.id}",
        },
        "key": "codegen_task_execution:${payload.repository.full_name}:${payload.workflow_run.id}"
        ":${payload.workflow_run.run_attempt}",
    },
    {
        "name": "alert-firing",
        "description": "A new alert fired: route, group and escalate the alerts.",
        "event": "alert.firing",
        "workflow": "alert_management",
        "key": "alert_management:${payload.alert.id}:${payload.alert.first_seen}",
    },
    {
        "name": "unhealthy-component-recovery",
        "description": "The health check found a component unhealthy (RECOVERY_ENABLED): "
        "recover it, within MAX_CONCURRENT_RECOVERIES and ESCALATION_THRESHOLD.",
        "event": "health.unhealthy",
        "workflow": "system_recovery",
        "parameters": {"component": "${payload.component.name}"},
        "key": "system_recovery:${payload.component.name}:${payload.source.run_id}",
    },
)


def parse_rule(data: Any) -> RoutingRule:
    """One rule from its JSON/YAML form; RoutingError names the rule and the bad field."""
    if not isinstance(data, dict):
        raise RoutingError(f"a routing rule must be a mapping, got {type(data).__name__}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RoutingError("a routing rule has no name (expected a non-empty string)")
    unknown = sorted(set(data) - _RULE_FIELDS)
    if unknown:
        raise RoutingError(f"routing rule {name!r}: unknown field(s) {', '.join(unknown)}")
    events = data.get("event")
    if isinstance(events, str):
        events = [events]
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise RoutingError(f"routing rule {name!r}: event must be a name or a list of names")
    try:
        workflow = parse_workflow_type(str(data.get("workflow"))).value
    except WorkflowParameterError as exc:
        raise RoutingError(f"routing rule {name!r}: {exc}") from None
    when = data.get("when") or {}
    parameters = data.get("parameters") or {}
    if not isinstance(when, dict) or not all(isinstance(k, str) for k in when):
        raise RoutingError(f"routing rule {name!r}: when must map paths to conditions")
    for path, condition in when.items():
        _check_condition(name, path, condition)
    if not isinstance(parameters, dict):
        raise RoutingError(f"routing rule {name!r}: parameters must be a mapping")
    key = data.get("key")
    if key is not None and not isinstance(key, str):
        raise RoutingError(f"routing rule {name!r}: key must be a string template")
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RoutingError(f"routing rule {name!r}: enabled must be true or false")
    return RoutingRule(
        name=name,
        events=tuple(events),
        workflow=workflow,
        when=dict(when),
        parameters=dict(parameters),
        key=key,
        enabled=enabled,
        description=str(data.get("description") or ""),
    )


def _check_condition(rule: str, path: str, condition: Any) -> None:
    if not path.startswith(("payload.", "derived.", "settings.")) and path != "event":
        raise RoutingError(
            f"routing rule {rule!r}: condition path {path!r} must start with "
            "payload., derived. or settings., or be event"
        )
    if isinstance(condition, dict) and (
        len(condition) != 1 or next(iter(condition)) not in ("prefix", "not", "exists")
    ):
        raise RoutingError(
            f"routing rule {rule!r}: condition on {path!r} must be a value, a list, or "
            "one of {prefix: ...}, {not: ...}, {exists: ...}"
        )


DEFAULT_RULES: tuple[RoutingRule, ...] = tuple(parse_rule(d) for d in DEFAULT_RULE_DATA)


def parse_rules(data: Any, defaults: Sequence[RoutingRule] = DEFAULT_RULES) -> list[RoutingRule]:
    """A rule set from a rules document (see the module docstring for the two shapes)."""
    mode = "replace"
    items: Any = data
    if isinstance(data, dict):
        mode = data.get("mode", "extend")
        items = data.get("rules", [])
        if mode not in ("extend", "replace"):
            raise RoutingError(f"rules mode {mode!r} must be extend or replace")
    if not isinstance(items, list):
        raise RoutingError("rules must be a list of rules")
    if len(items) > MAX_RULES:
        raise RoutingError(f"too many routing rules ({len(items)}; at most {MAX_RULES})")
    given = [parse_rule(item) for item in items]
    names = [r.name for r in given]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RoutingError(f"duplicate routing rule name(s): {', '.join(duplicates)}")
    if mode == "replace":
        return given
    by_name = {r.name: r for r in given}
    merged = [by_name.pop(r.name, r) for r in defaults]
    return merged + [r for r in given if r.name in by_name]


def load_rules_file(path: Path) -> list[RoutingRule]:
    """Rules from a JSON or YAML file (by suffix; .json is JSON, anything else YAML)."""
    try:
        size = path.stat().st_size
        if size > MAX_RULES_FILE_BYTES:
            raise RoutingError(f"routing rules file {path} is {size} bytes; at most 1 MiB")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RoutingError(f"cannot read routing rules file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise RoutingError(f"routing rules file {path} is not UTF-8 text") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RoutingError(f"routing rules file {path} is not valid: {first}") from None
    return parse_rules(data)


def load_rules(environ: Mapping[str, str] | None = None) -> list[RoutingRule]:
    """The rules in force: the file named by ROUTING_RULES_FILE, else the defaults."""
    env = os.environ if environ is None else environ
    name = env.get(RULES_FILE_ENV, "").strip()
    if not name:
        return list(DEFAULT_RULES)
    return load_rules_file(Path(name).expanduser())


def known_events(rules: Iterable[RoutingRule]) -> frozenset[str]:
    """Event names some enabled rule listens to, plus ping (always answered)."""
    names = {PING_EVENT}
    for rule in rules:
        if rule.enabled:
            names.update(rule.events)
    return frozenset(names)


# ----- evaluation -----

_MISSING = object()


def _lookup(context: Mapping[str, Any], path: str) -> Any:
    current: Any = context
    for part in path.split("."):
        if isinstance(current, Mapping):
            current = current.get(part, _MISSING)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
        if current is _MISSING:
            return _MISSING
    return current


def _render(value: Any, context: Mapping[str, Any]) -> Any:
    """Expand ${...} placeholders; a whole-string placeholder keeps the value's type."""
    if isinstance(value, list):
        return [_render(v, context) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = _PLACEHOLDER.fullmatch(value)
    if whole:
        found = _lookup(context, whole.group(1).strip())
        return None if found is _MISSING else found

    def text(match: re.Match[str]) -> str:
        found = _lookup(context, match.group(1).strip())
        return "" if found is _MISSING or found is None else str(found)

    return _PLACEHOLDER.sub(text, value)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected
    return bool(actual == expected) if actual is not _MISSING else False


def _holds(condition: Any, actual: Any, context: Mapping[str, Any]) -> bool:
    if isinstance(condition, dict):
        op, operand = next(iter(condition.items()))
        if op == "exists":
            return (actual is not _MISSING and actual is not None) is bool(operand)
        options = _as_list(_render(operand, context))
        if op == "not":
            return actual is _MISSING or not any(_equal(actual, o) for o in options)
        prefixes = [str(o) for o in options]
        values = actual if isinstance(actual, list) else [actual]
        return any(isinstance(v, str) and v.startswith(tuple(prefixes)) for v in values)
    return any(_equal(actual, o) for o in _as_list(_render(condition, context)))


def _changed_files(payload: Mapping[str, Any]) -> list[str]:
    files: list[str] = []
    commits = payload.get("commits")
    candidates = list(commits) if isinstance(commits, list) else []
    if isinstance(payload.get("head_commit"), dict):
        candidates.append(payload["head_commit"])
    seen: set[str] = set()
    for commit in candidates:
        if not isinstance(commit, dict):
            continue
        for kind in ("added", "modified", "removed"):
            for path in commit.get(kind) or ():
                if isinstance(path, str) and path not in seen:
                    seen.add(path)
                    files.append(path)
                    if len(files) >= MAX_CHANGED_FILES:
                        return files
    return files


def _derived(payload: Mapping[str, Any]) -> dict[str, Any]:
    ref = payload.get("ref")
    ref_type: str | None = None
    ref_name: str | None = None
    if isinstance(ref, str):
        for prefix, kind in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
            if ref.startswith(prefix):
                ref_type, ref_name = kind, ref[len(prefix) :]
    return {"ref_type": ref_type, "ref_name": ref_name, "changed_files": _changed_files(payload)}


def build_context(event: str, payload: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    return {
        "event": event,
        "payload": payload,
        "settings": {name: getattr(settings, name) for name in _SETTINGS_VISIBLE},
        "derived": _derived(payload),
    }


def rule_matches(rule: RoutingRule, context: Mapping[str, Any]) -> bool:
    if not rule.enabled or context["event"] not in rule.events:
        return False
    return all(_holds(cond, _lookup(context, path), context) for path, cond in rule.when.items())


def route(
    event: str,
    payload: Mapping[str, Any],
    rules: Sequence[RoutingRule],
    settings: Settings,
) -> list[Route]:
    """The workflow runs a delivery asks for, parameters validated; [] when none.

    Raises RoutingError when a matching rule's parameters do not validate (the payload
    lacks a field the workflow needs): that delivery can never be dispatched as it is.
    """
    if event == PING_EVENT or not isinstance(payload, Mapping):
        return []
    context = build_context(event, payload, settings)
    routes: list[Route] = []
    seen: set[tuple[str, str]] = set()
    for rule in rules:
        if not rule_matches(rule, context):
            continue
        raw = {name: _render(value, context) for name, value in rule.parameters.items()}
        raw = {name: value for name, value in raw.items() if value is not None}
        try:
            params = validate_parameters(rule.workflow, raw)
        except WorkflowParameterError as exc:
            raise RoutingError(f"rule {rule.name!r} matched but {exc}") from None
        parameters = params.model_dump(mode="json", exclude_unset=True)
        key = _render(rule.key, context) if rule.key else None
        identity = (rule.workflow, key or json.dumps(parameters, sort_keys=True))
        if identity in seen:  # two rules asking for the very same run
            continue
        seen.add(identity)
        routes.append(Route(rule.workflow, parameters, rule.name, str(key) if key else None))
    return routes
