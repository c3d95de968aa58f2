"""Issue 14: the approval webhook (a real local HTTP receiver) and bounded waiting for a decision in
the chat proxy (``approvals.proxy_wait_s``)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from airisk.errors import ConfigError
from airisk.guard.content import ContentGuard
from airisk.guard.service import create_app, hash_key
from airisk.guard.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from airisk.testing.openai_server import ServerThread, running_server
from airisk.testing.scorers import MarkerScorer

AGENT, APPROVER, ADMIN = "agent-key-0123456789", "approver-key-0123456789", "admin-key-0123456789"
SECRET = "whsec-test-0123456789abcdef"
# irreversible (REVIEW) and carrying a credential that must not travel in clear
DELETE = {"tool": "delete_file", "arguments": {"path": "./build/out.txt", "api_key": "sk-live-abcdefghijklmnopqrstuvwx"}}


class Receiver:
    """A real HTTP server that records POSTs and answers with scripted statuses (then 200)."""

    def __init__(self, statuses=(), gate: threading.Event | None = None):
        self.statuses, self.gate, self.got = list(statuses), gate, []
        rcv = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if rcv.gate is not None:
                    rcv.gate.wait(20)
                rcv.got.append((dict(self.headers), body))
                status = rcv.statuses.pop(0) if rcv.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/hook?token=url-token-123"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def start(tmp_path, upstream=None, **approvals):
    cfg = {"audit_url": f"sqlite:///{tmp_path / 'audit.db'}", "gate_isolation": "thread", "approvals": approvals,
           "api_keys": [{"key_sha256": hash_key(AGENT), "principal": "bot", "roles": ["agent"]},
                        {"key_sha256": hash_key(APPROVER), "principal": "alice", "roles": ["approver"]},
                        {"key_sha256": hash_key(ADMIN), "principal": "root", "admin": True}]}
    if upstream:
        cfg["upstream"] = {"base_url": upstream}
    srv = ServerThread(create_app(cfg, content_guard=ContentGuard(scorer=MarkerScorer()))).start()
    return srv, f"http://127.0.0.1:{srv.port}"


def h(key):
    return {"Authorization": f"Bearer {key}"}


def audit_rows(base):
    rows = httpx.get(base + "/v1/audit", params={"kind": "approval", "limit": 1000}, headers=h(ADMIN)).json()["records"]
    return [r["payload"] for r in rows]


def wait_until(cond, timeout=15.0):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_webhook_posts_signed_redacted_body_after_retries(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRISK_TEST_WEBHOOK_SECRET", SECRET)
    rcv = Receiver(statuses=[503, 500])  # two failures, then delivered on the third attempt
    srv, base = start(tmp_path, webhook={"url": rcv.url, "secret_env": "AIRISK_TEST_WEBHOOK_SECRET", "backoff_s": 0.05})
    try:
        r = httpx.post(base + "/v1/guard/action", json=DELETE, headers=h(AGENT)).json()
        assert r["verdict"] == "REVIEW" and r["approval_id"]
        assert wait_until(lambda: len(rcv.got) == 3)
        headers, body = rcv.got[-1]
        doc = json.loads(body)
        assert doc["event"] == "approval.created" and doc["approval"]["id"] == r["approval_id"]
        assert doc["approval"]["tool"] == "delete_file" and doc["approval"]["status"] == "pending"
        assert doc["links"]["approve"] == f"/v1/approvals/{r['approval_id']}/approve"
        assert "sk-live-abcdefghijklmnopqrstuvwx" not in body.decode()  # the request is redacted
        assert headers[SIGNATURE_HEADER] == sign(SECRET.encode(), headers[TIMESTAMP_HEADER], body)
        assert headers[SIGNATURE_HEADER] != sign(b"another secret", headers[TIMESTAMP_HEADER], body)
        assert not any(p.get("event") == "webhook_failed" for p in audit_rows(base))
    finally:
        srv.stop()
        rcv.close()


def test_webhook_failures_are_audited_without_url_or_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRISK_TEST_WEBHOOK_SECRET", SECRET)
    rcv = Receiver(statuses=[500] * 10)
    dead = "http://127.0.0.1:9/hook?token=url-token-123"  # nothing listens on the discard port
    srv, base = start(tmp_path, webhook={"url": rcv.url, "secret_env": "AIRISK_TEST_WEBHOOK_SECRET",
                                         "backoff_s": 0.01, "max_attempts": 3})
    (tmp_path / "b").mkdir()
    srv2, base2 = start(tmp_path / "b", webhook={"url": dead, "backoff_s": 0.01, "max_attempts": 2})
    try:
        aid = httpx.post(base + "/v1/guard/action", json=DELETE, headers=h(AGENT)).json()["approval_id"]
        aid2 = httpx.post(base2 + "/v1/guard/action", json=DELETE, headers=h(AGENT)).json()["approval_id"]
        assert wait_until(lambda: any(p.get("event") == "webhook_failed" for p in audit_rows(base)))
        assert wait_until(lambda: any(p.get("event") == "webhook_failed" for p in audit_rows(base2)))
        fail = next(p for p in audit_rows(base) if p.get("event") == "webhook_failed")
        assert fail == {"event": "webhook_failed", "approval_id": aid, "attempts": 3, "error": "HTTP 500"}
        assert len(rcv.got) == 3  # bounded retries
        fail2 = next(p for p in audit_rows(base2) if p.get("event") == "webhook_failed")
        assert fail2["approval_id"] == aid2 and fail2["attempts"] == 2 and fail2["error"] == "ConnectError"
        dump = json.dumps(audit_rows(base) + audit_rows(base2))
        assert "url-token-123" not in dump and SECRET not in dump
        assert httpx.post(base + "/v1/audit/verify", headers=h(ADMIN)).json()["ok"] is True
    finally:
        srv.stop()
        srv2.stop()
        rcv.close()


def test_webhook_never_holds_up_the_request(tmp_path):
    release = threading.Event()
    rcv = Receiver(gate=release)  # the receiver hangs until the test lets it answer
    srv, base = start(tmp_path, webhook={"url": rcv.url, "timeout_s": 30})
    try:
        r = httpx.post(base + "/v1/guard/action", json=DELETE, headers=h(AGENT), timeout=10).json()
        assert r["verdict"] == "REVIEW" and not rcv.got  # answered while the receiver still hangs
        release.set()
        assert wait_until(lambda: len(rcv.got) == 1)
    finally:
        release.set()
        srv.stop()
        rcv.close()


def test_webhook_config_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("AIRISK_TEST_WEBHOOK_SECRET", raising=False)
    with pytest.raises(ConfigError, match="AIRISK_TEST_WEBHOOK_SECRET"):
        create_app({"require_auth": False, "audit_url": f"sqlite:///{tmp_path / 'a.db'}",
                    "approvals": {"webhook": {"url": "http://127.0.0.1:9/", "secret_env": "AIRISK_TEST_WEBHOOK_SECRET"}}},
                   content_guard=ContentGuard(scorer=MarkerScorer()))
    with pytest.raises(ValueError, match="http"):
        create_app({"require_auth": False, "approvals": {"webhook": {"url": "file:///etc/passwd"}}},
                   content_guard=ContentGuard(scorer=MarkerScorer()))


def _tool_reply(body):
    return {"content": None, "tool_calls": [{"id": "t1", "type": "function", "function": {
        "name": "delete_file", "arguments": json.dumps({"path": "./build/out.txt"})}}]}


@pytest.mark.parametrize("decision", ["approve", "deny", None])
def test_proxy_waits_bounded_for_a_decision(tmp_path, decision):
    """With approvals.proxy_wait_s the proxy holds a REVIEWed tool call until a person decides:
    approved -> the call reaches the client; denied -> content_filter; nobody -> pending id."""
    with running_server(responder=_tool_reply) as up:
        srv, base = start(tmp_path, upstream=up, proxy_wait_s=1.5 if decision is None else 15)
        out: dict = {}

        def ask():
            out["r"] = httpx.post(base + "/v1/chat/completions", headers=h(AGENT), timeout=30,
                                  json={"model": "m", "messages": [{"role": "user", "content": "clean the build"}]}).json()

        try:
            th = threading.Thread(target=ask)
            th.start()
            pending: list = []
            assert wait_until(lambda: bool(pending.extend(httpx.get(
                base + "/v1/approvals", params={"status": "pending"}, headers=h(APPROVER)).json()["approvals"]) or pending))
            if decision is not None:
                httpx.post(f"{base}/v1/approvals/{pending[0]['id']}/{decision}", headers=h(APPROVER)).raise_for_status()
            th.join(30)
            r = out["r"]
            guard, choice = r["airisk_guard"], r["choices"][0]
            if decision == "approve":
                assert guard["blocked"] is False and choice["finish_reason"] != "content_filter"
                assert choice["message"]["tool_calls"][0]["function"]["name"] == "delete_file"
            else:
                assert guard["blocked"] is True and choice["finish_reason"] == "content_filter"
                assert ("approval.denied" in guard["rule_ids"]) == (decision == "deny")
                assert guard["approvals"] == [pending[0]["id"]]
                status = httpx.get(f"{base}/v1/approvals/{pending[0]['id']}", headers=h(APPROVER)).json()["status"]
                assert status == ("denied" if decision == "deny" else "pending")
        finally:
            srv.stop()


def test_proxy_without_wait_answers_at_once_with_the_pending_id(tmp_path):
    with running_server(responder=_tool_reply) as up:
        srv, base = start(tmp_path, upstream=up)
        try:
            r = httpx.post(base + "/v1/chat/completions", headers=h(AGENT), timeout=30,
                           json={"model": "m", "messages": [{"role": "user", "content": "clean the build"}]}).json()
            pending = httpx.get(base + "/v1/approvals", params={"status": "pending"}, headers=h(APPROVER)).json()["approvals"]
            assert r["airisk_guard"]["approvals"] == [pending[0]["id"]]
            assert r["choices"][0]["finish_reason"] == "content_filter"
        finally:
            srv.stop()
