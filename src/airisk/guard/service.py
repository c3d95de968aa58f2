"""The guard as an HTTP service (FastAPI): action gate, content guard, audit, guarded chat proxy.

``create_app(config)`` builds the app (tests serve it under real uvicorn). Endpoints:

- ``POST /v1/guard/action``  -> gate decision for a proposed tool call;
- ``POST /v1/guard/content`` -> content decision for a prompt (input) or prompt+response (output);
- ``POST /v1/chat/completions`` -> OpenAI-compatible guarded proxy, streaming and not (see
  ``airisk.guard.proxy``): checks the whole conversation, forwards to the configured upstream,
  checks every choice and text-bearing field (and runs tool calls through the action gate), answers
  with a safe completion when blocked (``finish_reason="content_filter"`` and an ``airisk_guard``
  object), audits both;
- ``GET /v1/models`` -> the configured model list, or the upstream's;
- ``GET /v1/audit``, ``POST /v1/audit/verify`` (admin scope only), ``/healthz`` (liveness, says
  whether the models are warm), ``/readyz`` (503 until the models are loaded and warmed), ``/metrics``.

Auth: API keys (``Authorization: Bearer <key>`` or ``X-API-Key``) are configured as SHA-256
hashes mapped to a principal, roles and an admin flag, compared in constant time. Auth is required
unless the config explicitly sets ``require_auth: false`` (``--insecure-no-auth``). Request bodies
over ``max_body_bytes`` get 413 and JSON nested deeper than ``max_json_depth`` gets 400 before they
are parsed (the latter audited). Every error is in OpenAI's shape (``{"error": {...}}``). Gate and
content checks run on a bounded thread pool under deadlines (``airisk.guard.runtime``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml
from fastapi import Depends, FastAPI, HTTPException, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from airisk.errors import ConfigError
from airisk.guard.actions import Action
from airisk.guard.audit import AuditLog
from airisk.guard.content import ContentGuard, ContentPolicy, set_inference_threads
from airisk.guard.gate import ActionGate
from airisk.guard.proxy import CallContext, Proxy, ProxySpec, oai_error
from airisk.guard.runtime import Checks, audited
from airisk.guard.webhook import ApprovalWebhook, WebhookSpec


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


class ApprovalsSpec(BaseModel):
    """Human approval of REVIEW decisions (see airisk.guard.approvals)."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    url: str | None = None  # database URL; default: the audit database
    ttl_s: float = Field(900.0, gt=0, le=7 * 86400)  # a pending approval expires (= denied) after this
    max_wait_s: float = Field(60.0, ge=0, le=3600)  # longest a caller may wait for a decision (wait_s)
    # how long the chat proxy waits for a person on a REVIEWed tool call before it answers with the
    # pending approval (content_filter); 0 = answer at once. Bounded by max_wait_s.
    proxy_wait_s: float = Field(0.0, ge=0, le=3600)
    approver_role: str = "approver"  # keys with this role (or admin) may approve or deny
    webhook: WebhookSpec | None = None  # POST each new pending approval here (airisk.guard.webhook)


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
    max_json_depth: int = Field(64, ge=2, le=400)  # deeper request bodies get 400 before parsing
    check_workers: int = Field(4, ge=1, le=64)  # threads for gate/content checks (bounds runaway work)
    gate_deadline_s: float = Field(2.0, gt=0, le=600)  # a gate decision slower than this fails closed
    # "process": first-sight decisions are tried in a killable worker process first (see
    # airisk.guard.isolation), so even work that holds the GIL cannot stall the service;
    # "thread": the deadline alone (cheaper, but a C-level runaway still blocks the event loop)
    gate_isolation: Literal["process", "thread"] = "process"
    gate_memory_mb: int | None = Field(2048, ge=64)  # address-space cap of the trial worker
    content_deadline_s: float = Field(30.0, gt=0, le=600)  # likewise for a content check
    warm_up: bool = True  # load and exercise the models at start-up (/readyz is 503 until done)
    proxy: ProxySpec = Field(default_factory=ProxySpec)
    approvals: ApprovalsSpec = Field(default_factory=ApprovalsSpec)


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
    wait_s: float = Field(0.0, ge=0, le=3600, description="on REVIEW, wait this long for a human decision "
                                                            "(bounded by approvals.max_wait_s); 0 = answer at once")


