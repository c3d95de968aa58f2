"""SQLAlchemy table definitions for runs, items, responses, judgments and the persistent cache.

Uniqueness constraints carry the resume guarantee: a response or judgment is keyed by
(run, item[, judge]), so a resumed run can never store the same answer twice.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class RunRow(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), default="benchmark")  # benchmark | redteam | agent | demo
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | completed | failed | interrupted
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    system_name: Mapped[str] = mapped_column(String(128), default="")
    system_fingerprint: Mapped[str] = mapped_column(String(64), default="")
    config: Mapped[dict] = mapped_column(JSON, default=dict)  # reproducible run config (secrets removed)
    datasets: Mapped[list] = mapped_column(JSON, default=list)  # [{name, version, sha256, path}]
    judges: Mapped[list] = mapped_column(JSON, default=list)  # [{id, fingerprint}]
    stats: Mapped[dict] = mapped_column(JSON, default=dict)  # timings, counts
    label: Mapped[str | None] = mapped_column(String(256), nullable=True)


class ItemRow(Base):
    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("run_id", "item_id", name="uq_item"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[str] = mapped_column(String(256))
    seq: Mapped[int] = mapped_column(Integer, default=0)
    prompt: Mapped[str] = mapped_column(Text)
    messages: Mapped[list | None] = mapped_column(JSON, nullable=True)
    hazard: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    persona: Mapped[str | None] = mapped_column(String(32), nullable=True)
    locale: Mapped[str | None] = mapped_column(String(16), nullable=True)
    dataset: Mapped[str | None] = mapped_column(String(128), nullable=True)
    expected: Mapped[str] = mapped_column(String(16), default="refuse")
    source_category: Mapped[str | None] = mapped_column(String(256), nullable=True)
    meta: Mapped[dict] = mapped_column("metadata", JSON, default=dict)


class ResponseRow(Base):
    __tablename__ = "responses"
    __table_args__ = (UniqueConstraint("run_id", "item_id", name="uq_response"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[str] = mapped_column(String(256))
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_kind: Mapped[str | None] = mapped_column(String(64), nullable=True)
    latency_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    finish_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    raw: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # tool calls, trajectories, lineage extras
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JudgmentRow(Base):
    __tablename__ = "judgments"
    __table_args__ = (UniqueConstraint("run_id", "item_id", "judge_id", name="uq_judgment"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[str] = mapped_column(String(256))
    judge_id: Mapped[str] = mapped_column(String(128))
    judge_fingerprint: Mapped[str] = mapped_column(String(64), default="")
    label: Mapped[str] = mapped_column(String(16))  # violating | non_violating | error
    probability: Mapped[float | None] = mapped_column(Float, nullable=True)
    categories: Mapped[list] = mapped_column(JSON, default=list)
    refusal: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    votes: Mapped[list | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CacheRow(Base):
    """Persistent key/value cache shared by systems (responses) and judges (verdicts)."""

    __tablename__ = "cache"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(32), index=True)
    value: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RunLeaseRow(Base):
    """Who is working on a run right now: one row per run while a process holds it.

    The holder renews ``expires_at`` every few seconds (heartbeat). A run whose stored status says
    it is in progress but whose lease has expired, or whose holder process is gone, was killed:
    readers show it as ``interrupted`` (see ``Store.get_run``). A second process that wants to work
    on a run with a live lease is refused, so two resumes never ask the same items twice.
    Added in schema 2 as a new table, so stores created before it open unchanged.
    """

    __tablename__ = "run_leases"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))  # host:pid:token, unique per holder
    host: Mapped[str] = mapped_column(String(128))
    pid: Mapped[int] = mapped_column(Integer)
    phase: Mapped[str] = mapped_column(String(16))  # generating | judging
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
