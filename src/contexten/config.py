"""Settings from environment variables, with defaults that work on the embedded setup.

Every variable is documented in the README's configuration reference. `validate()` lists
human-readable problems instead of raising, so `contexten status` can show them all at once.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contexten.errors import BadInputError

UpdateStrategy = Literal["conservative", "smart", "aggressive"]
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_WORKSPACE = re.compile(rf"({_UUID})/({_UUID})")


def default_home() -> Path:
    return Path(os.environ.get("CONTEXTEN_HOME") or Path.home() / ".contexten")


class AlertThresholds(BaseSettings):
    """Alert thresholds; each one is also an environment variable (e.g. ALERT_CPU_PERCENT)."""

    model_config = SettingsConfigDict(env_prefix="ALERT_", extra="ignore", env_ignore_empty=True)

    cpu_percent: float = 80.0
    memory_percent: float = 85.0
    error_rate_percent: float = 10.0
    response_time_ms: float = 5000.0
    health_score: float = 70.0


class Settings(BaseSettings):
    """All of contexten's configuration. Field name == environment variable (upper-cased)."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, env_ignore_empty=True)

    # --- hosted services: credentials (optional unless the service is used) ---
    codegen_org_id: str | None = None
    codegen_token: SecretStr | None = None
    github_token: SecretStr | None = None
    github_app_id: str | None = None
    github_app_private_key: SecretStr | None = None
    github_app_installation_id: int | None = None
    github_webhook_secret: SecretStr | None = None
    slack_webhook_url: SecretStr | None = None
    slack_bot_token: SecretStr | None = None
    slack_channel: str | None = None
    slack_signing_secret: SecretStr | None = None  # verifies Slack's slash commands, buttons
    linear_api_key: SecretStr | None = None
    linear_team_id: str | None = None

    # --- base URLs (self-hosted GitHub Enterprise, or the local sandbox) ---
    github_api_url: str = "https://api.github.com"
    linear_api_url: str = "https://api.linear.app/graphql"
    slack_api_url: str = "https://slack.com/api/"
    codegen_api_url: str = "https://api.codegen.com"
    pypi_index_url: str = "https://pypi.org/pypi"
    osv_api_url: str = "https://api.osv.dev"

    # --- what contexten watches ---
    github_repository: str | None = None  # owner/name; GitHub Actions sets it
    baseline_branch: str = "develop"

    # --- Prefect ---
    prefect_api_url: str | None = None
    prefect_api_key: SecretStr | None = None
    prefect_workspace: str | None = None  # "<account id>/<workspace id>" of Prefect Cloud
    prefect_cloud_api_url: str = "https://api.prefect.cloud/api"
    prefect_work_pool: str | None = None
    # How triggered runs execute when a Prefect server is reachable: "deployment" queues
    # them for the runner/workers; "local" runs the flow in the calling process (a warm
    # webhook dispatcher), still tracked by the server, without a subprocess per run.
    dispatch_mode: Literal["deployment", "local"] = "deployment"

    # --- local state ---
    contexten_home: Path = Field(default_factory=default_home)
    database_url: str | None = None  # default: sqlite file under contexten_home
    # the password for DATABASE_URL, given apart so that it may hold any character: it is
    # URL-escaped into the URL (which then carries none)
    database_password: SecretStr | None = None

    # --- switches ---
    monitoring_enabled: bool = True
    recovery_enabled: bool = True
    auto_fix_enabled: bool = False
    debug: bool = False
    log_level: str = "WARNING"  # what the command prints on stderr; INFO narrates

    # --- monitoring ---
    health_check_interval: int = 300
    performance_history_size: int = 1000

    # --- recovery ---
    max_concurrent_recoveries: int = 3
    escalation_threshold: int = 3
    auto_restart_enabled: bool = False
    max_rerun_attempts: int = 3

    # --- workflows ---
    workflow_default_timeout: int = 3600
    max_concurrent_workflows: int = 5
    workflow_retry_delay: int = 60
    # A run's lease: renewed every quarter of it while the run lives; a run whose lease
    # expired (its process died) is taken over and re-run from the start.
    execution_lease_seconds: int = 60
    # limits of the subprocesses workflows start (audits, test commands); 0 = none
    subprocess_memory_mb: int = 4096
    subprocess_cpu_seconds: int = 3600

    # --- webhook receiver ---
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 8787
    webhook_max_body_bytes: int = 25 * 1024 * 1024
    webhook_insecure: bool = False
    webhook_lease_seconds: int = 300  # a claimed delivery is re-claimed after this
    webhook_max_header_bytes: int = 32 * 1024  # request line and headers: 431 beyond
    webhook_max_connections: int = 512  # connections and requests at once: 503 beyond
    # bodies buffered at once across requests (each reserves its Content-Length first)
    webhook_max_buffered_bytes: int = 64 * 1024 * 1024
    routing_rules_file: Path | None = None  # JSON/YAML rules that extend or replace the defaults
    alert_routes_file: Path | None = None  # default: CONTEXTEN_HOME/alert_routes.json
    # Who may give `/contexten ...` commands in pull request comments (author_association).
    comment_command_associations: str = "OWNER,MEMBER,COLLABORATOR"

    # --- outbound HTTP ---
    http_timeout_seconds: float = 30.0
    http_max_attempts: int = 5
    http_max_total_seconds: float = 300.0
    # after an ambiguous write, look it up this long (and at least the timeout) before retrying
    http_late_write_seconds: float = 10.0

    alert_thresholds: AlertThresholds = Field(default_factory=AlertThresholds)

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        return value.upper()

    # ----- derived values -----
    @property
    def data_dir(self) -> Path:
        return Path(self.contexten_home).expanduser()

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            if self.database_password is not None:
                return with_password(self.database_url, self.database_password.get_secret_value())
            return self.database_url
        return f"sqlite:///{self.data_dir / 'contexten.db'}"

    @property
    def prefect_workspace_api_url(self) -> str | None:
        """PREFECT_WORKSPACE as its Prefect Cloud API URL (None when unset or malformed)."""
        match = _WORKSPACE.fullmatch((self.prefect_workspace or "").strip().lower())
        if match is None:
            return None
        base = self.prefect_cloud_api_url.rstrip("/")
        return f"{base}/accounts/{match.group(1)}/workspaces/{match.group(2)}"

    @property
    def prefect_home(self) -> Path:
        """Prefect home of the embedded server: never the user's own ~/.prefect."""
        return self.data_dir / "prefect"

    def enabled_integrations(self) -> dict[str, bool]:
        return {
            "github": self.github_token is not None or self.github_app_id is not None,
            "linear": self.linear_api_key is not None and self.linear_team_id is not None,
            "slack": self.slack_webhook_url is not None or self.slack_bot_token is not None,
            "codegen": self.codegen_token is not None and self.codegen_org_id is not None,
        }

    def secret_values(self) -> list[str]:
        """Every configured secret's plain value, for log redaction."""
        values: list[str] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                plain = value.get_secret_value()
                if plain:
                    values.append(plain)
        return values

    def validate(self) -> list[str]:  # type: ignore[override]
        """Human-readable configuration problems; empty when all is well. Never raises.

        The errors (values no command can work with) come first, then the warnings.
        """
        return self.errors() + self.warnings()

    def errors(self) -> list[str]:
        """Values no command can work with: every command refuses to run (exit 2)."""
        return _errors(self)

    def warnings(self) -> list[str]:
        """Incomplete integration settings: the integration stays off; commands still run."""
        return _warnings(self)

    def check(self) -> None:
        """Raise ConfigError naming the first error (and how many more there are)."""
        errors = self.errors()
        if errors:
            more = ""
            if len(errors) > 1:
                more = f" (and {len(errors) - 1} more; see `contexten status`)"
            raise ConfigError(errors[0] + more)


