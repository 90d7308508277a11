"""Find committed secrets in text: provider tokens, private keys, generic high-entropy values.

Pure: `scan_text(text, path)` returns frozen findings; no file or network access (a found
secret is never sent anywhere to check it). A finding never holds the secret itself:
only a redacted form and a fingerprint (a SHA-256 over rule, path and the secret's own
SHA-256) that a baseline can store so only new secrets fail.

Low false positives come from: provider formats with fixed prefixes and word boundaries
(so nothing matches inside a base64 blob), GitHub's CRC32 token checksum, generic values
only when a secret-like name is assigned to them, entropy thresholds per alphabet,
placeholder words (example, changeme, xxxx, <...>, ${...}), and lock files (hashes
everywhere) getting provider rules only. `# pragma: allowlist secret` on a line skips it.
"""

from __future__ import annotations

import binascii
import hashlib
import math
import posixpath
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace

from contexten.analysis.sarif import SarifRule, Severity

MAX_LINE_CHARS = 20_000  # a longer line (minified bundle) is scanned only up to here


@dataclass(frozen=True, slots=True)
class SecretFinding:
    rule: str
    path: str
    line: int
    column: int
    redacted: str
    fingerprint: str
    severity: Severity
    note: str = ""

    def format(self) -> str:
        extra = f" ({self.note})" if self.note else ""
        return f"{self.path}:{self.line}:{self.column}: {self.rule}: {self.redacted}{extra}"


RULES: dict[str, SarifRule] = {
    rule.id: rule
    for rule in (
        SarifRule(
            "github-token",
            "GitHubToken",
            "GitHub access token",
            "high",
            "Revoke the token at github.com/settings/tokens (or the app's settings), then "
            "remove it from the code and read it from a secret store or environment variable.",
        ),
        SarifRule(
            "aws-access-key-id",
            "AwsAccessKeyId",
            "AWS access key id",
            "high",
            "Deactivate the key in IAM, rotate it, and use roles or a secret store instead.",
        ),
        SarifRule(
            "aws-secret-access-key",
            "AwsSecretAccessKey",
            "AWS secret access key",
            "critical",
            "Deactivate the key pair in IAM and rotate it; never commit the secret half.",
        ),
        SarifRule(
            "slack-webhook",
            "SlackWebhook",
            "Slack incoming webhook URL",
            "high",
            "Regenerate the webhook in the Slack app settings and keep the URL in a secret.",
        ),
        SarifRule(
            "slack-token",
            "SlackToken",
            "Slack API token",
            "high",
            "Revoke the token in the Slack app settings and keep it in a secret store.",
        ),
        SarifRule(
            "private-key",
            "PrivateKey",
            "Private key",
            "critical",
            "Treat the key as compromised: replace it and remove it from the repository history.",
        ),
        SarifRule(
            "generic-secret",
            "GenericSecret",
            "High-entropy value assigned to a secret-like name",
            "medium",
            "If this is a real credential, rotate it and read it from the environment or a "
            "secret store; if it is test data, mark the line `# pragma: allowlist secret`.",
        ),
    )
}

