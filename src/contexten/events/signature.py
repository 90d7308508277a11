"""GitHub webhook signatures: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`."""

from __future__ import annotations

import hashlib
import hmac
import re

SIGNATURE_HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def sign(secret: str | bytes, body: bytes) -> str:
    """The header value GitHub sends for `body` signed with `secret`."""
    return _PREFIX + hmac.new(_key(secret), body, hashlib.sha256).hexdigest()


def well_formed(header_value: str | None) -> bool:
    """True when `header_value` looks like a signature (`sha256=` and 64 hex digits).

    Checked before the body is read: a request without one is refused unread.
    """
    return bool(
        header_value
        and header_value.startswith(_PREFIX)
        and _HEX64.fullmatch(header_value[len(_PREFIX) :])
    )


def verify(secret: str | bytes, body: bytes | bytearray, header_value: str | None) -> bool:
    """True when `header_value` is the signature of `body`; compared in constant time.

    A missing, malformed or wrong-algorithm header is simply not valid; the caller
    answers 401 in every case and does not say which, so nothing leaks to a prober.
    """
    if header_value is None or not well_formed(header_value):
        return False
    received = header_value[len(_PREFIX) :]
    expected = hmac.new(_key(secret), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode("ascii"), received.lower().encode("ascii"))
