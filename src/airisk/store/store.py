"""The run store: one SQLAlchemy database holding runs, items, responses, judgments and the cache.

SQLite (WAL mode) by default; any SQLAlchemy URL works, e.g. ``postgresql+psycopg2://...``.
Writes are idempotent (insert-or-ignore on the unique keys), which is what makes resume safe after
a crash at any moment.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

from pydantic import BaseModel, Field
from sqlalchemy import create_engine, delete, event, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from airisk.errors import AiriskError, ConfigError
from airisk.store.schema import Base, CacheRow, ItemRow, JudgmentRow, ResponseRow, RunLeaseRow, RunRow, utcnow
from airisk.types import Completion, Item, Judgment, Message


def default_url() -> str:
    """``AIRISK_DB`` if set, else a SQLite file under ``AIRISK_HOME`` (default ``./.airisk``)."""
    if url := os.environ.get("AIRISK_DB"):
        return url
    home = Path(os.environ.get("AIRISK_HOME", ".airisk"))
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'airisk.db'}"


class RunInfo(BaseModel):
    id: str
    kind: str
    status: str
    created_at: datetime
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    system_name: str
    system_fingerprint: str
    config: dict[str, Any] = Field(default_factory=dict)
    datasets: list[dict[str, Any]] = Field(default_factory=list)
    judges: list[dict[str, Any]] = Field(default_factory=list)
    stats: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None
    stored_status: str | None = None  # the status column as written; ``status`` is what is true now
    lease: dict[str, Any] | None = None  # who holds the run (host, pid, phase, heartbeat, expires) if anyone


IN_PROGRESS = ("running", "judging")  # stored statuses that are only true while someone holds the lease
LEASE_TTL_S = 30.0


class RunBusy(AiriskError):
    """Another live process holds the run (two resumes at once would ask the same items twice)."""


class Lease(BaseModel):
    run_id: str
    owner: str
    phase: str
    ttl_s: float = LEASE_TTL_S


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)  # SQLite returns naive datetimes


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (owned by someone else) or cannot tell: assume alive
    return True


def lease_dead(row: RunLeaseRow, now: datetime | None = None) -> str | None:
    """Why a lease no longer protects its run (expired, holder process gone), or None if it is live."""
    now = now or utcnow()
    if _aware(row.expires_at) <= now:
        return f"its lease expired at {_aware(row.expires_at).isoformat(timespec='seconds')} (no heartbeat)"
    if row.host == socket.gethostname() and not _pid_alive(row.pid):
        return f"its process {row.pid} on {row.host} is gone"
    return None


def _lease_dict(row: RunLeaseRow) -> dict[str, Any]:
    return {"owner": row.owner, "host": row.host, "pid": row.pid, "phase": row.phase,
            "acquired_at": _aware(row.acquired_at), "heartbeat_at": _aware(row.heartbeat_at),
            "expires_at": _aware(row.expires_at), "dead": lease_dead(row)}


def _true_status(info: RunInfo, lease: RunLeaseRow | None) -> RunInfo:
    """Derive the status on read: a run "in progress" whose holder is dead was interrupted."""
    info.stored_status = info.status
    if lease is not None:
        info.lease = _lease_dict(lease)
        if info.status in IN_PROGRESS and info.lease["dead"]:
            info.status = "interrupted"
    return info


class Record(BaseModel):
    """One item of a run joined with its response and its judgments (keyed by judge id)."""

    item: Item
    completion: Completion | None = None
    judgments: dict[str, Judgment] = Field(default_factory=dict)


class RunNotFound(AiriskError):
    pass


def _run_info(row: RunRow) -> RunInfo:
    return RunInfo(
        id=row.id, kind=row.kind, status=row.status, created_at=row.created_at, updated_at=row.updated_at,
        finished_at=row.finished_at, system_name=row.system_name, system_fingerprint=row.system_fingerprint,
        config=row.config or {}, datasets=row.datasets or [], judges=row.judges or [], stats=row.stats or {},
        label=row.label,
    )


# An item's intent rides in its metadata JSON under this key: no schema change, and stores written
# before intents existed read back with intent None.
_INTENT_KEY = "_airisk_intent"


def _item(row: ItemRow) -> Item:
    meta = dict(row.meta or {})
    intent = meta.pop(_INTENT_KEY, None)
    return Item(
        id=row.item_id, prompt=row.prompt,
        messages=[Message.model_validate(m) for m in row.messages] if row.messages else None,
        intent=intent if isinstance(intent, str) else None,
        hazard=row.hazard, persona=row.persona, locale=row.locale, dataset=row.dataset,
        expected=row.expected, source_category=row.source_category, metadata=meta,
    )


def _completion(row: ResponseRow) -> Completion:
    raw = row.raw or None
    return Completion(
        text=row.text, error=row.error, error_kind=row.error_kind, latency_s=row.latency_s,
        prompt_tokens=row.prompt_tokens, completion_tokens=row.completion_tokens,
        finish_reason=row.finish_reason, attempts=row.attempts, cached=row.cached,
        tool_calls=(raw or {}).get("tool_calls"), raw=raw,
    )


def _judgment(row: JudgmentRow) -> Judgment:
    return Judgment(
        label=row.label, probability=row.probability, categories=row.categories or [], reason=row.reason,
        refusal=row.refusal, judge_id=row.judge_id, judge_fingerprint=row.judge_fingerprint, error=row.error,
        votes=row.votes,
    )


class Store:
    """Persistence for runs. Thread-safe for the engine's use (one writer at a time per process)."""

    def __init__(self, url: str | None = None, *, echo: bool = False):
        self.url = url or default_url()
        self.engine: Engine = create_engine(self.url, echo=echo, future=True)
        shown = self.engine.url.render_as_string(hide_password=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            db = self.engine.url.database
            if db and db != ":memory:" and not db.startswith("file:"):
                try:  # a new database in a new folder, as --out folders are made: create the folder
                    Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    raise ConfigError(f"database {shown}: cannot create its folder ({e.strerror})") from None
        try:
            Base.metadata.create_all(self.engine)
        except OperationalError as e:
            raise ConfigError(f"database {shown}: cannot open it ({e.orig})") from None
        self._session = sessionmaker(self.engine, expire_on_commit=False, future=True)

    # -- helpers -------------------------------------------------------------------------
    def session(self) -> Session:
        return self._session()

    def _insert(self, table):
        return (pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert)(table)

    def close(self) -> None:
        self.engine.dispose()

    # -- runs ----------------------------------------------------------------------------
    def create_run(
        self, run_id: str, *, kind: str = "benchmark", system_name: str = "", system_fingerprint: str = "",
        config: dict[str, Any] | None = None, datasets: list[dict[str, Any]] | None = None,
        judges: list[dict[str, Any]] | None = None, label: str | None = None,
    ) -> RunInfo:
        with self.session() as s, s.begin():
            row = RunRow(
                id=run_id, kind=kind, status="running", system_name=system_name,
                system_fingerprint=system_fingerprint, config=config or {}, datasets=datasets or [],
                judges=judges or [], stats={}, label=label,
            )
            s.add(row)
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> RunInfo:
        with self.session() as s:
            row = s.get(RunRow, run_id)
            if row is None:
                # Allow unique prefixes, like git.
                rows = s.scalars(select(RunRow).where(RunRow.id.like(f"{run_id}%"))).all()
                if len(rows) == 1:
                    row = rows[0]
                elif len(rows) > 1:
                    raise RunNotFound(f"run id prefix '{run_id}' is ambiguous: {', '.join(r.id for r in rows[:5])}")
                else:
                    raise RunNotFound(f"no run '{run_id}' in {self.safe_url}; see `airisk runs list`")
            return _true_status(_run_info(row), s.get(RunLeaseRow, row.id))

    @property
    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def list_runs(self, limit: int = 50) -> list[RunInfo]:
        with self.session() as s:
            rows = s.scalars(select(RunRow).order_by(RunRow.created_at.desc()).limit(limit)).all()
            leases = {lr.run_id: lr for lr in s.scalars(select(RunLeaseRow).where(RunLeaseRow.run_id.in_([r.id for r in rows])))}
            return [_true_status(_run_info(r), leases.get(r.id)) for r in rows]

    def update_run(self, run_id: str, **fields: Any) -> None:
        if fields.get("status") in ("completed", "failed") and "finished_at" not in fields:
            fields["finished_at"] = utcnow()
        with self.session() as s, s.begin():
            row = s.get(RunRow, run_id)
            if row is None:
                raise RunNotFound(f"no run '{run_id}'")
            for k, v in fields.items():
                if k == "stats":
                    v = {**(row.stats or {}), **v}
                elif k == "judges":
                    known = {j.get("id"): j for j in (row.judges or [])}
                    known.update({j.get("id"): j for j in v})
                    v = list(known.values())
                setattr(row, k, v)

    # -- leases --------------------------------------------------------------------------
    def acquire_lease(self, run_id: str, phase: str, *, ttl_s: float = LEASE_TTL_S) -> Lease:
        """Take the run for this process, or raise RunBusy naming the live holder.

        A lease that expired, or whose holder process on this host is gone, is taken over (the
        compare-and-set on the old owner makes two takers race safely: exactly one wins)."""
        host, pid = socket.gethostname(), os.getpid()
        owner = f"{host}:{pid}:{secrets.token_hex(4)}"
        now = utcnow()
        fields = dict(owner=owner, host=host[:128], pid=pid, phase=phase, acquired_at=now, heartbeat_at=now,
                      expires_at=now + timedelta(seconds=ttl_s))
        for _ in range(3):
            with self.session() as s:
                cur = s.get(RunLeaseRow, run_id)
            if cur is None:
                try:
                    with self.session() as s, s.begin():
                        s.add(RunLeaseRow(run_id=run_id, **fields))
                    return Lease(run_id=run_id, owner=owner, phase=phase, ttl_s=ttl_s)
                except IntegrityError:
                    continue  # someone else inserted first: look again
            if lease_dead(cur) is None:
                raise RunBusy(
                    f"run {run_id} is being worked on by process {cur.pid} on {cur.host} ({cur.phase}, last "
                    f"heartbeat {_aware(cur.heartbeat_at).isoformat(timespec='seconds')}); wait for it to finish, "
                    f"or stop it: its lease is taken over once that process is gone or "
                    f"{_aware(cur.expires_at).isoformat(timespec='seconds')} passes without a heartbeat")
            with self.session() as s, s.begin():
                won = s.execute(update(RunLeaseRow).where(RunLeaseRow.run_id == run_id, RunLeaseRow.owner == cur.owner)
                                .values(**fields)).rowcount
            if won:
                return Lease(run_id=run_id, owner=owner, phase=phase, ttl_s=ttl_s)
        raise RunBusy(f"run {run_id}: another process took its lease at the same moment; try again")

    def renew_lease(self, lease: Lease, *, phase: str | None = None) -> bool:
        """Heartbeat (and optionally change phase); False if the lease was taken over meanwhile."""
        now = utcnow()
        values: dict[str, Any] = dict(heartbeat_at=now, expires_at=now + timedelta(seconds=lease.ttl_s))
        if phase:
            values["phase"] = lease.phase = phase
        with self.session() as s, s.begin():
            return bool(s.execute(update(RunLeaseRow).where(RunLeaseRow.run_id == lease.run_id,
                                                            RunLeaseRow.owner == lease.owner).values(**values)).rowcount)

    def release_lease(self, lease: Lease) -> None:
        with self.session() as s, s.begin():
            s.execute(delete(RunLeaseRow).where(RunLeaseRow.run_id == lease.run_id, RunLeaseRow.owner == lease.owner))

    def delete_run(self, run_id: str) -> None:
        with self.session() as s, s.begin():
            s.query(RunLeaseRow).filter(RunLeaseRow.run_id == run_id).delete()
            for table in (JudgmentRow, ResponseRow, ItemRow):
                s.query(table).filter(table.run_id == run_id).delete()
            s.query(RunRow).filter(RunRow.id == run_id).delete()

    # -- items ---------------------------------------------------------------------------
    def add_items(self, run_id: str, items: Sequence[Item], start_seq: int = 0) -> int:
        """Insert items, ignoring ones already present (same run and id). Returns how many were new."""
        if not items:
            return 0
        with self.engine.begin() as conn:
            return self._add_items(conn, run_id, items, start_seq)

    def _add_items(self, conn, run_id: str, items: Sequence[Item], start_seq: int = 0) -> int:
        rows = [
            dict(
                run_id=run_id, item_id=it.id, seq=start_seq + i, prompt=it.prompt,
                messages=[m.model_dump(exclude_none=True) for m in it.messages] if it.messages else None,
                hazard=it.hazard, persona=it.persona, locale=it.locale, dataset=it.dataset, expected=it.expected,
                source_category=it.source_category,
                meta={**it.metadata, _INTENT_KEY: it.intent} if it.intent is not None else it.metadata,
            )
            for i, it in enumerate(items)
        ]
        # Column key for the JSON "metadata" column is "meta" in the ORM but "metadata" in SQL.
        for r in rows:
            r["metadata"] = r.pop("meta")
        n = 0
        for chunk in _chunks(rows, 500):
            res = conn.execute(self._insert(ItemRow.__table__).values(chunk).on_conflict_do_nothing())
            n += res.rowcount or 0
        return n

    def save_attempts(self, run_id: str, items: Sequence[Item], responses: Iterable[tuple[str, Completion]],
                      judgments: Iterable[tuple[str, Judgment]], *, start_seq: int = 0) -> None:
        """Items with their responses and judgments in ONE transaction: a kill leaves all of them or none,
        so a resume never finds an item without its answer (red-team campaigns write each attempt so)."""
        with self.engine.begin() as conn:
            self._add_items(conn, run_id, items, start_seq)
            self._save_responses(conn, run_id, responses)
            self._save_judgments(conn, run_id, judgments)

    def delete_items(self, run_id: str, item_ids: Iterable[str]) -> int:
        """Forget items with their responses and judgments (one transaction), e.g. to redo an attempt."""
        ids = list(item_ids)
        n = 0
        with self.session() as s, s.begin():
            for chunk in _chunks(ids, 500):
                for table in (JudgmentRow, ResponseRow):
                    s.query(table).filter(table.run_id == run_id, table.item_id.in_(chunk)).delete(synchronize_session=False)
                n += s.query(ItemRow).filter(ItemRow.run_id == run_id, ItemRow.item_id.in_(chunk)).delete(synchronize_session=False)
        return n

    def items(self, run_id: str) -> list[Item]:
        with self.session() as s:
            rows = s.scalars(select(ItemRow).where(ItemRow.run_id == run_id).order_by(ItemRow.seq)).all()
            return [_item(r) for r in rows]

    def count_items(self, run_id: str) -> int:
        with self.session() as s:
            return s.scalar(select(func.count()).select_from(ItemRow).where(ItemRow.run_id == run_id)) or 0

    def pending_items(self, run_id: str) -> list[Item]:
        """Items of the run that have no stored response yet, in dataset order."""
        with self.session() as s:
            answered = select(ResponseRow.item_id).where(ResponseRow.run_id == run_id)
            rows = s.scalars(
                select(ItemRow).where(ItemRow.run_id == run_id, ItemRow.item_id.not_in(answered)).order_by(ItemRow.seq)
            ).all()
            return [_item(r) for r in rows]

    # -- responses -----------------------------------------------------------------------
    def save_responses(self, run_id: str, results: Iterable[tuple[str, Completion]]) -> int:
        with self.engine.begin() as conn:
            return self._save_responses(conn, run_id, results)

    def _save_responses(self, conn, run_id: str, results: Iterable[tuple[str, Completion]]) -> int:
        rows = [
            dict(
                run_id=run_id, item_id=item_id, text=c.text, error=c.error, error_kind=c.error_kind,
                latency_s=c.latency_s, prompt_tokens=c.prompt_tokens, completion_tokens=c.completion_tokens,
                finish_reason=c.finish_reason, attempts=c.attempts, cached=c.cached,
                raw=({**(c.raw or {}), **({"tool_calls": c.tool_calls} if c.tool_calls else {})} or None),
                created_at=utcnow(),
            )
            for item_id, c in results
        ]
        if not rows:
            return 0
        n = 0
        for chunk in _chunks(rows, 500):
            n += conn.execute(self._insert(ResponseRow.__table__).values(chunk).on_conflict_do_nothing()).rowcount or 0
        return n

    def delete_responses(self, run_id: str, *, errors_only: bool = True) -> int:
        """Forget stored responses (by default only errors) so that a resume asks again."""
        with self.session() as s, s.begin():
            q = s.query(ResponseRow).filter(ResponseRow.run_id == run_id)
            if errors_only:
                q = q.filter(ResponseRow.error.is_not(None))
            return q.delete()

    def responses(self, run_id: str) -> dict[str, Completion]:
        with self.session() as s:
            rows = s.scalars(select(ResponseRow).where(ResponseRow.run_id == run_id)).all()
            return {r.item_id: _completion(r) for r in rows}

    def count_responses(self, run_id: str) -> tuple[int, int]:
        """(responses stored, of which errors)."""
        with self.session() as s:
            total = s.scalar(select(func.count()).select_from(ResponseRow).where(ResponseRow.run_id == run_id)) or 0
            errs = s.scalar(
                select(func.count()).select_from(ResponseRow).where(ResponseRow.run_id == run_id, ResponseRow.error.is_not(None))
            ) or 0
            return total, errs

    # -- judgments -----------------------------------------------------------------------
    def save_judgments(self, run_id: str, results: Iterable[tuple[str, Judgment]], *, replace: bool = False) -> int:
        with self.engine.begin() as conn:
            return self._save_judgments(conn, run_id, results, replace=replace)

    def _save_judgments(self, conn, run_id: str, results: Iterable[tuple[str, Judgment]], *, replace: bool = False) -> int:
        rows = [
            dict(
                run_id=run_id, item_id=item_id, judge_id=j.judge_id, judge_fingerprint=j.judge_fingerprint,
                label=j.label, probability=j.probability, categories=list(j.categories), refusal=j.refusal,
                reason=j.reason, error=j.error, votes=j.votes, created_at=utcnow(),
            )
            for item_id, j in results
        ]
        if not rows:
            return 0
        n = 0
        for chunk in _chunks(rows, 500):
            stmt = self._insert(JudgmentRow.__table__).values(chunk)
            if replace:
                stmt = stmt.on_conflict_do_update(
                    index_elements=["run_id", "item_id", "judge_id"],
                    set_={k: getattr(stmt.excluded, k) for k in (
                        "judge_fingerprint", "label", "probability", "categories", "refusal", "reason",
                        "error", "votes", "created_at")},
                )
            else:
                stmt = stmt.on_conflict_do_nothing()
            n += conn.execute(stmt).rowcount or 0
        return n

    def judgments(self, run_id: str, judge_id: str | None = None) -> dict[str, dict[str, Judgment]]:
        """item id -> judge id -> judgment."""
        out: dict[str, dict[str, Judgment]] = defaultdict(dict)
        with self.session() as s:
            q = select(JudgmentRow).where(JudgmentRow.run_id == run_id)
            if judge_id:
                q = q.where(JudgmentRow.judge_id == judge_id)
            for r in s.scalars(q):
                out[r.item_id][r.judge_id] = _judgment(r)
        return dict(out)

    def unjudged_item_ids(self, run_id: str, judge_id: str) -> set[str]:
        """Items with a successful response but no judgment from ``judge_id`` yet."""
        with self.session() as s:
            judged = select(JudgmentRow.item_id).where(JudgmentRow.run_id == run_id, JudgmentRow.judge_id == judge_id)
            rows = s.scalars(
                select(ResponseRow.item_id).where(
                    ResponseRow.run_id == run_id, ResponseRow.error.is_(None), ResponseRow.item_id.not_in(judged)
                )
            ).all()
            return set(rows)

    # -- joined view ---------------------------------------------------------------------
    def records(self, run_id: str) -> list[Record]:
        """Every item of the run with its response and judgments, in dataset order."""
        items = self.items(run_id)
        resp = self.responses(run_id)
        judg = self.judgments(run_id)
        return [Record(item=it, completion=resp.get(it.id), judgments=judg.get(it.id, {})) for it in items]

    def hazard_summary(self, run_id: str) -> dict[str, dict[str, int]]:
        """Per hazard: items, responses, errors, pending, and per-judge violating counts."""
        out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for rec in self.records(run_id):
            h = rec.item.hazard or "(none)"
            row = out[h]
            row["items"] += 1
            if rec.completion is None:
                row["pending"] += 1
            elif rec.completion.error:
                row["errors"] += 1
            else:
                row["responses"] += 1
            for jid, j in rec.judgments.items():
                row[f"{jid}:{j.label}"] += 1
        return {h: dict(v) for h, v in sorted(out.items())}

    # -- cache ---------------------------------------------------------------------------
    def cache_get(self, namespace: str, key: str) -> dict[str, Any] | None:
        with self.session() as s:
            row = s.get(CacheRow, f"{namespace}:{key}")
            return row.value if row else None

    def cache_get_many(self, namespace: str, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        with self.session() as s:
            for chunk in _chunks([f"{namespace}:{k}" for k in keys], 500):
                for row in s.scalars(select(CacheRow).where(CacheRow.key.in_(chunk))):
                    out[row.key[len(namespace) + 1 :]] = row.value  # namespaces may contain ":"
        return out

    def cache_put_many(self, namespace: str, entries: dict[str, dict[str, Any]]) -> None:
        if not entries:
            return
        rows = [dict(key=f"{namespace}:{k}", namespace=namespace, value=v, created_at=utcnow()) for k, v in entries.items()]
        with self.engine.begin() as conn:
            for chunk in _chunks(rows, 500):
                conn.execute(self._insert(CacheRow.__table__).values(chunk).on_conflict_do_nothing())

    def cache_put(self, namespace: str, key: str, value: dict[str, Any]) -> None:
        self.cache_put_many(namespace, {key: value})


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _chunks(seq: Sequence[Any], n: int):
    for i in range(0, len(seq), n):
        yield seq[i : i + n]
