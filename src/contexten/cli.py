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
    """Load the command's module and run its Typer app; map every exit to an int code."""
    import typer
    import typer.main
    from typer._click import exceptions as click_exceptions

    from contexten.config import ConfigError
    from contexten.store.db import StoreError

    module = importlib.import_module(COMMANDS[name][0])
    command = typer.main.get_command(module.app)
    try:
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
    except ConfigError as exc:  # a bad environment variable, found by whichever command ran
        return error(str(exc), EXIT_BAD_INPUT)
    except StoreError as exc:  # the store cannot be opened or migrated
        return error(str(exc), EXIT_FAILED)
    except typer.Abort:
        print("Aborted.", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        return 130
    return result if isinstance(result, int) else 0


def _logging() -> AbstractContextManager[None]:
    """LOG_LEVEL/DEBUG for the command's run; nothing when the environment is invalid (the
    command reports that itself, and `--help` still works)."""
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
