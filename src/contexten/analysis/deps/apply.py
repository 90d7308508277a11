"""Applying a plan: each Rewrite replaces one requirement's text at its known place."""

from __future__ import annotations

from collections.abc import Mapping

from contexten.analysis.deps.model import PlanError
from contexten.analysis.deps.plan import Rewrite, UpdatePlan
from contexten.analysis.severity import SEVERITY_RANK as SEVERITY_RANK

# ----------------------------------------------------------------------------- applying


def apply_plan(plan: UpdatePlan, texts: Mapping[str, str]) -> dict[str, str]:
    """The new text of every file the plan changes. `texts` maps each file to its text.

    Raises PlanError when a requirement is no longer where the plan found it.
    """
    out: dict[str, str] = {}
    for item in plan.applicable:
        for rewrite in item.rewrites:
            text = out.get(rewrite.file, texts.get(rewrite.file))
            if text is None:
                raise PlanError(f"{rewrite.file}: file not given to apply the plan")
            out[rewrite.file] = _apply_rewrite(text, rewrite)
    return {path: text for path, text in out.items() if text != texts.get(path)}


def _apply_rewrite(text: str, rewrite: Rewrite) -> str:
    lines = text.splitlines(keepends=True)
    if not 1 <= rewrite.line <= len(lines):
        raise PlanError(
            f"{rewrite.file}:{rewrite.line}: line not found; the file changed since the plan"
        )
    line_start = sum(len(line) for line in lines[: rewrite.line - 1])
    line_end = line_start + len(lines[rewrite.line - 1])
    at = line_start + rewrite.column
    if text[at : at + len(rewrite.old)] != rewrite.old:
        at = text.find(rewrite.old, line_start)
        if at < 0 or at >= line_end:
            raise PlanError(
                f"{rewrite.file}:{rewrite.line}: expected {rewrite.old.splitlines()[0]!r}; "
                "the file changed since the plan"
            )
    return text[:at] + rewrite.new + text[at + len(rewrite.old) :]
