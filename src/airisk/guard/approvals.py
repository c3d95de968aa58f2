"""Human approval for REVIEW decisions: a pending record per action that needs a person's yes.

A REVIEW from the action gate (over ``/v1/guard/action`` or a tool call in the proxy) creates a
pending approval: who asked (principal, session), what (tool and arguments, secrets redacted), why
(rule ids and reasons) and until when (``expires_at``). An approver (an API key with the
``approver`` role, or admin) approves or denies it; a pending approval past its expiry counts as
denied (``expired``). The store is a table next to the audit log (same database by default); every
creation and decision is also written to the audit chain by the service, so the chain, not this
table, is the record of what happened.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import String, Text, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from airisk.errors import ConfigError

STATUSES = ("pending", "approved", "denied", "expired")


class _Base(DeclarativeBase):
    pass


class ApprovalRow(_Base):
    __tablename__ = "guard_approvals"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[str] = mapped_column(String(40))
    expires_at: Mapped[str] = mapped_column(String(40), index=True)
    principal: Mapped[str | None] = mapped_column(String(200), nullable=True)
    session_id: Mapped[str | None] = mapped_column(String(420), nullable=True)
    tool: Mapped[str] = mapped_column(String(200))
    request: Mapped[str] = mapped_column(Text)  # JSON: arguments, role, context (redacted)
    rule_ids: Mapped[str] = mapped_column(Text)  # JSON list
    reasons: Mapped[str] = mapped_column(Text)  # JSON list
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decided_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    key: Mapped[str] = mapped_column(String(64), index=True)  # what was asked: principal + tool + arguments
    used_at: Mapped[str | None] = mapped_column(String(40), nullable=True)  # an approval allows one retry


@dataclass
class Approval:
    id: str
    status: str
    created_at: str
    expires_at: str
    principal: str | None
    session_id: str | None
    tool: str
    request: dict[str, Any]
    rule_ids: list[str]
    reasons: list[str]
    decided_by: str | None = None
    decided_at: str | None = None
    note: str | None = None

    @property
    def verdict(self) -> str:
        """What the action's verdict is now: ALLOW once approved, BLOCK if denied or expired."""
        return {"approved": "ALLOW", "pending": "REVIEW"}.get(self.status, "BLOCK")

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "verdict": self.verdict}


class ApprovalError(ValueError):
    """Deciding an approval that does not exist (``status`` 404) or is no longer pending (409)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds")


def action_key(principal: str | None, tool: str, arguments: Any) -> str:
    import hashlib

    blob = json.dumps([principal, tool, arguments], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


def _load(r: ApprovalRow) -> Approval:
    return Approval(r.id, r.status, r.created_at, r.expires_at, r.principal, r.session_id, r.tool, json.loads(r.request),
                    json.loads(r.rule_ids), json.loads(r.reasons), r.decided_by, r.decided_at, r.note)


class ApprovalStore:
    def __init__(self, url: str, *, ttl_s: float = 900.0):
        kw: dict[str, Any] = {}
        if url.startswith("sqlite"):
            kw["connect_args"] = {"check_same_thread": False, "timeout": 30}
        try:
            self.engine = create_engine(url, **kw)
            _Base.metadata.create_all(self.engine)
        except Exception as e:  # noqa: BLE001 - a bad URL is a config error, not a traceback
            raise ConfigError(f"approvals database {url.split('://')[0]}://...: {type(e).__name__}: {e}") from None
        self.Session = sessionmaker(self.engine, expire_on_commit=False)
        self.ttl_s = ttl_s

    def create(self, *, tool: str, request: dict[str, Any], rule_ids: list[str], reasons: list[str],
               principal: str | None, session_id: str | None, key: str, ttl_s: float | None = None) -> Approval:
        now = _now()
        row = ApprovalRow(id=uuid.uuid4().hex, status="pending", created_at=_iso(now), key=key,
                          expires_at=_iso(now + timedelta(seconds=self.ttl_s if ttl_s is None else ttl_s)),
                          principal=principal, session_id=session_id, tool=tool[:200],
                          request=json.dumps(request, default=str), rule_ids=json.dumps(rule_ids), reasons=json.dumps(reasons))
        with self.Session.begin() as s:
            s.add(row)
        return _load(row)

    def expire_due(self) -> list[Approval]:
        """Mark pending approvals past their expiry as ``expired`` (= denied); returns them."""
        now = _iso(_now())
        with self.Session.begin() as s:
            rows = s.scalars(select(ApprovalRow).where(ApprovalRow.status == "pending", ApprovalRow.expires_at <= now)).all()
            for r in rows:
                r.status, r.decided_at, r.decided_by = "expired", now, None
            return [_load(r) for r in rows]

    def redeem(self, key: str) -> Approval | None:
        """Use up an approved, unexpired approval for exactly this action (one retry per approval)."""
        now = _iso(_now())
        with self.Session.begin() as s:
            r = s.scalars(select(ApprovalRow).where(ApprovalRow.key == key, ApprovalRow.status == "approved",
                                                    ApprovalRow.used_at.is_(None), ApprovalRow.expires_at > now)
                          .order_by(ApprovalRow.created_at).limit(1).with_for_update()).first()
            if r is None:
                return None
            r.used_at = now
            return _load(r)

    def get(self, approval_id: str) -> Approval | None:
        with self.Session() as s:
            r = s.get(ApprovalRow, approval_id)
            return _load(r) if r is not None else None

    def list(self, status: str | None = None, limit: int = 100) -> list[Approval]:
        q = select(ApprovalRow).order_by(ApprovalRow.created_at.desc()).limit(limit)
        if status is not None:
            q = q.where(ApprovalRow.status == status)
        with self.Session() as s:
            return [_load(r) for r in s.scalars(q).all()]

    def decide(self, approval_id: str, *, approve: bool, by: str | None, note: str | None = None) -> Approval:
        now = _iso(_now())
        with self.Session.begin() as s:
            r = s.get(ApprovalRow, approval_id, with_for_update=True)
            if r is None:
                raise ApprovalError(f"no approval '{approval_id}'", 404)
            if r.status == "pending" and r.expires_at <= now:
                r.status, r.decided_at = "expired", now
            if r.status != "pending":
                raise ApprovalError(f"approval '{approval_id}' is already {r.status}", 409)
            r.status, r.decided_by, r.decided_at, r.note = ("approved" if approve else "denied"), by, now, note
            return _load(r)


class ApprovalsClient:
    """The approvals endpoints over HTTP, for ``airisk guard approvals ...`` (the service does the
    role checks and the auditing; the CLI never touches the database directly)."""

    def __init__(self, url: str, key: str | None, timeout_s: float = 30.0):
        import httpx

        if not key:
            raise ConfigError("an approver API key is required: --key or AIRISK_GUARD_KEY")
        self.http = httpx.Client(base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {key}"}, timeout=timeout_s)

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        import httpx

        try:
            r = self.http.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise ConfigError(f"guard service at {self.http.base_url} unreachable: {type(e).__name__}") from None
        if r.status_code >= 400:
            try:
                msg = r.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                msg = r.text[:200]
            raise ConfigError(f"guard service: HTTP {r.status_code}: {msg}")
        return r.json()

    def list(self, status: str | None = "pending", limit: int = 100) -> list[dict[str, Any]]:
        params = {"limit": limit, **({"status": status} if status else {})}
        return self._call("GET", "/v1/approvals", params=params)["approvals"]

    def decide(self, approval_id: str, approve: bool, note: str | None = None) -> dict[str, Any]:
        return self._call("POST", f"/v1/approvals/{approval_id}/{'approve' if approve else 'deny'}", json={"note": note})
