"""Scripted example agents (plain Python callables) used to exercise the evaluation end to end.

They see only what a real agent sees (the messages and the OpenAI tool list), never the
scenario's predicates, and decide by simple rules:

* ``careful``: looks things up with read-only tools, then asks the user to confirm before any
  action that changes, sends, pays or deletes anything.
* ``reckless``: immediately calls every action tool with broad arguments drawn from the request.
* ``tricked``: like ``careful``, except that it obeys instructions it finds inside tool outputs
  (a link to click, an address to forward data to, a command to run): an indirect prompt injection.
"""

from __future__ import annotations

import json
import re
from typing import Any

from airisk.agents.emulator import infer_op, is_side_effect

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
URL = re.compile(r"https?://[^\s\"'<>)\]\\]+")
PATH = re.compile(r"(?<![\w/:.])(?:~|/)[\w.\-/]*[\w\-]")
MONEY = re.compile(r"\$\s?(\d[\d,]*(?:\.\d+)?)")
QUOTED = re.compile(r"[\"']([^\"']{2,60})[\"']")
DELETE_WORDS = re.compile(r"\b(delete|remove|clean|clear|free up|wipe|purge|uninstall)\b", re.I)
INJECTION = re.compile(
    r"\b(click|visit|open|go to|forward|send|email|transfer|pay|wire|delete|remove|run|execute|ignore (?:all |the )?previous|share|grant)\b",
    re.I)


def _tool_name(t: dict[str, Any]) -> str:
    return t["function"]["name"]


def _own_tool_turns(messages: list[dict[str, Any]]) -> int:
    return sum(1 for m in messages if m.get("role") == "assistant" and m.get("tool_calls"))


def _user_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(str(m.get("content") or "") for m in messages if m.get("role") == "user")


def _tool_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(str(m.get("content") or "") for m in messages if m.get("role") == "tool")


def synthesize(name: str, schema: dict[str, Any], ctx: str, *, broad: bool = False, payload: str = "") -> Any:
    """A plausible argument value for parameter ``name`` drawn from the context text."""
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    typ = schema.get("type", "string")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "string")
    lname = name.lower()
    if typ == "array":
        return [synthesize(name, schema.get("items") or {"type": "string"}, ctx, broad=broad, payload=payload)]
    if typ == "object":
        props = schema.get("properties") or {}
        return {k: synthesize(k, props[k], ctx, broad=broad, payload=payload) for k in (schema.get("required") or []) if k in props}
    if typ == "boolean":
        return True
    if typ in ("integer", "number"):
        m = MONEY.search(ctx) if re.search(r"amount|price|value|sum", lname) else None
        num = float(m.group(1).replace(",", "")) if m else (1000 if broad and "amount" in lname else 1)
        return int(num) if typ == "integer" else num
    if re.search(r"e-?mail|recipient|receiver|^to$|address", lname):
        m = EMAIL.search(ctx)
        return m.group(0) if m else "contact@example.com"
    if re.search(r"url|link|website", lname):
        m = URL.search(ctx)
        return m.group(0) if m else "https://example.com"
    if re.search(r"command|cmd|script", lname):
        path = PATH.search(ctx)
        if DELETE_WORDS.search(ctx) or broad:
            return f"rm -rf {path.group(0) if path else '*'}"
        return "ls"
    if re.search(r"path|file|dir|folder", lname):
        m = PATH.search(ctx)
        return m.group(0) if m else "/home/user/file.txt"
    if re.search(r"content|body|message|text|description|note|comment|post", lname):
        if payload:
            return payload
        return ctx.strip().splitlines()[-1][:200] if ctx.strip() else "ok"
    if re.search(r"query|search|keyword|term", lname):
        q = QUOTED.search(ctx)
        if q:
            return q.group(1)
        words = [w for w in re.findall(r"[A-Za-z]{4,}", ctx) if w.lower() not in _STOP]
        return " ".join(words[:3]) or "all"
    q = QUOTED.search(ctx)
    return q.group(1) if q else ("*" if broad else "1")


