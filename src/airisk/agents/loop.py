"""Agents under test and the episode loop that connects them to emulated tools (and optionally the gate).

An *agent* here is one policy step: given the conversation so far and the tools, return either a
final answer or tool calls. Three kinds: :class:`OpenAIAgent` (any OpenAI-compatible endpoint,
tool calling), :class:`CallableAgent` (any Python callable, sync or async) and
:class:`ReplayAgent` (a recorded trajectory re-executed against the emulator). The loop owns the
tools list, runs the calls (parallel calls in order), turns malformed calls (bad JSON arguments,
unknown tools) into tool errors the agent can read, and stops at a final answer or ``max_steps``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from airisk.agents.emulator import DeterministicEmulator, ModelEmulator
from airisk.agents.scenario import Scenario
from airisk.agents.trajectory import GateRecord, ToolCallRecord, Trajectory
from airisk.errors import ConfigError, DataError
from airisk.types import Completion, stable_hash


@dataclass
class AgentTurn:
    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    error: str | None = None


class Agent(ABC):
    """One decision step of an agent under test."""

    name: str = "agent"

    @abstractmethod
    async def step(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *, scenario_id: str) -> AgentTurn: ...

    def fingerprint(self) -> str:
        return self.name

    async def aclose(self) -> None:
        return None


def _turn_from(out: Any) -> AgentTurn:
    if isinstance(out, AgentTurn):
        return out
    if isinstance(out, str) or out is None:
        return AgentTurn(content=out or "")
    if isinstance(out, Completion):
        return AgentTurn(content=out.text, tool_calls=out.tool_calls, error=out.error)
    if isinstance(out, dict):
        return AgentTurn(content=out.get("content"), tool_calls=out.get("tool_calls") or None)
    raise TypeError(f"agent returned {type(out).__name__}; expected str, dict or Completion")


class CallableAgent(Agent):
    """Any Python callable ``fn(messages, tools)`` (or ``fn(messages)``) returning str / dict / Completion."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "python-agent")
        params = inspect.signature(fn).parameters
        self._wants_tools = "tools" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())

    async def step(self, messages, tools, *, scenario_id):
        kwargs = {"tools": tools} if self._wants_tools else {}
        msgs = json.loads(json.dumps(messages))  # the callable gets its own copy
        if inspect.iscoroutinefunction(self.fn):
            out = await self.fn(msgs, **kwargs)
        else:
            out = await asyncio.to_thread(self.fn, msgs, **kwargs)
        return _turn_from(out)

    def fingerprint(self) -> str:
        return f"python:{getattr(self.fn, '__module__', '?')}:{getattr(self.fn, '__qualname__', self.name)}"


class OpenAIAgent(Agent):
    """A tool-calling model behind an OpenAI-compatible chat-completions endpoint."""

    def __init__(self, model: str, base_url: str | None = None, *, api_key_env: str = "OPENAI_API_KEY",
                 temperature: float = 0.0, max_tokens: int | None = None, parallel_tool_calls: bool | None = None,
                 timeout: float = 60.0, max_retries: int = 3):
        from openai import AsyncOpenAI

        self.model, self.base_url = model, base_url
        self.name = f"openai:{model}"
        self.temperature, self.max_tokens, self.parallel_tool_calls = temperature, max_tokens, parallel_tool_calls
        # The key is read from the environment and never stored in run configs or logs.
        self.client = AsyncOpenAI(base_url=base_url, api_key=os.environ.get(api_key_env) or "none",
                                  timeout=timeout, max_retries=max_retries)

    async def step(self, messages, tools, *, scenario_id):
        import openai

        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": self.temperature}
        if tools:
            kwargs["tools"] = tools
            if self.parallel_tool_calls is not None:
                kwargs["parallel_tool_calls"] = self.parallel_tool_calls
        if self.max_tokens:
            kwargs["max_tokens"] = self.max_tokens
        try:
            resp = await self.client.chat.completions.create(**kwargs)
        except openai.APIError as e:
            return AgentTurn(error=f"{type(e).__name__}: {getattr(e, 'message', str(e))[:300]}")
        if not resp.choices:
            return AgentTurn(error="endpoint returned no choices")
        msg = resp.choices[0].message
        calls = [tc.model_dump(exclude_none=True) for tc in (msg.tool_calls or [])] or None
        return AgentTurn(content=msg.content, tool_calls=calls)

    def fingerprint(self) -> str:
        return stable_hash({"model": self.model, "base_url": self.base_url, "temperature": self.temperature})

    async def aclose(self) -> None:
        await self.client.close()


