"""The guarded OpenAI-compatible chat proxy (``POST /v1/chat/completions``), streaming and not.

Input: every text of the conversation (see ``airisk.guard.shapes`` for the role policy) is checked
before anything goes upstream. Output: every choice and every text-bearing field (content strings
and parts, refusal, reasoning, audio transcript, tool and legacy function calls, unknown fields)
is checked; tool calls also go through the action gate. Shapes the guard cannot read are refused
(fail closed); only an upstream 200 is passed through, other statuses are mapped to OpenAI errors.

Streaming (``stream: true``) uses a hold-back window: text from the upstream is buffered and only
released to the client once a check of a window containing it has passed; at the end of the answer
a final check runs on the whole answer (and tool calls, which are released only complete, after the
gate has allowed them). A block mid-stream ends the stream with the safe completion and
``finish_reason: "content_filter"``; the client never receives text that was not checked.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

import httpx
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from airisk.guard.actions import SEVERITY, Action
from airisk.guard.runtime import audited
from airisk.guard.shapes import (ROLES, ToolCall, Unverifiable, message_texts, meta, numbers_only, request_segments,
                                 response_choices, sanitized_response, show)

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "invalid_request_error", 405: "invalid_request_error", 409: "invalid_request_error",
               413: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error"}
# upstream status -> status the client gets; anything else (401/403: the guard's own upstream key is
# wrong, not the client's; 2xx other than 200; 3xx; 5xx) is a 502
UPSTREAM_STATUS = {400: 400, 404: 404, 409: 409, 413: 413, 422: 400, 429: 429}
TEXT_DELTAS = ("content", "reasoning_content", "reasoning", "refusal")
CHUNK_KEYS = ("id", "created", "model", "system_fingerprint", "service_tier")
MAX_EVENT_BYTES = 1_000_000
MAX_CHOICES = 128


class ProxySpec(BaseModel):
    """The ``proxy:`` section of the service config."""

    model_config = ConfigDict(extra="forbid")
    input_roles: list[str] = Field(default_factory=lambda: list(ROLES))  # roles whose text is checked on input
    allow_media: bool = False  # pass image/audio/file parts through unchecked (a text guard cannot read them)
    stream_window_chars: int = Field(200, ge=1, le=100_000)  # hold-back window for streaming
    session_header: str = "X-Airisk-Session"  # per-session gate limits and taint; the body's `user` is the fallback
    max_response_bytes: int = Field(10_000_000, gt=0)  # upstream answers larger than this are refused
    models: list[str] | None = None  # GET /v1/models answers this list instead of asking the upstream


def oai_error(status: int, message: str, code: str | None, *, param: str | None = None,
              headers: dict[str, str] | None = None) -> JSONResponse:
    """An error in OpenAI's shape (``{"error": {message, type, param, code}}``), which SDKs parse."""
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status, headers=headers)


def _upstream_error(status: int, raw: bytes, headers: httpx.Headers) -> JSONResponse:
    mapped = UPSTREAM_STATUS.get(status)
    if mapped is None:
        return oai_error(502, f"upstream returned HTTP {status}", "upstream_error")
    msg = f"upstream returned HTTP {status}"
    try:
        err = json.loads(raw).get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            msg = err["message"][:500]
    except (ValueError, AttributeError, RecursionError):
        pass
    keep = {"retry-after": headers["retry-after"]} if "retry-after" in headers else None
    return oai_error(mapped, msg, "upstream_" + str(status), headers=keep)


def _verdict(verdicts: list[str]) -> str:
    return max(verdicts, key=SEVERITY.__getitem__, default="ALLOW")


@dataclass
class _Choice:
    index: int
    fields: dict[str, str] = field(default_factory=dict)  # text field -> text so far
    released: dict[str, int] = field(default_factory=dict)  # text field -> chars sent to the client
    role_sent: bool = False
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    function_call: dict[str, str] | None = None
    finish: str | None = None

    def pending(self) -> int:
        return max((len(t) - self.released.get(k, 0) for k, t in self.fields.items()), default=0)


