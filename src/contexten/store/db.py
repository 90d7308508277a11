"""Engine, sessions and migrations for the store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from contexten.errors import EXIT_BAD_INPUT, ContextenError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class StoreError(ContextenError):
    """The store cannot be opened, migrated or written.

    Exit 2 when the configuration is at fault (a malformed DATABASE_URL, an unknown
    database, a CONTEXTEN_HOME that is not a directory); exit 1 when a well-formed store
    cannot be reached or migrated.
    """


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the webhook receiver write while the dispatcher reads; busy_timeout waits
    # for a lock instead of failing at once when two processes write.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Store:
    """One database: an engine plus a session factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self._open(url)
        except StoreError:
            raise
        except NoSuchModuleError:
            raise StoreError(
                f"DATABASE_URL names an unknown database ({_describe_url(url)}); "
                "use sqlite:///path/contexten.db or postgresql+psycopg://user@host/db",
                exit_code=EXIT_BAD_INPUT,
            ) from None
        except Exception as exc:  # driver not installed, ...
            raise StoreError(f"cannot open the store ({_describe_url(url)}): {exc}") from None

    def _open(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise StoreError(
                "DATABASE_URL is not a database URL (expected e.g. "
                "sqlite:///path/contexten.db or postgresql+psycopg://user@host/db)",
                exit_code=EXIT_BAD_INPUT,
            ) from None
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"future": True}
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                folder = Path(parsed.database).expanduser().parent
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except (FileExistsError, NotADirectoryError):
                    raise StoreError(
                        f"cannot create the store's directory {folder}: a file is in the way "
                        "(CONTEXTEN_HOME or DATABASE_URL must name a directory path)",
                        exit_code=EXIT_BAD_INPUT,
                    ) from None
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._migrated = False
        self._lock = threading.Lock()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""
        with self._lock:
            if self._migrated:
                return
            from alembic import command
            from alembic.config import Config

            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
            try:
                with self.engine.begin() as connection:
                    if connection.dialect.name == "postgresql":
                        # Replicas starting together on a fresh database: one migrates,
                        # the others wait here and then find the schema at head.
                        connection.execute(text("SELECT pg_advisory_xact_lock(7131962)"))
                    cfg.attributes["connection"] = connection
                    command.upgrade(cfg, "head")
            except Exception as exc:
                raise StoreError(f"cannot migrate the store at {self.safe_url}: {exc}") from exc
            self._migrated = True

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden, for messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()


def _describe_url(url: str) -> str:
    """The URL without its password, or only its scheme when it cannot be parsed."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split(":", 1)[0] + ":..."


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def open_store(url: str | None = None, *, migrate: bool = True) -> Store:
    """The process-wide Store for a URL (default: the configured one), migrated."""
    if url is None:
        from contexten.config import get_settings

        url = get_settings().effective_database_url
    with _stores_lock:
        store = _stores.get(url)
        if store is None:
            store = Store(url)
            _stores[url] = store
    if migrate:
        store.migrate()
    return store


def close_all_stores() -> None:
    with _stores_lock:
        for store in _stores.values():
            store.dispose()
        _stores.clear()
