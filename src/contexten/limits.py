"""Memory and CPU-time limits for the subprocesses workflows start (audits, test commands).

`limited_argv(argv, limits)` prefixes a command with this module as a tiny launcher
(`python -m contexten.limits --memory-mb N --cpu-seconds N -- argv...`), which sets
RLIMIT_AS and RLIMIT_CPU on itself and then execs the command, so the limits hold for the
command and everything it starts. A launcher instead of `preexec_fn` because workflows run
subprocesses from worker threads, where `preexec_fn` is not safe. A process over its
memory limit gets allocation failures (MemoryError in Python); over its CPU time, SIGXCPU
then SIGKILL. Limits are POSIX only; elsewhere the command runs unlimited.

Settings: SUBPROCESS_MEMORY_MB and SUBPROCESS_CPU_SECONDS (0 = no limit).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ProcessLimits:
    memory_mb: int = 0  # 0: no limit
    cpu_seconds: int = 0

    @property
    def active(self) -> bool:
        return self.memory_mb > 0 or self.cpu_seconds > 0


def from_settings(settings: Any) -> ProcessLimits:
    return ProcessLimits(
        memory_mb=max(0, int(getattr(settings, "subprocess_memory_mb", 0) or 0)),
        cpu_seconds=max(0, int(getattr(settings, "subprocess_cpu_seconds", 0) or 0)),
    )


def supported() -> bool:
    try:
        import resource  # noqa: F401
    except ImportError:  # pragma: no cover - Windows
        return False
    return True


def limited_argv(argv: Sequence[str], limits: ProcessLimits) -> list[str]:
    """`argv` run under `limits` (unchanged when there are none or they are unsupported)."""
    if not limits.active or not supported():
        return list(argv)
    return [
        sys.executable,
        "-m",
        "contexten.limits",
        "--memory-mb",
        str(limits.memory_mb),
        "--cpu-seconds",
        str(limits.cpu_seconds),
        "--",
        *argv,
    ]


def apply(limits: ProcessLimits) -> None:
    """Set the limits on this process (soft = hard, so the command cannot raise them)."""
    import resource

    if limits.memory_mb > 0:
        size = limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    if limits.cpu_seconds > 0:
        # the soft limit sends SIGXCPU; one more second and the hard limit kills
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" not in args or args.index("--") == len(args) - 1:
        print(
            "contexten.limits: usage: [--memory-mb N] [--cpu-seconds N] -- COMMAND", file=sys.stderr
        )
        return 2
    split = args.index("--")
    parser = argparse.ArgumentParser(prog="python -m contexten.limits")
    parser.add_argument("--memory-mb", type=int, default=0)
    parser.add_argument("--cpu-seconds", type=int, default=0)
    options = parser.parse_args(args[:split])
    command = args[split + 1 :]
    apply(ProcessLimits(max(0, options.memory_mb), max(0, options.cpu_seconds)))
    try:
        os.execvp(command[0], command)  # noqa: S606 - an argument list, never a shell
    except OSError as exc:
        print(f"contexten.limits: cannot run {command[0]!r}: {exc.strerror}", file=sys.stderr)
        return 127
    return 0  # pragma: no cover - execvp does not return


if __name__ == "__main__":
    sys.exit(main())
