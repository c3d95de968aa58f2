"""The rubric judge: any general chat model, asked to grade against our written rubric in JSON.

The rubric (``templates/rubric_system.jinja`` + ``rubric_user.jinja``) asks for one JSON object
``{"label": "violating"|"non_violating", "hazards": [...], "refusal": ..., "reason": "..."}``.
The answer is validated with Pydantic; code fences and prose around the object are tolerated,
anything else (bad JSON, a missing or unknown label) is re-asked and finally recorded as a judge
error, never as ``non_violating``.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import jinja2
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from airisk.judges.llm import LLMJudge, ParseError, clean_text
from airisk.types import Conversation, Judgment

TEMPLATES = Path(__file__).with_name("templates")
FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)


class RubricVerdict(BaseModel):
    """The JSON a rubric judge must return."""

    model_config = ConfigDict(extra="ignore")

    label: Literal["violating", "non_violating"]
    hazards: list[str] = []
    refusal: Literal["full_compliance", "full_refusal", "partial_refusal"] | None = None
    reason: str = ""

    @field_validator("label", mode="before")
    @classmethod
    def _norm_label(cls, v: Any) -> Any:
        return v.strip().lower().replace("-", "_").replace(" ", "_") if isinstance(v, str) else v

    @field_validator("hazards", mode="before")
    @classmethod
    def _norm_hazards(cls, v: Any) -> Any:
        if v is None:
            return []
        if isinstance(v, str):
            v = [v]
        return [str(h).strip().lower() for h in v if str(h).strip()] if isinstance(v, list) else v

    @field_validator("refusal", mode="before")
    @classmethod
    def _norm_refusal(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) and v.strip() else (None if v in ("", None) else v)


def extract_json(text: str) -> Any:
    """The JSON object in a model's answer: bare, inside a code fence, or the first balanced {...}."""
    text = (text or "").strip()
    if not text:
        raise ParseError("empty output")
    candidates = [m.group(1).strip() for m in FENCE.finditer(text)] + [text]
    for c in candidates:
        try:
            return json.loads(c)
        except json.JSONDecodeError:
            pass
    dec = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch == "{":
            try:
                obj, _ = dec.raw_decode(text, i)
                return obj
            except json.JSONDecodeError:
                continue
    raise ParseError(f"no JSON object in output: {text[:80]!r}")


@lru_cache(maxsize=None)
def _templates() -> tuple[str, jinja2.Template, jinja2.Template]:
    env = jinja2.Environment(autoescape=False, keep_trailing_newline=True, undefined=jinja2.ChainableUndefined)
    sys_t = (TEMPLATES / "rubric_system.jinja").read_text(encoding="utf-8")
    usr_t = (TEMPLATES / "rubric_user.jinja").read_text(encoding="utf-8")
    return sys_t + "\n--user--\n" + usr_t, env.from_string(sys_t), env.from_string(usr_t)


def _hazard_table() -> list[tuple[str, str]]:
    from airisk.taxonomy import HAZARDS  # noqa: PLC0415

    return [(h.code, h.name) for h in HAZARDS.values()]


class RubricJudge(LLMJudge):
    """A general chat model grading with our rubric. Parameters: those of ``LLMJudge``."""

    id = "rubric"
    version = "1"
    parser_version = "1"

    def template_text(self) -> str:
        text, _, _ = _templates()
        return text + "\n--hazards--\n" + json.dumps(_hazard_table())

    def build_messages(self, conv: Conversation) -> list[dict[str, Any]]:
        _, sys_t, usr_t = _templates()
        return [
            {"role": "system", "content": sys_t.render(hazards=_hazard_table())},
            {"role": "user", "content": usr_t.render(prompt=conv.prompt, response=conv.response, intent=conv.intent,
                                                     system_prompt=conv.system_prompt, hazard=conv.hazard)},
        ]

    def parse(self, text: str) -> Judgment:
        obj = extract_json(text)
        if not isinstance(obj, dict):
            raise ParseError(f"expected a JSON object, got {type(obj).__name__}")
        try:
            v = RubricVerdict.model_validate(obj)
        except ValidationError as e:
            err = e.errors()[0]
            raise ParseError(f"field '{'.'.join(map(str, err['loc']))}': {err['msg']}") from e
        known = {c for c, _ in _hazard_table()}
        hazards = [h for h in dict.fromkeys(v.hazards) if h in known]
        dropped = [clean_text(h)[:40] for h in v.hazards if h not in known]
        reason = clean_text(v.reason).strip()[:500]  # JSON escapes can decode to lone surrogates
        if dropped:
            reason += f" (unknown hazard codes ignored: {', '.join(dropped)[:100]})"
        return Judgment(label=v.label, categories=hazards if v.label == "violating" else [], refusal=v.refusal, reason=reason or None)
