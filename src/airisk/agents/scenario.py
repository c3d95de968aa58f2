"""The agent-scenario format: tools, initial state, instruction, risk labels and outcome predicates.

A scenario is a YAML/JSON document validated by the Pydantic models below. Validation errors are
re-raised as :class:`airisk.errors.DataError` naming the file and the field path
(``scenarios[2].tools[0].parameters``), so a user can fix a hand-written scenario quickly.
See docs/agents.md for the full format.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import jsonschema
import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from airisk.errors import DataError
from airisk.types import Message

# --------------------------------------------------------------------------------------------
# Predicates: a small declarative language over the action trace and the final state.
# Each predicate is a mapping whose *first key* names its kind (e.g. ``tool_called``).
# --------------------------------------------------------------------------------------------

CallStatus = Literal["executed", "attempted"]


class _P(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ToolCalled(_P):
    """The agent called a tool (name is a glob) whose arguments match ``args_match`` (globs for strings).

    ``status: executed`` (default) counts only calls that reached the tool and succeeded, i.e. actions
    that happened; ``attempted`` also counts calls that were blocked by the gate or failed.
    """

    tool_called: str
    args_match: dict[str, Any] = Field(default_factory=dict)
    args_contains: str | None = None  # case-insensitive substring anywhere in the JSON arguments
    status: CallStatus = "executed"
    min_count: int = Field(1, ge=1)


class StateChanged(_P):
    """A record of the state collection at path ``state_changed`` (glob) was created/updated/deleted."""

    state_changed: str
    op: Literal["create", "update", "delete", "any"] = "any"
    key: str | None = None  # glob over the record key


class StateMatches(_P):
    """The value at a dotted path of the final state equals / exists / contains something."""

    state_path: str
    equals: Any = None
    exists: bool | None = None
    contains: str | None = None

    @model_validator(mode="after")
    def _one_test(self) -> "StateMatches":
        if self.exists is None and self.contains is None and "equals" not in self.model_fields_set:
            raise ValueError("state_path needs one of: equals, exists, contains")
        return self


class SentToExternal(_P):
    """A call of an outbound tool (send/pay/post: ``external`` effect) executed, optionally to a recipient glob."""

    sent_to_external: bool = True
    to: str | None = None
    contains: str | None = None  # substring that must appear in the outbound arguments


class FinalAnswerMatches(_P):
    """The agent's final answer matches a regular expression (case-insensitive)."""

    final_answer_matches: str

    @field_validator("final_answer_matches")
    @classmethod
    def _regex(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(f"not a valid regular expression: {e}") from None
        return v


class RepeatedCall(_P):
    """Malfunction: one identical call (same tool, same arguments) was made at least ``repeated_call`` times.

    ``tool`` narrows it to tools matching a glob. Counts attempts (blocked and failed calls too):
    a retry storm against a failing tool is exactly the malfunction this looks for.
    """

    repeated_call: int = Field(ge=2)
    tool: str = "*"


class StepBudgetExhausted(_P):
    """Malfunction: the episode ended because it hit its step limit, not with an answer."""

    step_budget_exhausted: bool = True


class ErrorStreak(_P):
    """Malfunction: at least ``error_streak`` calls in a row failed or were blocked (a cascade of failures)."""

    error_streak: int = Field(ge=2)


class TooManyCalls(_P):
    """Malfunction (cost blown): the agent made more than ``calls_over`` tool calls in the episode."""

    calls_over: int = Field(ge=0)


class AnyOf(_P):
    any: list["Predicate"] = Field(min_length=1)


class AllOf(_P):
    all: list["Predicate"] = Field(min_length=1)


class NotP(_P):
    not_: "Predicate" = Field(alias="not")


PREDICATE_KINDS = {
    "tool_called": ToolCalled, "state_changed": StateChanged, "state_path": StateMatches,
    "sent_to_external": SentToExternal, "final_answer_matches": FinalAnswerMatches,
    "repeated_call": RepeatedCall, "step_budget_exhausted": StepBudgetExhausted, "error_streak": ErrorStreak,
    "calls_over": TooManyCalls,
    "any": AnyOf, "all": AllOf, "not": NotP,
}


def _predicate_kind(v: Any) -> str | None:
    if isinstance(v, BaseModel):
        for key, cls in PREDICATE_KINDS.items():
            if isinstance(v, cls):
                return key
        return None
    if isinstance(v, dict):
        for key in v:
            if key in PREDICATE_KINDS:
                return key
        if "not_" in v:
            return "not"
    return None  # pydantic reports "unable to extract tag", which we rephrase below


Predicate = Annotated[
    Union[tuple(Annotated[cls, Tag(key)] for key, cls in PREDICATE_KINDS.items())],  # type: ignore[misc]
    Discriminator(_predicate_kind, custom_error_type="predicate_kind",
                  custom_error_message=f"a predicate must have one of the keys: {', '.join(PREDICATE_KINDS)}"),
]
for _m in (AnyOf, AllOf, NotP):
    _m.model_rebuild()


# --------------------------------------------------------------------------------------------
# Tools and scenarios
# --------------------------------------------------------------------------------------------

Op = Literal["read", "list", "search", "create", "update", "delete", "send", "pay", "run", "act", "static"]
SIDE_EFFECT_OPS = frozenset({"create", "update", "delete", "send", "pay", "run", "act"})


class Effect(_P):
    """What a tool does to the environment state, for the deterministic emulator.

    ``collection`` is a dotted path into the state holding a dict (key -> record) or a list of
    records; ``key`` names the argument that identifies a record (``key_field`` the record's field,
    default the same name). ``external`` marks outbound effects (data or money leaving the user's
    control); it defaults to true for ``send`` and ``pay``.
    """

    op: Op
    collection: str | None = None
    key: str | None = None
    key_field: str | None = None
    query: str | None = None  # argument used as a search query (search/list)
    command: str | None = None  # argument holding the shell command (run)
    amount: str | None = None  # argument holding the amount (pay)
    balance: str | None = None  # dotted state path of the balance (pay)
    external: bool | None = None
    result: Any = None  # fixed result (static), e.g. a web page containing an injected instruction
    deny: list[str] = Field(default_factory=list)  # record-key globs that fail with PermissionDenied

    @property
    def is_external(self) -> bool:
        return self.external if self.external is not None else self.op in ("send", "pay")


class ToolSpec(_P):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    effect: Effect | None = None  # None: inferred from the tool name (see emulator.infer_effect)
    emulator: Literal["deterministic", "model"] = "deterministic"

    @field_validator("parameters")
    @classmethod
    def _schema(cls, v: dict[str, Any]) -> dict[str, Any]:
        problem = _schema_problem(json.dumps(v, sort_keys=True, default=str))
        if problem:
            raise ValueError(problem)
        if v.get("type", "object") != "object":
            raise ValueError("tool parameters must be a JSON schema of type 'object'")
        return v

    def openai(self) -> dict[str, Any]:
        """The OpenAI ``tools=[...]`` entry for this tool."""
        params = dict(self.parameters)
        params.setdefault("type", "object")
        params.setdefault("properties", {})
        return {"type": "function", "function": {"name": self.name, "description": self.description, "parameters": params}}


@functools.lru_cache(maxsize=8192)
def _schema_problem(schema_json: str) -> str | None:
    """Why a JSON schema is invalid (None if valid); cached because suites repeat tool schemas."""
    try:
        jsonschema.Draft202012Validator.check_schema(json.loads(schema_json))
    except jsonschema.SchemaError as e:
        where = "/".join(str(p) for p in e.path)
        return f"not a valid JSON schema{f' at {where}' if where else ''}: {e.message}"
    return None


class Scenario(_P):
    """One agent-safety test case."""

    id: str = Field(min_length=1)
    title: str | None = None
    source: str = "custom"
    risk_category: str = Field(min_length=1)
    failure_modes: list[str] = Field(default_factory=list)
    instruction: str = ""
    system_prompt: str | None = None
    messages: list[Message] | None = None  # pre-filled dialog the agent continues (overrides instruction)
    tools: list[ToolSpec] = Field(default_factory=list)
    state: dict[str, Any] = Field(default_factory=dict)
    emulation: Literal["strict", "permissive"] = "strict"
    safe_behavior: str = ""
    unsafe: Predicate | None = None
    completion: Predicate | None = None
    fulfillable: bool | None = None
    max_steps: int | None = Field(None, ge=1)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("failure_modes", mode="before")
    @classmethod
    def _modes(cls, v: Any) -> Any:
        if isinstance(v, str):  # "1,5" as in Agent-SafetyBench
            return [s.strip() for s in v.split(",") if s.strip()]
        return v

    @model_validator(mode="after")
    def _check(self) -> "Scenario":
        names = [t.name for t in self.tools]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate tool names: {', '.join(dup)}")
        if not self.instruction and not self.messages:
            raise ValueError("a scenario needs an 'instruction' or pre-filled 'messages'")
        for field in ("unsafe", "completion"):
            pred = getattr(self, field)
            for name in _tool_names_in(pred):
                if not any(ch in name for ch in "*?[") and name not in names:
                    raise ValueError(f"{field}: predicate refers to unknown tool '{name}' (tools: {', '.join(names) or 'none'})")
        return self

    def tool(self, name: str) -> ToolSpec | None:
        return next((t for t in self.tools if t.name == name), None)

    def initial_messages(self) -> list[dict[str, Any]]:
        msgs: list[dict[str, Any]] = []
        if self.system_prompt:
            msgs.append({"role": "system", "content": self.system_prompt})
        if self.messages:
            msgs.extend(m.model_dump(exclude_none=True) for m in self.messages)
        else:
            msgs.append({"role": "user", "content": self.instruction})
        return msgs


def _tool_names_in(pred: Any) -> list[str]:
    if pred is None:
        return []
    if isinstance(pred, ToolCalled):
        return [pred.tool_called]
    if isinstance(pred, (AnyOf, AllOf)):
        return [n for p in (pred.any if isinstance(pred, AnyOf) else pred.all) for n in _tool_names_in(p)]
    if isinstance(pred, NotP):
        return _tool_names_in(pred.not_)
    return []


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def format_loc(loc: tuple[Any, ...]) -> str:
    """``('tools', 0, 'parameters')`` -> ``tools[0].parameters``; drops the union tags pydantic adds."""
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
            continue
        p = "not" if p == "not_" else str(p)
        if parts and parts[-1].lstrip(".") == p:
            continue  # the discriminator tag repeats the field name: any.any -> any
        parts.append(p if not parts else f".{p}")
    return "".join(parts)


def _first_error(e: ValidationError, prefix: str) -> tuple[str, str]:
    err = e.errors(include_url=False)[0]
    loc = format_loc(tuple(err["loc"]))
    field = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    return field, msg


def parse_scenario(data: Any, *, path: str | None = None, where: str = "", line: int | None = None) -> Scenario:
    """Validate one scenario mapping; errors name ``path``, ``line`` and the field."""
    if not isinstance(data, dict):
        raise DataError("a scenario must be a mapping", path=path, line=line, field=where or None)
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        field, msg = _first_error(e, where)
        extra = f" (and {e.error_count() - 1} more errors)" if e.error_count() > 1 else ""
        raise DataError(f"{msg}{extra}", path=path, line=line, field=field or None) from None


def load_scenarios(path: str | Path) -> list[Scenario]:
    """Load scenarios from a YAML/JSON/JSONL file or a directory of them.

    A YAML/JSON file holds one scenario, a list of them, or ``{"scenarios": [...]}``.
    """
    p = Path(path)
    if p.is_dir():
        out: list[Scenario] = []
        for f in sorted(p.iterdir()):
            if f.suffix.lower() in (".yaml", ".yml", ".json", ".jsonl"):
                out.extend(load_scenarios(f))
        return _unique(out, str(p))
    if not p.exists():
        raise DataError("file not found", path=str(p))
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() == ".jsonl":
        out = []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"invalid JSON: {e.msg}", path=str(p), line=i) from None
            out.append(parse_scenario(data, path=str(p), line=i))
        return _unique(out, str(p))
    try:
        data = yaml.safe_load(text) if p.suffix.lower() in (".yaml", ".yml") else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as e:
        raise DataError(f"cannot parse: {e}", path=str(p)) from None
    if isinstance(data, dict) and "scenarios" in data:
        data = data["scenarios"]
        prefix = "scenarios"
    else:
        prefix = ""
    if isinstance(data, list):
        return _unique([parse_scenario(d, path=str(p), where=f"{prefix}[{i}]") for i, d in enumerate(data)], str(p))
    return [parse_scenario(data, path=str(p))]


def _unique(scenarios: list[Scenario], where: str) -> list[Scenario]:
    seen: set[str] = set()
    for s in scenarios:
        if s.id in seen:
            raise DataError(f"duplicate scenario id '{s.id}'", path=where, field="id")
        seen.add(s.id)
    return scenarios


def builtin_dir() -> Path:
    """The project's own small scenario pack (hand-written, shipped in the package)."""
    return Path(__file__).parent / "scenarios"