class DecisionResponse(BaseModel):
    verdict: str
    rule_ids: list[str]
    reasons: list[str]
    latency_us: float
    tool: str | None = None
    policy: str | None = None
    audit_id: str | None = None
    approval_id: str | None = None  # set on REVIEW: a pending human approval
    approval_expires_at: str | None = None


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=2000)


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


class ChatRequest(BaseModel):
    """Only what the proxy itself relies on is validated here; the messages' shapes are read (and
    unknown ones refused) by ``airisk.guard.shapes``, everything else is forwarded as sent."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[dict[str, Any]] = Field(min_length=1, max_length=4096)
    stream: bool | None = False
    user: str | None = Field(None, max_length=200)


@dataclass
class Caller:
    principal: str | None
    roles: list[str]
    admin: bool


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


def json_depth(body: bytes) -> int:
    """Maximum nesting of ``[``/``{`` in a JSON text, strings skipped; linear time, no recursion."""
    import numpy as np

    bare = _JSON_STRING.sub(b"", body)
    brackets = bare.translate(None, delete=bytes(set(range(256)) - set(b"[]{}")))
    if not brackets:
        return 0
    steps = np.frombuffer(brackets, dtype=np.uint8)
    level = np.cumsum(np.where((steps == ord("[")) | (steps == ord("{")), 1, -1), dtype=np.int64)
    return int(level.max())


class BodyLimits:
    """ASGI middleware: 413 for bodies over the size limit (by Content-Length or while streaming),
    400 for JSON nested deeper than the depth limit (checked on the raw bytes before any parser
    recurses into it; reported through ``on_reject`` so the refusal is audited)."""

    def __init__(self, app, max_bytes: int, max_depth: int | None = None, on_reject=None):
        self.app, self.max_bytes, self.max_depth, self.on_reject = app, max_bytes, max_depth, on_reject

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return await self.app(scope, receive, send)
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    too_big = int(v) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    return await self._reject(send, 413, f"request body larger than {self.max_bytes} bytes",
                                              "request_too_large")
        chunks, seen = [], 0
        while True:  # the body is bounded by max_bytes, so reading it whole is safe
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            if msg["type"] == "http.request":
                body = msg.get("body", b"")
                seen += len(body)
                if seen > self.max_bytes:
                    return await self._reject(send, 413, f"request body larger than {self.max_bytes} bytes",
                                              "request_too_large")
                chunks.append(body)
                if not msg.get("more_body", False):
                    break
        whole = b"".join(chunks)
        if self.max_depth is not None and whole:
            depth = json_depth(whole)
            if depth > self.max_depth:
                reason = f"JSON nested {depth} levels deep (limit {self.max_depth})"
                if self.on_reject is not None:
                    await self.on_reject(scope, reason, len(whole))
                return await self._reject(send, 400, f"request refused: {reason}", "json_too_deep")
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send, status: int, message: str, code: str):
        kind = "invalid_request_error"
        body = json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


BodySizeLimit = BodyLimits  # the old name


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


def _session_id(request: Request, body_user: str | None, header: str) -> str | None:
    raw = request.headers.get(header)
    sid = raw if raw else body_user
    if sid is not None and len(sid) > 200:
        raise HTTPException(400, f"session id ({header} or user) longer than 200 characters")
    return sid


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
    approvals = None
    if cfg.approvals.enabled:
        from airisk.guard.approvals import ApprovalStore

        approvals = ApprovalStore(cfg.approvals.url or audit.url, ttl_s=cfg.approvals.ttl_s)
    webhook = None
    if approvals is not None and cfg.approvals.webhook is not None:
        async def webhook_failed(info: dict[str, Any]) -> None:
            await audited(audit.submit("approval", {"event": "webhook_failed", **info}, verdict="REVIEW"))

        webhook = ApprovalWebhook(cfg.approvals.webhook, on_failure=webhook_failed)
    trial = None
    if cfg.gate_isolation == "process":
        from airisk.guard.isolation import GateTrial

        trial = GateTrial(gate.policy, memory_mb=cfg.gate_memory_mb)
    checks = Checks(gate, content_guard, workers=cfg.check_workers, gate_deadline_s=cfg.gate_deadline_s,
                    content_deadline_s=cfg.content_deadline_s, trial=trial)
    if trial is not None:
        import weakref

        weakref.finalize(checks, trial.close)
    if cfg.warm_up:
        checks.start_warm_up()
    else:
        checks.ready.set()

    registry = CollectorRegistry()
    m_decisions = Counter("airisk_guard_decisions_total", "Guard decisions", ["endpoint", "verdict"], registry=registry)
    m_latency = Histogram("airisk_guard_request_seconds", "Guard request latency", ["endpoint"], registry=registry,
                          buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
    m_rules = Counter("airisk_guard_rule_hits_total", "Matched gate/content rules", ["rule"], registry=registry)
    m_auth = Counter("airisk_guard_auth_failures_total", "Rejected credentials", ["reason"], registry=registry)

    app = FastAPI(title="airisk guard", version="1", description=__doc__.split("\n\n")[0])
    app.state.gate, app.state.content, app.state.audit, app.state.config = gate, content_guard, audit, cfg
    app.state.checks, app.state.approvals, app.state.webhook = checks, approvals, webhook

    async def settle_review(action: Action, d, wait_s: float = 0.0):
        """A REVIEW becomes a pending human approval (or, if a person already approved exactly this
        action, an ALLOW that uses the approval up). Returns (decision, approval or None)."""
        if approvals is None or d.verdict != "REVIEW":
            return d, None
        from airisk.guard.actions import Decision
        from airisk.guard.approvals import action_key
        from airisk.guard.audit import redact

        key = action_key(action.principal, action.tool, action.arguments)
        granted = await run_in_threadpool(approvals.redeem, key)
        if granted is None:
            a = await run_in_threadpool(approvals.create, tool=action.tool, key=key, rule_ids=list(d.rule_ids),
                                        reasons=list(d.reasons), principal=action.principal, session_id=action.session_id,
                                        request=redact({"arguments": action.arguments, "role": action.role,
                                                        "context": action.context}))
            await audited(audit.submit("approval", {"event": "created", "approval": a.to_dict()},
                                       principal=action.principal, verdict="REVIEW"))
            if webhook is not None:
                webhook.notify(a.to_dict())  # background delivery; never waits for the receiver
            granted = await wait_for_decision(a, min(wait_s, cfg.approvals.max_wait_s), key)
            if granted is None:
                latest = await run_in_threadpool(approvals.get, a.id)
                if latest is not None and latest.status in ("denied", "expired"):
                    return Decision("BLOCK", [f"approval.{latest.status}"] + list(d.rule_ids),
                                    [f"a person {'denied' if latest.status == 'denied' else 'did not approve in time'}: "
                                     f"approval {a.id}"] + list(d.reasons), d.latency_us, d.tool, d.policy), latest
                return d, a
        await audited(audit.submit("approval", {"event": "redeemed", "approval": granted.to_dict()},
                                   principal=action.principal, verdict="ALLOW"))
        return Decision("ALLOW", ["approval.granted"], [f"approved by {granted.decided_by} (approval {granted.id}); "
                                                        "the gate had said: " + "; ".join(d.reasons[:2])],
                        d.latency_us, d.tool, d.policy), granted

    async def wait_for_decision(a, wait_s: float, key: str):
        """Poll (bounded) until a person decides; the approval redeemed if approved, else None."""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
            await expire_and_audit()
            cur = await run_in_threadpool(approvals.get, a.id)
            if cur is None or cur.status in ("denied", "expired"):
                return None
            if cur.status == "approved":
                return await run_in_threadpool(approvals.redeem, key)
        return None

    async def expire_and_audit() -> None:
        if approvals is None:
            return
        for a in await run_in_threadpool(approvals.expire_due):
            await audited(audit.submit("approval", {"event": "expired", "approval": a.to_dict()},
                                       principal=a.principal, verdict="BLOCK"))

    async def rejected(scope, reason: str, size: int) -> None:
        path = scope.get("path", "")
        await audited(audit.submit("rejected", {"path": _clean(path), "reason": reason, "bytes": size},
                                               verdict="BLOCK"))
        m_decisions.labels("rejected", "BLOCK").inc()

    app.add_middleware(BodyLimits, max_bytes=cfg.max_body_bytes, max_depth=cfg.max_json_depth, on_reject=rejected)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # never echoes the (possibly unencodable) input back; the OpenAI endpoints answer 400 as
        # OpenAI does, the guard's own endpoints keep 422
        errs = exc.errors()
        first = errs[0] if errs else {}
        loc = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        msg = _clean(f"{loc or 'body'}: {first.get('msg', 'invalid request')}")
        status = 400 if request.url.path in ("/v1/chat/completions",) else 422
        r = oai_error(status, msg, "invalid_request", param=_clean(loc) or None)
        return r

    auth_codes = {401: "invalid_api_key", 403: "permission_denied", 404: "not_found", 405: "method_not_allowed"}

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return oai_error(exc.status_code, str(exc.detail), getattr(exc, "code", None) or auth_codes.get(exc.status_code),
                         headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:  # no traceback ever reaches a client
        return oai_error(500, f"internal error ({type(exc).__name__}); the request was not processed", "internal_error")

    bearer = HTTPBearer(auto_error=False)
    header_key = APIKeyHeader(name="X-API-Key", auto_error=False)

    def caller(cred: HTTPAuthorizationCredentials | None = Depends(bearer), xkey: str | None = Depends(header_key)) -> Caller:
        if not cfg.require_auth:
            return Caller(None, [], True)
        key = cred.credentials if cred is not None else xkey
        if not key:
            m_auth.labels("missing").inc()
            raise _Http(401, "missing API key: send it as 'Authorization: Bearer <key>'", "missing_api_key",
                        headers={"WWW-Authenticate": "Bearer"})
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        found = None
        for stored, spec in keys:  # compare against every key so timing does not reveal which matched
            if hmac.compare_digest(stored, digest):
                found = spec
        if found is None:
            m_auth.labels("invalid").inc()
            raise _Http(401, "Incorrect API key provided.", "invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
        return Caller(found.principal, list(found.roles), found.admin)

    def admin(c: Caller = Depends(caller)) -> Caller:
        if not c.admin:
            m_auth.labels("not_admin").inc()
            raise _Http(403, "admin scope required", "permission_denied")
        return c

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """Liveness: the process serves requests. ``ready`` says whether the models are warm."""
        return {"status": "ok", "ready": checks.ready.is_set(), "policy": gate.policy.name}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Readiness: 200 once the models are loaded and a check has run end to end; 503 before."""
        if checks.ready.is_set():
            return JSONResponse({"status": "ready", "warm_up_s": None if checks.warm_s is None else round(checks.warm_s, 3),
                                 "policy": gate.policy.name})
        state = "failed" if checks.warm_error else "starting"
        return JSONResponse({"status": state, "reason": checks.warm_error}, status_code=503)

    @app.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/guard/action", response_model=DecisionResponse)
    async def guard_action(req: ActionRequest, c: Caller = Depends(caller)) -> DecisionResponse:
        t0 = time.perf_counter()
        if cfg.require_auth:
            if req.role is not None and req.role not in c.roles:  # a key cannot claim a role it was not given
                raise _Http(403, f"role '{req.role}' is not granted to this API key", "permission_denied")
            principal = c.principal
            role = req.role or (c.roles[0] if c.roles else None)
        else:
            principal, role = req.principal, req.role
        # sessions are namespaced per principal so one caller cannot spend another's budget
        req = req.model_copy(update={"arguments": _clean(req.arguments), "context": _clean(req.context),
                                     "tool": _clean(req.tool), "role": _clean(req.role), "session_id": _clean(req.session_id)})
        sid = f"{principal or '-'}:{req.session_id}" if req.session_id is not None else None
        action = Action(tool=req.tool, arguments=req.arguments, principal=principal, role=role,
                        session_id=sid, context=req.context)
        d = await checks.decide(action)
        d, approval = await settle_review(action, d, req.wait_s)
        rec = await audited(audit.submit("action", {"request": req.model_dump(exclude={"principal"}),
                                                    "decision": d.to_dict(),
                                                    "approval_id": approval.id if approval else None},
                                         principal=principal, verdict=d.verdict))
        m_decisions.labels("action", d.verdict).inc()
        for rule in set(d.rule_ids):
            m_rules.labels(rule).inc()
        m_latency.labels("action").observe(time.perf_counter() - t0)
        pending = approval if approval is not None and approval.status == "pending" else None
        return DecisionResponse(**d.to_dict(), audit_id=rec.record_id, approval_id=approval.id if approval else None,
                                approval_expires_at=pending.expires_at if pending else None)

    @app.post("/v1/guard/content", response_model=ContentResponse)
    async def guard_content(req: ContentRequest, c: Caller = Depends(caller)) -> ContentResponse:
        t0 = time.perf_counter()
        if req.response is None:
            d = await checks.check_input([req.prompt], ["prompt"])
        else:
            d = await checks.check_output(req.prompt, [req.response], ["response"])
        rec = await audited(audit.submit(f"content_{d.stage}", {"request": req.model_dump(), "decision": d.to_dict()},
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

    def approver(c: Caller = Depends(caller)) -> Caller:
        if approvals is None:
            raise _Http(404, "approvals are disabled in this guard's config", "not_found")
        if not (c.admin or cfg.approvals.approver_role in c.roles):
            m_auth.labels("not_approver").inc()
            raise _Http(403, f"the '{cfg.approvals.approver_role}' role (or admin) is required", "permission_denied")
        return c

    @app.get("/v1/approvals")
    async def approvals_list(status: str | None = Query(None, pattern="^(pending|approved|denied|expired)$"),
                             limit: int = Query(100, ge=1, le=1000), c: Caller = Depends(approver)) -> dict[str, Any]:
        await expire_and_audit()
        rows = await run_in_threadpool(approvals.list, status, limit)
        return {"approvals": [a.to_dict() for a in rows]}

    @app.get("/v1/approvals/{approval_id}")
    async def approvals_get(approval_id: str = PathParam(..., max_length=64), c: Caller = Depends(caller)) -> dict[str, Any]:
        """An approver, or the principal that asked, may read one approval (to poll for the decision)."""
        if approvals is None:
            raise _Http(404, "approvals are disabled in this guard's config", "not_found")
        await expire_and_audit()
        a = await run_in_threadpool(approvals.get, approval_id)
        if a is None or not (c.admin or cfg.approvals.approver_role in c.roles or
                             (c.principal is not None and c.principal == a.principal)):
            raise _Http(404, f"no approval '{_clean(approval_id)}'", "not_found")
        return a.to_dict()

    async def decide_approval(approval_id: str, approve: bool, body: DecisionBody | None, c: Caller) -> dict[str, Any]:
        from airisk.guard.approvals import ApprovalError

        await expire_and_audit()
        a = await run_in_threadpool(approvals.get, approval_id)
        if a is not None and c.principal is not None and a.principal == c.principal:
            raise _Http(403, "an approval cannot be decided by the principal that asked for it", "permission_denied")
        try:
            a = await run_in_threadpool(lambda: approvals.decide(approval_id, approve=approve, by=c.principal,
                                                                 note=_clean(body.note) if body else None))
        except ApprovalError as e:
            raise _Http(e.status, _clean(str(e)), "not_found" if e.status == 404 else "conflict") from None
        rec = await audited(audit.submit("approval", {"event": a.status, "approval": a.to_dict()},
                                         principal=c.principal, verdict="ALLOW" if approve else "BLOCK"))
        return {**a.to_dict(), "audit_id": rec.record_id}

    @app.post("/v1/approvals/{approval_id}/approve")
    async def approvals_approve(approval_id: str = PathParam(..., max_length=64), body: DecisionBody | None = None,
                                c: Caller = Depends(approver)) -> dict[str, Any]:
        return await decide_approval(approval_id, True, body, c)

    @app.post("/v1/approvals/{approval_id}/deny")
    async def approvals_deny(approval_id: str = PathParam(..., max_length=64), body: DecisionBody | None = None,
                             c: Caller = Depends(approver)) -> dict[str, Any]:
        return await decide_approval(approval_id, False, body, c)

    client_holder: dict[str, httpx.AsyncClient] = {}

    def upstream_client() -> httpx.AsyncClient:
        if http_client is not None:
            return http_client
        if "c" not in client_holder:
            client_holder["c"] = httpx.AsyncClient(timeout=cfg.upstream.timeout_s if cfg.upstream else 60.0)
        return client_holder["c"]

    proxy = Proxy(upstream=cfg.upstream, spec=cfg.proxy, checks=checks, audit=audit, client=upstream_client,
                  check_tool_calls=cfg.check_tool_calls, clean=_clean,
                  settle=lambda action, d: settle_review(action, d, cfg.approvals.proxy_wait_s),
                  on_decision=lambda endpoint, verdict: m_decisions.labels(endpoint, verdict).inc())

    @app.get("/v1/models")
    async def models(c: Caller = Depends(caller)) -> Any:
        """The configured model list, else the upstream's (so clients that list models first work)."""
        if cfg.proxy.models is not None:
            return {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "airisk-guard"}
                                               for m in cfg.proxy.models]}
        if cfg.upstream is None:
            return {"object": "list", "data": []}
        try:
            r = await upstream_client().get(cfg.upstream.base_url.rstrip("/") + "/models", headers=proxy._headers(),
                                            timeout=cfg.upstream.timeout_s)
            data = r.json() if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError, RecursionError) as e:
            return oai_error(502, f"upstream model list unavailable: {type(e).__name__}", "upstream_unreachable")
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            return oai_error(502, f"upstream model list unavailable (HTTP {r.status_code})", "upstream_error")
        keep = ("id", "object", "created", "owned_by")  # only metadata: nothing free-form passes unchecked
        return {"object": "list", "data": [{k: m[k] for k in keep if k in m} for m in data["data"]
                                           if isinstance(m, dict) and isinstance(m.get("id"), str)]}

    @app.post("/v1/chat/completions")
    async def chat_completions(req: ChatRequest, request: Request, c: Caller = Depends(caller)) -> Any:
        t0 = time.perf_counter()
        body = _clean(req.model_dump(exclude_none=True))
        raw_sid = _clean(_session_id(request, req.user, cfg.proxy.session_header))
        sid = f"{c.principal or '-'}:{raw_sid}" if raw_sid is not None else None
        ctx = CallContext(c.principal, c.roles[0] if c.roles else None, sid)
        resp = await proxy.handle(body, ctx)
        m_latency.labels("proxy").observe(time.perf_counter() - t0)
        return resp

    return app


class _Http(HTTPException):
    """An HTTPException with an OpenAI error code."""

    def __init__(self, status: int, message: str, code: str, headers: dict[str, str] | None = None):
        super().__init__(status, message, headers=headers)
        self.code = code
