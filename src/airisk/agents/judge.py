"""The trajectory judge: a rubric model that reads a whole agent trajectory and says whether it was unsafe.

For what predicates and gate rules cannot see (harmful content, acting on a misread request).
It reuses ``airisk.judges.llm.LLMJudge`` for transport (retries, temperature 0, caching) and adds
the rubric (``templates/trajectory_rubric.txt``) and a strict JSON answer format validated by
Pydantic; unparseable answers are re-asked, then end as ``label="error"``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from airisk.agents.scenario import Scenario
from airisk.agents.trajectory import Trajectory
from airisk.judges.llm import LLMJudge, ParseError
from airisk.types import Conversation, Judgment

TEMPLATE_PATH = Path(__file__).parent / "templates" / "trajectory_rubric.txt"


class TrajectoryVerdict(BaseModel):
    unsafe: bool
    task_completed: bool
    failure_modes: list[str] = []
    reason: str = ""


def render_trajectory(traj: Trajectory, max_chars: int = 12000) -> str:
    """A compact text view of the episode: each call with its fate, then the final answer."""
    lines: list[str] = []
    for c in traj.calls:
        args = c.raw_arguments if c.arguments is None else json.dumps(c.arguments, ensure_ascii=False, default=str)
        fate = c.status.upper()
        detail = c.error if c.error else json.dumps(c.result, ensure_ascii=False, default=str)
        lines.append(f"[step {c.step}] CALL {c.tool}({(args or '')[:600]}) -> {fate}: {(detail or '')[:600]}")
    lines.append(f"FINAL ANSWER: {traj.final_answer if traj.final_answer is not None else '(none: ' + traj.stop_reason + ')'}")
    text = "\n".join(lines)
    return text if len(text) <= max_chars else text[: max_chars - 40] + "\n[... trajectory truncated ...]"


class TrajectoryJudge(LLMJudge):
    """``agent-trajectory`` judge; construct like other LLM judges (model=..., base_url=...)."""

    id = "agent-trajectory"
    version = "1"

    def template_text(self) -> str:
        return TEMPLATE_PATH.read_text(encoding="utf-8")

    def build_messages(self, conv: Conversation) -> list[dict[str, Any]]:
        ctx = json.loads(conv.system_prompt or "{}")
        prompt = self.template_text().format(
            risk_category=ctx.get("risk_category", ""), failure_modes=", ".join(ctx.get("failure_modes", [])) or "-",
            instruction=conv.prompt, safe_behavior=ctx.get("safe_behavior") or "(not stated)", trajectory=conv.response)
        return [{"role": "user", "content": prompt}]

    def parse(self, text: str) -> Judgment:
        m = re.search(r"\{.*\}", text or "", re.S)
        if not m:
            raise ParseError("no JSON object in the answer")
        try:
            v = TrajectoryVerdict.model_validate_json(m.group(0))
        except ValidationError as e:
            err = e.errors(include_url=False)[0]
            raise ParseError(f"bad verdict field {'.'.join(map(str, err['loc'])) or '(root)'}: {err['msg']}") from None
        return Judgment(label="violating" if v.unsafe else "non_violating", probability=1.0 if v.unsafe else 0.0,
                        categories=v.failure_modes, reason=v.reason,
                        votes=[{"task_completed": v.task_completed}])

    async def judge_trajectory(self, scenario: Scenario, traj: Trajectory) -> Judgment:
        return (await self.judge_batch([conversation_for(scenario, traj)]))[0]


def conversation_for(scenario: Scenario, traj: Trajectory) -> Conversation:
    """The judge input: the instruction as prompt, the rendered trajectory as response, context as JSON."""
    ctx = {"risk_category": scenario.risk_category, "failure_modes": scenario.failure_modes,
           "safe_behavior": scenario.safe_behavior}
    instruction = scenario.instruction or "\n".join(
        str(m.content or "") for m in (scenario.messages or []) if m.role == "user")
    return Conversation(prompt=instruction, intent=instruction, response=render_trajectory(traj), system_prompt=json.dumps(ctx),
                        item_id=scenario.id, messages=None)



def trajectory_judge_from_spec(spec: str) -> TrajectoryJudge:
    """``model=M[,base_url=URL,api_key_env=VAR]`` (the ``--judge`` of ``airisk agent run``) -> a TrajectoryJudge."""
    from airisk.spec import parse_params

    p = parse_params(spec, what="--judge", accepted=("model", "base_url", "api_key_env"), required=("model",))
    return TrajectoryJudge(model=p["model"], base_url=p.get("base_url"), api_key_env=p.get("api_key_env", "OPENAI_API_KEY"))
