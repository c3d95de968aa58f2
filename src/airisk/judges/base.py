"""The interface every judge implements: conversations in, Judgments out, batch first.

A judge has an ``id`` (the name a run records, e.g. ``offline``) and a ``fingerprint`` that changes
whenever its verdicts could change (model, weights hash, prompt template, threshold). Judge cards
(measured error rates) are keyed by that fingerprint.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from airisk.types import Conversation, Judgment


class Judge(ABC):
    id: ClassVar[str] = "judge"
    version: ClassVar[str] = "0"

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """Stable hash of everything that determines this judge's output."""

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "fingerprint": self.fingerprint}

    @abstractmethod
    async def judge_batch(self, conversations: list[Conversation]) -> list[Judgment]:
        """Judge many conversations; one Judgment per input, in order. Never raises for one bad item:
        that item gets ``label="error"`` with the reason."""

    async def judge(self, conversation: Conversation) -> Judgment:
        return (await self.judge_batch([conversation]))[0]

    async def aclose(self) -> None:
        pass
