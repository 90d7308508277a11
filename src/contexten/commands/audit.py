"""`contexten audit`: vulnerable dependencies, code issues and committed secrets, one report."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from contexten.commands._common import EXIT_FAILED, fail

app = typer.Typer(add_completion=False, help="Security audit: dependencies, code, secrets.")

FORMATS = ("text", "json", "sarif", "markdown")
FAIL_ON = ("low", "medium", "high", "critical", "none")


def _progress_console() -> Any:
    """A rich console on stderr when stderr is a terminal; None (no progress) otherwise, so
    logs and captured stderr hold only the result lines."""
    if not sys.stderr.isatty():
        return None
    from rich.console import Console

    return Console(stderr=True)


@contextmanager
def audit_progress(console: Any) -> Iterator[Callable[[str], None]]:
    """A spinner naming the running stage; each finished stage is printed with its time."""
    if console is None:
        yield lambda _stage: None
        return
    started = time.monotonic()
    current: list[Any] = [None, started]

    def finish(now: float) -> None:
        if current[0] is not None:
            console.print(
                f"[green]done[/green] {current[0]} ({now - current[1]:.1f}s)", highlight=False
            )

    with console.status("audit: starting", spinner="dots") as status:

        def step(stage: str) -> None:
            now = time.monotonic()
            finish(now)
            current[:] = [stage, now]
            status.update(f"audit: {stage} ({now - started:.0f}s so far)")

        yield step
        finish(time.monotonic())


@app.command()
def audit(
    path: Annotated[Path, typer.Argument(help="repository to audit")] = Path("."),
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="text, json, sarif or markdown")
    ] = "text",
    fail_on: Annotated[
        str,
        typer.Option(help="exit 1 on new findings at or above: low, medium, high, critical, none"),
    ] = "high",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write the report here, not stdout")
    ] = None,
    baseline: Annotated[
        Path | None, typer.Option(help="JSON baseline: findings in it are known, not new")
    ] = None,
    write_baseline: Annotated[
        Path | None, typer.Option(help="write every current finding to this baseline file")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="ignore/exclude file (default PATH/.contexten-audit.toml)")
    ] = None,
    installed: Annotated[
        bool, typer.Option("--installed", help="also audit the running Python environment")
    ] = False,
    dependencies: Annotated[
        bool, typer.Option("--dependencies/--no-dependencies", help="run pip-audit")
    ] = True,
    code: Annotated[bool, typer.Option("--code/--no-code", help="run bandit")] = True,
    secrets: Annotated[
        bool, typer.Option("--secrets/--no-secrets", help="scan for secrets")
    ] = True,
    min_confidence: Annotated[
        str, typer.Option(help="bandit results below this confidence are hidden")
    ] = "medium",
) -> None:
    """Audit PATH and print one merged report with severity, location and fix.

    Exit 0: nothing new at or above --fail-on. Exit 1: such findings, or a tool could not
    run (e.g. the vulnerability service is unreachable). Exit 2: bad input.
    """
    from contexten.analysis.sarif import parse_severity
    from contexten.audit.baseline import write_baseline as save_baseline
    from contexten.audit.code import CodeScanOptions
    from contexten.audit.report import (
        summary_line,
        to_json_dict,
        to_markdown,
        to_sarif_dict,
        to_text,
    )
    from contexten.audit.runner import AuditInputError, AuditOptions, run_audit
    from contexten.config import get_settings

    if output_format not in FORMATS:
        fail(f"--format {output_format!r}: expected one of {', '.join(FORMATS)}")
    if fail_on not in FAIL_ON:
        fail(f"--fail-on {fail_on!r}: expected one of {', '.join(FAIL_ON)}")
    try:
        confidence = parse_severity(min_confidence)
    except ValueError as exc:
        fail(f"--min-confidence: {exc}")
    settings = get_settings()
    options = AuditOptions(
        root=path,
        osv_api_url=settings.osv_api_url,
        include_dependencies=dependencies,
        include_code=code,
        include_secrets=secrets,
        installed_environment=installed,
        timeout_seconds=settings.http_timeout_seconds,
        config_path=config,
        baseline_path=baseline,
        code=CodeScanOptions(min_confidence=confidence),
    )
    try:
        with audit_progress(_progress_console()) as step:
            report = run_audit(options, progress=step)
    except AuditInputError as exc:
        fail(str(exc))

    threshold = None if fail_on == "none" else parse_severity(fail_on)
    if output_format == "json":
        rendered = json.dumps(to_json_dict(report, threshold), indent=2, sort_keys=True) + "\n"
    elif output_format == "sarif":
        rendered = json.dumps(to_sarif_dict(report), indent=2) + "\n"
    elif output_format == "markdown":
        rendered = to_markdown(report)
    else:
        rendered = to_text(report)
    if output is None:
        sys.stdout.write(rendered)
    else:
        try:
            output.write_text(rendered, encoding="utf-8")
        except OSError as exc:
            fail(f"--output {output}: cannot write: {exc.strerror or exc}")
        print(f"{summary_line(report)}; report written to {output}", file=sys.stderr)
    if write_baseline is not None:
        everything = [*report.findings, *report.baselined]
        try:
            count = save_baseline(write_baseline, everything)
        except OSError as exc:
            fail(f"--write-baseline {write_baseline}: cannot write: {exc.strerror or exc}")
        print(f"baseline of {count} finding(s) written to {write_baseline}", file=sys.stderr)
        return
    if threshold is None:
        return
    errors = [t for t in report.tools if t.state == "error"]
    for status in errors:
        print(f"contexten: error: {status.tool}: {status.detail}", file=sys.stderr)
    if report.failing(threshold) or errors:
        raise typer.Exit(EXIT_FAILED)
