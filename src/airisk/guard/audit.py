"""Tamper-evident audit log of guard decisions (SQLAlchemy: SQLite by default, PostgreSQL by URL).

Each record stores ``hash = SHA-256(prev_hash || canonical JSON of the record)``, where the record
includes its sequence number, id, time, kind, principal, verdict and payload. ``verify()`` walks
the chain and reports, by sequence number and record id, any record that was edited (hash
mismatch), deleted (gap in the sequence / broken link) or reordered (links to a record other than
its predecessor). A one-row head table remembers the last sequence and hash, so deleting records
at the end of the chain is detected too.

Secrets (API keys, bearer tokens, AWS keys, private keys, passwords in URLs...) are redacted
before anything is stored; with ``redact_content=True`` prompt/response text is replaced by its
SHA-256 as well.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import queue
import threading
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Integer, String, Text, create_engine, event, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from airisk.guard.detectors.secrets import redact_secrets

GENESIS = "0" * 64
SECRET_KEYS = ("api_key", "apikey", "password", "passwd", "secret", "token", "authorization", "private_key",
               "access_key", "client_secret", "cookie")
CONTENT_KEYS = frozenset({"prompt", "response", "content", "messages", "text", "body", "completion"})


class Base(DeclarativeBase):
    pass


class AuditRecord(Base):
    __tablename__ = "guard_audit"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    record_id: Mapped[str] = mapped_column(String(32), unique=True)
    ts: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(40), index=True)
    principal: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    verdict: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    __tablename__ = "guard_audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def record_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(fields)).encode("utf-8", "surrogatepass")).hexdigest()


def _fields(r: AuditRecord) -> dict[str, Any]:
    return {"seq": r.seq, "record_id": r.record_id, "ts": r.ts, "kind": r.kind, "principal": r.principal,
            "verdict": r.verdict, "payload": r.payload}


def redact(obj: Any, *, content: bool = False, _key: str = "") -> Any:
    """Deep copy with secrets (and, if ``content``, prompt/response text) redacted."""
    k = _key.lower()
    if isinstance(obj, dict):
        return {redact(str(key)): redact(v, content=content, _key=str(key)) for key, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v, content=content, _key=_key) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)  # keep canonical JSON valid JSON
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates cannot be stored; keep the rest of the text
            obj = obj.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        if k and any(s in k for s in SECRET_KEYS) and obj:
            return "[REDACTED:secret field]"
        if content and k in CONTENT_KEYS:
            return f"[REDACTED:content sha256={hashlib.sha256(obj.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}]"
        return redact_secrets(obj)[0]
    return obj


@dataclass
class _Pending:
    kind: str
    payload: str
    principal: str | None
    verdict: str | None
    future: Future = field(default_factory=Future)
    record: AuditRecord | None = None


@dataclass
class VerifyReport:
    ok: bool
    records: int
    problems: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "problems": self.problems}


def default_audit_url() -> str:
    home = Path(os.environ.get("AIRISK_HOME") or Path.home() / ".airisk")
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'guard_audit.db'}"


class AuditLog:
    """Append-only hash-chained log. Thread safe within a process (one writer lock)."""

    def __init__(self, url: str | None = None, *, redact_content: bool = False):
        self.url = url or os.environ.get("AIRISK_GUARD_AUDIT_DB") or default_audit_url()
        kw: dict[str, Any] = {}
        if self.url.startswith("sqlite"):
            kw["connect_args"] = {"check_same_thread": False}
        self.engine = create_engine(self.url, **kw)
        if self.url.startswith("sqlite"):
            @event.listens_for(self.engine, "connect")
            def _pragmas(conn, _):  # WAL: readers do not block the writer
                cur = conn.cursor()
                if ":memory:" not in self.url and self.url != "sqlite://":
                    cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()
                conn.isolation_level = None  # we issue BEGIN ourselves (below)

            @event.listens_for(self.engine, "begin")
            def _begin_immediate(conn):
                # take the write lock at BEGIN, so two processes appending to the same file cannot
                # both read the same chain head (SQLite has no SELECT ... FOR UPDATE)
                conn.exec_driver_sql("BEGIN IMMEDIATE")
        Base.metadata.create_all(self.engine)
        self.Session = sessionmaker(self.engine, expire_on_commit=False)
        self.redact_content = redact_content
        self._lock = threading.Lock()
        self._queue: queue.Queue[_Pending] = queue.Queue()
        self._writer: threading.Thread | None = None

    def append(self, kind: str, payload: dict[str, Any], *, principal: str | None = None,
               verdict: str | None = None) -> AuditRecord:
        """Append one record and return it once it is committed.

        Concurrent callers are group-committed by one writer thread (one transaction for all
        records waiting at that moment), so the chain stays strictly ordered and a busy service
        pays for one commit per batch instead of one per decision.
        """
        return self.submit(kind, payload, principal=principal, verdict=verdict).result()

    def submit(self, kind: str, payload: dict[str, Any], *, principal: str | None = None,
               verdict: str | None = None) -> Future:
        """Queue one record; the future resolves to the committed record (async callers:
        ``await asyncio.wrap_future(log.submit(...))``, no worker thread needed)."""
        clean = redact(payload, content=self.redact_content)
        item = _Pending(kind, canonical(clean), redact(principal) if principal else None, verdict)
        self._ensure_writer()
        self._queue.put(item)
        return item.future

    def _ensure_writer(self) -> None:
        if self._writer is None or not self._writer.is_alive():
            with self._lock:
                if self._writer is None or not self._writer.is_alive():
                    self._writer = threading.Thread(target=self._write_loop, name="airisk-audit-writer", daemon=True)
                    self._writer.start()

    def _write_loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < 512:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._write(batch)
            except Exception as e:  # every waiting caller learns the write failed
                for it in batch:
                    it.future.set_exception(e)
                continue
            for it in batch:
                it.future.set_result(it.record)

    def _write(self, batch: list["_Pending"]) -> None:
        with self.Session() as s, s.begin():
            head = s.get(AuditHead, 1, with_for_update=True)
            seq, prev_hash = (head.last_seq, head.last_hash) if head else (0, GENESIS)
            records = []
            for it in batch:
                seq += 1
                rec = AuditRecord(seq=seq, record_id=uuid.uuid4().hex,
                                  ts=datetime.now(timezone.utc).isoformat(timespec="microseconds"), kind=it.kind,
                                  principal=it.principal, verdict=it.verdict, payload=it.payload, prev_hash=prev_hash, hash="")
                rec.hash = record_hash(prev_hash, _fields(rec))
                prev_hash = rec.hash
                records.append(rec)
            s.add_all(records)
            if head is None:
                s.add(AuditHead(id=1, last_seq=seq, last_hash=prev_hash))
            else:
                head.last_seq, head.last_hash = seq, prev_hash
        for it, rec in zip(batch, records):
            it.record = rec

    def query(self, *, limit: int = 100, offset: int = 0, kind: str | None = None, verdict: str | None = None,
              principal: str | None = None, since_seq: int | None = None) -> list[dict[str, Any]]:
        limit, offset = max(0, min(int(limit), 2**62)), max(0, min(int(offset), 2**62))  # SQLite integers are 64-bit
        kind, verdict, principal = (redact(x) if isinstance(x, str) else x for x in (kind, verdict, principal))
        q = select(AuditRecord).order_by(AuditRecord.seq)
        if kind:
            q = q.where(AuditRecord.kind == kind)
        if verdict:
            q = q.where(AuditRecord.verdict == verdict)
        if principal:
            q = q.where(AuditRecord.principal == principal)
        if since_seq is not None:
            q = q.where(AuditRecord.seq > since_seq)
        with self.Session() as s:
            rows = s.scalars(q.offset(offset).limit(limit)).all()
        return [{**_fields(r), "payload": json.loads(r.payload), "prev_hash": r.prev_hash, "hash": r.hash} for r in rows]

    def count(self) -> int:
        from sqlalchemy import func

        with self.Session() as s:
            return int(s.scalar(select(func.count()).select_from(AuditRecord)) or 0)

    def verify(self) -> VerifyReport:
        with self.Session() as s:
            rows = s.scalars(select(AuditRecord).order_by(AuditRecord.seq)).all()
            head = s.get(AuditHead, 1)
        problems: list[dict[str, Any]] = []
        by_hash = {r.hash: r for r in rows}

        def problem(kind: str, r: AuditRecord | None, msg: str) -> None:
            problems.append({"problem": kind, "seq": r.seq if r else None, "record_id": r.record_id if r else None,
                             "message": msg})

        prev: AuditRecord | None = None
        for r in rows:
            if record_hash(r.prev_hash, _fields(r)) != r.hash:
                problem("edited", r, f"record seq={r.seq} id={r.record_id}: content does not match its hash (edited)")
            expected_prev = prev.hash if prev else GENESIS
            expected_seq = prev.seq + 1 if prev else 1
            if r.prev_hash != expected_prev:
                linked = by_hash.get(r.prev_hash)
                if linked is not None and linked is not prev:
                    problem("reordered", r, f"record seq={r.seq} id={r.record_id} was chained after seq={linked.seq} "
                            f"but is stored after seq={prev.seq if prev else 'start'} (records reordered)")
                elif r.seq != expected_seq:
                    problem("deleted", r, f"records seq={expected_seq}..{r.seq - 1} before id={r.record_id} are missing (deleted)")
                else:
                    problem("broken_link", r, f"record seq={r.seq} id={r.record_id}: previous-hash link broken "
                            "(predecessor edited, deleted or replaced)")
            elif r.seq != expected_seq:
                problem("renumbered", r, f"record seq={r.seq} id={r.record_id}: expected sequence {expected_seq}")
            prev = r
        if head is not None:
            if prev is None or head.last_seq != prev.seq or head.last_hash != prev.hash:
                last = prev.seq if prev else 0
                problems.append({"problem": "truncated", "seq": head.last_seq, "record_id": None,
                                 "message": f"log head says the last record is seq={head.last_seq}, found seq={last} "
                                            "(records deleted at the end)"})
        elif rows:
            problems.append({"problem": "head_missing", "seq": None, "record_id": None, "message": "log head row is missing"})
        return VerifyReport(not problems, len(rows), problems)