_GITHUB_RE = re.compile(
    r"(?<![A-Za-z0-9_])(?:(gh[pousr])_([A-Za-z0-9]{36})|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})"
    r"(?![A-Za-z0-9_])"
)
_AWS_ID_RE = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}(?![A-Z0-9])")
_AWS_SECRET_RE = re.compile(
    r"(?i)aws.{0,20}?(?:secret|private)?.{0,10}?key.{0,5}?['\"]?\s*[:=]>?\s*['\"]?"
    r"(?-i:([A-Za-z0-9/+]{40}))(?![A-Za-z0-9/+=])"
)
_SLACK_WEBHOOK_RE = re.compile(
    r"https://hooks\.slack\.com/(?:services|workflows|triggers)/T[A-Z0-9]{6,12}/"
    r"[AB][A-Z0-9]{6,12}/[A-Za-z0-9]{24}(?![A-Za-z0-9])"
)
_SLACK_TOKEN_RE = re.compile(
    r"(?<![A-Za-z0-9-])xox[abposr]-(?:\d{8,14}-){1,3}[A-Za-z0-9]{24,64}(?![A-Za-z0-9])"
)
_PRIVATE_KEY_RE = re.compile(
    r"-----BEGIN ((?:RSA |DSA |EC |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?)-----"
)
_GENERIC_RE = re.compile(
    r"""(?ix)
    (?P<name>[A-Za-z0-9_.\-]*?
       (?:secret|token|passw(?:or)?d|pwd|api[_.\-]?key|apikey|access[_.\-]?key|
          auth[_.\-]?key|private[_.\-]?key|client[_.\-]?secret|credential|signing[_.\-]?key)
     [A-Za-z0-9_.\-]*)
    ['"]?\s*(?::=|=>|==|[:=])\s*
    (?P<quote>['"`]?)
    (?P<value>[A-Za-z0-9+/=_\-.~!@#$%^&*]{16,256})
    (?P=quote)
    """
)
# Cheap test for lines that could hold anything at all; most lines are skipped by it.
_HINT_RE = re.compile(
    r"gh[pousr]_|github_pat_|A(?:KIA|SIA|BIA|CCA|3T)|hooks\.slack|xox[abposr]-|PRIVATE KEY|"
    r"(?i:aws|secret|token|passw|pwd|api.?key|access.?key|auth.?key|private.?key|credential|"
    r"signing.?key)"
)
_CODE_SUFFIXES = frozenset(
    {
        ".py",
        ".pyi",
        ".js",
        ".mjs",
        ".cjs",
        ".jsx",
        ".ts",
        ".tsx",
        ".go",
        ".java",
        ".kt",
        ".rb",
        ".rs",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".cs",
        ".swift",
        ".php",
        ".scala",
    }
)
_PLACEHOLDER_RE = re.compile(
    r"(?i)example|sample|dummy|placeholder|changeme|change_me|your[_\-]?|redacted|"
    r"fake|xxxx|\*\*\*\*|\.\.\.|^<|>$|\$\{|\{\{|%\(|^\$|test[_\-]?(?:key|token|secret)|"
    r"insert|replace|todo|notreal|not[_\-]a[_\-]"
)
_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_HEX_RE = re.compile(r"^[0-9a-fA-F]+$")
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?:\(\))?$")
_ALLOW_RE = re.compile(r"pragma:\s*allowlist[ -]secret|contexten:\s*ignore-secret")
_NON_SECRET_NAME_RE = re.compile(
    r"(?i)(?:_url|_uri|_path|_file|_dir|_name|_id|_type|_env|_var|_header|_field|_prefix|"
    r"_length|_len|_count|_expires?(?:_at)?|_ttl|_format|_pattern|_regex|_hash|_sha\d*|"
    r"_algorithm|_algo|_mode|_scheme|_kind|_class|_method|_strategy|_backend|_version)$"
)
_LOCK_FILES = frozenset(
    {
        "poetry.lock",
        "pipfile.lock",
        "uv.lock",
        "pdm.lock",
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "cargo.lock",
        "go.sum",
        "composer.lock",
        "gemfile.lock",
        "packages.lock.json",
    }
)
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def shannon_entropy(value: str) -> float:
    """Bits per character of `value`'s own character distribution."""
    if not value:
        return 0.0
    counts = Counter(value)
    total = len(value)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


# What a redacted form may show: the public, format-defining prefix of each kind.
_PUBLIC_PREFIX_RE: dict[str, re.Pattern[str]] = {
    "github-token": re.compile(r"^(?:gh[pousr]_|github_pat_)"),
    "aws-access-key-id": re.compile(r"^[A-Z0-9]{4}"),
    "slack-webhook": re.compile(r"^https://hooks\.slack\.com/\w+/"),
    "slack-token": re.compile(r"^xox[abposr]-"),
}


