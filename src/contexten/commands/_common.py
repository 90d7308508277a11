"""Helpers shared by the command modules: errors, JSON output, the console."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer

EXIT_OK = 0
EXIT_FAILED = 1  # a workflow ran and failed, or findings at/above --fail-on
EXIT_BAD_INPUT = 2


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print a one-line error to stderr and exit with `code`."""
    first_line = message.strip().splitlines()[0] if message.strip() else "error"
    print(f"contexten: error: {first_line}", file=sys.stderr)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def console() -> Any:
    from rich.console import Console

    return Console()
