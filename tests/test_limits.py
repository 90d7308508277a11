"""Subprocess limits: the launcher sets RLIMIT_AS / RLIMIT_CPU and then runs the command."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from contexten.config import Settings
from contexten.limits import ProcessLimits, from_settings, limited_argv, main

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")


def test_no_limits_leave_the_command_alone() -> None:
    assert limited_argv(["pytest", "-q"], ProcessLimits()) == ["pytest", "-q"]
    argv = limited_argv(["pytest", "-q"], ProcessLimits(memory_mb=512, cpu_seconds=60))
    assert argv[:3] == [sys.executable, "-m", "contexten.limits"]
    assert argv[-3:] == ["--", "pytest", "-q"] and "512" in argv and "60" in argv


def test_settings_give_the_limits() -> None:
    assert from_settings(Settings()) == ProcessLimits(4096, 3600)
    assert not from_settings(Settings(subprocess_memory_mb=0, subprocess_cpu_seconds=0)).active


def test_memory_over_the_limit_fails_in_the_child_only() -> None:
    allocate = [sys.executable, "-c", "x = bytearray(400 * 1024 * 1024); print('allocated')"]
    limited = subprocess.run(
        limited_argv(allocate, ProcessLimits(memory_mb=200)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert limited.returncode != 0 and "MemoryError" in limited.stderr
    small = [sys.executable, "-c", "x = bytearray(20 * 1024 * 1024); print('allocated')"]
    done = subprocess.run(
        limited_argv(small, ProcessLimits(memory_mb=200)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip() == "allocated"


def test_cpu_time_over_the_limit_is_stopped() -> None:
    spin = [sys.executable, "-c", "while True: pass"]
    done = subprocess.run(
        limited_argv(spin, ProcessLimits(cpu_seconds=1)), capture_output=True, check=False
    )
    assert done.returncode in (-signal.SIGXCPU, -signal.SIGKILL)


def test_launcher_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--memory-mb", "10"]) == 2
    assert "usage" in capsys.readouterr().err