class StreamState:
    """What the upstream has streamed so far, and how much of it the client has been sent.

    Text fields (content, reasoning_content, reasoning, refusal, audio transcript) are held and
    released after checks; tool and function calls are released whole after the final check;
    unknown delta fields are dropped (never sent, so never unchecked)."""

    def __init__(self, max_chars: int):
        self.choices: dict[int, _Choice] = {}
        self.meta: dict[str, Any] = {}
        self.usage: Any = None
        self.chars, self.max_chars = 0, max_chars

    def absorb(self, chunk: Any) -> None:
        if not isinstance(chunk, dict):
            raise Unverifiable("<chunk>", "a stream chunk must be an object")
        for k in CHUNK_KEYS:
            if k in chunk and k not in self.meta:
                self.meta[k] = meta(chunk[k])
        if chunk.get("usage") is not None:
            self.usage = numbers_only(chunk["usage"])
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            raise Unverifiable("choices", "must be a list")
        for ch in choices:
            if not isinstance(ch, dict) or not isinstance(ch.get("index", 0), int) or not 0 <= ch.get("index", 0) < MAX_CHOICES:
                raise Unverifiable("choices[]", "a chunk choice must be an object with a small integer index")
            st = self.choices.setdefault(ch.get("index", 0), _Choice(ch.get("index", 0)))
            delta = ch.get("delta") or {}
            if not isinstance(delta, dict):
                raise Unverifiable(f"choices[{st.index}].delta", "must be an object")
            for k, v in delta.items():
                self._delta(st, k, v)
            if isinstance(ch.get("finish_reason"), str):
                st.finish = meta(ch["finish_reason"]) or "stop"
        if self.chars > self.max_chars:
            raise Unverifiable("<stream>", f"answer longer than {self.max_chars} characters")

    def _text(self, st: _Choice, key: str, v: str) -> None:
        st.fields[key] = st.fields.get(key, "") + v
        self.chars += len(v)

    def _delta(self, st: _Choice, k: str, v: Any) -> None:
        where = f"choices[{st.index}].delta.{show(k)}"
        if v is None or k == "role":
            return
        if k in TEXT_DELTAS:
            if not isinstance(v, str):
                raise Unverifiable(where, "streamed text must be a string")
            self._text(st, k, v)
        elif k == "audio":
            if not isinstance(v, dict) or v.get("data"):
                raise Unverifiable(where, "streamed audio cannot be checked")
            if isinstance(v.get("transcript"), str):
                self._text(st, "audio.transcript", v["transcript"])
        elif k == "tool_calls":
            if not isinstance(v, list):
                raise Unverifiable(where, "must be a list")
            for tc in v:
                if not isinstance(tc, dict) or not isinstance(tc.get("index", 0), int):
                    raise Unverifiable(where, "a tool call delta must be an object with an integer index")
                cur = st.tool_calls.setdefault(tc.get("index", 0), {"id": None, "type": "function", "name": "", "arguments": ""})
                cur["id"] = meta(tc.get("id")) or cur["id"]
                if isinstance(tc.get("type"), str):
                    cur["type"] = meta(tc["type"]) or "function"
                fn = tc.get("function") or {}
                if not isinstance(fn, dict):
                    raise Unverifiable(where, "function must be an object")
                for part in ("name", "arguments"):
                    if fn.get(part) is not None:
                        if not isinstance(fn[part], str):
                            raise Unverifiable(where, f"function.{part} must be a string")
                        cur[part] += fn[part]
                        self.chars += len(fn[part])
        elif k == "function_call":
            if not isinstance(v, dict):
                raise Unverifiable(where, "must be an object")
            cur = st.function_call = st.function_call or {"name": "", "arguments": ""}
            for part in ("name", "arguments"):
                if isinstance(v.get(part), str):
                    cur[part] += v[part]
                    self.chars += len(v[part])
        # any other field is dropped: never sent to the client, so there is nothing to check

    # -- checking and releasing --
    def pending(self) -> int:
        return max((c.pending() for c in self.choices.values()), default=0)

    def window(self, context: int) -> tuple[list[str], list[str]]:
        """Unreleased text of every field, with up to ``context`` chars already released before it."""
        texts, labels = [], []
        for c in self.choices.values():
            for k, t in c.fields.items():
                r = c.released.get(k, 0)
                if len(t) > r:
                    texts.append(t[max(0, r - context):])
                    labels.append(f"choices[{c.index}].delta.{show(k)}")
        return texts, labels

    def whole(self) -> tuple[list[str], list[str], list[ToolCall]]:
        texts, labels, calls = [], [], []
        for c in self.choices.values():
            for k, t in c.fields.items():
                if t.strip():
                    texts.append(t)
                    labels.append(f"choices[{c.index}].message.{show(k)}")
            for i, tc in sorted(c.tool_calls.items()):
                calls.append(ToolCall(f"choices[{c.index}].message.tool_calls[{i}]", tc["name"], tc["arguments"], tc["id"]))
            if c.function_call is not None:
                calls.append(ToolCall(f"choices[{c.index}].message.function_call", c.function_call["name"],
                                      c.function_call["arguments"]))
        for tc in calls:
            texts += [t for t in (tc.name, tc.arguments) if t.strip()]
            labels += [f"{tc.where}.{p}" for p, t in (("name", tc.name), ("arguments", tc.arguments)) if t.strip()]
        return texts, labels, calls

    def chunk(self, choices: list[dict[str, Any]], **extra: Any) -> str:
        body = {"id": self.meta.get("id") or f"chatcmpl-guard-{uuid.uuid4().hex[:12]}", "object": "chat.completion.chunk",
                "created": self.meta.get("created") or int(time.time()), "model": self.meta.get("model") or "airisk-guard",
                **{k: self.meta[k] for k in ("system_fingerprint", "service_tier") if k in self.meta},
                "choices": choices, **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    def _delta_of(self, c: _Choice) -> dict[str, Any]:
        delta: dict[str, Any] = {}
        if not c.role_sent:
            delta["role"] = "assistant"
            c.role_sent = True
        for k, t in c.fields.items():
            r = c.released.get(k, 0)
            if len(t) > r:
                if k == "audio.transcript":
                    delta["audio"] = {"transcript": t[r:]}
                else:
                    delta[k] = t[r:]
                c.released[k] = len(t)
        return delta

    def release(self) -> list[str]:
        """SSE events for all checked-but-unsent text."""
        out = []
        for c in self.choices.values():
            if c.pending():
                out.append(self.chunk([{"index": c.index, "delta": self._delta_of(c), "finish_reason": None}]))
        return out

    def released_chars(self) -> int:
        return sum(sum(c.released.values()) for c in self.choices.values())

    def finish(self) -> list[str]:
        """The rest of the answer after the final check passed: text, complete tool calls, finish reasons."""
        out = self.release()
        for c in self.choices.values():
            delta: dict[str, Any] = {}
            if c.tool_calls:
                delta["tool_calls"] = [{"index": i, "id": tc["id"], "type": tc["type"],
                                        "function": {"name": tc["name"], "arguments": tc["arguments"]}}
                                       for i, tc in sorted(c.tool_calls.items())]
            if c.function_call is not None:
                delta["function_call"] = dict(c.function_call)
            if delta:
                if not c.role_sent:
                    delta["role"], c.role_sent = "assistant", True
                out.append(self.chunk([{"index": c.index, "delta": delta, "finish_reason": None}]))
            out.append(self.chunk([{"index": c.index, "delta": {}, "finish_reason": c.finish or "stop"}]))
        if self.usage is not None:
            out.append(self.chunk([], usage=self.usage))
        return out

    def block(self, text: str, marker: dict[str, Any]) -> list[str]:
        """End every choice with the safe completion and finish_reason content_filter."""
        choices = self.choices.values() or [_Choice(0)]
        out = []
        for c in choices:
            sep = "\n\n" if any(c.released.values()) else ""
            delta = {"role": "assistant"} if not c.role_sent else {}
            delta["content"] = sep + text
            out.append(self.chunk([{"index": c.index, "delta": delta, "finish_reason": "content_filter"}], airisk_guard=marker))
        return out


async def sse_events(r: httpx.Response) -> AsyncIterator[Any]:
    """Parsed ``data:`` payloads of a server-sent event stream; "[DONE]" is yielded as None."""
    buf = b""
    data: list[bytes] = []
    async for piece in r.aiter_bytes():
        buf += piece
        if len(buf) > MAX_EVENT_BYTES:
            raise Unverifiable("<stream>", f"an event larger than {MAX_EVENT_BYTES} bytes")
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            line = line.rstrip(b"\r")
            if not line:
                if data:
                    payload = b"\n".join(data).strip()
                    data = []
                    if payload == b"[DONE]":
                        yield None
                        return
                    yield json.loads(payload)
            elif line.startswith(b"data:"):
                data.append(line[5:])
    if data and b"\n".join(data).strip() not in (b"", b"[DONE]"):
        yield json.loads(b"\n".join(data))


@dataclass
class CallContext:
    principal: str | None
    role: str | None
    session_id: str | None  # namespaced per principal


class Proxy:
    def __init__(self, *, upstream, spec: ProxySpec, checks, audit, client: Callable[[], httpx.AsyncClient],
                 check_tool_calls: bool, clean: Callable[[Any], Any], on_decision: Callable[[str, str], None],
                 settle: Callable[..., Any] | None = None):
        self.upstream, self.spec, self.checks, self.audit = upstream, spec, checks, audit
        self.settle = settle  # REVIEW -> pending human approval (service.settle_review)
        self.client, self.check_tool_calls, self.clean, self.on_decision = client, check_tool_calls, clean, on_decision

    # -- helpers --
    def _headers(self) -> dict[str, str]:
        import os

        env = self.upstream.api_key_env
        return {"Authorization": f"Bearer {os.environ[env]}"} if env and os.environ.get(env) else {}

    async def _audit(self, record: dict[str, Any], ctx: CallContext, verdict: str) -> str:
        rec = await audited(self.audit.submit("proxy", record, principal=ctx.principal, verdict=verdict))
        return rec.record_id

    async def _tool_decisions(self, calls: list[ToolCall], ctx: CallContext) -> list[dict[str, Any]]:
        out = []
        if not self.check_tool_calls:
            return out
        for tc in calls:
            if tc.kind == "custom":  # free-form input: the gate sees it as one argument
                args: Any = {"input": tc.arguments}
            else:
                try:
                    args = json.loads(tc.arguments or "{}")
                except (ValueError, RecursionError):
                    args = None
            if not isinstance(args, dict):
                out.append({"where": tc.where, "tool": tc.name, "verdict": "BLOCK", "rule_ids": ["args.invalid"],
                            "reasons": ["tool call arguments are not a JSON object"]})
                continue
            action = Action(tool=tc.name, arguments=self.clean(args), principal=ctx.principal, role=ctx.role,
                            session_id=ctx.session_id)
            d = await self.checks.decide(action)
            approval = None
            if self.settle is not None:
                d, approval = await self.settle(action, d)
            out.append({"where": tc.where, **d.to_dict(), "approval_id": approval.id if approval else None})
        return out

    @staticmethod
    def _prompt(messages: list[Any]) -> str:
        for i in range(len(messages) - 1, -1, -1):
            m = messages[i]
            if isinstance(m, dict) and m.get("role") == "user":
                segs, _ = message_texts(m, f"messages[{i}]", allow_media=True)
                return "\n".join(s.text for s in segs if ".content" in s.where)
        return ""

    def _marker(self, stage: str, verdict: str, dout, tools: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        blocked_tools = [d for d in tools if d["verdict"] != "ALLOW"]
        pending = [d["approval_id"] for d in blocked_tools if d.get("approval_id")]
        return {"blocked": True, "stage": stage, "verdict": verdict, **({"approvals": pending} if pending else {}),
                "hazards": dout.hazards if dout is not None else [],
                "rule_ids": (dout.rule_ids if dout is not None and dout.verdict != "ALLOW" else []) +
                [r for d in blocked_tools for r in d["rule_ids"]], **extra}

    @staticmethod
    def _safe_text(dout, tools: list[dict[str, Any]]) -> str:
        if dout is not None and dout.verdict != "ALLOW" and dout.safe_completion:
            return dout.safe_completion
        reasons = "; ".join(r for d in tools if d["verdict"] != "ALLOW" for r in d["reasons"][:1])
        return ("I was about to take an action that this deployment's policy does not allow, so I stopped. " + reasons).strip()

    # -- the endpoint --
    async def handle(self, body: dict[str, Any], ctx: CallContext) -> Response:
        messages = body["messages"]
        record: dict[str, Any] = {"request": {"model": body.get("model"), "messages": messages, "stream": bool(body.get("stream"))},
                                  "session_id": ctx.session_id}
        try:
            segs = request_segments(body, roles=self.spec.input_roles, allow_media=self.spec.allow_media)
        except Unverifiable as e:
            record["outcome"] = {"blocked": True, "stage": "input", "verdict": "BLOCK", "rule_ids": ["proxy.input_unverifiable"],
                                 "reason": str(e)}
            await self._audit(record, ctx, "BLOCK")
            self.on_decision("proxy_input", "BLOCK")
            return oai_error(400, f"the guard cannot check this request: {e}", "unsupported_content", param=e.where)
        prompt = self._prompt(messages)
        din = await self.checks.check_input([s.text for s in segs], [s.where for s in segs])
        record["input"] = din.to_dict()
        if din.verdict != "ALLOW":
            marker = {"blocked": True, "stage": "input", "verdict": din.verdict, "hazards": din.hazards,
                      "rule_ids": din.rule_ids, "where": din.where}
            marker["audit_id"] = await self._audit({**record, "outcome": marker}, ctx, din.verdict)
            self.on_decision("proxy_input", din.verdict)
            text = din.safe_completion or ""
            if body.get("stream"):
                st = StreamState(0)
                return StreamingResponse(_iter([*st.block(text, marker), "data: [DONE]\n\n"]), media_type="text/event-stream")
            return JSONResponse(blocked_completion(body.get("model"), text, marker))
        if self.upstream is None:
            return oai_error(503, "no upstream model is configured for this guard", "no_upstream")
        fwd = dict(body)
        if self.upstream.model:
            fwd["model"] = self.upstream.model
        req = self.client().build_request("POST", self.upstream.base_url.rstrip("/") + "/chat/completions", json=fwd,
                                          headers=self._headers(), timeout=self.upstream.timeout_s)
        try:
            r = await self.client().send(req, stream=True)
        except httpx.HTTPError as e:
            return oai_error(502, f"upstream unreachable: {type(e).__name__}", "upstream_unreachable")
        if body.get("stream"):
            return await self._stream(r, prompt, record, ctx)
        try:
            raw = await _read_capped(r, self.spec.max_response_bytes)
        except (httpx.HTTPError, Unverifiable) as e:
            return oai_error(502, f"upstream answer unusable: {e}", "upstream_error")
        if r.status_code != 200:
            record["outcome"] = {"blocked": False, "upstream_status": r.status_code}
            await self._audit(record, ctx, "ERROR")
            return _upstream_error(r.status_code, raw, r.headers)
        try:
            data = json.loads(raw)
            choices = response_choices(data, allow_media=self.spec.allow_media)
        except (ValueError, RecursionError) as e:
            kind = "upstream_unverifiable" if isinstance(e, Unverifiable) else "upstream_malformed"
            record["outcome"] = {"blocked": True, "stage": "output", "verdict": "BLOCK", "rule_ids": [f"proxy.{kind}"],
                                 "reason": str(e)[:300]}
            await self._audit(record, ctx, "BLOCK")
            self.on_decision("proxy_output", "BLOCK")
            msg = f"the guard cannot check the upstream answer: {e}" if kind == "upstream_unverifiable" else "upstream returned malformed JSON"
            return oai_error(502, msg, kind)
        return await self._finish_json(data, choices, prompt, record, ctx)

    async def _finish_json(self, data: dict[str, Any], choices, prompt: str, record: dict[str, Any], ctx: CallContext) -> Response:
        texts = [s.text for ch in choices for s in ch.segments]
        labels = [s.where for ch in choices for s in ch.segments]
        dout = await self.checks.check_output(prompt, texts, labels) if texts else None
        tools = await self._tool_decisions([tc for ch in choices for tc in ch.tool_calls], ctx)
        record.update({"upstream_id": data.get("id"), "response": {"choices": data["choices"]},
                       "output": dout.to_dict() if dout else None, "tool_calls": tools})
        out = sanitized_response(data)
        blocked: set[int] = set()
        if dout is not None and dout.verdict != "ALLOW":
            hit = {i for i in range(len(choices)) if any(w.startswith(f"choices[{i}]") for w in dout.where)}
            blocked |= hit or set(range(len(choices)))
        blocked |= {i for i in range(len(choices)) for d in tools if d["verdict"] != "ALLOW" and d["where"].startswith(f"choices[{i}]")}
        verdict = _verdict(([dout.verdict] if dout else []) + [d["verdict"] for d in tools])
        if blocked:
            stage = "output" if dout is not None and dout.verdict != "ALLOW" else "tool_calls"
            marker = self._marker(stage, verdict, dout, tools, choices_blocked=sorted(blocked))
            safe = self._safe_text(dout, tools)
            for i in blocked:
                out["choices"][i] = {"index": out["choices"][i].get("index", i), "message": {"role": "assistant", "content": safe},
                                     "finish_reason": "content_filter", "logprobs": None}
            marker["audit_id"] = await self._audit({**record, "outcome": marker}, ctx, verdict)
            self.on_decision("proxy_output", verdict)
            out["airisk_guard"] = marker
            return JSONResponse(out)
        rid = await self._audit({**record, "outcome": {"blocked": False}}, ctx, "ALLOW")
        self.on_decision("proxy_output", "ALLOW")
        out["airisk_guard"] = {"blocked": False, "audit_id": rid}
        return JSONResponse(out)

    async def _stream(self, r: httpx.Response, prompt: str, record: dict[str, Any], ctx: CallContext) -> Response:
        if r.status_code != 200:
            try:
                raw = await _read_capped(r, 100_000)
            except (httpx.HTTPError, Unverifiable):
                raw = b""
            record["outcome"] = {"blocked": False, "upstream_status": r.status_code}
            await self._audit(record, ctx, "ERROR")
            return _upstream_error(r.status_code, raw, r.headers)
        if "text/event-stream" not in r.headers.get("content-type", ""):
            await r.aclose()
            return oai_error(502, "asked the upstream for a stream but it answered "
                                  f"{r.headers.get('content-type', 'without a content type')}", "upstream_unverifiable")
        return StreamingResponse(self._relay(r, prompt, record, ctx), media_type="text/event-stream",
                                 headers={"cache-control": "no-cache", "x-accel-buffering": "no"})

    async def _relay(self, r: httpx.Response, prompt: str, record: dict[str, Any], ctx: CallContext) -> AsyncIterator[str]:
        st = StreamState(self.spec.max_response_bytes)
        window = self.spec.stream_window_chars
        checks: list[dict[str, Any]] = []
        verdict, outcome = "ALLOW", {"blocked": False}
        try:
            try:
                async for ev in sse_events(r):
                    if ev is None:
                        break
                    if isinstance(ev, dict) and "error" in ev:
                        raise _UpstreamStreamError(ev["error"])
                    st.absorb(ev)
                    if st.pending() >= window:
                        texts, labels = st.window(window)
                        d = await self.checks.check_output(prompt, texts, labels)
                        checks.append({"verdict": d.verdict, "rule_ids": d.rule_ids, "chars": sum(map(len, texts))})
                        if d.verdict != "ALLOW":
                            verdict, outcome = d.verdict, self._marker("output", d.verdict, d, [], released_chars=st.released_chars())
                            for ev_out in st.block(self._safe_text(d, []), outcome):
                                yield ev_out
                            yield "data: [DONE]\n\n"
                            record["output"] = d.to_dict()
                            return
                        for ev_out in st.release():
                            yield ev_out
                texts, labels, calls = st.whole()
                dout = await self.checks.check_output(prompt, texts, labels) if texts else None
                tools = await self._tool_decisions(calls, ctx)
                record.update({"output": dout.to_dict() if dout else None, "tool_calls": tools})
                verdict = _verdict(([dout.verdict] if dout else []) + [d["verdict"] for d in tools])
                if verdict != "ALLOW":
                    stage = "output" if dout is not None and dout.verdict != "ALLOW" else "tool_calls"
                    outcome = self._marker(stage, verdict, dout, tools, released_chars=st.released_chars())
                    events = st.block(self._safe_text(dout, tools), outcome)
                else:
                    events = st.finish()
                for ev_out in events:
                    yield ev_out
                yield "data: [DONE]\n\n"
            except Unverifiable as e:
                verdict = "BLOCK"
                outcome = {"blocked": True, "stage": "output", "verdict": "BLOCK", "rule_ids": ["proxy.upstream_unverifiable"],
                           "reason": str(e)[:300], "released_chars": st.released_chars()}
                for ev_out in st.block(_unverifiable_text(), outcome):
                    yield ev_out
                yield "data: [DONE]\n\n"
            except (_UpstreamStreamError, httpx.HTTPError, ValueError, RecursionError) as e:
                verdict = "ERROR"
                outcome = {"blocked": False, "error": str(e)[:300], "released_chars": st.released_chars()}
                err = {"error": {"message": f"upstream stream failed: {str(e)[:300]}", "type": "api_error",
                                 "param": None, "code": "upstream_error"}}
                yield f"data: {json.dumps(err)}\n\n"
        finally:
            await r.aclose()
            record.update({"response": {str(c.index): c.fields for c in st.choices.values()}, "window_checks": checks})
            if outcome.get("blocked"):
                outcome = {**outcome}
            try:
                rid = await self._audit({**record, "outcome": outcome}, ctx, verdict)
                outcome["audit_id"] = rid
            except Exception:  # the client is gone or the log failed; nothing left to tell the client
                pass
            self.on_decision("proxy_stream", verdict)


class _UpstreamStreamError(Exception):
    pass


def _unverifiable_text() -> str:
    return ("I can't show this answer: it came back in a form this deployment's safety checks cannot read, "
            "so it was withheld.")


async def _iter(items: list[str]) -> AsyncIterator[str]:
    for it in items:
        yield it


async def _read_capped(r: httpx.Response, cap: int) -> bytes:
    buf = bytearray()
    try:
        async for piece in r.aiter_bytes():
            buf += piece
            if len(buf) > cap:
                raise Unverifiable("<response>", f"upstream answer larger than {cap} bytes")
    finally:
        await r.aclose()
    return bytes(buf)


def blocked_completion(model: str | None, text: str, marker: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"chatcmpl-guard-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
            "model": model or "airisk-guard",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "content_filter", "logprobs": None}],
            "usage": {"prompt_tokens": 0, "completion_tokens": len(text.split()), "total_tokens": len(text.split())},
            "airisk_guard": marker}


__all__ = ["CallContext", "Proxy", "ProxySpec", "StreamState", "blocked_completion", "oai_error"]
