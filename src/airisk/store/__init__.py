"""Persistence of runs, items, responses, judgments and caches (SQLAlchemy; SQLite default)."""

from airisk.store.store import Record, RunInfo, RunNotFound, Store, default_url

__all__ = ["Record", "RunInfo", "RunNotFound", "Store", "default_url"]
