"""The secret scanner on a fixture repository with planted (fake) secrets and look-alikes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contexten.analysis.secrets import (
    RULES,
    SecretFinding,
    fingerprint,
    github_checksum_ok,
    is_lock_file,
    is_probably_binary,
    redact,
    scan_text,
    shannon_entropy,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "audit"
REPO = DATA / "repo"
EXPECTED = json.loads((DATA / "expected_secrets.json").read_text(encoding="utf-8"))["secrets"]

VALID_GHP = "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"
BAD_SUM_GHP = "ghp_JcLufQex3Qnk8xfwWgSNhlUVbMWZc7bs6xkO"


def _scan_repo() -> list[SecretFinding]:
    findings: list[SecretFinding] = []
    for path in sorted(REPO.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if is_probably_binary(data[:8192]):
            continue
        findings += scan_text(data.decode("utf-8", "replace"), path.relative_to(REPO).as_posix())
    return findings


def _secret_values() -> list[str]:
    """The planted values, read from the fixture lines (for the never-printed checks)."""
    values = []
    for entry in EXPECTED:
        line = (REPO / entry["path"]).read_text().splitlines()[entry["line"] - 1]
        if entry["rule"] == "private-key":
            line = (REPO / entry["path"]).read_text().splitlines()[1]
        values.append(max(line.replace('"', " ").replace(":", " ").split(), key=len))
    return values


def test_every_planted_secret_is_found_with_its_severity() -> None:
    found = {(f.path, f.line, f.rule): f.severity for f in _scan_repo()}
    expected = {(e["path"], e["line"], e["rule"]): e["severity"] for e in EXPECTED}
    missed = set(expected) - set(found)
    assert missed == set()
    assert {key: found[key] for key in expected} == expected


def test_no_false_positives_on_the_look_alikes() -> None:
    # UUIDs, digests, lock-file hashes, a base64 image, placeholders, env lookups, docs.
    expected = {(e["path"], e["line"], e["rule"]) for e in EXPECTED}
    extra = [f.format() for f in _scan_repo() if (f.path, f.line, f.rule) not in expected]
    assert extra == []


def test_no_output_holds_a_secret() -> None:
    findings = _scan_repo()
    values = _secret_values()
    assert all(len(v) >= 20 for v in values)
    rendered = "\n".join(f.format() + f.fingerprint + repr(f) for f in findings)
    for value in values:
        assert value not in rendered
        assert value[-12:] not in rendered


def test_redaction_keeps_only_the_public_prefix() -> None:
    assert redact(VALID_GHP, "github-token") == "ghp_…[redacted, 40 chars]"
    assert redact("U206e5q6cPHDNZ7YPMsh", "generic-secret") == "…[redacted, 20 chars]"
    assert redact("xoxb-1-2-abc", "slack-token").startswith("xoxb-…")


def test_github_checksum() -> None:
    assert github_checksum_ok(VALID_GHP)
    assert not github_checksum_ok(BAD_SUM_GHP)
    assert not github_checksum_ok(VALID_GHP[:-1] + ("A" if VALID_GHP[-1] != "A" else "B"))


def test_token_with_a_bad_checksum_is_reported_below_high() -> None:
    (finding,) = scan_text(f'TOKEN = "{BAD_SUM_GHP}"', "a.py")
    assert finding.severity == "medium" and "checksum" in finding.note


@pytest.mark.parametrize(
    "line",
    [
        'request_id = "06e0600d-46a5-43c8-a5bc-aa21e0a94d71"',
        'password = "0f6d7a3c-1b2e-4c5d-8e9f-a0b1c2d3e4f5"',
        'token = os.environ["GITHUB_TOKEN"]',
        "api_key = settings.billing_api_key_value",
        'secret = "${{ secrets.TOKEN }}"',
        "token: {{ vault_token_for_the_service }}",
        'password = "<your-password-goes-here>"',
        'api_key = "xxxxxxxxxxxxxxxxxxxxxxxx"',
        'SECRET_KEY = "changeme-changeme-changeme"',
        'api_token = "aaaaaaaaaaaaaaaaaaaaaaaaaaaa"',
        'token_url = "https://example.com/oauth/token/endpoint"',
        'commit_sha = "bfa932b2aa0679d96ca73f62f38960bdf1e06618"',
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "url = https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        'img = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADU"',
        'password_hash_algorithm = "pbkdf2_sha256_iterations_600000"',
        f'ok = "{VALID_GHP}"  # pragma: allowlist secret',
        "tokenizer = 'bert-base-uncased-whole-word-masking'",
    ],
)
def test_look_alikes_are_not_secrets(line: str) -> None:
    assert scan_text(line, "src/app.py") == ()


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        (f"export GITHUB_TOKEN={VALID_GHP}", "github-token"),
        ("aws_access_key_id = AKIAMJCQ36IQPMBHJMPX", "aws-access-key-id"),
        (
            '"aws_secret_access_key": "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"',
            "aws-secret-access-key",
        ),
        ("client_secret: 9Yc2fLq8Rz4TkW1nVb7Xs3Dp", "generic-secret"),
        ("API_KEY=6609f1443f1fbe5e3deae611c509f503d6e270aa", "generic-secret"),
        ("stripe_api_key = 'sk_live_51HqLyjWDarjtT1zdp7dcXa2'", "generic-secret"),
    ],
)
def test_secrets_in_various_syntaxes(line: str, rule: str) -> None:
    assert [f.rule for f in scan_text(line, "conf/settings.txt")] == [rule]


def test_private_key_needs_a_body() -> None:
    header_only = "Keys start with -----BEGIN RSA PRIVATE KEY----- and are secret.\n"
    assert scan_text(header_only, "docs/keys.md") == ()
    one_string = 'KEY = "-----BEGIN RSA PRIVATE KEY-----\\n' + "MIIEow" * 10 + '\\n"'
    assert [f.rule for f in scan_text(one_string, "a.py")] == ["private-key"]


def test_lock_files_get_provider_rules_only() -> None:
    line = 'secret_token = "9Yc2fLq8Rz4TkW1nVb7Xs3Dp"'
    assert is_lock_file("web/package-lock.json") and is_lock_file("poetry.lock")
    assert scan_text(line, "poetry.lock") == ()
    assert [f.rule for f in scan_text(line + f"\n{VALID_GHP}", "uv.lock")] == ["github-token"]


def test_fingerprint_follows_the_secret_not_the_line() -> None:
    first = scan_text(f"A = 1\nT = '{VALID_GHP}'\n", "a.py")[0]
    moved = scan_text(f"\n\n\nT = '{VALID_GHP}'\n", "a.py")[0]
    other_file = scan_text(f"T = '{VALID_GHP}'\n", "b.py")[0]
    assert first.line != moved.line and first.fingerprint == moved.fingerprint
    assert first.fingerprint != other_file.fingerprint
    assert first.fingerprint == fingerprint("github-token", "a.py", VALID_GHP)
    assert VALID_GHP not in first.fingerprint


def test_entropy_and_binary_helpers() -> None:
    assert shannon_entropy("aaaa") == 0.0
    assert shannon_entropy("abcd") == pytest.approx(2.0)
    assert is_probably_binary(b"\x89PNG\r\n\x1a\n\x00")
    assert not is_probably_binary("plain text, ünïcode\n".encode())


def test_every_rule_is_described() -> None:
    assert set(RULES) >= {f.rule for f in _scan_repo()}
