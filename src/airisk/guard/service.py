"""The guard as an HTTP service (FastAPI): action gate, content guard, audit, guarded chat proxy.

``create_app(config)`` builds the app (tests serve it under real uvicorn). Endpoints:

- ``POST /v1/guard/action``  -> gate decision for a proposed tool call;
- ``POST /v1/guard/content`` -> content decision for a prompt (input) or prompt+response (output);
- ``POST /v1/chat/completions`` -> OpenAI-compatible guarded proxy: checks the input, forwards to
  the configured upstream, checks the output (and runs any tool calls through the action gate),
  answers with a safe completion when blocked (``finish_reason="content_filter"`` and an
  ``airisk_guard`` object), audits both. Streaming is refused with 400 (documented choice: the
  output must be checked as a whole before any of it reaches the client).
- ``GET /v1/audit``, ``POST /v1/audit/verify`` (admin scope only), ``/healthz``, ``/metrics``.

Auth: API keys (``Authorization: Bearer <key>`` or ``X-API-Key``) are configured as SHA-256
hashes mapped to a principal, roles and an admin flag, compared in constant time. Auth is required
unless the config explicitly sets ``require_auth: false`` (``--insecure-no-auth``). Request bodies
over ``max_body_bytes`` get 413 before they are parsed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from airisk.errors import ConfigError
from airisk.guard.actions import Action
from airisk.guard.audit import AuditLog
from airisk.guard.content import ContentGuard, ContentPolicy, set_inference_threads
from airisk.guard.gate import ActionGate


# --- configuration ---------------------------------------------------------------------------

class ApiKeySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")  # hex SHA-256 of the key; the key itself is never stored
    principal: str
    roles: list[str] = Field(default_factory=list)
    admin: bool = False


class UpstreamSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base_url: str  # e.g. http://127.0.0.1:8011/v1
    api_key_env: str | None = None  # environment variable holding the upstream key
    model: str | None = None  # force this model name upstream
    timeout_s: float = 60.0


class ServiceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy: str | dict[str, Any] = "builtin:default"
    audit_url: str | None = None
    api_keys: list[ApiKeySpec] = Field(default_factory=list)
    require_auth: bool = True
    max_body_bytes: int = Field(1_000_000, gt=0)
    upstream: UpstreamSpec | None = None
    content: ContentPolicy | None = None  # overrides the policy's content: section
    check_tool_calls: bool = True
    torch_threads: int | None = 1  # content-model inference threads (see content.set_inference_threads)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def load_service_config(path: str | Path) -> ServiceConfig:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"guard service config not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ConfigError(f"{p}{':' + str(mark.line + 1) if mark else ''}: invalid YAML") from None
    try:
        return ServiceConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        raise ConfigError(f"{p}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None


# --- request / response models ----------------------------------------------------------------

class ActionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tool: str = Field(min_length=1, max_length=200)
    arguments: dict[str, Any] = Field(default_factory=dict)
    role: str | None = Field(None, max_length=200)
    session_id: str | None = Field(None, max_length=200)
    context: dict[str, Any] = Field(default_factory=dict)
    principal: str | None = Field(None, max_length=200, description="honoured only when auth is disabled")


class DecisionResponse(BaseModel):
    verdict: str
    rule_ids: list[str]
    reasons: list[str]
    latency_us: float
    tool: str | None = None
    policy: str | None = None
    audit_id: str | None = None


class ContentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field("", max_length=200_000)
    response: str | None = Field(None, max_length=400_000, description="set to check a response (output stage)")


class ContentResponse(BaseModel):
    verdict: str
    stage: str
    hazards: list[str]
    scores: dict[str, float]
    harm: float | None
    rule_ids: list[str]
    reasons: list[str]
    safe_completion: str | None
    escalated: bool
    normalized: bool
    hidden_text: bool
    latency_ms: float
    audit_id: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = False


@dataclass
class Caller:
    principal: str | None
    roles: list[str]
    admin: bool


class BodySizeLimit:
    """ASGI middleware: 413 for bodies over the limit (by Content-Length or while streaming)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    too_big = int(v) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    return await self._reject(send)
        seen = 0
        started = rejected = False

        async def limited_receive():
            nonlocal seen, rejected
            if rejected:
                return {"type": "http.disconnect"}
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    # answer 413 ourselves, then tell the app the client went away
                    rejected = True
                    if not started:
                        await self._reject(send)
                    return {"type": "http.disconnect"}
            return msg

        async def guarded_send(msg):
            nonlocal started
            if rejected:
                return  # the 413 has been sent; drop whatever the app tries to say
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not rejected:
                raise

    async def _reject(self, send):
        body = json.dumps({"detail": f"request body larger than {self.max_bytes} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _clean(obj: Any) -> Any:
    """Replace lone surrogates (valid in JSON escapes, not encodable as UTF-8) by U+FFFD and
    non-finite floats (Python's json accepts NaN/Infinity) by strings, deeply."""
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
            return obj
        except UnicodeEncodeError:
            return obj.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if isinstance(obj, dict):
        return {_clean(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)  # NaN/Infinity are not JSON: keep them visible as text
    return obj


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, list):
                return " ".join(str(p.get("text", "")) for p in c if isinstance(p, dict))
            return c if isinstance(c, str) else ""
    return ""


def create_app(config: ServiceConfig | dict | None = None, *, gate: ActionGate | None = None,
               content_guard: ContentGuard | None = None, audit: AuditLog | None = None,
               http_client: httpx.AsyncClient | None = None) -> FastAPI:
    cfg = config if isinstance(config, ServiceConfig) else ServiceConfig.model_validate(config or {})
    if cfg.require_auth and not cfg.api_keys:
        raise ConfigError("guard service: auth is required but no api_keys are configured "
                          "(add api_keys, or run with --insecure-no-auth for local development)")
    gate = gate or ActionGate.from_policy(cfg.policy)
    content_policy = cfg.content or ContentPolicy.model_validate(gate.policy.content or {})
    if content_guard is None:
        set_inference_threads(cfg.torch_threads)
        content_guard = ContentGuard(policy=content_policy)
    audit = audit or AuditLog(cfg.audit_url, redact_content=content_guard.policy.redact_content)
    keys = [(bytes.fromhex(k.key_sha256), k) for k in cfg.api_keys]

    registry = CollectorRegistry()
    m_decisions = Counter("airisk_guard_decisions_total", "Guard decisions", ["endpoint", "verdict"], registry=registry)
    m_latency = Histogram("airisk_guard_request_seconds", "Guard request latency", ["endpoint"], registry=registry,
                          buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
    m_rules = Counter("airisk_guard_rule_hits_total", "Matched gate/content rules", ["rule"], registry=registry)
    m_auth = Counter("airisk_guard_auth_failures_total", "Rejected credentials", ["reason"], registry=registry)

    app = FastAPI(title="airisk guard", version="1", description=__doc__.split("\n\n")[0])
    app.state.gate, app.state.content, app.state.audit, app.state.config = gate, content_guard, audit, cfg
    app.add_middleware(BodySizeLimit, max_bytes=cfg.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # like FastAPI's default 422, but never echoes the (possibly unencodable) input back
        errors = [{"loc": list(e.get("loc", ())), "msg": _clean(str(e.get("msg", ""))), "type": e.get("type")}
                  for e in exc.errors()]
        return JSONResponse({"detail": _clean(errors)}, status_code=422)

    bearer = HTTPBearer(auto_error=False)
    header_key = APIKeyHeader(name="X-API-Key", auto_error=False)

    def caller(cred: HTTPAuthorizationCredentials | None = Depends(bearer), xkey: str | None = Depends(header_key)) -> Caller:
        if not cfg.require_auth:
            return Caller(None, [], True)
        key = cred.credentials if cred is not None else xkey
        if not key:
            m_auth.labels("missing").inc()
            raise HTTPException(401, "missing API key", headers={"WWW-Authenticate": "Bearer"})
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        found = None
        for stored, spec in keys:  # compare against every key so timing does not reveal which matched
            if hmac.compare_digest(stored, digest):
                found = spec
        if found is None:
            m_auth.labels("invalid").inc()
            raise HTTPException(401, "invalid API key", headers={"WWW-Authenticate": "Bearer"})
        return Caller(found.principal, list(found.roles), found.admin)

    def admin(c: Caller = Depends(caller)) -> Caller:
        if not c.admin:
            m_auth.labels("not_admin").inc()
            raise HTTPException(403, "admin scope required")
        return c

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "policy": gate.policy.name}

    @app.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/guard/action", response_model=DecisionResponse)
    async def guard_action(req: ActionRequest, c: Caller = Depends(caller)) -> DecisionResponse:
        t0 = time.perf_counter()
        if cfg.require_auth:
            if req.role is not None and req.role not in c.roles:  # a key cannot claim a role it was not given
                raise HTTPException(403, f"role '{req.role}' is not granted to this API key")
            principal = c.principal
            role = req.role or (c.roles[0] if c.roles else None)
        else:
            principal, role = req.principal, req.role
        # sessions are namespaced per principal so one caller cannot spend another's budget
        req = req.model_copy(update={"arguments": _clean(req.arguments), "context": _clean(req.context),
                                     "tool": _clean(req.tool), "role": _clean(req.role), "session_id": _clean(req.session_id)})
        sid = f"{principal or '-'}:{req.session_id}" if req.session_id is not None else None
        d = gate.decide(Action(tool=req.tool, arguments=req.arguments, principal=principal, role=role,
                               session_id=sid, context=req.context))
        rec = await asyncio.wrap_future(audit.submit("action", {"request": req.model_dump(exclude={"principal"}),
                                                               "decision": d.to_dict()},
                                      principal=principal, verdict=d.verdict))
        m_decisions.labels("action", d.verdict).inc()
        for rule in set(d.rule_ids):
            m_rules.labels(rule).inc()
        m_latency.labels("action").observe(time.perf_counter() - t0)
        return DecisionResponse(**d.to_dict(), audit_id=rec.record_id)

    @app.post("/v1/guard/content", response_model=ContentResponse)
    async def guard_content(req: ContentRequest, c: Caller = Depends(caller)) -> ContentResponse:
        t0 = time.perf_counter()
        if req.response is None:
            d = await content_guard.acheck_input(req.prompt)
        else:
            d = await content_guard.acheck_output(req.prompt, req.response)
        rec = await asyncio.wrap_future(audit.submit(f"content_{d.stage}", {"request": req.model_dump(), "decision": d.to_dict()},
                                      principal=c.principal, verdict=d.verdict))
        m_decisions.labels("content", d.verdict).inc()
        m_latency.labels("content").observe(time.perf_counter() - t0)
        return ContentResponse(**d.to_dict(), audit_id=rec.record_id)

    @app.get("/v1/audit")
    async def audit_query(limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=2**53),
                          kind: str | None = Query(None, max_length=40), verdict: str | None = Query(None, max_length=16),
                          principal: str | None = Query(None, max_length=200), c: Caller = Depends(admin)) -> dict[str, Any]:
        rows = await run_in_threadpool(audit.query, limit=limit, offset=offset, kind=_clean(kind), verdict=_clean(verdict),
                                       principal=_clean(principal))
        return {"records": rows, "limit": limit, "offset": offset}

    @app.post("/v1/audit/verify")
    async def audit_verify(c: Caller = Depends(admin)) -> dict[str, Any]:
        return (await run_in_threadpool(audit.verify)).to_dict()

    client_holder: dict[str, httpx.AsyncClient] = {}

    def upstream_client() -> httpx.AsyncClient:
        if http_client is not None:
            return http_client
        if "c" not in client_holder:
            client_holder["c"] = httpx.AsyncClient(timeout=cfg.upstream.timeout_s if cfg.upstream else 60.0)
        return client_holder["c"]

    def blocked_completion(model: str | None, text: str, marker: dict[str, Any]) -> dict[str, Any]:
        return {"id": f"chatcmpl-guard-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
                "model": model or "airisk-guard",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "content_filter", "logprobs": None}],
                "usage": {"prompt_tokens": 0, "completion_tokens": len(text.split()), "total_tokens": len(text.split())},
                "airisk_guard": marker}

    def oai_error(status: int, message: str, code: str) -> JSONResponse:
        return JSONResponse({"error": {"message": message, "type": "invalid_request_error" if status < 500 else "upstream_error",
                                       "code": code}}, status_code=status)

    @app.post("/v1/chat/completions")
    async def chat_completions(req: ChatRequest, c: Caller = Depends(caller)) -> Any:
        t0 = time.perf_counter()
        if req.stream:
            return oai_error(400, "streaming is not supported by the airisk guard proxy: the whole response is checked "
                                  "before it is returned; send stream=false", "stream_unsupported")
        messages = _clean([m.model_dump(exclude_none=True) for m in req.messages])
        prompt = _last_user_text(messages)
        din = await content_guard.acheck_input(prompt)
        record: dict[str, Any] = {"request": {"model": req.model, "messages": messages}, "input": din.to_dict()}
        if din.verdict != "ALLOW":
            marker = {"blocked": True, "stage": "input", "verdict": din.verdict, "hazards": din.hazards, "rule_ids": din.rule_ids}
            rec = await asyncio.wrap_future(audit.submit("proxy", {**record, "outcome": marker}, principal=c.principal,
                                          verdict=din.verdict))
            m_decisions.labels("proxy_input", din.verdict).inc()
            marker["audit_id"] = rec.record_id
            return blocked_completion(req.model, din.safe_completion or "", marker)
        if cfg.upstream is None:
            return oai_error(503, "no upstream model is configured for this guard", "no_upstream")
        body = _clean(req.model_dump(exclude_none=True))
        if cfg.upstream.model:
            body["model"] = cfg.upstream.model
        headers = {}
        if cfg.upstream.api_key_env and os.environ.get(cfg.upstream.api_key_env):
            headers["Authorization"] = f"Bearer {os.environ[cfg.upstream.api_key_env]}"
        try:
            r = await upstream_client().post(cfg.upstream.base_url.rstrip("/") + "/chat/completions", json=body,
                                             headers=headers, timeout=cfg.upstream.timeout_s)
        except httpx.HTTPError as e:
            return oai_error(502, f"upstream unreachable: {type(e).__name__}", "upstream_unreachable")
        if r.status_code >= 500:
            return oai_error(502, f"upstream returned HTTP {r.status_code}", "upstream_error")
        try:
            data = r.json()
        except ValueError:
            return oai_error(502, "upstream returned malformed JSON", "upstream_malformed")
        if r.status_code != 200:
            return JSONResponse(data, status_code=r.status_code)
        try:
            msg = data["choices"][0]["message"]
        except (KeyError, IndexError, TypeError):
            return oai_error(502, "upstream response has no choices[0].message", "upstream_malformed")
        text = msg.get("content") if isinstance(msg.get("content"), str) else ""
        dout = await content_guard.acheck_output(prompt, text) if text else None
        tool_decisions = []
        if cfg.check_tool_calls and msg.get("tool_calls"):
            for tc in msg["tool_calls"]:
                fn = (tc or {}).get("function") or {}
                try:
                    args = json.loads(fn.get("arguments") or "{}")
                except (TypeError, ValueError):
                    args = None
                if not isinstance(args, dict):
                    tool_decisions.append({"tool": fn.get("name"), "verdict": "BLOCK", "rule_ids": ["args.invalid"],
                                           "reasons": ["tool call arguments are not a JSON object"]})
                    continue
                role = c.roles[0] if c.roles else None
                d = gate.decide(Action(tool=str(fn.get("name") or ""), arguments=args, principal=c.principal, role=role))
                tool_decisions.append(d.to_dict())
        record.update({"upstream_id": data.get("id"), "response": text, "output": dout.to_dict() if dout else None,
                       "tool_calls": tool_decisions})
        blocked_tools = [d for d in tool_decisions if d["verdict"] != "ALLOW"]
        if (dout and dout.verdict != "ALLOW") or blocked_tools:
            verdict = "BLOCK" if (dout and dout.verdict == "BLOCK") or any(d["verdict"] == "BLOCK" for d in blocked_tools) else "REVIEW"
            marker = {"blocked": True, "stage": "output" if dout and dout.verdict != "ALLOW" else "tool_calls", "verdict": verdict,
                      "hazards": dout.hazards if dout else [], "rule_ids": (dout.rule_ids if dout else []) +
                      [r for d in blocked_tools for r in d["rule_ids"]]}
            safe = (dout.safe_completion if dout and dout.verdict != "ALLOW" else None) or \
                "I was about to take an action that this deployment's policy does not allow, so I stopped. " + \
                "; ".join(r for d in blocked_tools for r in d["reasons"][:1])
            rec = await asyncio.wrap_future(audit.submit("proxy", {**record, "outcome": marker}, principal=c.principal, verdict=verdict))
            m_decisions.labels("proxy_output", verdict).inc()
            marker["audit_id"] = rec.record_id
            m_latency.labels("proxy").observe(time.perf_counter() - t0)
            return blocked_completion(data.get("model"), safe, marker)
        rec = await asyncio.wrap_future(audit.submit("proxy", {**record, "outcome": {"blocked": False}}, principal=c.principal,
                                      verdict="ALLOW"))
        m_decisions.labels("proxy_output", "ALLOW").inc()
        m_latency.labels("proxy").observe(time.perf_counter() - t0)
        data["airisk_guard"] = {"blocked": False, "audit_id": rec.record_id}
        return data

    return app
