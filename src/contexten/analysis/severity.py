"""The one severity scale of findings: security audit results, advisories, lint findings.

`Severity` is a rating; an advisory that publishes none is `"unknown"` (`AdvisorySeverity`),
ranked below every rating. Alerts have their own levels (info / warning / critical: how
urgently a person must look, `monitoring.alerts.Severity`), not a finding's rating.
"""

from __future__ import annotations

from typing import Literal

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")
AdvisorySeverity = Literal["unknown", "low", "medium", "high", "critical"]
# "unknown" ranks below every rating; the ratings in SEVERITIES order.
SEVERITY_RANK: dict[str, int] = {"unknown": 0, **{s: i + 1 for i, s in enumerate(SEVERITIES)}}


def severity_rank(severity: str) -> int:
    """0 for low ... 3 for critical; ValueError for anything else."""
    try:
        return SEVERITIES.index(severity)  # type: ignore[arg-type]
    except ValueError:
        raise ValueError(
            f"unknown severity {severity!r}; expected one of: {', '.join(SEVERITIES)}"
        ) from None


def parse_severity(value: str) -> Severity:
    lowered = value.strip().lower()
    severity_rank(lowered)
    return lowered  # type: ignore[return-value]