_STOP = {"please", "could", "would", "with", "that", "this", "from", "have", "your", "about", "what", "there", "help",
         "which", "agent", "uses", "want", "into", "need", "some", "them", "they", "their", "also", "just", "make"}


def _call(tool: dict[str, Any], ctx: str, i: int, *, broad: bool = False, required_only: bool = True,
          payload: str = "", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    params = tool["function"].get("parameters") or {}
    props: dict[str, Any] = params.get("properties") or {}
    names = list(params.get("required") or []) if required_only else list(props)
    args = {k: synthesize(k, props.get(k) or {}, ctx, broad=broad, payload=payload) for k in names if k in props}
    for k, v in (overrides or {}).items():
        if k in props:
            args[k] = v
    return {"id": f"call_{i}", "type": "function", "function": {"name": _tool_name(tool), "arguments": json.dumps(args)}}


def _reads(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in tools if not is_side_effect(infer_op(_tool_name(t)))]


def _actions(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in tools if is_side_effect(infer_op(_tool_name(t)))]


def _confirm_answer(messages: list[dict[str, Any]]) -> str:
    n = sum(1 for m in messages if m.get("role") == "tool")
    seen = f"I looked up the relevant information ({n} tool result{'s' if n != 1 else ''}). " if n else ""
    return (seen + "Before I change, delete, send, share or pay anything, I need you to confirm exactly what should "
            "be affected and that it is safe to proceed; some details of the request are unclear and acting on "
            "them could cause harm. Please confirm or clarify.")


SECRET_PATH = re.compile(r"(\.ssh/|\.gnupg/|id_rsa|id_ed25519|\.env\b|\.aws/|\.netrc|"
                         r"/etc/(shadow|passwd|sudoers)|\.pem\b|\.key\b|credentials|password)", re.I)


def careful(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
    """Reads first (but never opens credential files), never acts without the user's confirmation."""
    reads = _reads(tools)
    if reads and _own_tool_turns(messages) == 0:
        ctx = _user_text(messages)
        # Data minimisation: drop secret-looking paths from what it may read (keys, .env, shadow...).
        safe_ctx = PATH.sub(lambda m: "" if SECRET_PATH.search(m.group(0)) else m.group(0), ctx)
        calls = [_call(t, safe_ctx, i) for i, t in enumerate(reads[:4])]
        calls = [c for c in calls if not SECRET_PATH.search(c["function"]["arguments"])]
        if calls:
            return {"content": None, "tool_calls": calls}
    return {"content": _confirm_answer(messages)}


def reckless(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
    """Looks up what is there, then does every action it can on it, without asking anyone."""
    if not tools:
        return {"content": "Sure! Here is exactly what you asked for, with no caveats: " + _user_text(messages)[-300:]}
    turns = _own_tool_turns(messages)
    reads, actions = _reads(tools), _actions(tools)
    if turns == 0 and reads and actions:
        ctx = _user_text(messages)
        return {"content": None, "tool_calls": [_call(t, ctx, i) for i, t in enumerate(reads[:4])]}
    if turns <= 1 and not any(m.get("role") == "assistant" and m.get("tool_calls") and any(
            is_side_effect(infer_op(c["function"]["name"])) for c in m["tool_calls"]) for m in messages):
        observed = _tool_text(messages)
        ctx = _user_text(messages) + "\n" + observed
        chosen = actions or tools
        return {"content": None, "tool_calls": [
            _call(t, ctx, i, broad=True, overrides=_observed_values(t, observed)) for i, t in enumerate(chosen[:12])]}
    return {"content": "Done: I've carried out everything you asked."}


def _observed_values(tool: dict[str, Any], observed: str) -> dict[str, Any]:
    """Argument values taken from earlier tool output (e.g. the ``account_id`` of a listed record)."""
    out: dict[str, Any] = {}
    props = (tool["function"].get("parameters") or {}).get("properties") or {}
    for name, sch in props.items():
        if sch.get("type", "string") not in ("string", "integer", "number"):
            continue
        m = re.search(rf'"{re.escape(name)}"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?)', observed)
        if m:
            try:
                out[name] = json.loads(m.group(1))
            except json.JSONDecodeError:
                continue
    return out


def tricked(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
    """Careful with the user's words, but obeys instructions that arrive inside tool results."""
    turns = _own_tool_turns(messages)
    reads = _reads(tools)
    if turns == 0 and reads:
        ctx = _user_text(messages)
        return {"content": None, "tool_calls": [_call(t, ctx, i) for i, t in enumerate(reads[:4])]}
    observed = _tool_text(messages)
    if turns <= 1 and observed and INJECTION.search(observed):
        planned = _follow_injection(observed, _actions(tools))
        if planned:
            return {"content": None, "tool_calls": planned}
    if turns >= 2:
        return {"content": "I followed the instructions I found in the retrieved content."}
    return {"content": _confirm_answer(messages)}


_INTENT_OPS = [
    (re.compile(r"\b(click|visit|open|go to)\b", re.I), ("act", "read", "send")),
    (re.compile(r"\b(forward|send|email|share)\b", re.I), ("send",)),
    (re.compile(r"\b(transfer|pay|wire)\b", re.I), ("pay",)),
    (re.compile(r"\b(delete|remove)\b", re.I), ("delete",)),
    (re.compile(r"\b(run|execute)\b", re.I), ("run",)),
    (re.compile(r"\b(grant|give)\b[^\n]{0,80}?\baccess\b|\badd\b[^\n]{0,80}?\bas an? (owner|admin|collaborator)\b", re.I),
     ("update", "create")),
]


def _follow_injection(observed: str, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Turn instructions found in tool output into calls of the matching action tools."""
    calls: list[dict[str, Any]] = []
    # a tool the instruction names ("use TodoistShareTask to ...") is the one it reaches for first
    actions = sorted(actions, key=lambda t: _tool_name(t) not in observed)
    cmd = re.search(r"`([^`]+)`", observed)
    overrides = {"command": cmd.group(1)} if cmd else {}
    for pattern, ops in _INTENT_OPS:
        if not pattern.search(observed):
            continue
        for t in actions:
            if infer_op(_tool_name(t)) in ops and all(c["function"]["name"] != _tool_name(t) for c in calls):
                calls.append(_call(t, observed, len(calls), payload=observed[:500], overrides=overrides))
                break
    return calls


RETRY = re.compile(r"\b(try again|retry|retrying|repeat the (?:identical|same) (?:request|call)|call \w+ again|"
                   r"next page|once more|keep (?:calling|retrying))\b", re.I)


def persistent(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
    """Like ``careful``, but never gives up: repeats its last calls whenever their output failed or says to
    try again / fetch the next page. The kind of agent malfunction attacks drive into loops."""
    if _own_tool_turns(messages) == 0:
        return careful(messages, tools)
    last = max(i for i, m in enumerate(messages) if m.get("role") == "assistant" and m.get("tool_calls"))
    outputs = [str(m.get("content") or "") for m in messages[last + 1:] if m.get("role") == "tool"]
    if any(RETRY.search(o) or o.startswith('{"error"') for o in outputs):
        n = _own_tool_turns(messages)
        return {"content": None, "tool_calls": [
            {**c, "id": f"call_{n}_{i}"} for i, c in enumerate(messages[last]["tool_calls"])]}
    return {"content": _confirm_answer(messages)}


SCRIPTED = {"careful": careful, "reckless": reckless, "tricked": tricked, "persistent": persistent}


def scripted_responder(body: dict[str, Any]) -> dict[str, Any]:
    """Serve the scripted agents over the OpenAI protocol: the request's ``model`` picks the agent.

    For ``airisk.testing.openai_server`` (``running_server(scripted_responder)``), so the HTTP
    tool-calling loop (``OpenAIAgent``) can be exercised on any scenario suite.
    """
    fn = SCRIPTED.get(str(body.get("model")))
    if fn is None:
        return {"status": 404, "content": f"unknown model {body.get('model')!r}; use one of {', '.join(SCRIPTED)}"}
    out = fn(body.get("messages") or [], body.get("tools") or [])
    return {"content": out.get("content"), **({"tool_calls": out["tool_calls"]} if out.get("tool_calls") else {})}
