"""The store: SQLAlchemy 2 over a SQLite file (default) or PostgreSQL (DATABASE_URL)."""

from __future__ import annotations

from contexten.store.db import Store, open_store

__all__ = ["Store", "open_store"]
