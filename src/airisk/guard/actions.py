"""The action gate's input and output: a proposed tool call and the verdict on it.

Plain slotted dataclasses rather than Pydantic models because the gate builds one Decision per
call on the hot path (microseconds matter); the HTTP service validates its own request models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Verdict = Literal["ALLOW", "BLOCK", "REVIEW"]
SEVERITY = {"ALLOW": 0, "REVIEW": 1, "BLOCK": 2}


@dataclass(slots=True)
class Action:
    """A tool call an agent proposes, before it runs.

    ``context`` carries caller facts the policy may use: ``cwd`` (for relative paths), ``home``
    (what ``~`` means), ``currency``. Session state (calls, spend) lives in the gate, keyed by
    ``session_id``; an action without one is judged with a fresh, throwaway session.
    """

    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)
    principal: str | None = None
    role: str | None = None
    session_id: str | None = None
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Finding:
    """One rule that matched: its id, the verdict it asks for and why."""

    rule_id: str
    verdict: Verdict
    reason: str


@dataclass(slots=True)
class Decision:
    """The gate's verdict with its explanation: every matched rule id and a sentence for each."""

    verdict: Verdict
    rule_ids: list[str]
    reasons: list[str]
    latency_us: float = 0.0
    tool: str | None = None
    policy: str | None = None

    @property
    def allowed(self) -> bool:
        return self.verdict == "ALLOW"

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "rule_ids": list(self.rule_ids), "reasons": list(self.reasons),
                "latency_us": round(self.latency_us, 2), "tool": self.tool, "policy": self.policy}


def combine(findings: list[Finding]) -> Verdict:
    """The strictest verdict among the findings (BLOCK > REVIEW > ALLOW)."""
    worst = "ALLOW"
    for f in findings:
        if SEVERITY[f.verdict] > SEVERITY[worst]:
            worst = f.verdict
    return worst  # type: ignore[return-value]
