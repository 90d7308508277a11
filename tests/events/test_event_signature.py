from __future__ import annotations

import pytest

from contexten.events.signature import sign, verify

# From GitHub's "validating webhook deliveries" page.
VECTOR_SECRET = "It's a Secret to Everybody"
VECTOR_BODY = b"Hello, World!"
VECTOR_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_github_test_vector() -> None:
    assert sign(VECTOR_SECRET, VECTOR_BODY) == VECTOR_SIGNATURE
    assert verify(VECTOR_SECRET, VECTOR_BODY, VECTOR_SIGNATURE)
    assert verify(VECTOR_SECRET.encode(), VECTOR_BODY, VECTOR_SIGNATURE)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha1=757107ea0eb2509fc211221cce984b8a37570b6d",
        VECTOR_SIGNATURE[:-1],  # truncated
        VECTOR_SIGNATURE + "0",  # too long
        VECTOR_SIGNATURE[:-1] + "f",  # one digit off
        "sha256=" + "z" * 64,  # not hex
        VECTOR_SIGNATURE.replace("sha256=", "SHA256="),
    ],
)
def test_bad_headers_are_rejected(header: str | None) -> None:
    assert not verify(VECTOR_SECRET, VECTOR_BODY, header)


def test_wrong_secret_or_changed_body_is_rejected() -> None:
    assert not verify("another secret", VECTOR_BODY, VECTOR_SIGNATURE)
    assert not verify(VECTOR_SECRET, VECTOR_BODY + b" ", VECTOR_SIGNATURE)


def test_uppercase_hex_is_accepted() -> None:
    upper = "sha256=" + VECTOR_SIGNATURE.removeprefix("sha256=").upper()
    assert verify(VECTOR_SECRET, VECTOR_BODY, upper)
