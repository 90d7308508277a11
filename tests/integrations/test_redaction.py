"""Secrets never reach log output or exception text."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from contexten.integrations.interface import CIProviderError, ErrorReason
from contexten.integrations.redaction import (
    MASK,
    RedactingFilter,
    clear_secrets,
    install_log_redaction,
    redact,
    register_secrets,
)

TOKEN = "ghp_redactionTestToken1234567890abcdef"
WEBHOOK = "https://hooks.slack.com/services/T000/B000/redactionWebhookKey"


@pytest.fixture(autouse=True)
def secrets() -> Iterator[None]:
    register_secrets([TOKEN, WEBHOOK])
    yield
    clear_secrets()


def test_redact_replaces_every_occurrence_and_url_encoded_forms() -> None:
    encoded = "https%3A%2F%2Fhooks.slack.com%2Fservices%2FT000%2FB000%2FredactionWebhookKey"
    text = f"token {TOKEN} and again {TOKEN}; url={WEBHOOK}; enc={encoded}"
    out = redact(text)
    assert TOKEN not in out and WEBHOOK not in out and "redactionWebhookKey" not in out
    assert out.count(MASK) == 4


def test_short_values_are_not_treated_as_secrets() -> None:
    register_secrets(["abc", "", None])
    assert redact("abc def") == "abc def"


def test_integration_errors_are_redacted_when_made() -> None:
    err = CIProviderError(f"github: POST failed with token {TOKEN}", reason=ErrorReason.AUTH)
    assert TOKEN not in str(err) and TOKEN not in repr(err) and MASK in str(err)


def test_log_records_of_any_logger_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction([TOKEN])
    caplog.set_level(logging.INFO)
    logging.getLogger("httpx").info('HTTP Request: POST %s "HTTP/1.1 200 OK"', WEBHOOK)
    logging.getLogger("contexten.anything").warning("auth header was Bearer %s", TOKEN)
    try:
        raise RuntimeError(f"failed with {TOKEN}")
    except RuntimeError:
        logging.getLogger("contexten.x").exception("boom")
    assert TOKEN not in caplog.text and WEBHOOK not in caplog.text
    assert all(TOKEN not in r.getMessage() for r in caplog.records)
    assert caplog.text.count(MASK) >= 3


def test_redacting_filter_on_a_handler() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "value=%s", (TOKEN,), None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == f"value={MASK}"
