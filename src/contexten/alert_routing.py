"""Alert levels and the alert routing file (`ALERT_ROUTES_FILE`, default
CONTEXTEN_HOME/alert_routes.json): which channels hear of which alerts, and the escalation
policy. Read by `monitoring.alerts` and checked by `Settings.validate()`; no I/O beyond
reading that file.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from contexten.errors import BadInputError

ROUTES_FILE = "alert_routes.json"
Channel = Literal["slack", "linear", "github", "log"]
CHANNELS: tuple[Channel, ...] = ("log", "slack", "linear", "github")


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return ("info", "warning", "critical").index(self.value)


class AlertConfigError(BadInputError, ValueError):
    """The alert routing file is invalid; the message names the file and the problem."""


def parse_severity(value: str) -> Severity:
    try:
        return Severity(value.strip().lower())
    except ValueError:
        raise ValueError(f"severity {value!r} is not one of: info, warning, critical") from None


@dataclass(frozen=True, slots=True)
class AlertRoutingRule:
    channels: tuple[Channel, ...]
    min_severity: Severity = Severity.INFO
    match: str = "*"

    def applies(self, key: str, severity: Severity) -> bool:
        return severity.rank >= self.min_severity.rank and fnmatch.fnmatchcase(key, self.match)


DEFAULT_RULES: tuple[AlertRoutingRule, ...] = (
    AlertRoutingRule(("log", "slack", "linear"), Severity.CRITICAL),
    AlertRoutingRule(("log", "slack"), Severity.WARNING),
    AlertRoutingRule(("log",), Severity.INFO),
)


@dataclass(frozen=True, slots=True)
class EscalationPolicy:
    min_notify_interval_seconds: float = 300.0
    repeat_after_seconds: float = 3600.0
    escalate_after_repeats: int = 2
    max_notifications_per_hour: int = 30


def route(rules: Sequence[AlertRoutingRule], key: str, severity: Severity) -> tuple[Channel, ...]:
    """The channels of the first matching rule; "log" when none matches."""
    for rule in rules:
        if rule.applies(key, severity):
            return rule.channels
    return ("log",)


def load_routing(path: Path) -> tuple[tuple[AlertRoutingRule, ...], EscalationPolicy]:
    """Rules and policy from a JSON file; the defaults when the file does not exist."""
    if not path.exists():
        return DEFAULT_RULES, EscalationPolicy()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AlertConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise AlertConfigError(f"{path}: expected a JSON object with 'rules' and 'policy'")
    rules = DEFAULT_RULES
    if "rules" in raw:
        if not isinstance(raw["rules"], list):
            raise AlertConfigError(f"{path}: 'rules' must be a list")
        rules = tuple(_rule(path, i, item) for i, item in enumerate(raw["rules"]))
    policy = EscalationPolicy()
    if "policy" in raw:
        policy = _policy(path, raw["policy"])
    return rules, policy


def _rule(path: Path, index: int, item: Any) -> AlertRoutingRule:
    where = f"{path}: rules[{index}]"
    if not isinstance(item, dict):
        raise AlertConfigError(f"{where} must be an object")
    channels = item.get("channels")
    if not isinstance(channels, list) or not channels:
        raise AlertConfigError(f"{where}.channels must be a non-empty list")
    for channel in channels:
        if channel not in CHANNELS:
            raise AlertConfigError(
                f"{where}.channels: {channel!r} is not one of {', '.join(CHANNELS)}"
            )
    try:
        severity = parse_severity(str(item.get("min_severity", "info")))
    except ValueError as exc:
        raise AlertConfigError(f"{where}.min_severity: {exc}") from None
    match = item.get("match", "*")
    if not isinstance(match, str):
        raise AlertConfigError(f"{where}.match must be a string")
    return AlertRoutingRule(tuple(channels), severity, match)


def _policy(path: Path, raw: Any) -> EscalationPolicy:
    if not isinstance(raw, dict):
        raise AlertConfigError(f"{path}: 'policy' must be an object")
    defaults = EscalationPolicy()
    values: dict[str, Any] = {}
    for name in EscalationPolicy.__dataclass_fields__:
        if name not in raw:
            continue
        value = raw[name]
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise AlertConfigError(f"{path}: policy.{name} must be a non-negative number")
        values[name] = type(getattr(defaults, name))(value)
    unknown = set(raw) - set(EscalationPolicy.__dataclass_fields__)
    if unknown:
        raise AlertConfigError(f"{path}: unknown policy setting(s): {', '.join(sorted(unknown))}")
    return EscalationPolicy(**values)
