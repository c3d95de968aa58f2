"""Issue 11 item 2 (service side): bounded work per request.

Deeply nested JSON gets a clean, audited 400 (it used to be a 500 from a RecursionError); gate and
content checks run off the event loop under a deadline, so a slow or runaway decision fails closed
at the deadline and ``/healthz`` keeps answering meanwhile; readiness waits for the models.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from airisk.guard import ActionGate
from airisk.guard.content import ContentGuard
from airisk.guard.service import create_app, hash_key
from airisk.testing.openai_server import ServerThread
from airisk.testing.scorers import MarkerScorer

KEY, ADMIN = "limits-key-0123456789", "limits-admin-0123456789"


def config(tmp_path, **kw):
    return {"audit_url": f"sqlite:///{tmp_path / 'audit.db'}",
            "api_keys": [{"key_sha256": hash_key(KEY), "principal": "p", "roles": ["agent"]},
                         {"key_sha256": hash_key(ADMIN), "principal": "root", "admin": True}], **kw}


class serve:
    def __init__(self, app):
        self.srv = ServerThread(app).start()
        self.base = f"http://127.0.0.1:{self.srv.port}"

    def __enter__(self):
        return self.base

    def __exit__(self, *exc):
        self.srv.stop()


def wait_ready(c, limit_s=60):
    deadline = time.time() + limit_s
    while c.get("/readyz").status_code != 200 and time.time() < deadline:
        time.sleep(0.05)


def h(key=KEY):
    return {"Authorization": f"Bearer {key}", "content-type": "application/json"}


@pytest.mark.parametrize("depth", [500, 999, 5000])
def test_deep_json_is_a_clean_audited_400(tmp_path, depth):
    app = create_app(config(tmp_path), content_guard=ContentGuard(scorer=MarkerScorer()))
    with serve(app) as base, httpx.Client(base_url=base, timeout=30) as c:
        nested = "[" * depth + "]" * depth
        for path, body in (("/v1/chat/completions", '{"messages": [{"role": "user", "content": "hi"}], "x": %s}' % nested),
                           ("/v1/guard/action", '{"tool": "shell", "arguments": {"a": %s}}' % nested),
                           ("/v1/guard/content", '{"prompt": "hi", "extra": %s}' % ("{\"a\":" * depth + "1" + "}" * depth))):
            r = c.post(path, content=body, headers=h())
            assert r.status_code == 400, (path, r.status_code, r.text[:200])
            assert r.json()["error"]["code"] == "json_too_deep"
        rows = c.get("/v1/audit", params={"kind": "rejected"}, headers=h(ADMIN)).json()["records"]
        assert len(rows) == 3 and all(r["verdict"] == "BLOCK" and "nested" in r["payload"]["reason"] for r in rows)
        # brackets inside strings are text, not nesting
        r = c.post("/v1/guard/content", json={"prompt": "[" * 2000}, headers=h())
        assert r.status_code == 200


class SlowGate(ActionGate):
    """A gate whose decision burns CPU in Python (holding the GIL in slices) until told to stop."""

    stop = threading.Event()

    def decide(self, action):
        t0 = time.perf_counter()
        while action.tool == "shell" and not self.stop.is_set() and time.perf_counter() - t0 < 20:
            sum(range(10_000))
        return super().decide(action)


def test_runaway_gate_decision_fails_closed_and_healthz_stays_responsive(tmp_path):
    gate = SlowGate.from_policy("builtin:default")
    app = create_app(config(tmp_path, gate_deadline_s=0.5), gate=gate, content_guard=ContentGuard(scorer=MarkerScorer()))
    try:
        with serve(app) as base, httpx.Client(base_url=base, timeout=30) as c:
            wait_ready(c)
            out = {}

            def call():
                t = time.perf_counter()
                out["r"] = c.post("/v1/guard/action", headers=h(), json={"tool": "shell", "arguments": {"command": "ls"}})
                out["s"] = time.perf_counter() - t

            th = threading.Thread(target=call)
            th.start()
            time.sleep(0.1)
            worst = 0.0
            while th.is_alive():
                t = time.perf_counter()
                assert c.get("/healthz").status_code == 200
                worst = max(worst, time.perf_counter() - t)
                time.sleep(0.02)
            th.join()
            r = out["r"].json()
            assert r["verdict"] == "BLOCK" and r["rule_ids"] == ["gate.deadline"], r
            assert out["s"] < 3.0 and worst < 0.5, (out["s"], worst)
    finally:
        SlowGate.stop.set()


def test_issue_doubling_snippet_cannot_stall_the_service(tmp_path):
    """The issue's 173-byte snippet (24 doublings then os.system) took 5.45 s inside one regex
    search that holds the GIL, so a thread deadline alone could not keep /healthz answering: the
    decision is tried in a killable worker process first."""
    code = "import os\na='x'\n" + "a=a+a\n" * 24 + "os.system(a)\n"
    app = create_app(config(tmp_path, gate_deadline_s=1.0), content_guard=ContentGuard(scorer=MarkerScorer()))
    with serve(app) as base, httpx.Client(base_url=base, timeout=60) as c:
        wait_ready(c)  # the trial worker has started
        out = {}

        def call():
            t = time.perf_counter()
            out["r"] = c.post("/v1/guard/action", headers=h(), json={"tool": "python", "arguments": {"code": code}})
            out["s"] = time.perf_counter() - t

        th = threading.Thread(target=call)
        th.start()
        worst = 0.0
        while th.is_alive():
            t = time.perf_counter()
            assert c.get("/healthz").status_code == 200
            worst = max(worst, time.perf_counter() - t)
            time.sleep(0.02)
        th.join()
        body = out["r"].json()
        assert body["verdict"] in ("BLOCK", "REVIEW"), body  # fails closed: the gate now caps the folded value itself
        assert out["s"] < 3.0 and worst < 0.5, (out["s"], worst)
        # the service is still whole: an ordinary decision right after is fast and right
        r = c.post("/v1/guard/action", headers=h(), json={"tool": "shell", "arguments": {"command": "ls"}})
        assert r.json()["verdict"] == "ALLOW"
        assert app.state.checks.trial.kills <= 1


def test_slow_content_check_fails_closed(tmp_path):
    app = create_app(config(tmp_path, content_deadline_s=0.3, warm_up=False),
                     content_guard=ContentGuard(scorer=MarkerScorer(delay_s=1.5)))
    with serve(app) as base, httpx.Client(base_url=base, timeout=30) as c:
        r = c.post("/v1/guard/content", headers=h(), json={"prompt": "hello"})
        body = r.json()
        assert r.status_code == 200 and body["verdict"] == "BLOCK" and body["rule_ids"] == ["content.deadline"]
        assert body["safe_completion"]


class WarmingScorer(MarkerScorer):
    def __init__(self, gate: threading.Event, fail: bool = False):
        super().__init__()
        self.gate, self.fail = gate, fail

    def hazard_scores(self, texts):
        self.gate.wait(10)  # stands in for loading a model
        if self.fail:
            raise RuntimeError("weights missing")
        return super().hazard_scores(texts)


def test_readyz_waits_for_warm_models(tmp_path):
    loaded = threading.Event()
    app = create_app(config(tmp_path), content_guard=ContentGuard(scorer=WarmingScorer(loaded)))
    with serve(app) as base, httpx.Client(base_url=base, timeout=30) as c:
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "starting"
        assert c.get("/healthz").json()["ready"] is False
        loaded.set()
        deadline = time.time() + 10
        while c.get("/readyz").status_code != 200 and time.time() < deadline:
            time.sleep(0.05)
        assert c.get("/readyz").json()["status"] == "ready" and c.get("/healthz").json()["ready"] is True


def test_readyz_reports_a_failed_warm_up(tmp_path):
    ev = threading.Event()
    ev.set()
    app = create_app(config(tmp_path), content_guard=ContentGuard(scorer=WarmingScorer(ev, fail=True)))
    with serve(app) as base, httpx.Client(base_url=base, timeout=30) as c:
        deadline = time.time() + 10
        while c.get("/readyz").json()["status"] == "starting" and time.time() < deadline:
            time.sleep(0.05)
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "failed" and "weights missing" in r.json()["reason"]
        # and checks still fail closed
        assert c.post("/v1/guard/content", headers=h(), json={"prompt": "hi"}).json()["verdict"] == "BLOCK"


def test_errors_are_in_openai_shape(tmp_path):
    app = create_app(config(tmp_path, max_body_bytes=2000), content_guard=ContentGuard(scorer=MarkerScorer()))
    with serve(app) as base, httpx.Client(base_url=base, timeout=30) as c:
        cases = [
            (c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]},
                    headers={"Authorization": "Bearer wrong"}), 401, "invalid_api_key"),
            (c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}), 401, "missing_api_key"),
            (c.get("/v1/audit", headers=h()), 403, "permission_denied"),
            (c.get("/v1/nowhere", headers=h()), 404, "not_found"),
            (c.post("/v1/chat/completions", json={"messages": []}, headers=h()), 400, "invalid_request"),
            (c.post("/v1/chat/completions", content=b"{not json", headers=h()), 400, "invalid_request"),
            (c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x" * 5000}]}, headers=h()),
             413, "request_too_large"),
        ]
        for r, status, code in cases:
            err = r.json()["error"]
            assert r.status_code == status and err["code"] == code, (r.status_code, r.text[:200])
            assert isinstance(err["message"], str) and err["type"]


def test_memory_hungry_decision_is_capped_in_the_worker(tmp_path):
    """30 doublings build a 1 GB string: the trial worker hits its address-space cap and the
    decision fails closed there; the service process never builds it (its peak RSS stays put)."""
    import resource

    code = "import os\na='x'\n" + "a=a+a\n" * 30 + "os.system(a)\n"
    app = create_app(config(tmp_path, gate_deadline_s=5.0, gate_memory_mb=512),
                     content_guard=ContentGuard(scorer=MarkerScorer()))
    with serve(app) as base, httpx.Client(base_url=base, timeout=60) as c:
        wait_ready(c)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        r = c.post("/v1/guard/action", headers=h(), json={"tool": "python", "arguments": {"code": code}}).json()
        grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
        # fails closed either way: the gate caps folded values at 64 KB (REVIEW) or the worker's deadline blocks
        assert r["verdict"] in ("BLOCK", "REVIEW") and r["rule_ids"], r
        assert grew < 300, f"service process peak RSS grew {grew:.0f} MB"
