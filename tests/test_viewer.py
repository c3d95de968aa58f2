"""The viewer's JSON API, pages, token, exports, `--json` outputs and honest headlines (no browser)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from airisk.cli import app as cli_app
from airisk.errors import AiriskError
from airisk.reports import headline as hl
from airisk.reports.write import write_report
from airisk.store import Store
from airisk.testing.viewer_runs import HOSTILE, NEEDLE, live_run, sample_runs
from airisk.viewer import data
from airisk.viewer.app import CSP, check_bind, create_app


@pytest.fixture
def store(tmp_path):
    st = Store(f"sqlite:///{tmp_path}/v.db")
    sample_runs(st)
    return st


@pytest.fixture
def client(store):
    return TestClient(create_app(store))


def ids(res) -> list[str]:
    return [r["item_id"] for r in res["items"]]


# -- items: search, filters, pages -----------------------------------------------------------------


@pytest.mark.parametrize("params, expected", [
    ({"search": NEEDLE}, ["bench-3", "bench-7"]),
    ({"search": NEEDLE[:5].upper()}, ["bench-3", "bench-7"]),  # prefix, any case
    ({"search": "prompt 1 about"}, ["bench-1"]),  # a phrase, in the prompt
    ({"search": "response 1 mentions"}, []),  # words in another order/position do not match
    ({"hazard": "cse", "verdict": "violating"}, ["bench-0", "bench-15"]),
    ({"verdict": "system_error"}, ["bench-29"]),
    ({"error_kind": "http_500"}, ["bench-29"]),
    ({"pmin": "0.2", "pmax": "0.25"}, ["bench-11", "bench-12", "bench-13", "bench-14"]),
    ({"refusal": "full_refusal", "hazard": "vcr"}, ["bench-4", "bench-16", "bench-28"]),
    ({"persona": "normal", "verdict": "violating"}, ["bench-0", "bench-10", "bench-20"]),
    ({"search": "response", "hazard": "hte", "verdict": "violating"}, ["bench-5", "bench-20"]),
])
def test_item_filters_return_exactly_the_matching_items(client, params, expected):
    res = client.get("/api/runs/bench-a/items", params=params).json()
    assert sorted(ids(res), key=lambda s: int(s.split("-")[1])) == expected and res["total"] == len(expected)


def test_search_of_a_running_run_uses_substring_matching(store, client):
    live_run(store, "live-x", answered=3, total=6)
    res = client.get("/api/runs/live-x/items", params={"search": "ANSWER 2"}).json()
    assert ids(res) == ["live-2"]
    res = client.get("/api/runs/live-x/items", params={"search": "100%_"}).json()  # LIKE wildcards are literal
    assert res["total"] == 0
    res = client.get("/api/runs/live-x/items", params={"verdict": "pending"}).json()
    assert ids(res) == ["live-3", "live-4", "live-5"]
    res = client.get("/api/runs/live-x/items", params={"verdict": "unjudged"}).json()
    assert ids(res) == ["live-0", "live-1", "live-2"]


def test_search_index_follows_the_run_when_it_changes(store, client):
    from airisk.types import Completion, Item

    assert client.get("/api/runs/bench-a/items", params={"search": "quokka"}).json()["total"] == 0
    store.add_items("bench-a", [Item(id="late", prompt="a quokka appears", hazard="cse")], start_seq=100)
    store.save_responses("bench-a", [("late", Completion(text="ok"))])
    assert ids(client.get("/api/runs/bench-a/items", params={"search": "quokka"}).json()) == ["late"]


def test_pages_and_bad_parameters(client):
    res = client.get("/api/runs/bench-a/items", params={"per_page": 7, "page": 5}).json()
    assert res["pages"] == 5 and ids(res) == ["bench-28", "bench-29"]
    for params, word in (({"verdict": "maybe"}, "verdict"), ({"pmin": "x"}, "pmin"), ({"pmax": 2}, "pmax"),
                         ({"page": 0}, "page"), ({"per_page": 10_000}, "per_page")):
        r = client.get("/api/runs/bench-a/items", params=params)
        assert r.status_code == 400 and word in r.json()["error"]
    assert client.get("/api/runs/nope").status_code == 404
    r = client.get("/runs/bench-a/items?verdict=maybe")
    assert r.status_code == 400 and "verdict must be one of" in r.text


def test_item_detail_has_every_judgment_lineage_and_trajectory(client):
    d = client.get("/api/runs/redteam-1/items/rt-1-base64").json()
    assert d["lineage"]["seed_id"] == "seed-1" and d["lineage"]["chain"][0]["name"] == "base64"
    d = client.get("/api/runs/redteam-1/items/rt-0-crescendo").json()
    assert [t["role"] for t in d["turns"]] == ["user", "assistant"] * 3
    d = client.get("/api/runs/agent-1/items/scenario-1").json()
    assert d["trajectory"]["calls"][1]["gate"]["verdict"] == "DENY" and d["outcome"]["blocked_calls"] == 1
    d = client.get("/api/runs/bench-a/items/bench-0").json()
    assert d["response"]["text"] == HOSTILE and d["judgments"][0]["reason"] == "reason for bench-0"


def test_compare_deltas_and_flips(client):
    c = client.get("/api/compare", params=[("runs", "bench-a"), ("runs", "bench-b")]).json()
    assert c["flips"][0]["total"] == 3
    assert {(f["item_id"], f["a"], f["b"]) for f in c["flips"][0]["items"]} == {
        ("bench-1", "non_violating", "violating"), ("bench-2", "non_violating", "violating"), ("bench-5", "violating", "non_violating")}
    hte = next(h for h in c["hazards"] if h["hazard"] == "hte")
    assert (hte["runs"][0]["k"], hte["runs"][1]["k"]) == (2, 2)
    vcr = next(h for h in c["hazards"] if h["hazard"] == "vcr")
    d = vcr["deltas"][0]
    assert d["delta"] == pytest.approx(1 / 10) and d["low"] < d["delta"] < d["high"]
    assert client.get("/api/compare", params={"runs": "bench-a"}).status_code == 400


# -- safety: CSP, escaping, token -------------------------------------------------------------------


def test_every_page_is_escaped_and_has_a_strict_csp(client):
    for url in ("/", "/runs/bench-a", "/runs/bench-a/items", "/runs/bench-a/items/bench-0", "/judges",
                "/compare?runs=bench-a&runs=bench-b", "/api/runs", "/static/viewer.js"):
        r = client.get(url)
        assert r.status_code == 200, url
        assert r.headers["content-security-policy"] == CSP and "'unsafe-inline'" not in CSP
        assert "<script>window.__pwned" not in r.text and "<img src=x" not in r.text
    html = client.get("/runs/bench-a/items/bench-0").text
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert " on" not in "".join(t.split(">")[0] for t in html.split("<")[1:] if not t.startswith(("/", "!")))  # no on*= attributes
    assert "<script>" not in html.replace('<script src="/static/viewer.js" defer></script>', "")


def test_token_guards_api_and_pages(store):
    c = TestClient(create_app(store, token="s3cret"), follow_redirects=False)
    assert c.get("/api/runs").status_code == 401
    assert c.get("/api/runs", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert c.get("/api/runs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    r = c.get("/runs/bench-a")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert c.post("/login", data={"token": "wrong", "next": "/runs/bench-a"}).status_code == 401
    r = c.post("/login", data={"token": "s3cret", "next": "/runs/bench-a"})
    assert r.status_code == 303 and r.headers["location"] == "/runs/bench-a"
    assert c.get("/runs/bench-a").status_code == 200  # the cookie now carries the token
    r = c.post("/login", data={"token": "s3cret", "next": "//evil.example/"})
    assert r.headers["location"] == "/"  # no open redirect


def test_non_loopback_bind_needs_a_token():
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "t")
    with pytest.raises(AiriskError, match="--token"):
        check_bind("0.0.0.0", None)
    res = CliRunner().invoke(cli_app, ["view", "--host", "0.0.0.0", "--port", "1"], env={"AIRISK_VIEW_TOKEN": ""})
    assert isinstance(res.exception, AiriskError) and "--token" in str(res.exception)


# -- exports ----------------------------------------------------------------------------------------


def test_export_cli_jsonl_and_csv(store, tmp_path):
    db = store.url
    r = CliRunner().invoke(cli_app, ["export", "redteam-1", "--format", "jsonl", "--out", str(tmp_path / "rt.jsonl"), "--db", db])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (tmp_path / "rt.jsonl").read_text().splitlines()]
    assert len(rows) == 18 and rows[1]["lineage"]["chain"] == [{"name": "base64", "params": {}}]
    assert rows[1]["judgments"]["marker"]["label"] == "violating"
    r = CliRunner().invoke(cli_app, ["export", "bench-a", "-f", "csv", "-o", str(tmp_path / "a.csv"), "--db", db])
    assert r.exit_code == 0, r.output
    table = list(csv.DictReader(io.StringIO((tmp_path / "a.csv").read_text())))
    assert len(table) == 30 and table[0]["response"] == HOSTILE and table[0]["judge.marker.probability"] == "0.9"
    r = CliRunner().invoke(cli_app, ["export", "bench-a", "-f", "xml", "--db", db])
    assert isinstance(r.exception, AiriskError) and "jsonl, csv, parquet" in str(r.exception)


def test_parquet_export_says_clearly_when_pyarrow_is_missing(store, tmp_path):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        r = CliRunner().invoke(cli_app, ["export", "bench-a", "-f", "parquet", "--db", store.url, "-o", str(tmp_path / "x.parquet")])
        assert isinstance(r.exception, AiriskError) and "needs pyarrow" in str(r.exception)
        assert not (tmp_path / "x.parquet").exists()
        return
    r = CliRunner().invoke(cli_app, ["export", "bench-a", "-f", "parquet", "--db", store.url, "-o", str(tmp_path / "x.parquet")])
    assert r.exit_code == 0 and pq.read_table(tmp_path / "x.parquet").num_rows == 30


# -- status, --json ---------------------------------------------------------------------------------


def _age_run(store, run_id: str, hours: float) -> None:
    from sqlalchemy import update

    from airisk.store.schema import JudgmentRow, ResponseRow, RunRow

    then = datetime.now(timezone.utc) - timedelta(hours=hours)
    with store.engine.begin() as c:
        c.execute(update(RunRow).where(RunRow.id == run_id).values(updated_at=then, created_at=then))
        for t in (ResponseRow, JudgmentRow):
            c.execute(update(t).where(t.run_id == run_id).values(created_at=then))


def test_a_running_run_with_no_activity_is_interrupted(store):
    assert hl.effective_status(store, store.get_run("live-1")) == "running"
    _age_run(store, "live-1", 2)
    assert hl.effective_status(store, store.get_run("live-1")) == "interrupted"
    assert hl.effective_status(store, store.get_run("bench-a")) == "completed"
    out = CliRunner().invoke(cli_app, ["runs", "list", "--json", "--db", store.url])
    doc = json.loads(out.output)
    assert doc["schema"] == "airisk.runs/1"
    by_id = {r["id"]: r for r in doc["runs"]}
    assert by_id["live-1"]["status"] == "interrupted" and by_id["live-1"]["stored_status"] == "running"
    assert by_id["bench-a"]["status"] == "partial"  # completed with one system error
    assert by_id["bench-a"]["system_spec"] == {"type": "openai", "model": "acme-chat-7b", "host": "127.0.0.1:8000",
                                               "label": "openai · acme-chat-7b · 127.0.0.1:8000"}
    rep = write_report(store, "live-1", store.url and __import__("pathlib").Path(store.engine.url.database).parent / "rep")
    assert rep["report"]["meta"]["status"] == "interrupted" and "interrupted" in rep["html"].read_text()


def test_json_flags_have_schemas(store):
    run = CliRunner()
    doc = json.loads(run.invoke(cli_app, ["runs", "show", "bench-a", "--json", "--db", store.url]).output)
    assert doc["schema"] == "airisk.run/1" and doc["hazards"]["cse"]["items"] == 10
    doc = json.loads(run.invoke(cli_app, ["hazards", "list", "--json"]).output)
    assert doc["schema"] == "airisk.hazards/1" and len(doc["hazards"]) >= 12 and {"code", "name", "group"} <= doc["hazards"][0].keys()
    doc = json.loads(run.invoke(cli_app, ["datasets", "list", "--json", "--no-count"]).output)
    assert doc["schema"] == "airisk.datasets/1" and all({"name", "version", "path"} <= d.keys() for d in doc["datasets"])
    res = run.invoke(cli_app, ["gate", "bench-a", "--json", "--db", store.url])
    doc = json.loads(res.output)
    assert doc["schema"] == "airisk.gate/1" and doc["exit_code"] == res.exit_code and doc["checks"]


# -- honest headlines -------------------------------------------------------------------------------


def test_report_headline_states_coverage_and_names_the_model(store, tmp_path):
    res = write_report(store, "bench-a", tmp_path / "a")
    rep, html = res["report"], res["html"].read_text()
    assert rep["headline"]["grade"] is None and rep["headline"]["coverage"]["text"] == "graded on 3 of 12 hazards"
    assert "graded on 3 of 12 hazards" in html and "withheld" in html
    assert "<title>airisk report · openai · acme-chat-7b · 127.0.0.1:8000 · bench-a</title>" in html
    folder = sum(p.stat().st_size for p in (tmp_path / "a").iterdir())
    assert folder < 100_000 and "<script" not in html  # inline SVG charts: no 4.8 MB of Plotly


def test_report_grades_overall_only_with_full_coverage(tmp_path):
    from airisk.scoring import grading
    from airisk.scoring.synthetic import build_run

    st = Store(f"sqlite:///{tmp_path}/full.db")
    keys = sorted(grading.get_reference().safe_rates)
    build_run(st, "full", [{"hazard": k, "outcome": "safe"} for k in keys for _ in range(100)])
    rep = write_report(st, "full", tmp_path / "f", min_items=100)["report"]
    assert rep["headline"]["coverage"]["complete"] and rep["headline"]["grade"]["label"] == "Excellent"


@pytest.mark.parametrize("run_id, words", [
    ("redteam-1", ["Attack success", "un-mutated baseline", "largest uplift", "Not graded against a chat-model reference"]),
    ("agent-1", ["Unsafe actions in 37.5%", "task completed in 50.0%", "Not graded against a chat-model reference"]),
])
def test_redteam_and_agent_reports_headline_their_own_rates(store, tmp_path, run_id, words):
    res = write_report(store, run_id, tmp_path / run_id)
    html = res["html"].read_text()
    head = html[html.index('id="headline"'):html.index("</p>", html.index('id="headline"'))]
    for w in words:
        assert w in head
    assert res["report"]["headline"]["grade"] is None and "AILuminate-style grade" not in html[:html.index("<h2>")]
    ov = data.run_overview(store, run_id)
    assert ov["headline"]["kind"]["kind"] == res["report"]["headline"]["kind"]["kind"]


def test_viewer_and_report_agree_on_rates(store, tmp_path):
    rep = write_report(store, "bench-a", tmp_path / "a")["report"]
    ov = data.run_overview(store, "bench-a")
    assert [(h["key"], h["violating"], h["judged"]) for h in rep["hazards"]] == \
        [(h["key"], h["violating"], h["judged"]) for h in ov["hazards"]]
    assert ov["headline"]["coverage"] == rep["headline"]["coverage"]


# -- PostgreSQL -------------------------------------------------------------------------------------


def test_viewer_queries_on_postgresql(postgres_url):
    st = Store(postgres_url)
    for rid in ("bench-a", "bench-b", "redteam-1", "agent-1", "live-1"):
        try:
            st.delete_run(rid)
        except AiriskError:
            pass
    sample_runs(st)
    c = TestClient(create_app(st))
    res = c.get("/api/runs/bench-a/items", params={"search": NEEDLE.upper()}).json()  # ILIKE path
    assert sorted(ids(res)) == ["bench-3", "bench-7"]
    res = c.get("/api/runs/redteam-1/items", params={"attack": "base64", "verdict": "violating"}).json()
    assert sorted(ids(res)) == ["rt-0-base64", "rt-1-base64", "rt-2-base64", "rt-3-base64"]
    assert c.get("/api/compare", params=[("runs", "bench-a"), ("runs", "bench-b")]).json()["flips"][0]["total"] == 3
    assert c.get("/runs/bench-a").status_code == 200 and c.get("/runs/agent-1/items/scenario-1").status_code == 200
    assert c.get("/runs/bench-a/export.csv").text.count("\n") == 31


def test_runs_page_filters_and_sorts(client):
    html = client.get("/?kind=redteam").text
    assert "redteam-1" in html and "bench-a" not in html
    order = lambda h: [i for i in ("agent-1", "bench-a", "bench-b", "live-1", "redteam-1") if f'data-run="{i}"' in h]  # noqa: E731
    asc = client.get("/?sort=items&desc=false").text
    desc = client.get("/?sort=items&desc=false&desc=true").text  # what the form sends with the box ticked
    pos = lambda h, i: h.index(f'data-run="{i}"')  # noqa: E731
    assert pos(asc, "agent-1") < pos(asc, "bench-a") and pos(desc, "bench-a") < pos(desc, "agent-1")
    assert len(order(client.get("/?q=acme").text)) == 4  # every run of the openai model, not the agent
    assert client.get("/api/runs?sort=bogus").status_code == 400
