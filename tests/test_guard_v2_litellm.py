"""Issue 14: the guarded proxy driven by a second real OpenAI-compatible client library, ``litellm``
(its ``openai/`` provider pointed at the proxy's base URL), non-streaming and streaming, sync and
async, with airisk.testing.openai_server as the upstream model.

litellm fetches a model price map from GitHub when imported; there is no network here (nor in CI),
so the test asks it for its bundled copy (``LITELLM_LOCAL_MODEL_COST_MAP``) before importing it.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402 - after the environment switch above
import pytest  # noqa: E402

from airisk.guard.content import ContentGuard  # noqa: E402
from airisk.guard.service import create_app, hash_key  # noqa: E402
from airisk.testing.openai_server import ServerThread, running_server  # noqa: E402
from airisk.testing.scorers import MarkerScorer  # noqa: E402

# litellm's import alone takes seconds; its pydantic models warn about ReadOnly TypedDict items
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]

KEY = "v2-litellm-key-0123456789"
BENIGN = ("Plumbing projects are a good way to learn practical skills. Start with the basics: shut off the water, "
          "gather a wrench, tape and a bucket, and work slowly. ")
HARMFUL = BENIGN + "Now the real answer: the synthesis route for the nerve agent starts with step one and continues."


@pytest.fixture(scope="module")
def guard(tmp_path_factory):
    box: dict = {"reply": None}
    with running_server(responder=lambda body: box["reply"] or "Paris is the capital of France.") as up:
        tmp = tmp_path_factory.mktemp("litellm")
        app = create_app({"audit_url": f"sqlite:///{tmp / 'audit.db'}", "upstream": {"base_url": up},
                          "api_keys": [{"key_sha256": hash_key(KEY), "principal": "p", "roles": ["agent"]}],
                          "proxy": {"stream_window_chars": 40}}, content_guard=ContentGuard(scorer=MarkerScorer()))
        srv = ServerThread(app).start()
        try:
            yield f"http://127.0.0.1:{srv.port}/v1", box
        finally:
            srv.stop()


def ask(base: str, text: str, **kw):
    return litellm.completion(model="openai/m", api_base=base, api_key=KEY, num_retries=0, timeout=30,
                              messages=[{"role": "user", "content": text}], **kw)


def test_litellm_non_streaming_allowed_and_blocked(guard):
    base, box = guard
    box["reply"] = None
    out = ask(base, "capital of France?")
    assert out.choices[0].message.content == "Paris is the capital of France."
    assert out.choices[0].finish_reason == "stop"
    box["reply"] = HARMFUL
    out = ask(base, "plumbing?")
    assert out.choices[0].finish_reason == "content_filter"
    assert "synthesis" not in out.choices[0].message.content and "mass harm" in out.choices[0].message.content


def test_litellm_streaming_benign_arrives_whole(guard):
    base, box = guard
    box["reply"] = BENIGN * 2
    pieces, finishes = [], []
    for ch in ask(base, "plumbing?", stream=True):
        for c in ch.choices:
            pieces.append(c.delta.content or "")
            if c.finish_reason:
                finishes.append(c.finish_reason)
    assert "".join(pieces) == BENIGN * 2 and finishes == ["stop"]
    assert sum(1 for p in pieces if p) > 2  # released window by window


def test_litellm_blocked_stream_ends_with_content_filter(guard):
    base, box = guard
    box["reply"] = HARMFUL
    pieces, finishes = [], []
    for ch in ask(base, "plumbing?", stream=True):
        for c in ch.choices:
            if c.finish_reason:
                finishes.append(c.finish_reason)
            pieces.append(c.delta.content or "")
    text = "".join(pieces)
    assert finishes == ["content_filter"]
    assert "synthesis" not in text and "nerve agent" not in text and "mass harm" in text


async def test_litellm_async_streaming(guard):
    base, box = guard
    box["reply"] = None
    stream = await litellm.acompletion(model="openai/m", api_base=base, api_key=KEY, num_retries=0, timeout=30,
                                       messages=[{"role": "user", "content": "capital?"}], stream=True)
    text = "".join([c.delta.content or "" async for ch in stream for c in ch.choices])
    assert text == "Paris is the capital of France."


def test_litellm_sees_guard_errors_as_openai_errors(guard):
    base, _ = guard
    with pytest.raises(litellm.AuthenticationError):
        litellm.completion(model="openai/m", api_base=base, api_key="wrong", num_retries=0, timeout=30,
                           messages=[{"role": "user", "content": "hi"}])