class ReplayAgent(Agent):
    """Replays recorded assistant turns per scenario: a JSONL of ``{"scenario_id", "messages"}`` records.

    The recorded tool calls are re-executed against the emulator (and the gate, if any), so a
    trajectory captured elsewhere can be scored by this project's detectors.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = f"replay:{self.path.name}"
        if not self.path.exists():
            raise DataError("file not found", path=str(self.path))
        self.turns: dict[str, list[dict[str, Any]]] = {}
        for i, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"invalid JSON: {e.msg}", path=str(self.path), line=i) from None
            if not isinstance(rec, dict) or "scenario_id" not in rec or not isinstance(rec.get("messages"), list):
                raise DataError("need 'scenario_id' and a 'messages' list", path=str(self.path), line=i)
            self.turns[str(rec["scenario_id"])] = [m for m in rec["messages"] if m.get("role") == "assistant"]
        self._cursor: dict[str, int] = {}

    async def step(self, messages, tools, *, scenario_id):
        recorded = self.turns.get(scenario_id)
        if recorded is None:
            return AgentTurn(error=f"no recorded trajectory for scenario '{scenario_id}'")
        i = self._cursor.get(scenario_id, 0)
        self._cursor[scenario_id] = i + 1
        if i >= len(recorded):
            return AgentTurn(content="")  # the recording ended: treat as a final (empty) answer
        m = recorded[i]
        return AgentTurn(content=m.get("content"), tool_calls=m.get("tool_calls") or None)

    def fingerprint(self) -> str:
        return stable_hash({"replay": self.turns})


def _gate_action(gate_mod: Any, name: str, args: dict[str, Any], session_id: str, op: str | None) -> Any:
    return gate_mod.Action(tool=name, arguments=args, session_id=session_id, context={"op": op} if op else {})


def gate_decide(gate: Any, name: str, args: dict[str, Any], session_id: str, op: str | None = None) -> GateRecord:
    """Ask the action gate about one call; its exceptions become a REVIEW (fail closed)."""
    import airisk.guard as guard_mod

    try:
        d = gate.decide(_gate_action(guard_mod, name, args, session_id, op))
    except Exception as e:  # a gate that cannot decide must not silently allow
        return GateRecord(verdict="REVIEW", rule_ids=["gate-error"], reasons=[f"{type(e).__name__}: {e}"])
    return GateRecord(verdict=d.verdict, rule_ids=list(d.rule_ids), reasons=list(d.reasons))


OutputHook = Callable[[ToolCallRecord, str], str]


@dataclass
class Defences:
    """What sits between the agent and its tools besides the emulator.

    ``gate`` (an ActionGate) decides each call; ``scanner`` (an InjectionScanner) reads every
    tool output before the agent does: a flagged output has its suspect passages removed, the
    gate session is tainted and, with ``audit`` (an AuditLog), the finding is recorded.
    ``output_hook`` rewrites tool outputs first; injection campaigns plant their payloads with it.
    ``approver`` settles a REVIEW with a person (e.g. :class:`airisk.agents.gating.ServiceApprover`:
    a pending approval on the guard service, waited for up to its ``wait_s``, or returned at once);
    without one a REVIEW is a ``PendingApproval`` error and the call does not run.
    """

    gate: Any = None
    scanner: Any = None
    audit: Any = None
    output_hook: OutputHook | None = None
    approver: Any = None


async def run_episode(scenario: Scenario, agent: Agent, *, gate: Any = None, max_steps: int = 10,
                      model_emulator: ModelEmulator | None = None, scanner: Any = None, audit: Any = None,
                      output_hook: OutputHook | None = None, approver: Any = None) -> Trajectory:
    """Run one agent on one scenario until it answers, fails or reaches ``max_steps``.

    ``scanner``/``audit``/``output_hook``/``approver``: see :class:`Defences`.
    """
    env = DeterministicEmulator(scenario, model=model_emulator)
    messages = scenario.initial_messages()
    tools = [t.openai() for t in scenario.tools]
    traj = Trajectory(scenario_id=scenario.id, gate_in_loop=gate is not None, scanner_in_loop=scanner is not None)
    defences = Defences(gate=gate, scanner=scanner, audit=audit, output_hook=output_hook, approver=approver)
    session = f"{scenario.id}:{uuid.uuid4().hex[:8]}"
    limit = scenario.max_steps or max_steps
    for step in range(1, limit + 1):
        traj.steps = step
        turn = await agent.step(messages, tools, scenario_id=scenario.id)
        if turn.error:
            traj.stop_reason, traj.error = "error", turn.error
            break
        calls = [c for c in (turn.tool_calls or []) if isinstance(c, dict)]
        assistant: dict[str, Any] = {"role": "assistant", "content": turn.content}
        if calls:
            for i, c in enumerate(calls):  # the API requires ids to pair calls with results
                c.setdefault("id", f"call_{step}_{i}")
                c.setdefault("type", "function")
            assistant["tool_calls"] = calls
        messages.append(assistant)
        if not calls:
            traj.final_answer = turn.content or ""
            traj.stop_reason = "final"
            break
        for c in calls:
            rec, content = await _execute_call(c, step, env, defences, session)
            traj.calls.append(rec)
            messages.append({"role": "tool", "tool_call_id": rec.call_id, "name": rec.tool, "content": content})
    else:
        traj.stop_reason = "max_steps"
    traj.messages = messages
    traj.changes = env.changes
    traj.final_state = env.state
    return traj


async def _execute_call(c: dict[str, Any], step: int, env: DeterministicEmulator, defences: Defences,
                        session: str) -> tuple[ToolCallRecord, str]:
    gate = defences.gate
    fn = c.get("function") if isinstance(c.get("function"), dict) else {}
    name = str(fn.get("name") or "")
    raw = fn.get("arguments")
    rec = ToolCallRecord(step=step, call_id=str(c["id"]), tool=name,
                         raw_arguments=raw if isinstance(raw, str) else None)

    def fail(status: str, msg: str) -> tuple[ToolCallRecord, str]:
        rec.status, rec.error = status, msg  # type: ignore[assignment]
        return rec, json.dumps({"error": msg})

    if isinstance(raw, dict):
        args: Any = raw
    else:
        try:
            args = json.loads(raw) if isinstance(raw, str) and raw.strip() else {}
        except json.JSONDecodeError as e:
            return fail("malformed", f"InvalidToolCall: arguments are not valid JSON ({e.msg} at char {e.pos}); "
                                     "send a JSON object matching the tool's parameters")
    if not isinstance(args, dict):
        return fail("malformed", "InvalidToolCall: arguments must be a JSON object")
    rec.arguments = args
    if env.scenario.tool(name) is None:
        return fail("malformed", f"UnknownTool: no tool named '{name}'; available: "
                                 f"{', '.join(t.name for t in env.scenario.tools) or 'none'}")
    eff = env.effect(name)
    rec.op = eff.op if eff else None
    rec.external = bool(eff and eff.is_external)
    if gate is not None:
        rec.gate = gate_decide(gate, name, args, session, rec.op)
        if rec.gate.verdict == "REVIEW" and defences.approver is not None:
            rec.gate = await defences.approver.settle(name, args, session, rec.gate)
        if rec.gate.verdict == "BLOCK":
            return fail("blocked", f"BlockedByPolicy: the action gate blocked this call "
                                   f"({', '.join(rec.gate.rule_ids)}): {'; '.join(rec.gate.reasons)}")
        if rec.gate.verdict == "REVIEW":
            pending = f" (approval {rec.gate.approval_id} is pending)" if rec.gate.approval_id else ""
            return fail("blocked", f"PendingApproval: this call needs human approval before it can run{pending} "
                                   f"({', '.join(rec.gate.rule_ids)}): {'; '.join(rec.gate.reasons)}. It was not executed.")
    out = await env.call(name, args)
    rec.op = out.op or rec.op
    rec.external = out.external
    if out.status != "executed":
        return fail("error", out.error or "error")
    rec.result = out.result
    content = out.content()
    if defences.output_hook is not None:
        content = defences.output_hook(rec, content)
    if defences.scanner is not None:
        content = await asyncio.to_thread(_scan_output, defences, rec, content, session)
    return rec, content


def _scan_output(d: Defences, rec: ToolCallRecord, content: str, session: str) -> str:
    """Scanner in the loop: a flagged output loses its suspect passages; session tainted, finding audited."""
    res = d.scanner.check_tool_output(content, tool=rec.tool, session_id=session, gate=d.gate, audit=d.audit)
    if not res.injected:
        return content
    rec.scan = res.to_dict()
    return d.scanner.redact(content, res)


def make_agent(spec: str) -> Agent:
    """``careful`` / ``reckless`` / ``tricked`` (scripted examples), ``python:module:function``,
    ``openai:model=M,base_url=URL[,api_key_env=VAR,temperature=T]`` or ``replay:path=file.jsonl``."""
    from airisk.agents import examples

    if spec in examples.SCRIPTED:
        return CallableAgent(examples.SCRIPTED[spec], name=spec)
    kind, _, rest = spec.partition(":")
    if kind == "python":
        from airisk.systems.python_callable import load_callable

        target = rest[len("target="):] if rest.startswith("target=") else rest
        return CallableAgent(load_callable(target))
    from airisk.spec import parse_params

    what = f"agent spec {spec!r}"
    if kind == "openai":
        params = parse_params(rest, what=what, required=("model",), accepted=(
            "model", "base_url", "api_key_env", "temperature", "parallel_tool_calls"))
        if not isinstance(params.get("temperature", 0), (int, float)) or \
                not isinstance(params.get("parallel_tool_calls", False), bool):
            raise ConfigError(f"{what}: temperature must be a number and parallel_tool_calls true or false")
        return OpenAIAgent(str(params["model"]), params.get("base_url"),
                           api_key_env=params.get("api_key_env", "OPENAI_API_KEY"),
                           temperature=float(params.get("temperature", 0)),
                           parallel_tool_calls=params.get("parallel_tool_calls"))
    if kind == "replay":
        path = rest if rest and "=" not in rest else parse_params(rest, what=what, accepted=("path",),
                                                                  required=("path",))["path"]
        return ReplayAgent(str(path))
    raise ConfigError(f"unknown agent spec '{spec}': use careful, reckless, tricked, python:module:function, "
                      "openai:model=...,base_url=... or replay:path=...")
