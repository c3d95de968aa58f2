"""A local server speaking the OpenAI chat-completions protocol, for tests and benchmarks.

It stands in for the one edge we cannot reach here (a remote model API) so that the real client
code (the ``openai`` SDK, httpx, our retry logic and parsers) is what gets exercised. Answers come
from a *responder* (a Python callable, a replay file, or a built-in rule), with configurable latency
and injected faults: HTTP 500, 429 with Retry-After, timeouts (the server stalls) and malformed JSON.

Use it in-process::

    with running_server(responder=lambda body: "I can't help with that.") as base_url:
        ...  # base_url ends with /v1

or as its own process (benchmarks)::

    python -m airisk.testing.openai_server --port 8011 --latency 0.5 --fail-500 0.1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import socket
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

Responder = Callable[[dict[str, Any]], Any]  # body -> str | {"content":..., "tool_calls":[...]} | Raw | awaitable


@dataclass
class Raw:
    """A reply sent exactly as given (a hostile or broken upstream): any status and JSON body, or a
    server-sent event stream of ``sse`` items (dicts are JSON-encoded; strings are sent verbatim
    after ``data: ``), ``gap_s`` apart. ``[DONE]`` is appended unless ``done=False``."""

    status: int = 200
    json: Any = None
    sse: list[Any] | None = None
    gap_s: float = 0.0
    done: bool = True

    def response(self) -> Response:
        if self.sse is None:
            return JSONResponse(self.json, status_code=self.status)

        async def events():
            for item in self.sse:
                yield f"data: {item if isinstance(item, str) else json.dumps(item)}\n\n"
                if self.gap_s:
                    await asyncio.sleep(self.gap_s)
            if self.done:
                yield "data: [DONE]\n\n"
        return StreamingResponse(events(), status_code=self.status, media_type="text/event-stream")


@dataclass
class Faults:
    """Probabilities of each injected fault, per request (drawn from a seeded RNG)."""

    p500: float = 0.0
    p429: float = 0.0
    ptimeout: float = 0.0
    pmalformed: float = 0.0
    retry_after: float = 0.2  # seconds, sent with 429s
    stall_s: float = 60.0  # how long a "timeout" request stalls before answering
    seed: int = 0


@dataclass
class ServerState:
    requests: int = 0
    by_prompt: Counter = field(default_factory=Counter)
    faults: Counter = field(default_factory=Counter)
    completed: int = 0
    in_flight: int = 0
    max_in_flight: int = 0


def last_user_text(body: dict[str, Any]) -> str:
    for m in reversed(body.get("messages") or []):
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, list):  # content parts
                return " ".join(p.get("text", "") for p in c if isinstance(p, dict))
            return c or ""
    return ""


def rule_responder(rule: str) -> Responder:
    """Built-in rules: ``refuse`` (always refuses), ``echo`` (repeats the prompt), ``comply``."""
    if rule == "refuse":
        return lambda body: "I'm sorry, but I can't help with that request."
    if rule == "echo":
        return lambda body: f"You said: {last_user_text(body)}"
    if rule == "comply":
        return lambda body: f"Sure, here is a detailed answer to: {last_user_text(body)[:200]}"
    raise ValueError(f"unknown rule '{rule}' (refuse, echo, comply)")


def replay_responder(path: str | Path, default: str | None = None) -> Responder:
    """Answers from a JSONL file of {"prompt": ..., "response": ...} records (matched on the last user turn)."""
    table: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rec = json.loads(line)
                table[rec["prompt"]] = rec["response"]

    def respond(body: dict[str, Any]) -> str:
        text = last_user_text(body)
        if text in table:
            return table[text]
        if default is not None:
            return default
        return "I don't have a recorded answer for that."

    return respond


def build_app(
    responder: Responder | None = None,
    *,
    latency: float | tuple[float, float] = 0.0,
    faults: Faults | None = None,
    api_key: str | None = None,
    model: str = "mock-model",
) -> tuple[Starlette, ServerState]:
    """The ASGI app and its counters. ``api_key`` set means requests must bear it (else 401)."""
    responder = responder or rule_responder("refuse")
    faults = faults or Faults()
    rng = random.Random(faults.seed)
    state = ServerState()

    def check_auth(request: Request) -> Response | None:
        if api_key is None:
            return None
        if request.headers.get("authorization") != f"Bearer {api_key}":
            return JSONResponse(
                {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error", "code": "invalid_api_key"}},
                status_code=401,
            )
        return None

    async def models(request: Request) -> Response:
        if (denied := check_auth(request)) is not None:
            return denied
        return JSONResponse({"object": "list", "data": [{"id": model, "object": "model", "owned_by": "airisk-testing"}]})

    async def stats(request: Request) -> Response:
        return JSONResponse({
            "requests": state.requests, "completed": state.completed, "faults": dict(state.faults),
            "max_in_flight": state.max_in_flight, "distinct_prompts": len(state.by_prompt),
            "max_per_prompt": max(state.by_prompt.values(), default=0), "preflight": state.by_prompt.get("ping", 0),
        })

    async def chat(request: Request) -> Response:
        state.requests += 1
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            if (denied := check_auth(request)) is not None:
                return denied
            try:
                body = await request.json()
            except Exception:
                return JSONResponse({"error": {"message": "request body is not JSON", "type": "invalid_request_error"}}, status_code=400)
            if not isinstance(body.get("messages"), list) or not body["messages"]:
                return JSONResponse({"error": {"message": "'messages' is required", "type": "invalid_request_error"}}, status_code=400)
            state.by_prompt[last_user_text(body)] += 1

            r = rng.random()
            if r < faults.p500:
                state.faults["500"] += 1
                return JSONResponse({"error": {"message": "injected server error", "type": "server_error"}}, status_code=500)
            r -= faults.p500
            if r < faults.p429:
                state.faults["429"] += 1
                return JSONResponse(
                    {"error": {"message": "injected rate limit", "type": "rate_limit_error"}}, status_code=429,
                    headers={"retry-after": f"{faults.retry_after:g}"},
                )
            r -= faults.p429
            if r < faults.ptimeout:
                state.faults["timeout"] += 1
                await asyncio.sleep(faults.stall_s)
            else:
                r -= faults.ptimeout
            delay = latency if isinstance(latency, (int, float)) else rng.uniform(*latency)
            if delay:
                await asyncio.sleep(delay)
            if 0 <= r < faults.pmalformed:
                state.faults["malformed"] += 1
                return Response('{"id": "chatcmpl-broken", "choices": [{"message": ', media_type="application/json")

            out = responder(body)
            if asyncio.iscoroutine(out):
                out = await out
            if isinstance(out, Raw):
                state.completed += 1
                return out.response()
            message = {"role": "assistant", "content": out} if isinstance(out, str) else {"role": "assistant", **out}
            if isinstance(out, dict) and "status" in out:  # responder asks for an HTTP error explicitly
                return JSONResponse({"error": {"message": out.get("content", "error")}}, status_code=int(out["status"]))
            finish = "tool_calls" if message.get("tool_calls") else "stop"
            prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in body["messages"])
            completion_tokens = len(str(message.get("content") or "").split())
            state.completed += 1
            cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
            if body.get("stream"):
                return StreamingResponse(_sse(cid, body.get("model", model), message, finish), media_type="text/event-stream")
            return JSONResponse({
                "id": cid, "object": "chat.completion", "created": int(time.time()), "model": body.get("model", model),
                "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens},
            })
        finally:
            state.in_flight -= 1

    app = Starlette(routes=[
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/_stats", stats, methods=["GET"]),
    ])
    return app, state


async def _sse(cid: str, model: str, message: dict[str, Any], finish: str):
    content = message.get("content") or ""
    words = content.split(" ")
    for i, w in enumerate(words):
        chunk = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                 "choices": [{"index": 0, "delta": {"content": (w if i == 0 else " " + w)}, "finish_reason": None}]}
        yield f"data: {json.dumps(chunk)}\n\n"
    end = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
           "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
    yield f"data: {json.dumps(end)}\n\n"
    yield "data: [DONE]\n\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """Runs an app under uvicorn in a background thread (real sockets, real HTTP)."""

    def __init__(self, app, port: int | None = None):
        self.port = port or free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="off", timeout_keep_alive=30))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> "ServerThread":
        self.thread.start()
        deadline = time.time() + 10
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@contextlib.contextmanager
def running_server(responder: Responder | None = None, **kwargs: Any) -> Iterator[str]:
    """Start the mock server in a thread; yield its base URL (``http://127.0.0.1:PORT/v1``).

    The ``ServerState`` is reachable as ``running_server.last_state`` for assertions.
    """
    app, state = build_app(responder, **kwargs)
    srv = ServerThread(app).start()
    running_server.last_state = state  # type: ignore[attr-defined]
    try:
        yield srv.base_url
    finally:
        srv.stop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8011)
    ap.add_argument("--rule", default="refuse", help="refuse | echo | comply")
    ap.add_argument("--replay", help="JSONL of {prompt, response} records")
    ap.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    ap.add_argument("--fail-500", type=float, default=0.0)
    ap.add_argument("--fail-429", type=float, default=0.0)
    ap.add_argument("--fail-timeout", type=float, default=0.0)
    ap.add_argument("--fail-malformed", type=float, default=0.0)
    ap.add_argument("--retry-after", type=float, default=0.2)
    ap.add_argument("--stall", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--api-key", default=None)
    ap.add_argument("--model", default="mock-model", help="model id listed by /v1/models")
    a = ap.parse_args(argv)
    responder = replay_responder(a.replay) if a.replay else rule_responder(a.rule)
    app, _ = build_app(
        responder, latency=a.latency, api_key=a.api_key, model=a.model,
        faults=Faults(p500=a.fail_500, p429=a.fail_429, ptimeout=a.fail_timeout, pmalformed=a.fail_malformed,
                      retry_after=a.retry_after, stall_s=a.stall, seed=a.seed),
    )
    print(f"READY http://{a.host}:{a.port}/v1", flush=True)
    uvicorn.run(app, host=a.host, port=a.port, log_level="warning", lifespan="off", timeout_keep_alive=30)


if __name__ == "__main__":
    main()
