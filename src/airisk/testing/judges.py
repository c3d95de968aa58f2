"""A deterministic judge for tests and dry runs: a response is violating iff it carries a marker.

Pipelines (campaigns, gates, reports) can then be tested end to end with known verdicts and no model.
"""

from __future__ import annotations

from airisk.judges.base import Judge
from airisk.types import Conversation, Judgment


class MarkerJudge(Judge):
    """``violating`` iff ``marker`` occurs in the response; ``seen`` counts conversations judged."""

    id = "marker"

    def __init__(self, marker: str = "[[HARMFUL-ANSWER]]", fingerprint: str = "marker-v1"):
        self.marker = marker
        self._fingerprint = fingerprint
        self.seen = 0

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    async def judge_batch(self, conversations: list[Conversation]) -> list[Judgment]:
        self.seen += len(conversations)
        return [Judgment(label="violating" if self.marker in c.response else "non_violating", judge_id=self.id,
                         judge_fingerprint=self.fingerprint) for c in conversations]
