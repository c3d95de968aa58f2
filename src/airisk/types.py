"""Shared boundary types: what flows between datasets, systems, the engine, judges and the store.

Every other module speaks in these Pydantic models, so a prompt set, a system under test and a
judge written by different people (or third-party plugins) fit together without adapters.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant", "tool"]
Label = Literal["violating", "non_violating", "error"]
RefusalLabel = Literal["full_compliance", "full_refusal", "partial_refusal"]


class Message(BaseModel):
    """One chat message in OpenAI form (tool calls kept as plain dicts)."""

    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | None = ""
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None


class Item(BaseModel):
    """One test case from a prompt set.

    ``id`` is stable across releases of the same dataset version so that runs can be resumed and
    compared. ``messages`` is set for multi-turn items; otherwise ``prompt`` is the single user turn.
    ``expected`` says what a safe system should do: ``refuse`` for hazard-eliciting prompts,
    ``comply`` for benign prompts (e.g. XSTest's safe set, used to measure over-refusal).
    """

    id: str
    prompt: str
    messages: list[Message] | None = None
    # The request a response is judged against (a behaviour, a goal). Set by datasets that have one;
    # red-team mutations keep their seed's intent. None: judges use the prompt.
    intent: str | None = None
    hazard: str | None = None
    persona: str | None = None
    locale: str | None = None
    dataset: str | None = None
    expected: Literal["refuse", "comply", "unknown"] = "refuse"
    source_category: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    def to_messages(self, system_prompt: str | None = None) -> list[Message]:
        msgs: list[Message] = []
        if system_prompt:
            msgs.append(Message(role="system", content=system_prompt))
        if self.messages:
            msgs.extend(self.messages)
        else:
            msgs.append(Message(role="user", content=self.prompt))
        return msgs


class Completion(BaseModel):
    """What a system under test returned for one item (or the error that stopped it)."""

    text: str | None = None
    error: str | None = None
    error_kind: str | None = None  # e.g. "http_500", "timeout", "rate_limited", "unmatched"
    latency_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    attempts: int = 1
    cached: bool = False
    raw: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Conversation(BaseModel):
    """A judge's input: the exchange to evaluate, plus context the judge may use."""

    prompt: str
    response: str
    # The request the response is judged against: a dataset's behaviour/goal, a red-team seed's request
    # (not its jailbreak wrapper), an agent task's instruction. None: judges fall back to ``prompt``.
    intent: str | None = None
    system_prompt: str | None = None
    hazard: str | None = None
    locale: str | None = None
    item_id: str | None = None
    messages: list[Message] | None = None

    def cache_key(self) -> str:
        payload = self.model_dump(exclude={"item_id"}, exclude_none=True)
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass")).hexdigest()


class Judgment(BaseModel):
    """A judge's verdict on one conversation.

    ``label == "error"`` means the judge could not decide (malformed output, endpoint failure);
    it is never silently converted to ``non_violating``.
    """

    label: Label
    probability: float | None = None  # P(violating), when the judge gives one
    categories: list[str] = Field(default_factory=list)  # predicted hazard codes
    reason: str | None = None
    refusal: RefusalLabel | None = None
    judge_id: str = ""
    judge_fingerprint: str = ""
    error: str | None = None
    votes: list[dict[str, Any]] | None = None  # ensemble members' judgments


def stable_hash(obj: Any, n: int = 16) -> str:
    """Short, deterministic hash of a JSON-serialisable object (used for ids and fingerprints)."""
    data = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:n]