def redact(secret: str, rule: str = "") -> str:
    """A display form that never holds the secret: its public prefix, if any, and length."""
    prefix_re = _PUBLIC_PREFIX_RE.get(rule)
    prefix = prefix_re.match(secret) if prefix_re else None
    shown = prefix.group(0) if prefix else ""
    return f"{shown}…[redacted, {len(secret)} chars]"


def fingerprint(rule: str, path: str, secret: str) -> str:
    secret_hash = hashlib.sha256(secret.encode("utf-8")).hexdigest()
    return hashlib.sha256(f"{rule}\0{path}\0{secret_hash}".encode()).hexdigest()[:32]


def github_checksum_ok(token: str) -> bool:
    """GitHub's 2021 token format: the last 6 chars are base62(CRC32(the 30 random chars))."""
    if token.startswith("github_pat_"):
        return True  # fine-grained tokens carry no public checksum
    body = token[4:]
    random_part, check = body[:-6], body[-6:]
    value = 0
    for char in check:
        value = value * 62 + _BASE62.index(char)
    return value == binascii.crc32(random_part.encode("ascii"))


def is_lock_file(path: str) -> bool:
    return posixpath.basename(path.replace("\\", "/")).lower() in _LOCK_FILES


def _looks_like_placeholder(value: str) -> bool:
    if _PLACEHOLDER_RE.search(value):
        return True
    # One character repeated, or a run like abcdef.../123456... is not a real secret.
    if len(set(value)) <= 4:
        return True
    return any(run in value for run in ("abcdefgh", "12345678", "ABCDEFGH", "01234567"))


def _generic_is_secret(name: str, value: str) -> bool:
    if _NON_SECRET_NAME_RE.search(name):
        return False
    if _looks_like_placeholder(value) or _UUID_RE.match(value):
        return False
    if _IDENTIFIER_RE.match(value) and not any(c.isdigit() for c in value):
        return False  # a variable, attribute or call: os.environ.get, settings.token
    if value.startswith(("http://", "https://", "/", "./", "sha256:", "sha512-", "sha1-")):
        return False
    segments = [part for part in re.split(r"[_\-.]", value) if part]
    if len(segments) >= 3 and max(len(part) for part in segments) < 16:
        return False  # words joined by separators: pbkdf2_sha256_iterations_600000
    if _HEX_RE.match(value):
        return len(value) >= 32 and shannon_entropy(value) >= 3.0
    has_digit = any(c.isdigit() for c in value)
    has_alpha = any(c.isalpha() for c in value)
    return has_digit and has_alpha and shannon_entropy(value) >= 3.7


