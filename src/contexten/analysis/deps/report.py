"""A plan as JSON, as a pull request title, and as Markdown."""

from __future__ import annotations

from typing import Any

from contexten.analysis.deps.plan import UpdatePlan
from contexten.analysis.markdown import md_cell
from contexten.analysis.severity import SEVERITY_RANK as SEVERITY_RANK

# ----------------------------------------------------------------------------- reports


def plan_to_dict(plan: UpdatePlan) -> dict[str, Any]:
    return {
        "strategy": plan.strategy,
        "key": plan.key,
        "cooldown_days": plan.cooldown_days,
        "lock_files": list(plan.lock_files),
        "advisories_checked": plan.advisories_not_checked is None,
        "advisories_not_checked": plan.advisories_not_checked,
        "items": [
            {
                "name": i.name,
                "current": i.current,
                "current_source": i.current_source,
                "target": i.target,
                "latest": i.latest,
                "kind": i.kind,
                "breaking": i.breaking,
                "action": i.action,
                "reason": i.reason,
                "security": i.security,
                "severity": i.severity if i.security else None,
                "advisories": [
                    {
                        "id": a.id,
                        "aliases": list(a.aliases),
                        "severity": a.severity,
                        "summary": a.summary,
                        "fixed": list(a.fixed_versions),
                        "url": a.url,
                    }
                    for a in i.advisories
                ],
                "fixes": list(i.fixes),
                "files": list(i.files),
                "rewrites": [
                    {"file": r.file, "line": r.line, "old": r.old, "new": r.new} for r in i.rewrites
                ],
            }
            for i in plan.items
        ],
        "unmanaged": [
            {"file": u.file, "line": u.line, "text": u.text, "reason": u.reason}
            for u in plan.unmanaged
        ],
    }


def pull_request_title(plan: UpdatePlan) -> str:
    items = plan.applicable
    security = sum(1 for i in items if i.fixes)
    if len(items) == 1:
        only = items[0]
        prefix = "fix(deps)" if only.fixes else "chore(deps)"
        return f"{prefix}: update {only.name} to {only.target}"
    prefix = "fix(deps)" if security else "chore(deps)"
    extra = f" ({security} security)" if security else ""
    return f"{prefix}: update {len(items)} dependencies{extra}"


def plan_markdown(plan: UpdatePlan) -> str:
    """A table of changes and advisories, for a pull request body or a report."""
    out = [f"## Dependency updates ({plan.strategy})", ""]
    if plan.advisories_not_checked:
        out += [
            f"> Known vulnerabilities were **not checked**: {md_cell(plan.advisories_not_checked)}",
            "",
        ]
    applied = plan.applicable
    if applied:
        out += [
            "| Package | From | To | Update | Files | Advisories |",
            "|---|---|---|---|---|---|",
        ]
        for i in applied:
            kind = f"{i.kind}{' (breaking)' if i.breaking else ''}"
            fixes = ", ".join(i.fixes) or "-"
            files = ", ".join(sorted({r.file for r in i.rewrites}))
            cells = [md_cell(i.name), str(i.current), str(i.target), kind, md_cell(files), fixes]
            out.append("| " + " | ".join(cells) + " |")
    else:
        out.append("No updates to apply.")
    others = [i for i in plan.items if i.action != "apply"]
    if others:
        out += [
            "",
            "### Not applied",
            "",
            "| Package | Current | Latest | Why |",
            "|---|---|---|---|",
        ]
        out += [
            f"| {md_cell(i.name)} | {i.current or '-'} | {i.latest or '-'} | {md_cell(i.reason)} |"
            for i in others
        ]
    by_id = {a.id: a for i in plan.items for a in i.advisories}
    if by_id:
        out += [
            "",
            "### Advisories",
            "",
            "| Advisory | Package | Severity | Fixed in | Summary |",
            "|---|---|---|---|---|",
        ]
        for a in sorted(by_id.values(), key=lambda a: (-SEVERITY_RANK[a.severity], a.id)):
            label = f"[{a.id}]({a.url})" if a.url else a.id
            fixed = ", ".join(a.fixed_versions) or "-"
            out.append(f"| {label} | {a.package} | {a.severity} | {fixed} | {md_cell(a.summary)} |")
    if plan.lock_files and applied:
        out += ["", f"Lock files to regenerate after merging: {', '.join(plan.lock_files)}."]
    out += ["", f"<!-- contexten-deps-plan: {plan.key} -->"]
    return "\n".join(out) + "\n"
