"""Full-text search over a run's prompts and responses, and a small cache keyed by a run's version.

On SQLite the viewer builds an FTS5 index of a finished run the first time someone searches it, in
memory (the store is never written: the viewer is read-only), and answers later searches from it in
milliseconds. The query is a phrase of the words typed, the last one as a prefix ("recipe law" finds
"recipe lawyer"); matching is case-insensitive (FTS5's ``unicode61`` tokenizer). Runs still running,
PostgreSQL stores, and queries with no word characters use a substring match in SQL instead
(``LIKE``/``ILIKE``), which is exact but scans the run.

``run_version`` is a cheap fingerprint of a run's stored state (its row's status and update time and
the highest key of its items, responses and judgments, each an O(log n) index lookup): anything cached
under it is recomputed as soon as the run changes. Rows are only ever added to a run, or deleted
and then added again (``--retry-errors``), so the highest keys move whenever the content does.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections import OrderedDict
from typing import Any, Callable

from sqlalchemy import and_, func, select

from airisk.store.schema import ItemRow, JudgmentRow, ResponseRow, RunRow

WORD = re.compile(r"\w+", re.UNICODE)


def run_version(store: Any, run_id: str) -> tuple:
    """Changes whenever the run's row, items, responses or judgments change (index lookups only)."""
    with store.engine.connect() as c:
        status, updated = c.execute(select(RunRow.status, RunRow.updated_at).where(RunRow.id == run_id)).one()
        maxima = c.execute(select(*(select(func.max(t.pk)).where(t.run_id == run_id).scalar_subquery()
                                    for t in (ItemRow, ResponseRow, JudgmentRow)))).one()
    return (status, str(updated), *maxima)


class VersionCache:
    """LRU of values computed for a run, valid while ``run_version`` is unchanged."""

    def __init__(self, size: int = 256):
        self.size = size
        self._d: OrderedDict[tuple, tuple[tuple, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple, version: tuple, compute: Callable[[], Any]) -> Any:
        with self._lock:
            hit = self._d.get(key)
            if hit is not None and hit[0] == version:
                self._d.move_to_end(key)
                return hit[1]
        value = compute()
        with self._lock:
            self._d[key] = (version, value)
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)
        return value


def fts_query(text: str) -> str | None:
    """An FTS5 phrase query for the words of ``text`` (last word as a prefix), or None if it has none."""
    words = WORD.findall(text)
    if not words:
        return None
    return '"' + " ".join(w.replace('"', "") for w in words) + '" *'


class SearchIndex:
    """In-memory FTS5 indexes of finished SQLite runs, one per run, rebuilt when the run changes."""

    def __init__(self, max_runs: int = 4):
        self.max_runs = max_runs
        self._runs: OrderedDict[str, tuple[tuple, sqlite3.Connection]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def usable(store: Any, version: tuple) -> bool:
        return store.engine.dialect.name == "sqlite" and version[0] != "running"

    def _build(self, store: Any, run_id: str) -> sqlite3.Connection:
        conn = sqlite3.connect(":memory:", check_same_thread=False)
        conn.execute("CREATE VIRTUAL TABLE t USING fts5(prompt, response, tokenize='unicode61')")
        stmt = (select(ItemRow.pk, ItemRow.prompt, ResponseRow.text)
                .outerjoin(ResponseRow, and_(ResponseRow.run_id == ItemRow.run_id, ResponseRow.item_id == ItemRow.item_id))
                .where(ItemRow.run_id == run_id))
        with store.engine.connect() as c:
            result = c.execution_options(stream_results=True).execute(stmt)
            while chunk := result.fetchmany(5000):
                conn.executemany("INSERT INTO t(rowid, prompt, response) VALUES (?, ?, ?)",
                                 [(pk, p or "", r or "") for pk, p, r in chunk])
        conn.commit()
        return conn

    def prefetch(self, store: Any, run_id: str, version: tuple) -> None:
        """Build the run's index in the background (called when its items page opens), so that the
        first search does not wait for it."""
        hit = self._runs.get(run_id)
        if not self.usable(store, version) or (hit is not None and hit[0] == version) or self._lock.locked():
            return
        threading.Thread(target=self.search, args=(store, run_id, version, "x"), daemon=True).start()

    def search(self, store: Any, run_id: str, version: tuple, text: str) -> list[int] | None:
        """Item pks (ascending) whose prompt or response matches, or None when FTS cannot answer."""
        q = fts_query(text)
        if q is None or not self.usable(store, version):
            return None
        with self._lock:  # one build at a time; searches on a built index are fast
            hit = self._runs.get(run_id)
            if hit is None or hit[0] != version:
                if hit is not None:
                    hit[1].close()
                self._runs[run_id] = (version, self._build(store, run_id))
                while len(self._runs) > self.max_runs:
                    self._runs.popitem(last=False)[1][1].close()
            self._runs.move_to_end(run_id)
            conn = self._runs[run_id][1]
            try:
                return [r[0] for r in conn.execute("SELECT rowid FROM t WHERE t MATCH ? ORDER BY rowid", (q,))]
            except sqlite3.OperationalError:
                return None  # a query FTS5 cannot parse: the caller falls back to LIKE

