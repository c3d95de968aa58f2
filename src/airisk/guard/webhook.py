"""Tell people that an action waits for them: an optional webhook POSTed for each new pending approval.

Delivery never holds up the request that created the approval: ``notify`` starts a background task
and returns. Each delivery is one JSON POST with bounded retries (connection errors, timeouts, 429
and 5xx are retried with exponential backoff; other 4xx are final), at most ``max_in_flight``
deliveries at once (beyond that a notification is dropped, and the drop is audited like a failure).
With a secret (read from the environment variable ``secret_env``, never from the config file), the
body is signed: ``X-Airisk-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` with
``X-Airisk-Timestamp: <unix seconds>``; a receiver recomputes it (:func:`sign`) and rejects old
timestamps to stop replays.

Nothing secret leaves through the side doors: failures are reported (to the ``on_failure`` callback,
which the service writes to the audit chain, and to the log) with the approval id, the attempt count
and the error class or HTTP status only: never the URL (it may carry a token in its query), the
secret, or the receiver's answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import time
from typing import Any, Awaitable, Callable

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

log = logging.getLogger("airisk.guard.webhook")
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
SIGNATURE_HEADER, TIMESTAMP_HEADER = "X-Airisk-Signature", "X-Airisk-Timestamp"


class WebhookSpec(BaseModel):
    """``approvals.webhook:`` in the service config."""

    model_config = ConfigDict(extra="forbid")
    url: str  # http(s) URL that receives a POST per new pending approval
    secret_env: str | None = None  # environment variable holding the HMAC secret (signature header)
    timeout_s: float = Field(3.0, gt=0, le=60)  # per attempt
    max_attempts: int = Field(4, ge=1, le=10)
    backoff_s: float = Field(0.5, ge=0, le=60)  # first retry delay; doubles per attempt
    max_backoff_s: float = Field(10.0, ge=0, le=600)
    max_in_flight: int = Field(64, ge=1, le=10_000)  # deliveries pending at once; more are dropped (audited)

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("webhook url must start with http:// or https://")
        return v


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


FailureHook = Callable[[dict[str, Any]], Awaitable[None]]


class ApprovalWebhook:
    """Fire-and-forget, retried delivery of approval notifications (one instance per service)."""

    def __init__(self, spec: WebhookSpec, *, on_failure: FailureHook | None = None,
                 client: httpx.AsyncClient | None = None, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self.spec = spec
        secret = os.environ.get(spec.secret_env) if spec.secret_env else None
        if spec.secret_env and not secret:
            from airisk.errors import ConfigError

            raise ConfigError(f"approvals.webhook.secret_env: environment variable {spec.secret_env} is not set")
        self._secret = secret.encode() if secret else None
        self._client = client
        self._sleep = sleep
        self.on_failure = on_failure
        self._tasks: set[asyncio.Task] = set()
        self.delivered = 0  # counters for metrics and tests
        self.failed = 0

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        return self._client

    def notify(self, approval: dict[str, Any]) -> None:
        """Queue one notification (call from the event loop); returns at once."""
        if len(self._tasks) >= self.spec.max_in_flight:
            self._track(asyncio.ensure_future(self._fail(approval, 0, "dropped: too many deliveries in flight")))
            return
        self._track(asyncio.ensure_future(self._deliver(approval)))

    def _track(self, task: asyncio.Task) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def body(self, approval: dict[str, Any]) -> bytes:
        aid = approval.get("id")
        doc = {"event": "approval.created", "approval": approval,
               "links": {"self": f"/v1/approvals/{aid}", "approve": f"/v1/approvals/{aid}/approve",
                         "deny": f"/v1/approvals/{aid}/deny"}}
        return json.dumps(doc, default=str, ensure_ascii=False).encode("utf-8", "replace")

    def headers(self, body: bytes) -> dict[str, str]:
        h = {"Content-Type": "application/json", "User-Agent": "airisk-guard-webhook"}
        if self._secret is not None:
            ts = str(int(time.time()))
            h[TIMESTAMP_HEADER] = ts
            h[SIGNATURE_HEADER] = sign(self._secret, ts, body)
        return h

    async def _deliver(self, approval: dict[str, Any]) -> None:
        spec, body = self.spec, self.body(approval)
        why = "not attempted"
        for attempt in range(1, spec.max_attempts + 1):
            try:
                r = await self._http().post(spec.url, content=body, headers=self.headers(body), timeout=spec.timeout_s)
                if 200 <= r.status_code < 300:
                    self.delivered += 1
                    return
                why = f"HTTP {r.status_code}"
                if r.status_code not in RETRY_STATUSES:
                    break
            except httpx.HTTPError as e:
                why = type(e).__name__
            if attempt < spec.max_attempts:
                await self._sleep(min(spec.max_backoff_s, spec.backoff_s * 2 ** (attempt - 1)))
        await self._fail(approval, attempt, why)

    async def _fail(self, approval: dict[str, Any], attempts: int, why: str) -> None:
        self.failed += 1
        info = {"approval_id": approval.get("id"), "attempts": attempts, "error": why}
        log.warning("approval webhook failed: %s", info)
        if self.on_failure is not None:
            try:
                await self.on_failure(info)
            except Exception:  # noqa: BLE001 - the audit is gone too; the log line above remains
                log.exception("could not audit a webhook failure")

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Wait (bounded) for deliveries in flight, e.g. at shutdown or in tests."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    async def aclose(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._client is not None:
            await self._client.aclose()
