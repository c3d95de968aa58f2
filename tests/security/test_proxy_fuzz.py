"""Hypothesis fuzzing of the guarded proxy's request and response shapes (issue 11, "Must show").

Properties, over real HTTP with a hostile upstream and a marker scorer:
- whatever JSON the upstream returns (streamed or not), a harmful marker placed anywhere in it
  never reaches the client in a 200 answer, and the proxy never answers 5xx other than 502;
- whatever JSON a client sends, the proxy answers 2xx/4xx (never 5xx), and a harmful marker in
  the request never reaches the upstream.
Each case is bounded in time (hypothesis deadline) and in size (strategies' max sizes).
"""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airisk.guard.content import ContentGuard
from airisk.guard.service import create_app
from airisk.testing.openai_server import Raw, ServerThread, running_server
from airisk.testing.scorers import MarkerScorer

MARK = "synthesis route for the nerve agent"
KEYS = st.sampled_from(["content", "text", "type", "refusal", "reasoning_content", "audio", "transcript", "tool_calls",
                        "function_call", "function", "name", "arguments", "role", "index", "x-extra", MARK])
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from(["text", "image_url", "function", "assistant",
                                                                                 "", MARK, "ok", "{}"]))
JSON = st.recursive(LEAVES, lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(KEYS, kids, max_size=4)),
                    max_leaves=20)


def plant(value, path_bits):
    """Put MARK somewhere inside a JSON value (following path_bits), so the harm can sit anywhere."""
    if isinstance(value, dict) and value and path_bits:
        k = sorted(value, key=str)[path_bits[0] % len(value)]
        return {**value, k: plant(value[k], path_bits[1:])}
    if isinstance(value, list) and value and path_bits:
        i = path_bits[0] % len(value)
        return value[:i] + [plant(value[i], path_bits[1:])] + value[i + 1:]
    return MARK


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    box = {"reply": None, "bodies": []}

    def responder(body):
        box["bodies"].append(json.dumps(body))
        return box["reply"]

    with running_server(responder=responder) as url:
        app = create_app({"require_auth": False, "audit_url": f"sqlite:///{tmp_path_factory.mktemp('fz') / 'a.db'}",
                          "upstream": {"base_url": url}, "proxy": {"stream_window_chars": 16}, "gate_isolation": "thread"},
                         content_guard=ContentGuard(scorer=MarkerScorer()))
        srv = ServerThread(app).start()
        with httpx.Client(base_url=f"http://127.0.0.1:{srv.port}/v1", timeout=20) as c:
            yield c, box
        srv.stop()


FUZZ = settings(max_examples=120, deadline=5000, suppress_health_check=list(HealthCheck), database=None)


@FUZZ
@given(msg=st.dictionaries(KEYS, JSON, max_size=5), bits=st.lists(st.integers(0, 50), max_size=6), n=st.integers(1, 3))
def test_fuzz_response_shapes_never_leak(rig, msg, bits, n):
    c, box = rig
    choices = [{"index": i, "message": plant(msg, bits) if i == n - 1 else msg, "finish_reason": "stop"} for i in range(n)]
    box["reply"] = Raw(json={"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": choices})
    r = c.post("/chat/completions", json={"messages": [{"role": "user", "content": "q"}]})
    assert r.status_code in (200, 502), r.text[:300]
    if r.status_code == 200:
        assert MARK not in r.text, r.text[:500]


@FUZZ
@given(deltas=st.lists(st.dictionaries(KEYS, JSON, max_size=3), min_size=1, max_size=6),
       bits=st.lists(st.integers(0, 50), max_size=6), where=st.integers(0, 5))
def test_fuzz_stream_shapes_never_leak(rig, deltas, bits, where):
    c, box = rig
    deltas = list(deltas)
    i = where % len(deltas)
    deltas[i] = plant(deltas[i], bits) if deltas[i] else {"content": MARK}
    box["reply"] = Raw(sse=[{"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
                             "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas])
    with c.stream("POST", "/chat/completions", json={"messages": [{"role": "user", "content": "q"}], "stream": True}) as r:
        body = r.read().decode()
    assert r.status_code in (200, 502), body[:300]
    assert MARK not in body, body[:500]


@FUZZ
@given(messages=st.lists(st.dictionaries(KEYS, JSON, max_size=4), min_size=1, max_size=4),
       bits=st.lists(st.integers(0, 50), max_size=6), extra=st.dictionaries(st.sampled_from(["tools", "metadata", "n", "stream", "zz"]), JSON, max_size=2))
def test_fuzz_request_shapes_never_reach_upstream_unchecked(rig, messages, bits, extra):
    c, box = rig
    box["reply"] = "fine"
    box["bodies"].clear()
    messages = [plant(messages[0], bits)] + messages[1:]
    r = c.post("/chat/completions", json={"messages": messages, **extra})
    assert r.status_code < 500 or r.status_code == 502, r.text[:300]
    assert not any(MARK in b for b in box["bodies"]), box["bodies"][:1]
