"""Issue 14 item 2: REVIEW goes to a person. End to end over HTTP and the CLI: a pending approval
is created, listed, approved or denied (approver role only, never by the asker), the approved
action runs once, a caller can wait (bounded) for the decision, expiry means deny, and every
step is in the audit chain."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from typer.testing import CliRunner

from airisk.guard.content import ContentGuard
from airisk.guard.service import create_app, hash_key
from airisk.testing.openai_server import ServerThread
from airisk.testing.scorers import MarkerScorer

AGENT, APPROVER, ADMIN = "agent-key-0123456789", "approver-key-0123456789", "admin-key-0123456789"
DELETE = {"tool": "delete_file", "arguments": {"path": "./build/out.txt"}}  # irreversible: REVIEW by default


def start(tmp_path, **approvals):
    app = create_app({"audit_url": f"sqlite:///{tmp_path / 'audit.db'}", "gate_isolation": "thread",
                      "approvals": approvals,
                      "api_keys": [{"key_sha256": hash_key(AGENT), "principal": "bot", "roles": ["agent"]},
                                   {"key_sha256": hash_key(APPROVER), "principal": "alice", "roles": ["approver"]},
                                   {"key_sha256": hash_key(ADMIN), "principal": "root", "admin": True}]},
                     content_guard=ContentGuard(scorer=MarkerScorer()))
    srv = ServerThread(app).start()
    return srv, f"http://127.0.0.1:{srv.port}"


@pytest.fixture
def svc(tmp_path):
    srv, base = start(tmp_path)
    yield base
    srv.stop()


def h(key):
    return {"Authorization": f"Bearer {key}"}


def cli(*args):
    from airisk.cli import app

    return CliRunner().invoke(app, ["guard", "approvals", *args])


def events(base):
    rows = httpx.get(base + "/v1/audit", params={"kind": "approval", "limit": 1000}, headers=h(ADMIN)).json()["records"]
    return [r["payload"]["event"] for r in rows]


def test_review_approve_via_cli_then_the_action_runs_once(svc):
    base = svc
    r = httpx.post(base + "/v1/guard/action", json=DELETE, headers=h(AGENT)).json()
    assert r["verdict"] == "REVIEW" and r["approval_id"] and r["approval_expires_at"]
    aid = r["approval_id"]
    listed = cli("list", "--url", base, "--key", APPROVER)
    assert listed.exit_code == 0 and aid in listed.output and '"delete_file"' in listed.output
    # the asker may not approve its own action, nor may a key without the approver role
    assert httpx.post(f"{base}/v1/approvals/{aid}/approve", headers=h(AGENT)).status_code == 403
    assert httpx.get(f"{base}/v1/approvals", headers=h(AGENT)).json()["error"]["code"] == "permission_denied"
    assert httpx.get(f"{base}/v1/approvals/{aid}", headers=h(AGENT)).json()["status"] == "pending"  # the asker may poll
    out = cli("approve", aid, "--note", "build dir is scratch", "--url", base, "--key", APPROVER)
    assert out.exit_code == 0 and f"approved {aid}" in out.output, out.output
    again = httpx.post(base + "/v1/guard/action", json=DELETE, headers=h(AGENT)).json()
    assert again["verdict"] == "ALLOW" and again["rule_ids"] == ["approval.granted"] and again["approval_id"] == aid
    third = httpx.post(base + "/v1/guard/action", json=DELETE, headers=h(AGENT)).json()
    assert third["verdict"] == "REVIEW" and third["approval_id"] != aid  # one approval, one run
    other = httpx.post(base + "/v1/guard/action", headers=h(AGENT),
                       json={"tool": "delete_file", "arguments": {"path": "./build/other.txt"}}).json()
    assert other["verdict"] == "REVIEW"  # approval covers exactly the action that was approved
    assert cli("approve", aid, "--url", base, "--key", APPROVER).exit_code != 0  # decided already: 409
    assert events(base).count("created") == 3 and "approved" in events(base) and "redeemed" in events(base)
    assert httpx.post(base + "/v1/audit/verify", headers=h(ADMIN)).json()["ok"] is True


def test_waiting_caller_gets_the_decision(svc):
    base = svc
    results = {}

    def agent(name, wait):
        results[name] = httpx.post(base + "/v1/guard/action", json={**DELETE, "wait_s": wait}, headers=h(AGENT), timeout=30).json()

    for decision in ("deny", "approve"):
        th = threading.Thread(target=agent, args=(decision, 10))
        th.start()
        deadline = time.time() + 10
        pending = []
        while not pending and time.time() < deadline:
            pending = httpx.get(base + "/v1/approvals", params={"status": "pending"}, headers=h(APPROVER)).json()["approvals"]
            time.sleep(0.05)
        out = cli(decision, pending[0]["id"], "--url", base, "--key", APPROVER)
        assert out.exit_code == 0, out.output
        th.join(15)
    assert results["deny"]["verdict"] == "BLOCK" and "approval.denied" in results["deny"]["rule_ids"]
    assert results["approve"]["verdict"] == "ALLOW" and results["approve"]["rule_ids"] == ["approval.granted"]
    t = time.perf_counter()  # nobody answers: the wait is bounded and the answer stays REVIEW
    r = httpx.post(base + "/v1/guard/action", json={**DELETE, "wait_s": 0.5}, headers=h(AGENT), timeout=30).json()
    assert r["verdict"] == "REVIEW" and time.perf_counter() - t < 5


def test_expiry_means_deny(tmp_path):
    srv, base = start(tmp_path, ttl_s=0.3)
    try:
        aid = httpx.post(base + "/v1/guard/action", json=DELETE, headers=h(AGENT)).json()["approval_id"]
        time.sleep(0.6)
        a = httpx.get(f"{base}/v1/approvals/{aid}", headers=h(APPROVER)).json()
        assert a["status"] == "expired" and a["verdict"] == "BLOCK"
        r = httpx.post(f"{base}/v1/approvals/{aid}/approve", headers=h(APPROVER))
        assert r.status_code == 409
        assert "expired" in events(base)
        r = httpx.post(base + "/v1/guard/action", json={**DELETE, "wait_s": 2}, headers=h(AGENT), timeout=30).json()
        assert r["verdict"] == "BLOCK" and "approval.expired" in r["rule_ids"]
    finally:
        srv.stop()


def test_cli_errors_are_one_line(svc):
    r = cli("list", "--url", svc, "--key", AGENT)
    assert r.exit_code != 0 and "403" in str(r.exception)
    r = cli("list", "--url", "http://127.0.0.1:9", "--key", APPROVER)
    assert r.exit_code != 0 and "unreachable" in str(r.exception)
    assert cli("deny", "nope", "--url", svc, "--key", APPROVER).exit_code != 0
