"""The audit's configuration file (`.contexten-audit.toml`): ignores and excluded paths.

    exclude = ["tests/data/**"]          # globs on repository-relative paths

    [[ignore]]
    id = "GHSA-xxxx-xxxx-xxxx"           # rule id, alias (CVE-...), or fingerprint
    path = "scripts/*"                   # optional glob
    reason = "only reachable from the admin CLI"
    expires = 2025-12-31                 # required: every ignore is temporary

An ignore without a reason or an expiry date is an error; an expired one stops applying
and the report says so.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from contexten.audit.model import IgnoreRule

CONFIG_FILE = ".contexten-audit.toml"
MAX_CONFIG_BYTES = 1024 * 1024


class AuditConfigError(ValueError):
    """The audit configuration file is unreadable or invalid; one line naming it."""


@dataclass(frozen=True, slots=True)
class AuditConfig:
    ignores: tuple[IgnoreRule, ...] = ()
    exclude: tuple[str, ...] = ()
    source: str = ""


def _date(value: object, where: str) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise AuditConfigError(f"{where}: 'expires' must be a date like 2025-12-31, got {value!r}")


def parse_config(text: str, source: str) -> AuditConfig:
    """Parse the TOML text of a configuration file named `source` in messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AuditConfigError(f"{source}: invalid TOML: {exc}") from None
    unknown = set(data) - {"ignore", "exclude"}
    if unknown:
        raise AuditConfigError(
            f"{source}: unknown key(s) {', '.join(sorted(unknown))}; expected ignore, exclude"
        )
    exclude = data.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(x, str) for x in exclude):
        raise AuditConfigError(f"{source}: 'exclude' must be a list of glob strings")
    entries = data.get("ignore", [])
    if not isinstance(entries, list):
        raise AuditConfigError(f"{source}: 'ignore' must be an array of tables ([[ignore]])")
    rules = []
    for number, entry in enumerate(entries, start=1):
        where = f"{source}: ignore #{number}"
        if not isinstance(entry, dict):
            raise AuditConfigError(f"{where}: expected a table")
        extra = set(entry) - {"id", "reason", "expires", "path"}
        if extra:
            raise AuditConfigError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
        rule_id, reason = entry.get("id"), entry.get("reason")
        if not isinstance(rule_id, str) or not rule_id.strip():
            raise AuditConfigError(f"{where}: 'id' (rule id, alias or fingerprint) is required")
        if not isinstance(reason, str) or not reason.strip():
            raise AuditConfigError(f"{where} ({rule_id}): a non-empty 'reason' is required")
        if "expires" not in entry:
            raise AuditConfigError(f"{where} ({rule_id}): an 'expires' date is required")
        path = entry.get("path")
        if path is not None and not isinstance(path, str):
            raise AuditConfigError(f"{where}: 'path' must be a glob string")
        rules.append(
            IgnoreRule(
                rule_id.strip(),
                reason.strip(),
                _date(entry["expires"], where),
                path,
                f"{source}#{number}",
            )
        )
    return AuditConfig(tuple(rules), tuple(exclude), source)


def load_config(root: Path, explicit: Path | None = None) -> AuditConfig:
    """The configuration for `root`: `explicit` if given (must exist), else root's file."""
    path = explicit if explicit is not None else root / CONFIG_FILE
    if not path.is_file():
        if explicit is not None:
            raise AuditConfigError(f"{path}: configuration file not found")
        return AuditConfig()
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise AuditConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditConfigError(f"{path}: unreadable: {exc}") from None
    return parse_config(text, str(path))