def _line_findings(
    line: str, line_no: int, path: str, lock_file: bool, code: bool
) -> Iterator[SecretFinding]:
    spans: list[tuple[int, int]] = []

    def emit(
        rule: str,
        secret: str,
        start: int,
        end: int,
        note: str = "",
        severity: Severity | None = None,
    ) -> SecretFinding | None:
        if any(s < end and start < e for s, e in spans):
            return None  # already reported by a more specific rule
        spans.append((start, end))
        return SecretFinding(
            rule,
            path,
            line_no,
            start + 1,
            redact(secret, rule),
            fingerprint(rule, path, secret),
            severity or RULES[rule].severity,
            note,
        )

    found: list[SecretFinding | None] = []
    for match in _PRIVATE_KEY_RE.finditer(line):
        # The header is no secret: scan_text re-keys this finding on the key's body.
        found.append(
            emit("private-key", match.group(0), match.start(), match.end(), match.group(1))
        )
    for match in _GITHUB_RE.finditer(line):
        token = match.group(0)
        if _looks_like_placeholder(token[4:]):
            continue
        if github_checksum_ok(token):
            found.append(emit("github-token", token, match.start(), match.end(), "checksum valid"))
        else:
            found.append(
                emit(
                    "github-token",
                    token,
                    match.start(),
                    match.end(),
                    "checksum does not match: likely a test value",
                    "medium",
                )
            )
    for match in _AWS_ID_RE.finditer(line):
        key = match.group(0)
        if "EXAMPLE" in key or len(set(key[4:])) <= 4:
            continue
        found.append(emit("aws-access-key-id", key, match.start(), match.end()))
    for match in _AWS_SECRET_RE.finditer(line):
        secret = match.group(1)
        if _looks_like_placeholder(secret) or shannon_entropy(secret) < 4.0:
            continue
        found.append(emit("aws-secret-access-key", secret, match.start(1), match.end(1)))
    for match in _SLACK_WEBHOOK_RE.finditer(line):
        url = match.group(0)
        if _looks_like_placeholder(url.rsplit("/", 1)[-1]):
            continue
        found.append(emit("slack-webhook", url, match.start(), match.end()))
    for match in _SLACK_TOKEN_RE.finditer(line):
        token = match.group(0)
        if _looks_like_placeholder(token.rsplit("-", 1)[-1]):
            continue
        found.append(emit("slack-token", token, match.start(), match.end()))
    if not lock_file:
        for match in _GENERIC_RE.finditer(line):
            value = match.group("value")
            if code and not match.group("quote"):
                continue  # in code an unquoted value is an expression, not a literal
            if _generic_is_secret(match.group("name"), value):
                found.append(
                    emit("generic-secret", value, match.start("value"), match.end("value"))
                )
    yield from (f for f in found if f is not None)


_KEY_BODY_LINE_RE = re.compile(r"[A-Za-z0-9+/=]{40,}")
_KEY_SAME_LINE_RE = re.compile(r"PRIVATE KEY(?: BLOCK)?-----(?:\\n|\s)+([A-Za-z0-9+/=]{40,})")


def _private_key_body(lines: list[str], index: int) -> str | None:
    """The first base64 line after a BEGIN line; None for docs that only name the header."""
    for following in lines[index + 1 : index + 6]:
        stripped = following.strip().strip("\"',").removesuffix("\\n")
        if _KEY_BODY_LINE_RE.fullmatch(stripped):
            return stripped
        if not stripped.startswith(("Proc-Type:", "DEK-Info:", "Comment:")) and stripped:
            break
    # A key in one string with literal \n escapes: the body follows on the same line.
    same_line = _KEY_SAME_LINE_RE.search(lines[index])
    return same_line.group(1) if same_line else None


def scan_text(text: str, path: str) -> tuple[SecretFinding, ...]:
    """Secrets in one file's text, in line order. `path` is how findings name the file."""
    lines = text.splitlines()
    lock_file = is_lock_file(path)
    code = posixpath.splitext(path.replace("\\", "/"))[1].lower() in _CODE_SUFFIXES
    findings: list[SecretFinding] = []
    for index, line in enumerate(lines):
        head = line[:MAX_LINE_CHARS]
        if not _HINT_RE.search(head) or _ALLOW_RE.search(line):
            continue
        for finding in _line_findings(head, index + 1, path, lock_file, code):
            if finding.rule == "private-key":
                body = _private_key_body(lines, index)
                if body is None:
                    continue
                finding = replace(
                    finding,
                    redacted=f"{finding.note} block",
                    fingerprint=fingerprint(finding.rule, path, body),
                    note="",
                )
            findings.append(finding)
    return tuple(findings)


def is_probably_binary(head: bytes) -> bool:
    """True for content with NUL bytes or mostly non-text bytes (images, archives)."""
    if b"\0" in head:
        return True
    if not head:
        return False
    text_bytes = sum(1 for b in head if b in b"\t\n\r\f\b" or 32 <= b < 127 or b >= 128)
    return text_bytes / len(head) < 0.9
