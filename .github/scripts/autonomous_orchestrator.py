#!/usr/bin/env python3
"""Seed-compatible entry point: a thin shim over the `contexten` console command.

    python .github/scripts/autonomous_orchestrator.py \
        --action initialize|status|execute|health-check \
        [--operation TYPE] [--parameters JSON] [--wait]
"""

from __future__ import annotations

import argparse
import sys


def build_argv(args: argparse.Namespace) -> list[str]:
    if args.action == "execute":
        if not args.operation:
            raise SystemExit("autonomous_orchestrator: error: --action execute needs --operation")
        argv = ["execute", "--operation", args.operation]
        if args.parameters:
            argv += ["--parameters", args.parameters]
        if args.wait:
            argv.append("--wait")
        return argv
    return [args.action]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="contexten autonomous orchestrator")
    parser.add_argument(
        "--action", required=True, choices=["initialize", "status", "execute", "health-check"]
    )
    parser.add_argument("--operation", help="workflow type for --action execute")
    parser.add_argument("--parameters", help="JSON object of workflow parameters")
    parser.add_argument("--wait", action="store_true", help="wait for the workflow to finish")
    args = parser.parse_args(argv)
    try:
        forwarded = build_argv(args)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        from contexten.cli import main as contexten_main
    except ImportError as exc:  # the package (or one of its dependencies) is not installed
        missing = getattr(exc, "name", None) or "contexten"
        print(
            f"autonomous_orchestrator: error: cannot import {missing!r}: install contexten "
            "first with `pip install -e .` in the repository root",
            file=sys.stderr,
        )
        return 2
    return contexten_main(forwarded)


if __name__ == "__main__":
    sys.exit(main())
