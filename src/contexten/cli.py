"""The `contexten` command. Subcommands load lazily so `--help` and `analyze-log` stay fast.

Each subcommand lives in its own module under `contexten.commands` and exposes a Typer
`app`. Modules must not import Prefect, githubkit or other heavy libraries at import time.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

# command name -> (module, one-line help). The help is here so `--help` imports nothing.
COMMANDS: dict[str, tuple[str, str]] = {
    "initialize": ("contexten.commands.initialize", "Validate config, migrate, register deployments."),
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


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        import typer.main

        module = importlib.import_module(entry[0])
        command = typer.main.get_command(module.app)
        command.name = cmd_name
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The help lines come from COMMANDS, so `--help` imports no command module.
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="contexten")
def cli() -> None:
    """contexten: autonomous CI/CD orchestrator on Prefect 3."""


def main(argv: list[str] | None = None) -> int:
    try:
        result: Any = cli.main(args=argv, prog_name="contexten", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.format_message() if hasattr(exc, "format_message") else str(exc))
        return 0
    except click.ClickException as exc:
        exc.show()
        return 2
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
