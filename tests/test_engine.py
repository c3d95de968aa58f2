"""Run engine behaviour over real HTTP against the local OpenAI-compatible server."""

from __future__ import annotations

import json

import pytest

from airisk.engine import RetryPolicy, call_with_retries, execute, judge_run, run_items
from airisk.testing.judges import MarkerJudge as _MarkerJudge
from airisk.errors import PreflightError
from airisk.store import Store
from airisk.systems import make_system
from airisk.systems.python_callable import PythonSystem
from airisk.testing import Faults, running_server
from airisk.types import Item, Message

FAST = RetryPolicy(max_retries=4, base_delay=0.01, max_delay=0.05)


def items(n: int, hazard: str = "vcr") -> list[Item]:
    return [Item(id=f"it-{i:04d}", prompt=f"prompt {i}", hazard=hazard) for i in range(n)]


@pytest.fixture
def store(tmp_path):
    return Store(f"sqlite:///{tmp_path / 'runs.db'}")


def openai_system(url: str, **kw):
    return make_system({"type": "openai", "model": "mock", "base_url": url, **kw})


async def test_run_stores_every_response(store):
    with running_server(responder=lambda b: "Sorry, I can't help.") as url:
        system = openai_system(url)
        run_id = await run_items(store, system, items(40), concurrency=8, progress=False, retry=FAST)
        await system.aclose()
    run = store.get_run(run_id)
    assert run.status == "completed"
    resp = store.responses(run_id)
    assert len(resp) == 40
    assert all(c.text == "Sorry, I can't help." and c.error is None for c in resp.values())
    assert all(c.prompt_tokens is not None and c.latency_s > 0 for c in resp.values())
    assert run.config["system"]["model"] == "mock"


async def test_faults_are_retried_and_counts_add_up(store):
    faults = Faults(p500=0.2, p429=0.1, ptimeout=0.05, pmalformed=0.05, retry_after=0.01, stall_s=2.0, seed=3)
    with running_server(responder=lambda b: "ok", faults=faults) as url:
        system = openai_system(url, timeout=0.5)
        run_id = await run_items(store, system, items(60), concurrency=16, progress=False, retry=FAST)
        await system.aclose()
        state = running_server.last_state
    answered, errors = store.count_responses(run_id)
    assert answered == 60  # every item is answered or recorded as an error
    assert sum(state.faults.values()) > 0 and state.requests > 61  # faults happened and were retried
    resp = store.responses(run_id)
    ok = [c for c in resp.values() if c.ok]
    assert len(ok) + errors == 60
    assert any(c.attempts > 1 for c in ok)


async def test_error_after_last_retry_is_recorded_as_error(store):
    with running_server(responder=lambda b: {"status": 503, "content": "down"}) as url:
        system = openai_system(url)
        run_id = await run_items(store, system, items(5), concurrency=2, progress=False,
                                 retry=RetryPolicy(max_retries=2, base_delay=0.01), preflight=False)
        await system.aclose()
        state = running_server.last_state
    resp = store.responses(run_id)
    assert len(resp) == 5
    assert all(c.text is None and c.error and c.error_kind == "http_503" and c.attempts == 3 for c in resp.values())
    assert state.requests == 15  # 1 try + 2 retries each


async def test_retry_after_header_is_honoured(monkeypatch):
    faults = Faults(p429=1.0, retry_after=0.3, seed=0)
    with running_server(responder=lambda b: "ok", faults=faults) as url:
        system = openai_system(url)
        slept: list[float] = []

        async def spy(delay):
            slept.append(delay)

        monkeypatch.setattr("airisk.engine.retry._sleep", spy)
        c = await call_with_retries(system, [Message(role="user", content="x")], policy=RetryPolicy(max_retries=2))
        await system.aclose()
    assert c.error_kind == "rate_limited" and c.attempts == 3
    assert slept == [0.3, 0.3]


