"""Apply LOG_LEVEL and DEBUG to contexten's loggers, with secrets masked in every record.

The `contexten` command runs inside `configured_logging`. Records go to standard
error as `WARNING contexten.alerts: ...` unless something else, such as Prefect in a runner
process, already configured the root logger: then only the level is set and that
configuration prints them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from contexten.config import Settings

LOGGER = "contexten"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time of the record (tests swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def log_level(settings: Settings) -> int:
    if settings.debug:
        return logging.DEBUG
    level = logging.getLevelName(settings.log_level)
    return level if isinstance(level, int) else logging.WARNING  # validate() reports it


@contextmanager
def configured_logging(settings: Settings) -> Iterator[None]:
    """Within the block: `contexten` loggers at LOG_LEVEL (DEBUG=true wins), shown on stderr.

    On exit the previous level and handlers come back, so calling `contexten.cli.main` in
    a process (tests, scripts) leaves its logging as it was.
    """
    from contexten.integrations.redaction import install_log_redaction

    install_log_redaction(settings.secret_values())
    logger = logging.getLogger(LOGGER)
    previous = (logger.level, logger.propagate)
    handler: logging.Handler | None = None
    logger.setLevel(log_level(settings))
    if not logging.getLogger().handlers:  # nobody (e.g. Prefect) configured logging
        handler = _StderrHandler()
        # Not "contexten: error: ...": that prefix is the command's own one-line failure.
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False  # our handler prints them; the root would print them again
    try:
        yield
    finally:
        if handler is not None:
            logger.removeHandler(handler)
        logger.setLevel(previous[0])
        logger.propagate = previous[1]


__all__ = ["configured_logging", "log_level"]
