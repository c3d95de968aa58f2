"""Item 5: a release gate never passes errors; `airisk gate`, the JUnit file and the report agree."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET

import pytest
from typer.testing import CliRunner

from airisk.cli import app
from airisk.engine.retry import RetryPolicy
from airisk.engine.runner import run_items
from airisk.errors import ConfigError
from airisk.reports.build import build_report
from airisk.scoring.gate import run_gate
from airisk.scoring.rates import score_run
from airisk.scoring.synthetic import build_run
from airisk.scoring.zones import default_policy, load_policy
from airisk.store import Store
from airisk.systems.openai_compat import OpenAISystem
from airisk.testing import Faults, MarkerJudge, running_server
from airisk.types import Item

runner = CliRunner()


@pytest.fixture
def store(tmp_path):
    return Store(f"sqlite:///{tmp_path}/g.db")


def test_error_heavy_run_fails_gate_report_and_junit_agree(tmp_path):
    """The issue's reproduction: 1,000 prompts, 85% injected HTTP 500s, max_retries 0."""
    db = f"sqlite:///{tmp_path / 'err.db'}"
    store = Store(db)
    items = [Item(id=f"p{i:04d}", prompt=f"question {i}", hazard="vcr") for i in range(1000)]
    with running_server(responder=lambda b: "I can't help with that.", faults=Faults(p500=0.85, seed=7)) as url:
        async def go():
            sut = OpenAISystem(model="m", base_url=url)
            try:
                return await run_items(store, sut, items, judge=MarkerJudge(), progress=False, concurrency=16,
                                       retry=RetryPolicy(max_retries=0))
            finally:
                await sut.aclose()
        run_id = asyncio.run(go())
    scores = score_run(store, run_id)
    errors = scores.overall.system_errors
    assert 700 < errors < 950 and scores.overall.judged == 1000 - errors and scores.overall.violating == 0

    junit = tmp_path / "gate.xml"
    res = runner.invoke(app, ["gate", run_id, "--db", db, "--junit", str(junit)])
    assert res.exit_code == 2, res.output
    assert "gate: RED" in res.output and f"{errors}/1000" in res.output and "error" in res.output
    root = ET.parse(junit).getroot()
    fails = [tc for tc in root.iter("testcase") if tc.find("failure") is not None]
    assert [tc.get("name") for tc in fails] == ["errors vcr"]
    assert f"{errors}/1000" in fails[0].find("failure").get("message")

    rep = build_report(store, run_id)
    assert rep["zones"]["zone"] == "red"
    assert rep["zones"]["hazards"]["vcr"]["zone"] == "red" and "error" in rep["zones"]["hazards"]["vcr"]["rule"]
    # one hazard of twelve: no overall grade (coverage first); the hazard's own row is red for its errors
    assert rep["headline"]["grade"] is None
    assert any(f"{errors}/1000" in why for why in rep["zones"]["error_reasons"])
    out = tmp_path / "rep"
    res = runner.invoke(app, ["report", run_id, "--db", db, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "zone: red" in res.output and f"{errors}/1000" in res.output
    assert f"{errors}/1000" in (out / "report.html").read_text()


def rows(errors: int, safe: int, hazard: str = "vcr", kind: str = "system_error"):
    return [{"hazard": hazard, "outcome": kind}] * errors + [{"hazard": hazard, "outcome": "safe"}] * safe


@pytest.mark.parametrize("kind", ["system_error", "judge_error"])
def test_one_error_fails_by_default(store, kind):
    build_run(store, "r", rows(1, 199, kind=kind))
    res = run_gate(score_run(store, "r"), default_policy())
    assert res.status == "red" and res.exit_code == 2
    assert any("errors vcr: 1/200" in r and "no errors allowed" in r for r in res.reasons)


def test_no_errors_passes(store):
    build_run(store, "r", rows(0, 200))
    assert run_gate(score_run(store, "r"), default_policy()).exit_code == 0


def test_explicit_allowance(store):
    build_run(store, "r", rows(3, 197) + rows(1, 99, hazard="cse"))
    pol = default_policy().model_dump()
    pol["errors"] = {"allow": {"vcr": 0.02}}  # cse has no allowance: its one error still fails
    res = run_gate(score_run(store, "r"), load_policy(pol))
    assert res.exit_code == 2
    by = {c.name: c for c in res.checks if c.classname == "airisk.gate.errors"}
    assert by["errors vcr"].zone == "green" and by["errors cse"].zone == "red"
    pol["errors"] = {"allow": {"physical": 0.05, "vcr": 0.02}}  # cse is in the physical group
    assert run_gate(score_run(store, "r"), load_policy(pol)).exit_code == 0
    pol["errors"] = {"max_share": 0.01, "zone": "yellow"}
    res = run_gate(score_run(store, "r"), load_policy(pol))
    assert res.status == "yellow" and "allowed 1.0%" in " ".join(res.reasons)


def test_all_errors_no_judgments_is_red_not_could_not_evaluate(store):
    build_run(store, "r", rows(50, 0))
    res = run_gate(score_run(store, "r"), default_policy())
    assert res.exit_code == 2 and "errors vcr: 50/50" in " ".join(res.reasons)
    assert build_report(store, "r")["zones"]["zone"] == "red"


@pytest.mark.parametrize("errors, msg", [
    ({"max_share": 2}, "errors.max_share"),
    ({"allow": {"nope": 0.1}}, "unknown hazard or group 'nope'"),
    ({"allow": {"vcr": -0.1}}, "between 0 and 1"),
    ({"zone": "green"}, "errors.zone"),
    ({"max_errors": 1}, "errors.max_errors: unknown field"),
])
def test_bad_error_rule_names_the_field(errors, msg):
    pol = default_policy().model_dump() | {"errors": errors}
    with pytest.raises(ConfigError, match=msg.replace(".", r"\.").replace("*", r"\*")):
        load_policy(pol)


def test_gate_json_of_report_matches(store, tmp_path):
    build_run(store, "r", rows(5, 95))
    rep = build_report(store, "r")
    res = run_gate(score_run(store, "r"), default_policy())
    assert (rep["zones"]["zone"], res.status) == ("red", "red")
    assert json.loads(json.dumps(rep["zones"]["errors"]))["vcr"]["zone"] == "red"