# scheme[+driver]:// as SQLAlchemy expects; the dialect itself is checked when the store opens.
_DATABASE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\+[A-Za-z0-9_]+)?://")


def _is_http_url(value: str) -> bool:
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def _errors(s: Settings) -> list[str]:
    problems: list[str] = []
    for name in (
        "github_api_url",
        "linear_api_url",
        "slack_api_url",
        "codegen_api_url",
        "pypi_index_url",
        "osv_api_url",
    ):
        value = getattr(s, name)
        if not _is_http_url(value):
            problems.append(f"{name.upper()}={value!r} is not an http(s) URL")
    if s.prefect_api_url is not None and not _is_http_url(s.prefect_api_url):
        problems.append(f"PREFECT_API_URL={s.prefect_api_url!r} is not an http(s) URL")
    if s.prefect_workspace and s.prefect_workspace_api_url is None:
        problems.append(
            f"PREFECT_WORKSPACE={s.prefect_workspace!r} must be <account id>/<workspace id> "
            "(the two UUIDs in the workspace's Prefect Cloud URL)"
        )
    if s.prefect_workspace and s.prefect_api_key is None:
        problems.append("PREFECT_WORKSPACE is set but PREFECT_API_KEY is missing")
    if s.slack_webhook_url is not None and not _is_http_url(s.slack_webhook_url.get_secret_value()):
        problems.append("SLACK_WEBHOOK_URL is not an http(s) URL (value hidden)")
    if s.github_repository and s.github_repository.count("/") != 1:
        problems.append(f"GITHUB_REPOSITORY={s.github_repository!r} must be owner/name")
    if s.database_url and not _DATABASE_URL.match(s.database_url):
        # The value is left out: a database URL may hold a password.
        problems.append(
            "DATABASE_URL is not a database URL (expected e.g. sqlite:///path/contexten.db "
            "or postgresql+psycopg://user@host/db)"
        )
    if s.database_password is not None and "@" not in (s.database_url or ""):
        problems.append("DATABASE_PASSWORD is set but DATABASE_URL names no user (user@host)")
    home = s.data_dir
    if home.exists() and not home.is_dir():
        problems.append(f"CONTEXTEN_HOME={str(home)!r} is not a directory")
    if s.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        problems.append(
            f"LOG_LEVEL={s.log_level!r} must be DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )
    positive = {
        "health_check_interval": s.health_check_interval,
        "performance_history_size": s.performance_history_size,
        "max_concurrent_recoveries": s.max_concurrent_recoveries,
        "escalation_threshold": s.escalation_threshold,
        "workflow_default_timeout": s.workflow_default_timeout,
        "max_concurrent_workflows": s.max_concurrent_workflows,
        "max_rerun_attempts": s.max_rerun_attempts,
        "http_max_attempts": s.http_max_attempts,
        "webhook_max_body_bytes": s.webhook_max_body_bytes,
        "webhook_lease_seconds": s.webhook_lease_seconds,
    }
    for name, value in positive.items():
        if value < 1:
            problems.append(f"{name.upper()}={value} must be at least 1")
    for name in ("http_timeout_seconds", "http_max_total_seconds"):
        seconds = getattr(s, name)
        if not seconds > 0:
            problems.append(f"{name.upper()}={seconds} must be a positive number of seconds")
    if s.workflow_retry_delay < 0:
        problems.append(f"WORKFLOW_RETRY_DELAY={s.workflow_retry_delay} must not be negative")
    if not 1 <= s.webhook_port <= 65535:
        problems.append(f"WEBHOOK_PORT={s.webhook_port} must be between 1 and 65535")
    t = s.alert_thresholds
    for name in ("cpu_percent", "memory_percent", "error_rate_percent", "health_score"):
        value = getattr(t, name)
        if not 0 <= value <= 100:
            problems.append(f"ALERT_{name.upper()}={value} must be between 0 and 100")
    if t.response_time_ms <= 0:
        problems.append(f"ALERT_RESPONSE_TIME_MS={t.response_time_ms} must be positive")
    for name in ("alert_routes_file", "routing_rules_file"):
        path = getattr(s, name)
        if path is not None and not Path(path).expanduser().is_file():
            problems.append(f"{name.upper()}={str(path)!r} is not a file")
    if s.alert_routes_file is not None and Path(s.alert_routes_file).expanduser().is_file():
        from contexten.alert_routing import AlertConfigError, load_routing

        try:
            load_routing(Path(s.alert_routes_file).expanduser())
        except AlertConfigError as exc:
            problems.append(f"ALERT_ROUTES_FILE: {exc}")
    return problems


def _warnings(s: Settings) -> list[str]:
    problems: list[str] = []
    if s.codegen_token is not None and not s.codegen_org_id:
        problems.append("CODEGEN_TOKEN is set but CODEGEN_ORG_ID is missing")
    if s.codegen_org_id and s.codegen_token is None:
        problems.append("CODEGEN_ORG_ID is set but CODEGEN_TOKEN is missing")
    if s.codegen_org_id and not s.codegen_org_id.isdigit():
        problems.append(f"CODEGEN_ORG_ID={s.codegen_org_id!r} must be a number")
    if s.auto_fix_enabled and s.codegen_token is None:
        problems.append("AUTO_FIX_ENABLED is true but CODEGEN_TOKEN is missing")
    if s.linear_api_key is not None and not s.linear_team_id:
        problems.append("LINEAR_API_KEY is set but LINEAR_TEAM_ID is missing")
    if s.slack_bot_token is not None and not s.slack_channel:
        problems.append("SLACK_BOT_TOKEN is set but SLACK_CHANNEL is missing")
    if s.github_app_id and (s.github_app_private_key is None or not s.github_app_installation_id):
        problems.append(
            "GITHUB_APP_ID is set but GITHUB_APP_PRIVATE_KEY or "
            "GITHUB_APP_INSTALLATION_ID is missing"
        )
    return problems


class ConfigError(BadInputError, ValueError):
    """An environment variable has a bad value; the message names it (exit 2)."""


def _env_name(loc: tuple[int | str, ...], title: str) -> str:
    prefix = "ALERT_" if title == AlertThresholds.__name__ else ""
    return prefix + "_".join(str(part) for part in loc).upper()


def load_settings() -> Settings:
    """Settings from the environment; ConfigError (one line, no values) on a bad variable."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        # The value is left out on purpose: it may be a secret.
        raise ConfigError(
            f"environment variable {_env_name(first['loc'], exc.title)}: {first['msg']}"
        ) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return load_settings()


def reload_settings() -> Settings:
    """Forget the cached settings and read the environment again (configuration reset)."""
    get_settings.cache_clear()
    return get_settings()


def with_password(url: str, password: str) -> str:
    """`url` with `password` URL-escaped into its user part (replacing one it had)."""
    from urllib.parse import quote, urlsplit, urlunsplit

    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url  # no user to give it to: validate() reports it
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    netloc = f"{user}:{quote(password, safe='')}@{hostport}"
    return urlunsplit(parts._replace(netloc=netloc))
