"""``airisk run`` end to end: config files, bad input, and SIGKILL-then-resume in real processes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request

import pytest
from typer.testing import CliRunner

from airisk.cli import app
from airisk.store import Store
from airisk.testing import running_server
from airisk.testing.openai_server import free_port

runner = CliRunner()


def write_prompts(path, n, hazard="vcr"):
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"p{i:04d}", "prompt": f"question number {i}", "hazard": hazard}) + "\n")
    return path


def test_run_prints_per_hazard_summary(tmp_path):
    prompts = write_prompts(tmp_path / "p.jsonl", 6)
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    with running_server(responder=lambda b: "no") as url:
        res = runner.invoke(app, ["run", "--dataset", str(prompts), "--system", f"openai:model=m,base_url={url}",
                                  "--db", db, "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "vcr" in res.output and "run id:" in res.output
    run_id = res.output.split("run id:")[1].split()[0]
    res = runner.invoke(app, ["runs", "show", run_id, "--db", db])
    assert res.exit_code == 0 and "vcr" in res.output
    res = runner.invoke(app, ["runs", "list", "--db", db])
    assert run_id[:10] in res.output


def test_run_from_yaml_config(tmp_path):
    prompts = write_prompts(tmp_path / "p.jsonl", 5)
    db = f"sqlite:///{tmp_path / 'cfg.db'}"
    with running_server(responder=lambda b: "fine") as url:
        cfg = tmp_path / "run.yaml"
        cfg.write_text(f"dataset: {prompts}\nsystem:\n  type: openai\n  model: m\n  base_url: {url}\nlimit: 3\n"
                       f"concurrency: 2\n")
        res = runner.invoke(app, ["run", "--config", str(cfg), "--db", db, "--no-progress"])
    assert res.exit_code == 0, res.output
    store = Store(db)
    run = store.list_runs()[0]
    assert store.count_items(run.id) == 3 and run.config["limit"] == 3


@pytest.mark.parametrize("body, needle", [
    ("dataset: x.jsonl\nsystem: 'openai:model=m,api_key=sk-123'\n", "api_key_env"),
    ("dataset: x.jsonl\nsystem: python:target=a:b\nconcurency: 3\n", "concurency"),
    ("dataset: x.jsonl\nsystem: python:target=a:b\nconcurrency: -1\n", "concurrency"),
    ("dataset: [unclosed\n", "invalid YAML"),
])
def test_bad_config_is_one_clear_error(tmp_path, body, needle):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(body)
    res = runner.invoke(app, ["run", "--config", str(cfg), "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert res.exit_code != 0
    assert needle in str(res.exception) or needle in res.output
    assert "sk-123" not in res.output


def test_bad_dataset_row_names_file_and_line_and_keeps_existing_runs(tmp_path):
    db = f"sqlite:///{tmp_path / 'keep.db'}"
    good = write_prompts(tmp_path / "good.jsonl", 3)
    with running_server(responder=lambda b: "ok") as url:
        assert runner.invoke(app, ["run", "-d", str(good), "-s", f"openai:model=m,base_url={url}", "--db", db,
                                   "--no-progress"]).exit_code == 0
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"id": "a", "prompt": "fine"}\n{"id": "b", "prompt": "x", "hazard": "zzz"}\n')
        res = runner.invoke(app, ["run", "-d", str(bad), "-s", f"openai:model=m,base_url={url}", "--db", db])
        assert res.exit_code != 0
        msg = str(res.exception) + res.output
        assert "bad.jsonl" in msg and "2" in msg and "hazard" in msg
        # With --skip-bad the good row runs and the skip is reported.
        res = runner.invoke(app, ["run", "-d", str(bad), "-s", f"openai:model=m,base_url={url}", "--db", db,
                                  "--skip-bad", "--no-progress"])
        assert res.exit_code == 0, res.output
        assert "skipped 1" in res.output
    store = Store(db)
    assert len(store.list_runs()) == 2  # the first run is intact; the failed invocation stored nothing


def test_unknown_hazard_filter_lists_valid_codes(tmp_path):
    prompts = write_prompts(tmp_path / "p.jsonl", 2)
    res = runner.invoke(app, ["run", "-d", str(prompts), "-s", "python:target=x:y", "--hazards", "zzz",
                              "--db", f"sqlite:///{tmp_path / 'h.db'}"])
    assert res.exit_code != 0
    assert "vcr" in str(res.exception) + res.output


def _stats(url):
    return json.loads(urllib.request.urlopen(url.replace("/v1", "/_stats"), timeout=5).read())


@pytest.mark.slow
def test_sigkill_midway_then_resume_is_exact(tmp_path):
    n, concurrency = 120, 8
    prompts = write_prompts(tmp_path / "p.jsonl", n)
    dbfile = tmp_path / "kill.db"
    db = f"sqlite:///{dbfile}"
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "airisk.testing.openai_server", "--port", str(port),
                               "--latency", "0.1", "--rule", "refuse"], stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().split()[1]
        for _ in range(100):
            try:
                _stats(url)
                break
            except OSError:
                time.sleep(0.05)
        env = {**os.environ, "AIRISK_DB": db}
        cmd = [sys.executable, "-m", "airisk.cli", "run", "-d", str(prompts), "-s", f"openai:model=m,base_url={url}",
               "--concurrency", str(concurrency), "--no-progress"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stored = 0
        deadline = time.time() + 60
        while time.time() < deadline:
            time.sleep(0.05)
            if dbfile.exists():
                try:
                    with sqlite3.connect(dbfile, timeout=5) as con:
                        stored = con.execute("select count(*) from responses").fetchone()[0]
                except sqlite3.OperationalError:
                    continue
            if stored >= n // 3:
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert n // 3 <= stored < n, "the run must be killed midway"
        with sqlite3.connect(dbfile) as con:
            run_id, status = con.execute("select id, status from runs").fetchone()
            before = con.execute("select count(*) from responses").fetchone()[0]
        assert status == "running"  # killed: nobody could mark it
        res = subprocess.run([sys.executable, "-m", "airisk.cli", "run", "--resume", run_id, "--no-progress"],
                             env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        with sqlite3.connect(dbfile) as con:
            total = con.execute("select count(*) from responses where run_id=?", (run_id,)).fetchone()[0]
            dupes = con.execute("select item_id, count(*) c from responses group by item_id having c > 1").fetchall()
            status = con.execute("select status from runs").fetchone()[0]
            items = con.execute("select count(*) from items").fetchone()[0]
        assert total == n and items == n and dupes == [] and status == "completed"
        s = _stats(url)
        asked = s["requests"] - s["preflight"]
        assert asked <= n + concurrency, s
        assert before < n
    finally:
        server.kill()
        server.wait()


def test_limit_samples_round_robin_across_hazards(tmp_path):
    from airisk.engine.items import stratified_head
    from airisk.types import Item

    items = [Item(id=f"a{i}", prompt="p", hazard="cse") for i in range(5)] + \
            [Item(id=f"b{i}", prompt="p", hazard="dfm") for i in range(2)] + \
            [Item(id=f"c{i}", prompt="p", hazard="vcr") for i in range(5)]
    assert [i.id for i in stratified_head(items, 7)] == ["a0", "b0", "c0", "a1", "b1", "c1", "a2"]
    assert len(stratified_head(items, 100)) == 12
