"""Tamper-evident audit log of guard decisions (SQLAlchemy: SQLite by default, PostgreSQL by URL).

Each record stores ``hash = SHA-256(prev_hash || canonical JSON of the record)``, where the record
includes its sequence number, id, time, kind, principal, verdict and payload. ``verify()`` walks
the chain and reports, by sequence number and record id, any record that was edited (hash
mismatch), deleted (gap in the sequence / broken link) or reordered (links to a record other than
its predecessor). A one-row head table remembers the last sequence and hash, so deleting records
at the end of the chain is detected too.

Keyed chain: an unkeyed hash only shows *accidental* damage, since whoever can write the database
can recompute every hash after an edit. With a key (``AIRISK_AUDIT_KEY``, or a file named by
``AIRISK_AUDIT_KEY_FILE``; at least 16 bytes; never stored in the database) each record's hash is
``HMAC-SHA256(key, prev_hash || canonical JSON)``, so records cannot be rewritten, added or
re-chained without the key. A one-row metadata table says from which sequence number the chain is
keyed and with which key id (the key's own HMAC fingerprint), itself MACed so it cannot be
downgraded. ``signed_head()`` exports the last sequence number and hash with an HMAC signature:
kept outside the database (a CI artefact, a ticket, a log shipper), it makes deleting or rewriting
the *whole* log detectable (``verify(expect_head=...)``, ``airisk audit verify --expect-head``).

If the head row is lost (deleted by hand, a partial restore), the next write does not fail: it
continues after the last stored record and first appends an ``audit_recovered`` record saying so,
which ``verify`` reports as a warning (records after it may have been deleted; compare a head).

Secrets (API keys, bearer tokens, AWS keys, private keys, passwords in URLs...) are redacted
before anything is stored; with ``redact_content=True`` prompt/response text is replaced by its
SHA-256 as well.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
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

from sqlalchemy import Integer, String, Text, create_engine, event, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from airisk.errors import ConfigError
from airisk.guard.detectors.secrets import redact_secrets

log = logging.getLogger(__name__)
KEY_ENV = "AIRISK_AUDIT_KEY"
KEY_FILE_ENV = "AIRISK_AUDIT_KEY_FILE"
MIN_KEY_BYTES = 16
KEYED_ALG = "hmac-sha256"
RECOVERED_KIND = "audit_recovered"

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


class AuditMeta(Base):
    """From which sequence number the chain is keyed, and with which key (by id, never the key)."""

    __tablename__ = "guard_audit_meta"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alg: Mapped[str] = mapped_column(String(32))
    key_id: Mapped[str] = mapped_column(String(64))
    keyed_from_seq: Mapped[int] = mapped_column(Integer)
    mac: Mapped[str] = mapped_column(String(64))


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def record_hash(prev_hash: str, fields: dict[str, Any], key: bytes | None = None) -> str:
    """SHA-256 (unkeyed) or HMAC-SHA256 (keyed) of ``prev_hash || canonical(fields)``."""
    msg = (prev_hash + canonical(fields)).encode("utf-8", "surrogatepass")
    if key is None:
        return hashlib.sha256(msg).hexdigest()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def _mac(key: bytes, obj: Any) -> str:
    return hmac.new(key, canonical(obj).encode("utf-8"), hashlib.sha256).hexdigest()


def key_id(key: bytes) -> str:
    """A public fingerprint of a key (safe to print and store): which key, not the key."""
    return _mac(key, "airisk-audit-key-id")[:16]


def load_key(value: str | bytes | None = None) -> bytes | None:
    """The audit key: ``value`` if given, else ``AIRISK_AUDIT_KEY``, else the file ``AIRISK_AUDIT_KEY_FILE``
    (surrounding whitespace stripped), else None (unkeyed). Too short a key is a ConfigError."""
    source = "the given key"
    if value is None:
        if os.environ.get(KEY_ENV):
            value, source = os.environ[KEY_ENV], KEY_ENV
        elif os.environ.get(KEY_FILE_ENV):
            path = Path(os.environ[KEY_FILE_ENV])
            source = f"{KEY_FILE_ENV} ({path})"
            try:
                value = path.read_bytes().strip()
            except OSError as e:
                raise ConfigError(f"{source}: cannot read the audit key file: {e.strerror or e}") from None
        else:
            return None
    key = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"{source}: the audit key must be at least {MIN_KEY_BYTES} bytes "
                          f"(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)")
    return key


def _meta_fields(m: AuditMeta) -> dict[str, Any]:
    return {"alg": m.alg, "key_id": m.key_id, "keyed_from_seq": m.keyed_from_seq}


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
    warnings: list[str] = field(default_factory=list)
    keyed: bool = False
    head: dict[str, Any] | None = None  # the last record's seq and hash (what `signed_head` exports)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "problems": self.problems, "warnings": self.warnings,
                "keyed": self.keyed, "head": self.head}


def default_audit_url() -> str:
    home = Path(os.environ.get("AIRISK_HOME") or Path.home() / ".airisk")
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'guard_audit.db'}"


def _open_engine(url: str, *, create: bool):
    """An engine for ``url``, or a ConfigError saying what is wrong with it (never a traceback, and
    with ``create=False`` never a new empty database in place of a mistyped one)."""
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigError(f"audit database URL {url!r} is not a database URL "
                          "(expected e.g. sqlite:///path/audit.db or postgresql+psycopg2://...)") from None
    safe = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        if not create and not path.is_file():
            raise ConfigError(f"no audit database at {path} (from {safe}); check the path: "
                              "verifying never creates a database")
        if create and not path.parent.is_dir():
            raise ConfigError(f"cannot create the audit database {path}: directory {path.parent} does not exist")
    kw: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        kw["connect_args"] = {"check_same_thread": False}
    try:
        return create_engine(url, **kw)
    except Exception as e:  # unknown dialect, missing driver (NoSuchModuleError, ModuleNotFoundError)
        raise ConfigError(f"cannot use audit database {safe}: {type(e).__name__}: {e}") from None


class AuditLog:
    """Append-only hash-chained log. Thread safe within a process (one writer lock).

    ``key``: bytes/str, or None to read ``AIRISK_AUDIT_KEY`` / ``AIRISK_AUDIT_KEY_FILE`` (unkeyed when
    neither is set). ``create=False`` opens an existing log only (``audit verify``, ``audit show``).
    """

    def __init__(self, url: str | None = None, *, redact_content: bool = False, key: str | bytes | None = None,
                 create: bool = True):
        self.url = url or os.environ.get("AIRISK_GUARD_AUDIT_DB") or default_audit_url()
        self.key = load_key(key)
        self.key_id = key_id(self.key) if self.key else None
        self.engine = _open_engine(self.url, create=create)
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
        safe = self.engine.url.render_as_string(hide_password=True)
        try:
            if create:
                Base.metadata.create_all(self.engine)
            elif not inspect(self.engine).has_table(AuditRecord.__tablename__):
                raise ConfigError(f"{safe} holds no audit log (no table {AuditRecord.__tablename__})")
        except ConfigError:
            raise
        except Exception as e:  # cannot connect, no such directory, permission denied, ...
            orig = getattr(e, "orig", None) or e
            raise ConfigError(f"cannot open audit database {safe}: {type(orig).__name__}: {orig}") from None
        self.Session = sessionmaker(self.engine, expire_on_commit=False)
        self.redact_content = redact_content
        self._lock = threading.Lock()
        self._queue: queue.Queue[_Pending] = queue.Queue()
        self._writer: threading.Thread | None = None
        if create:
            self._init_key()

    # -- key -------------------------------------------------------------------------------
    def _read_meta(self, s: Session) -> AuditMeta | None:
        if not inspect(s.connection()).has_table(AuditMeta.__tablename__):
            return None  # a log opened read-only, from before keys existed
        return s.get(AuditMeta, 1)

    def _init_key(self) -> None:
        """Check the configured key against the log's; key an unkeyed log from its next record on."""
        with self.Session() as s, s.begin():
            meta = self._read_meta(s)
            if meta is not None:
                self._check_meta(meta)
            elif self.key is not None:
                head = s.get(AuditHead, 1)
                last = s.scalars(select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(1)).first()
                start = max(head.last_seq if head else 0, last.seq if last else 0) + 1
                meta = AuditMeta(id=1, alg=KEYED_ALG, key_id=self.key_id, keyed_from_seq=start, mac="")
                meta.mac = _mac(self.key, _meta_fields(meta))
                s.add(meta)

    def _check_meta(self, meta: AuditMeta) -> None:
        if self.key is None:
            raise ConfigError(f"audit log {self.engine.url.render_as_string(hide_password=True)} is keyed "
                              f"(key id {meta.key_id}): set {KEY_ENV} or {KEY_FILE_ENV}")
        if meta.key_id != self.key_id:
            raise ConfigError(f"the configured audit key (id {self.key_id}) is not the key of this log "
                              f"(id {meta.key_id})")
        if not hmac.compare_digest(meta.mac, _mac(self.key, _meta_fields(meta))):
            raise ConfigError("the audit log's key record was altered (its MAC does not match): "
                              "the log cannot be trusted; run `airisk audit verify`")

    def _key_for(self, seq: int, meta: AuditMeta | None) -> bytes | None:
        return self.key if meta is not None and seq >= meta.keyed_from_seq else None

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
            meta = s.get(AuditMeta, 1)
            if meta is not None:
                self._check_meta(meta)
            elif self.key is not None:
                raise ConfigError("the audit log's key record is missing (deleted?): the log cannot be trusted; "
                                  "run `airisk audit verify`")
            seq, prev_hash = (head.last_seq, head.last_hash) if head else (0, GENESIS)
            last = s.scalars(select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(1)).first()
            pending = list(batch)
            if last is not None and last.seq > seq:
                # The head row is missing or behind the records: continue after the last record
                # (instead of colliding with it on every write) and say so in the chain itself.
                why = "head row missing" if head is None else f"head row said seq={head.last_seq}"
                log.warning("audit log %s: %s, last record is seq=%d: recovering", self.url, why, last.seq)
                seq, prev_hash = last.seq, last.hash
                note = {"reason": why, "resumed_after_seq": last.seq, "resumed_after_hash": last.hash}
                pending.insert(0, _Pending(RECOVERED_KIND, canonical(note), None, None))
            records = []
            for it in pending:
                seq += 1
                rec = AuditRecord(seq=seq, record_id=uuid.uuid4().hex,
                                  ts=datetime.now(timezone.utc).isoformat(timespec="microseconds"), kind=it.kind,
                                  principal=it.principal, verdict=it.verdict, payload=it.payload, prev_hash=prev_hash, hash="")
                rec.hash = record_hash(prev_hash, _fields(rec), self._key_for(seq, meta))
                prev_hash = rec.hash
                records.append(rec)
            records_out = records[len(pending) - len(batch):]
            s.add_all(records)
            if head is None:
                s.add(AuditHead(id=1, last_seq=seq, last_hash=prev_hash))
            else:
                head.last_seq, head.last_hash = seq, prev_hash
        for it, rec in zip(batch, records_out):
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

    def signed_head(self) -> dict[str, Any]:
        """The last record's sequence number and hash, signed with the key (``sig`` is None unkeyed).

        Store it outside the database; ``verify(expect_head=...)`` later proves that the log still
        contains that record unchanged, i.e. nothing up to it was deleted or rewritten."""
        with self.Session() as s:
            last = s.scalars(select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(1)).first()
        body = {"seq": last.seq if last else 0, "hash": last.hash if last else GENESIS,
                "alg": KEYED_ALG if self.key else "sha256", "key_id": self.key_id}
        return {**body, "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "sig": _mac(self.key, {"airisk_audit_head": body}) if self.key else None}

    def verify(self, expect_head: dict[str, Any] | None = None) -> VerifyReport:
        """Walk the chain; report every edited, deleted, reordered or unauthenticated record.

        With a key, every record from the key record's ``keyed_from_seq`` on must carry a valid HMAC;
        ``expect_head`` (from ``signed_head``) must still be in the log, unchanged."""
        with self.Session() as s:
            rows = s.scalars(select(AuditRecord).order_by(AuditRecord.seq)).all()
            head = s.get(AuditHead, 1)
            meta = self._read_meta(s)
        problems: list[dict[str, Any]] = []
        warnings: list[str] = []
        by_hash = {r.hash: r for r in rows}

        def problem(kind: str, r: AuditRecord | None, msg: str) -> None:
            problems.append({"problem": kind, "seq": r.seq if r else None, "record_id": r.record_id if r else None,
                             "message": msg})

        if meta is not None:
            if self.key is None:
                raise ConfigError(f"this audit log is keyed (key id {meta.key_id}): set {KEY_ENV} or "
                                  f"{KEY_FILE_ENV} to verify it")
            if meta.key_id != self.key_id:
                raise ConfigError(f"the configured audit key (id {self.key_id}) is not the key of this log "
                                  f"(id {meta.key_id})")
            if not hmac.compare_digest(meta.mac, _mac(self.key, _meta_fields(meta))):
                problem("key_record_altered", None, "the key record (guard_audit_meta) was altered: "
                        "its MAC does not match")
                meta = AuditMeta(id=1, alg=KEYED_ALG, key_id=self.key_id, keyed_from_seq=1, mac="")  # check all
            elif meta.keyed_from_seq > 1 and rows and rows[0].seq < meta.keyed_from_seq:
                warnings.append(f"records seq=1..{meta.keyed_from_seq - 1} were written before the key was set: "
                                "they are protected by the unkeyed hash only")
        elif self.key is not None and rows:
            problem("unkeyed", None, "a key is configured but the log has no key record (written without a key, "
                    "or the key record was deleted): its records cannot be authenticated")

        prev: AuditRecord | None = None
        for r in rows:
            if record_hash(r.prev_hash, _fields(r), self._key_for(r.seq, meta)) != r.hash:
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
            if r.kind == RECOVERED_KIND:
                warnings.append(f"record seq={r.seq}: the log head was recovered ({_payload_reason(r)}); records "
                                "after the previous one may have been deleted: compare with an exported head")
            prev = r
        if head is not None:
            if prev is None or head.last_seq != prev.seq or head.last_hash != prev.hash:
                last = prev.seq if prev else 0
                problems.append({"problem": "truncated", "seq": head.last_seq, "record_id": None,
                                 "message": f"log head says the last record is seq={head.last_seq}, found seq={last} "
                                            "(records deleted at the end)"})
        elif rows:
            problems.append({"problem": "head_missing", "seq": None, "record_id": None,
                             "message": "log head row is missing (the next write recovers it and records that it did)"})
        if expect_head is not None:
            self._check_head(expect_head, rows, problem)
        last_row = rows[-1] if rows else None
        return VerifyReport(not problems, len(rows), problems, warnings, keyed=meta is not None,
                            head={"seq": last_row.seq, "hash": last_row.hash} if last_row else None)

    def _check_head(self, exp: dict[str, Any], rows: list[AuditRecord], problem) -> None:
        try:
            seq, want = int(exp["seq"]), str(exp["hash"])
        except (KeyError, TypeError, ValueError):
            raise ConfigError("expected head must be the JSON written by `airisk audit head` "
                              "(with 'seq' and 'hash')") from None
        if exp.get("sig") is not None:
            if self.key is None:
                raise ConfigError(f"the expected head is signed: set {KEY_ENV} or {KEY_FILE_ENV} to check it")
            body = {"seq": exp.get("seq"), "hash": exp.get("hash"), "alg": exp.get("alg"), "key_id": exp.get("key_id")}
            if exp.get("key_id") != self.key_id or not hmac.compare_digest(str(exp["sig"]), _mac(self.key, {"airisk_audit_head": body})):
                problem("head_forged", None, "the expected head's signature does not match the configured key "
                        "(forged or from another log)")
                return
        if seq == 0:
            return
        found = next((r for r in rows if r.seq == seq), None)
        if found is None:
            last = rows[-1].seq if rows else 0
            problem("head_not_found", None, f"the expected head seq={seq} is not in the log (last record: seq={last}): "
                    "records were deleted")
        elif not hmac.compare_digest(found.hash, want):
            problem("head_mismatch", found, f"record seq={seq} does not match the expected head: "
                    "the log up to it was rewritten")


def read_head(path: str | Path) -> dict[str, Any]:
    """A head exported by ``airisk audit head`` (JSON), or a ConfigError naming the file."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"expected head file not found: {p}") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ConfigError(f"{p}: not a head exported by `airisk audit head` ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict) or "seq" not in data or "hash" not in data:
        raise ConfigError(f"{p}: not a head exported by `airisk audit head` (needs 'seq' and 'hash')")
    return data


def _payload_reason(r: AuditRecord) -> str:
    try:
        return str(json.loads(r.payload).get("reason"))
    except (ValueError, AttributeError):
        return "?"
