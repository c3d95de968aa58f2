"""Item 6: a keyed audit chain (HMAC), a signed head checked by `verify --expect-head`, no silent empty
database on verify, and a lost head row recovered instead of failing every write."""

from __future__ import annotations

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from airisk.cli import app
from airisk.errors import ConfigError
from airisk.guard.audit import AuditLog, canonical, record_hash

KEY = "k" * 32
runner = CliRunner()
FIELDS = ("seq", "record_id", "ts", "kind", "principal", "verdict", "payload")


def sql(db, *stmts):
    con = sqlite3.connect(db)
    for st in stmts:
        con.execute(*st) if isinstance(st, tuple) else con.execute(st)
    con.commit()
    con.close()


@pytest.fixture
def keyed(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRISK_AUDIT_KEY", KEY)
    db = tmp_path / "audit.db"
    lg = AuditLog(f"sqlite:///{db}")
    for i in range(6):
        lg.append("action", {"i": i}, principal="alice", verdict="ALLOW")
    return lg, db


def rewrite_from(db, start: int, key: bytes | None = None):
    """What an attacker with write access to the database does: edit record `start` and recompute every
    hash after it (and the head row) - with SHA-256, or with a key of their own choosing."""
    con = sqlite3.connect(db)
    rows = con.execute(f"select {', '.join(FIELDS)}, prev_hash from guard_audit order by seq").fetchall()
    prev = rows[start - 2][-1] if start > 1 else "0" * 64
    prev_hash = con.execute("select hash from guard_audit where seq=?", (start - 1,)).fetchone()
    prev = prev_hash[0] if prev_hash else "0" * 64
    for r in rows[start - 1:]:
        f = dict(zip(FIELDS, r[:-1]))
        if f["seq"] == start:
            f["verdict"] = "BLOCK"
        h = record_hash(prev, f, key)
        con.execute("update guard_audit set verdict=?, prev_hash=?, hash=? where seq=?", (f["verdict"], prev, h, f["seq"]))
        prev = h
    con.execute("update guard_audit_head set last_hash=? where id=1", (prev,))
    con.commit()
    con.close()


def test_unkeyed_chain_can_be_rewritten_keyed_cannot(tmp_path, keyed, monkeypatch):
    # unkeyed: a full rewrite passes verify (why the key exists) ...
    monkeypatch.delenv("AIRISK_AUDIT_KEY")
    plain = AuditLog(f"sqlite:///{tmp_path / 'plain.db'}")
    for i in range(4):
        plain.append("action", {"i": i})
    rewrite_from(tmp_path / "plain.db", 2)
    assert plain.verify().ok
    # ... keyed: the same rewrite (with SHA-256 or a guessed key) is caught at the first rewritten record
    monkeypatch.setenv("AIRISK_AUDIT_KEY", KEY)
    lg, db = keyed
    rewrite_from(db, 3, key=b"attacker-chosen-key-0000")
    rep = lg.verify()
    assert not rep.ok and rep.keyed and {(p["problem"], p["seq"]) for p in rep.problems} >= {("edited", 3)}


def test_key_never_stored_and_required(keyed, monkeypatch):
    lg, db = keyed
    assert KEY.encode() not in db.read_bytes()
    assert lg.verify().ok and lg.verify().keyed
    monkeypatch.delenv("AIRISK_AUDIT_KEY")
    with pytest.raises(ConfigError, match="keyed .*AIRISK_AUDIT_KEY"):
        AuditLog(lg.url, create=False).verify()
    with pytest.raises(ConfigError, match="keyed"):
        AuditLog(lg.url)  # a writer without the key would weaken the chain: refused at start
    with pytest.raises(ConfigError, match="not the key of this log"):
        AuditLog(lg.url, key="another-key-of-32-bytes-........")
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        AuditLog(lg.url, key="short")


def test_key_from_file(tmp_path, monkeypatch):
    monkeypatch.delenv("AIRISK_AUDIT_KEY", raising=False)
    kf = tmp_path / "key"
    kf.write_text(KEY + "\n")
    monkeypatch.setenv("AIRISK_AUDIT_KEY_FILE", str(kf))
    lg = AuditLog(f"sqlite:///{tmp_path / 'a.db'}")
    lg.append("action", {"x": 1})
    assert AuditLog(lg.url, key=KEY, create=False).verify().ok  # the same key, given directly


def test_deleting_the_key_record_or_downgrading_it_is_detected(keyed):
    lg, db = keyed
    sql(db, "update guard_audit_meta set keyed_from_seq=100")  # claim the records are unkeyed
    rep = lg.verify()
    assert not rep.ok and rep.problems[0]["problem"] == "key_record_altered"
    sql(db, "delete from guard_audit_meta")
    rep = AuditLog(lg.url, create=False).verify()
    assert not rep.ok and rep.problems[0]["problem"] == "unkeyed"


def test_an_unkeyed_log_gets_keyed_from_the_next_record(tmp_path, monkeypatch):
    monkeypatch.delenv("AIRISK_AUDIT_KEY", raising=False)
    url = f"sqlite:///{tmp_path / 'a.db'}"
    old = AuditLog(url)
    for i in range(3):
        old.append("action", {"i": i})
    lg = AuditLog(url, key=KEY)
    lg.append("action", {"i": 3})
    rep = lg.verify()
    assert rep.ok and rep.keyed and any("seq=1..3" in w and "unkeyed" in w for w in rep.warnings)


def test_signed_head_detects_deleting_everything(keyed, tmp_path):
    lg, db = keyed
    head = tmp_path / "head.json"
    r = runner.invoke(app, ["audit", "head", "--db", lg.url, "--out", str(head)])
    assert r.exit_code == 0, r.output
    h = json.loads(head.read_text())
    assert h["seq"] == 6 and h["sig"] and h["key_id"] == lg.key_id and KEY not in head.read_text()
    lg.append("action", {"later": True})  # the log may grow after the export
    r = runner.invoke(app, ["audit", "verify", "--db", lg.url, "--expect-head", str(head)])
    assert r.exit_code == 0 and "expected head seq=6 present" in r.output
    # delete every record and the head row: "ok: 0 records" before; now the head says otherwise
    sql(db, "delete from guard_audit", "delete from guard_audit_head")
    r = runner.invoke(app, ["audit", "verify", "--db", lg.url, "--expect-head", str(head)])
    assert r.exit_code == 1 and "head_not_found" in r.output
    # a forged head (edited seq) is refused
    h["seq"] = 0
    head.write_text(json.dumps(h))
    r = runner.invoke(app, ["audit", "verify", "--db", lg.url, "--expect-head", str(head)])
    assert r.exit_code == 1 and "head_forged" in r.output


def test_head_mismatch_after_rewrite_with_the_unkeyed_hash(tmp_path, monkeypatch):
    monkeypatch.delenv("AIRISK_AUDIT_KEY", raising=False)
    lg = AuditLog(f"sqlite:///{tmp_path / 'p.db'}")
    for i in range(4):
        lg.append("action", {"i": i})
    head = lg.signed_head()
    assert head["sig"] is None
    rewrite_from(tmp_path / "p.db", 2)
    assert lg.verify().ok  # undetectable without the key ...
    rep = lg.verify(expect_head=head)
    assert not rep.ok and rep.problems[0]["problem"] == "head_mismatch"  # ... but not with an exported head


def test_verify_never_creates_a_database(tmp_path):
    missing = tmp_path / "typo.db"
    r = runner.invoke(app, ["audit", "verify", "--db", f"sqlite:///{missing}"])
    assert r.exit_code != 0 and "no audit database" in str(r.exception)
    assert not missing.exists()


def test_deleted_head_row_recovers_with_a_record_saying_so(keyed):
    lg, db = keyed
    sql(db, "delete from guard_audit_head")
    rep = lg.verify()
    assert not rep.ok and rep.problems[0]["problem"] == "head_missing"
    rec = lg.append("action", {"after": "head lost"})  # today: IntegrityError on every write (HTTP 500)
    assert rec.seq == 8
    rows = lg.query(limit=20)
    assert rows[6]["kind"] == "audit_recovered" and rows[6]["payload"]["resumed_after_seq"] == 6
    rep = lg.verify()
    assert rep.ok and any("head was recovered" in w for w in rep.warnings)
    lg.append("action", {"next": 1})
    assert lg.verify().ok and lg.count() == 9


def test_service_survives_a_deleted_head_row(tmp_path, monkeypatch):
    """Through the HTTP service: guard requests keep getting audited after the head row is deleted."""
    monkeypatch.setenv("AIRISK_AUDIT_KEY", KEY)
    from fastapi.testclient import TestClient

    from airisk.guard.content import ContentGuard
    from airisk.guard.service import ServiceConfig, create_app

    db = tmp_path / "svc.db"
    client = TestClient(create_app(ServiceConfig(require_auth=False, audit_url=f"sqlite:///{db}"),
                                   content_guard=ContentGuard(scorer=object())))  # no model: actions only
    body = {"tool": "shell", "arguments": {"command": "ls"}, "role": "developer"}
    assert client.post("/v1/guard/action", json=body).status_code == 200
    sql(db, "delete from guard_audit_head")
    for _ in range(3):
        assert client.post("/v1/guard/action", json=body).status_code == 200
    assert AuditLog(f"sqlite:///{db}", create=False).verify().ok


def test_canonical_is_stable():
    assert canonical({"b": 1, "a": [1, "é"]}) == '{"a":[1,"é"],"b":1}'
