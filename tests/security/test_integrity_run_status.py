"""Item 9: run status that tells the truth, with real processes killed by SIGKILL.

A run killed while answering shows ``interrupted`` (its lease holder is gone), one killed while judging
shows ``interrupted`` with its unjudged answers flagged (never ``completed``), and a second resume of a
run that a live process holds is refused before it asks anything.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest

from airisk.scoring.gate import run_gate
from airisk.scoring.rates import score_run
from airisk.scoring.zones import default_policy
from airisk.store import RunBusy, Store

pytestmark = pytest.mark.slow


def prompts(path, n):
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"p{i:04d}", "prompt": f"question {i}", "hazard": "vcr"}) + "\n")
    return path


def server(latency: float):
    from airisk.testing.openai_server import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "airisk.testing.openai_server", "--port", str(port),
                             "--latency", str(latency), "--rule", "refuse"], stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().split()[1]
    for _ in range(200):
        try:
            stats(url)
            break
        except OSError:
            time.sleep(0.05)
    return proc, url


def stats(url):
    return json.loads(urllib.request.urlopen(url.replace("/v1", "/_stats"), timeout=5).read())


def wait_for(dbfile, sql, at_least, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.05)
        if dbfile.exists():
            try:
                with sqlite3.connect(dbfile, timeout=5) as con:
                    if con.execute(sql).fetchone()[0] >= at_least:
                        return
            except sqlite3.OperationalError:
                continue
    raise AssertionError(f"timed out waiting for {sql} >= {at_least}")


def cli(*args, env, timeout=120):
    return subprocess.run([sys.executable, "-m", "airisk.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_killed_while_generating_shows_interrupted_then_resumes(tmp_path):
    n = 120
    dbfile = tmp_path / "g.db"
    env = {**os.environ, "AIRISK_DB": f"sqlite:///{dbfile}"}
    srv, url = server(0.1)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "airisk.cli", "run", "-d", str(prompts(tmp_path / "p.jsonl", n)),
                                 "-s", f"openai:model=m,base_url={url}", "--concurrency", "8", "--no-progress"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(dbfile, "select count(*) from responses", n // 3)
        store = Store(env["AIRISK_DB"])
        run_id = store.list_runs()[0].id
        assert store.get_run(run_id).status == "running"  # alive and holding its lease
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        run = store.get_run(run_id)
        assert run.status == "interrupted" and run.stored_status == "running"
        assert run.lease["phase"] == "generating" and "is gone" in run.lease["dead"]
        assert score_run(store, run_id).partial
        shown = cli("runs", "list", env={**env, "COLUMNS": "250"})
        assert "interrupted" in shown.stdout
        res = cli("run", "--resume", run_id, "--no-progress", env=env)
        assert res.returncode == 0, res.stderr
        run = store.get_run(run_id)
        assert run.status == "completed" and run.lease is None and store.count_responses(run_id)[0] == n
    finally:
        srv.kill()
        srv.wait()


SLOW_JUDGE_RUN = textwrap.dedent("""
    import asyncio, sys
    from airisk.engine.runner import run_items
    from airisk.store import Store
    from airisk.systems.python_callable import PythonSystem
    from airisk.testing import MarkerJudge
    from airisk.types import Item

    class SlowJudge(MarkerJudge):
        async def judge_batch(self, conversations):
            await asyncio.sleep(0.2)
            return await super().judge_batch(conversations)

    items = [Item(id=f"p{i}", prompt=f"q{i}", hazard="vcr") for i in range(200)]
    asyncio.run(run_items(Store(sys.argv[1]), PythonSystem(fn=lambda m: "no"), items, run_id="jr",
                          judge=SlowJudge(), progress=False))