async def test_cache_prevents_requery(store):
    with running_server(responder=lambda b: "cached answer") as url:
        system = openai_system(url)
        await run_items(store, system, items(10), concurrency=4, progress=False, retry=FAST, preflight=False)
        before = running_server.last_state.requests
        run2 = await run_items(store, system, items(10), concurrency=4, progress=False, retry=FAST, preflight=False)
        after = running_server.last_state.requests
        await system.aclose()
    assert after == before
    assert all(c.cached and c.text == "cached answer" for c in store.responses(run2).values())


async def test_cache_key_depends_on_parameters(store):
    with running_server(responder=lambda b: f"t={b['temperature']}") as url:
        s1, s2 = openai_system(url, temperature=0.0), openai_system(url, temperature=0.7)
        r1 = await run_items(store, s1, items(3), progress=False, preflight=False)
        r2 = await run_items(store, s2, items(3), progress=False, preflight=False)
        await s1.aclose()
        await s2.aclose()
    assert {c.text for c in store.responses(r1).values()} == {"t=0.0"}
    assert {c.text for c in store.responses(r2).values()} == {"t=0.7"}


async def test_unreachable_endpoint_fails_preflight_before_anything_is_stored(store):
    system = openai_system("http://127.0.0.1:9/v1", timeout=2)
    with pytest.raises(PreflightError, match="cannot reach"):
        await run_items(store, system, items(3), progress=False)
    await system.aclose()
    assert store.list_runs() == []


async def test_wrong_api_key_fails_preflight_and_key_is_never_echoed(store, monkeypatch):
    monkeypatch.setenv("MY_TEST_KEY", "sk-wrong-secret-123")
    with running_server(api_key="sk-right") as url:
        system = openai_system(url, api_key_env="MY_TEST_KEY")
        with pytest.raises(PreflightError) as e:
            await run_items(store, system, items(3), progress=False)
        await system.aclose()
    assert "MY_TEST_KEY" in str(e.value) and "sk-wrong-secret-123" not in str(e.value)


async def test_api_key_is_used_but_never_stored(store, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_TEST_KEY", "sk-right-secret-456")
    with running_server(api_key="sk-right-secret-456", responder=lambda b: "fine") as url:
        system = openai_system(url, api_key_env="MY_TEST_KEY")
        run_id = await run_items(store, system, items(3), progress=False)
        await system.aclose()
    assert all(c.ok for c in store.responses(run_id).values())
    store.close()
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("runs.db*"))
    assert b"sk-right-secret-456" not in blob and b"MY_TEST_KEY" in blob


async def test_execute_again_resumes_only_pending_items(store):
    calls: list[str] = []

    def bot(messages):
        calls.append(messages[-1]["content"])
        return "fine"

    system = PythonSystem(fn=bot)
    store.create_run("r", system_name="python", config={"system": {"type": "python"}})
    store.add_items("r", items(10))
    store.save_responses("r", [(f"it-{i:04d}", __import__("airisk.types", fromlist=["Completion"]).Completion(text="old"))
                               for i in range(4)])
    await execute(store, "r", system, progress=False)
    assert sorted(calls) == sorted(f"prompt {i}" for i in range(4, 10))
    assert len(store.responses("r")) == 10 and store.get_run("r").status == "completed"


class MarkerJudge(_MarkerJudge):
    def __init__(self, marker: str = "BAD", **kw):
        super().__init__(marker, **kw)


class BrokenJudge(MarkerJudge):
    id = "broken"

    async def judge_batch(self, conversations):
        raise RuntimeError("judge exploded")


