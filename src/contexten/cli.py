"""The `contexten` command. Subcommands load lazily so `--help` and `analyze-log` stay fast.

Each subcommand lives in its own module under `contexten.commands` and exposes a Typer
`app`. Modules must not import Prefect, githubkit or other heavy libraries at import time.
"""

from __future__ import annotations

import importlib
import sys
from contextlib import AbstractContextManager, nullcontext

# command name -> (module, one-line help). The help is here so `--help` imports nothing.
COMMANDS: dict[str, tuple[str, str]] = {
    "initialize": (
        "contexten.commands.initialize",
        "Validate config, migrate, register deployments.",
    ),
    "status": ("contexten.commands.status", "Show configuration, server and recent runs."),
    "execute": ("contexten.commands.execute", "Run one workflow type with JSON parameters."),
    "health-check": ("contexten.commands.health_check", "Check components and resources."),
    "server": ("contexten.commands.server", "Run the embedded Prefect server, runner, receiver."),
    "workflows": ("contexten.commands.workflows", "List workflow types; lint Actions workflows."),
    "analyze-log": ("contexten.commands.analyze_log", "Diagnose a CI job log."),
    "sandbox": ("contexten.commands.sandbox", "Serve local GitHub/Linear/Slack/Codegen APIs."),
    "webhook": ("contexten.commands.webhook", "Serve the GitHub webhook receiver."),
    "gha": ("contexten.commands.gha", "Run inside a GitHub Actions job."),
    "demo": ("contexten.commands.demo", "End-to-end demo on the embedded default."),
    "tests": ("contexten.commands.tests", "Ingest JUnit reports; flaky/slow tests; shards."),
    "perf": ("contexten.commands.perf", "CI duration regressions against a baseline branch."),
    "deps": ("contexten.commands.deps", "Dependency update plans."),
    "audit": ("contexten.commands.audit", "Security audit: dependencies, code, secrets."),
    "release": ("contexten.commands.release", "Next version and changelog from commits."),
    "alerts": ("contexten.commands.alerts", "List and manage alerts."),
    "recover": ("contexten.commands.recover", "Run the system recovery workflow."),
}

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3

# Commands that run whatever the environment says: `status` reports every configuration
# problem itself (and exits 2 when one is an error).
_CHECKS_ITS_OWN_CONFIG = frozenset({"status"})


def error(message: str, code: int) -> int:
    """Print a one-line error to stderr and return `code`."""
    first_line = message.strip().splitlines()[0] if message.strip() else "error"
    print(f"contexten: error: {first_line}", file=sys.stderr)
    return code


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [
        "Usage: contexten COMMAND [ARGS]...",
        "",
        "contexten: autonomous CI/CD orchestrator on Prefect 3.",
        "",
        "Commands:",
    ]
    lines += [f"  {name.ljust(width)}  {COMMANDS[name][1]}" for name in sorted(COMMANDS)]
    lines += ["", "Run `contexten COMMAND --help` for a command's options."]
    return "\n".join(lines)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("contexten")
    except PackageNotFoundError:
        return "unknown"


def run_command(name: str, args: list[str]) -> int:
    """Load the command's module and run its Typer app; map every exit to an int code.

    Exit codes: 0 ok, 1 a check or workflow failed, 2 bad input (one line on stderr),
    3 an unexpected error (a short message and the path of the log with the traceback).
    """
    try:
        return _run_command(name, args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: never a bare traceback
        return _internal_error(name, exc)


def _run_command(name: str, args: list[str]) -> int:
    import typer
    import typer.main
    from typer._click import exceptions as click_exceptions

    from contexten.errors import ContextenError

    module = importlib.import_module(COMMANDS[name][0])
    command = typer.main.get_command(module.app)
    try:
        if name not in _CHECKS_ITS_OWN_CONFIG and not _asks_for_help(args):
            _check_settings()
        with _logging():
            result = command.main(args=args, prog_name=f"contexten {name}", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except click_exceptions.NoArgsIsHelpError as exc:
        print(exc.format_message() if hasattr(exc, "format_message") else str(exc))
        return 0
    except click_exceptions.UsageError as exc:
        prog = exc.ctx.command_path if exc.ctx is not None else f"contexten {name}"
        return error(f"{exc.format_message()} (see `{prog} --help`)", EXIT_BAD_INPUT)
    except click_exceptions.ClickException as exc:
        exc.show()
        return EXIT_BAD_INPUT
    except ContextenError as exc:  # a bad environment, an unreachable store, ...
        return error(str(exc), exc.exit_code)
    except typer.Abort:
        print("Aborted.", file=sys.stderr)
        return 130
    return result if isinstance(result, int) else 0


def _asks_for_help(args: list[str]) -> bool:
    return "--help" in args or "-h" in args


def _check_settings() -> None:
    """ConfigError (exit 2) when an environment variable has a value no command can use."""
    from contexten.config import get_settings

    get_settings().check()


def _internal_error(name: str, exc: BaseException) -> int:
    """Write the traceback to a log file; print one line naming it; return EXIT_INTERNAL."""
    import traceback

    text = _redact("".join(traceback.format_exception(exc)))
    detail = _redact(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
    summary = type(exc).__name__ + (f": {detail}" if detail else "")
    path = _write_crash_log(name, text)
    where = f"the traceback is in {path}" if path else "the traceback could not be saved"
    print(
        f"contexten: internal error in `contexten {name}`: {summary} ({where}; please report it)",
        file=sys.stderr,
    )
    return EXIT_INTERNAL


def _write_crash_log(name: str, text: str) -> str | None:
    """CONTEXTEN_HOME/logs/crash-<time>-<pid>.log, or the temp directory when home is unusable."""
    import os
    import tempfile
    import time
    from pathlib import Path

    from contexten.config import default_home

    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    filename = f"crash-{name}-{stamp}-{os.getpid()}.log"
    for folder in (default_home() / "logs", Path(tempfile.gettempdir()) / "contexten-logs"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / filename
            # only the user may read it: a traceback can quote paths, hosts and arguments
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as log:
                log.write(text)
            return str(path)
        except OSError:
            continue
    return None


def _redact(text: str) -> str:
    """Secrets from the settings (or, when they cannot load, the environment) hidden."""
    import os
    from urllib.parse import urlparse

    secrets: list[str] = []
    try:
        from contexten.config import get_settings

        secrets += get_settings().secret_values()
    except Exception:
        secrets += [
            value
            for key, value in os.environ.items()
            if any(word in key.upper() for word in ("TOKEN", "SECRET", "KEY", "PASSWORD"))
        ]
    try:
        password = urlparse(os.environ.get("DATABASE_URL", "")).password
    except ValueError:
        password = None
    if password:
        secrets.append(password)
    # Very short values would blank out ordinary text, and cannot be real credentials.
    for secret in sorted({v for v in secrets if len(v) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _logging() -> AbstractContextManager[None]:
    """LOG_LEVEL/DEBUG for the command's run; nothing when the environment is invalid
    (`status` reports that itself, and `--help` still works)."""
    from contexten.config import ConfigError, get_settings
    from contexten.logsetup import configured_logging

    try:
        settings = get_settings()
    except ConfigError:
        return nullcontext()
    return configured_logging(settings)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if args[0] == "--version":
        print(f"contexten {version()}")
        return 0
    name = args[0]
    if name not in COMMANDS:
        return error(f"unknown command {name!r}; see `contexten --help`", EXIT_BAD_INPUT)
    return run_command(name, args[1:])


if __name__ == "__main__":
    sys.exit(main())