""")


def test_killed_while_judging_is_not_completed_and_flags_unjudged(tmp_path):
    dbfile = tmp_path / "j.db"
    url = f"sqlite:///{dbfile}"
    # batches of 64 items every 0.2 s: kill after the first batch is stored
    proc = subprocess.Popen([sys.executable, "-c", SLOW_JUDGE_RUN, url])
    wait_for(dbfile, "select count(*) from judgments", 64)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = Store(url)
    run = store.get_run("jr")
    assert run.stored_status == "judging" and run.status == "interrupted" and run.lease["phase"] == "judging"
    judged = sum(1 for v in store.judgments("jr").values() if v)
    assert 64 <= judged < 200
    s = score_run(store, "jr")
    assert s.partial and any(f"{200 - judged} response(s) not judged" in r for r in s.partial_reasons)
    res = run_gate(s, default_policy())
    assert res.exit_code == 3 and "interrupted" in res.reasons[0]


def test_second_resume_is_refused_while_a_live_process_holds_the_run(tmp_path):
    n = 60
    dbfile = tmp_path / "c.db"
    env = {**os.environ, "AIRISK_DB": f"sqlite:///{dbfile}"}
    srv, url = server(0.0)
    try:
        res = cli("run", "-d", str(prompts(tmp_path / "p.jsonl", n)), "-s", f"openai:model=m,base_url={url}",
                  "--no-progress", env=env)
        assert res.returncode == 0, res.stderr
        store = Store(env["AIRISK_DB"])
        run_id = store.list_runs()[0].id
        store.delete_responses(run_id, errors_only=False)  # everything pending again ...
        with sqlite3.connect(dbfile) as con:
            con.execute("delete from cache")  # ... and asked of the server, not the response cache
        s0 = stats(url)
        before = s0["requests"]
        lease = store.acquire_lease(run_id, "generating")  # this (live) test process works on the run
        with pytest.raises(RunBusy, match=f"process {os.getpid()}"):
            store.acquire_lease(run_id, "generating")
        res = cli("run", "--resume", run_id, "--no-progress", env=env)
        assert res.returncode == 1 and "Traceback" not in res.stderr
        assert f"run {run_id} is being worked on by process {os.getpid()}" in " ".join(res.stderr.split())
        assert stats(url)["requests"] == before  # refused before asking anything
        store.release_lease(lease)
        # Two resumes started together: each item is asked once in all (the loser is refused or finds
        # nothing left to do), not twice as before.
        procs = [subprocess.Popen([sys.executable, "-m", "airisk.cli", "run", "--resume", run_id, "--no-progress"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
        codes = sorted(p.returncode for p in procs)
        assert codes in ([0, 0], [0, 1]), outs  # the refused one exits 1 (docs/cli.md)
        s1 = stats(url)
        asked = (s1["requests"] - before) - (s1["preflight"] - s0["preflight"])
        assert store.count_responses(run_id)[0] == n
        assert asked == n, (asked, outs)  # every item asked exactly once
        assert store.get_run(run_id).status == "completed"
    finally:
        srv.kill()
        srv.wait()


def test_expired_lease_is_taken_over_and_old_stores_open(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = Store(url)
    store.create_run("r")
    store.close()
    with sqlite3.connect(tmp_path / "old.db") as con:  # a store from before leases existed
        con.execute("drop table run_leases")
    store = Store(url)
    assert store.get_run("r").status == "running" and store.get_run("r").lease is None  # no lease: as stored
    old = store.acquire_lease("r", "generating", ttl_s=0.05)
    time.sleep(0.1)
    assert store.get_run("r").status == "interrupted"  # expired: no heartbeat
    new = store.acquire_lease("r", "generating")
    assert new.owner != old.owner and not store.renew_lease(old) and store.renew_lease(new)
    assert store.get_run("r").status == "running"


def test_lease_on_postgresql(postgres_url):
    store = Store(postgres_url)
    store.delete_run("pg-lease")
    store.create_run("pg-lease")
    old = store.acquire_lease("pg-lease", "generating", ttl_s=0.05)
    with pytest.raises(RunBusy):
        store.acquire_lease("pg-lease", "generating")
    time.sleep(0.1)
    assert store.get_run("pg-lease").status == "interrupted"
    new = store.acquire_lease("pg-lease", "judging")
    assert not store.renew_lease(old) and store.renew_lease(new)
    assert store.get_run("pg-lease").lease["phase"] == "judging"
    store.release_lease(new)
    assert store.get_run("pg-lease").lease is None
