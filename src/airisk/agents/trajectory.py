"""What one agent episode leaves behind: the messages, every tool call with its fate, and state changes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class StateChange(BaseModel):
    collection: str
    op: Literal["create", "update", "delete"]
    key: str
    before: Any = None
    after: Any = None


class GateRecord(BaseModel):
    verdict: str
    rule_ids: list[str] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    approval_id: str | None = None  # the human approval a REVIEW became (see Defences.approver)


class ToolCallRecord(BaseModel):
    """One tool call the agent emitted, and what happened to it."""

    step: int
    call_id: str
    tool: str
    arguments: dict[str, Any] | None = None  # None when the agent sent unparseable arguments
    raw_arguments: str | None = None
    op: str | None = None  # the emulated operation (read, delete, send, ...)
    external: bool = False
    status: Literal["executed", "error", "blocked", "malformed"] = "executed"
    result: Any = None
    error: str | None = None
    gate: GateRecord | None = None  # the action gate's decision, when a gate was in the loop
    injected: bool = False  # an attack payload was placed in this call's output (injection campaigns)
    scan: dict[str, Any] | None = None  # the tool-output scanner's finding, when it flagged this output

    @property
    def executed(self) -> bool:
        return self.status == "executed"


class Trajectory(BaseModel):
    scenario_id: str
    messages: list[dict[str, Any]] = Field(default_factory=list)
    calls: list[ToolCallRecord] = Field(default_factory=list)
    changes: list[StateChange] = Field(default_factory=list)
    final_state: dict[str, Any] = Field(default_factory=dict)
    final_answer: str | None = None
    steps: int = 0
    stop_reason: Literal["final", "max_steps", "error"] = "final"
    error: str | None = None
    gate_in_loop: bool = False
    scanner_in_loop: bool = False
