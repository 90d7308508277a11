"""Keep secret values out of logs, exception text and reprs.

Secrets are registered once (every client calls `register_secrets(settings.secret_values())`)
and `redact(text)` replaces each with `***`. `install_log_redaction()` makes every log record
of every logger (httpx logs request URLs, and a Slack webhook URL is a secret) carry redacted
text: it wraps the log record factory, which runs for all loggers, and formats the message
and any traceback eagerly. `RedactingFilter` does the same for a single handler.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

MASK = "***"
# Values shorter than this are not treated as secrets: masking "a" or "1" would mangle text.
MIN_SECRET_LENGTH = 6

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()
_installed = False


def register_secrets(values: Iterable[str | None]) -> None:
    """Add secret values to redact (also their URL-encoded forms)."""
    global _secrets
    fresh: set[str] = set()
    for value in values:
        if not value or len(value) < MIN_SECRET_LENGTH:
            continue
        fresh.add(value)
        encoded = quote(value, safe="")
        if encoded != value:
            fresh.add(encoded)
    with _lock:
        # Longest first so a secret containing another is masked whole.
        _secrets = tuple(sorted(set(_secrets) | fresh, key=len, reverse=True))


def clear_secrets() -> None:
    """Forget every registered secret (tests)."""
    global _secrets
    with _lock:
        _secrets = ()


def registered_secret_count() -> int:
    return len(_secrets)


def redact(text: str, extra: Iterable[str | None] = ()) -> str:
    """`text` with every registered secret (and each of `extra`) replaced by ***."""
    secrets = _secrets
    extra_values = tuple(v for v in extra if v and len(v) >= MIN_SECRET_LENGTH)
    if not secrets and not extra_values:
        return text
    for secret in (*extra_values, *secrets):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Replace the record's message and traceback text with redacted, pre-formatted text."""
    if not _secrets:
        return record
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: keep the raw message, redacted
        message = str(record.msg)
    record.msg = redact(message)
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class RedactingFilter(logging.Filter):
    """A handler/logger filter that redacts registered secrets; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def install_log_redaction(secret_values: Iterable[str | None] = ()) -> None:
    """Register `secret_values` and redact every log record created from now on (idempotent)."""
    global _installed
    register_secrets(secret_values)
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return redact_record(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        _installed = True
