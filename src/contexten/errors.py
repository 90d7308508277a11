"""The root of contexten's expected errors, and the exit codes the command maps them to.

An expected error is one a person can act on from its one-line message: a bad environment
variable, an unreadable input file, a store that cannot be reached. `contexten` prints it
as `contexten: error: <message>` and exits with the error's `exit_code`. Anything else is
a bug: the command writes the traceback to a log file and exits with EXIT_INTERNAL.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # a workflow or check ran and failed; a service is unreachable
EXIT_BAD_INPUT = 2  # bad arguments, environment variables or input files
EXIT_INTERNAL = 3  # an unexpected error (a bug): the traceback is in a log file


class ContextenError(Exception):
    """An expected error; the message is one line and names what to fix.

    `exit_code` is EXIT_BAD_INPUT for input a person must correct and EXIT_FAILED for
    something that failed at run time (a check, a workflow, an unreachable service).
    Subclasses set a class default; an instance may override it.
    """

    exit_code: int = EXIT_FAILED

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class BadInputError(ContextenError):
    """Input a person must correct (arguments, environment, files): exit 2."""

    exit_code = EXIT_BAD_INPUT