async def test_judge_run_records_judge_and_skips_errors(store):
    def bot(messages):
        text = messages[-1]["content"]
        if text.endswith("3"):
            raise ValueError("system crashed")
        return "BAD answer" if text.endswith(("1", "2")) else "refusal"

    run_id = await run_items(store, PythonSystem(fn=bot), items(5), judge=MarkerJudge(), progress=False)
    j = store.judgments(run_id)
    assert set(j) == {"it-0000", "it-0001", "it-0002", "it-0004"}  # the errored item is not judged
    assert [j[f"it-000{i}"]["marker"].label for i in (1, 2)] == ["violating", "violating"]
    assert j["it-0000"]["marker"].judge_fingerprint == "marker-v1"
    assert store.get_run(run_id).judges[0]["id"] == "marker"
    assert store.responses(run_id)["it-0003"].error_kind == "exception"
    # Judging again is a no-op (resume-safe).
    assert await judge_run(store, run_id, MarkerJudge(), progress=False) == 0
    # A judge that blows up yields judge errors, never safe labels.
    await judge_run(store, run_id, BrokenJudge(), progress=False)
    broken = [v["broken"] for v in store.judgments(run_id).values() if "broken" in v]
    assert len(broken) == 4 and all(b.label == "error" and "exploded" in b.error for b in broken)


async def test_concurrency_is_bounded(store):
    with running_server(responder=lambda b: "ok", latency=0.05) as url:
        system = openai_system(url)
        await run_items(store, system, items(40), concurrency=5, progress=False, preflight=False)
        await system.aclose()
        assert running_server.last_state.max_in_flight <= 5


async def test_tool_calls_pass_through(store):
    call = {"id": "call_1", "type": "function", "function": {"name": "delete_file", "arguments": json.dumps({"path": "/x"})}}

    def responder(body):
        assert body["tools"][0]["function"]["name"] == "delete_file"
        return {"content": None, "tool_calls": [call]}

    tools = [{"type": "function", "function": {"name": "delete_file", "parameters": {"type": "object"}}}]
    with running_server(responder=responder) as url:
        system = openai_system(url, tools=tools)
        c = await system.generate([Message(role="user", content="clean up")])
        await system.aclose()
    assert c.finish_reason == "tool_calls" and c.tool_calls[0]["function"]["name"] == "delete_file"


def test_progress_prints_plain_lines_when_not_a_tty():
    import io

    from airisk.engine.progress import ProgressReporter

    out = io.StringIO()
    p = ProgressReporter(3, "run x", stream=out, every_s=0)
    p.advance(1)
    p.advance(2, errors=1)
    p.close()
    lines = out.getvalue().splitlines()
    assert lines[-1].startswith("run x: 3/3") and "errors 1" in lines[-1] and "/s" in lines[-1]
    silent = io.StringIO()
    ProgressReporter(3, "q", stream=silent, enabled=False).advance(3)
    assert silent.getvalue() == ""
    ray_run = io.StringIO()  # a Ray run's one bar also says how many workers are at work
    p = ProgressReporter(4, "run y", stream=ray_run, every_s=0)
    p.note = "workers 2/3"
    p.advance(4)
    assert ray_run.getvalue().rstrip().endswith(", workers 2/3)")


async def test_rate_limiter_spaces_requests():
    from airisk.engine.retry import RateLimiter

    clock = {"t": 0.0}

    async def fake_sleep(d):
        clock["t"] += d

    lim = RateLimiter(rps=10, burst=2, clock=lambda: clock["t"], sleep=fake_sleep)
    for _ in range(12):
        await lim.acquire()
    # 2 free from the burst, then 10 more at 10/s: one simulated second.
    assert abs(clock["t"] - 1.0) < 1e-6


async def test_preflight_uses_models_route_when_it_lists_the_model():
    with running_server(responder=lambda b: "x", model="listed-model") as url:
        listed = make_system({"type": "openai", "model": "listed-model", "base_url": url})
        await listed.preflight()
        assert running_server.last_state.requests == 0  # no chat completion was needed
        unlisted = make_system({"type": "openai", "model": "alias", "base_url": url})
        await unlisted.preflight()
        assert running_server.last_state.requests == 1  # fell back to one minimal completion
        await listed.aclose()
        await unlisted.aclose()
