"""Persistence of runs, items, responses, judgments and caches (SQLAlchemy; SQLite default)."""

from airisk.store.store import Lease, Record, RunBusy, RunInfo, RunNotFound, Store, default_url

__all__ = ["Lease", "Record", "RunBusy", "RunInfo", "RunNotFound", "Store", "default_url"]
