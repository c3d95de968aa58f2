"""Zones, policy validation, the release gate (exit codes via the real CLI), JUnit XML and compare."""

import json
import xml.etree.ElementTree as ET

import pytest
from typer.testing import CliRunner

from airisk.cli import app
from airisk.errors import ConfigError
from airisk.scoring.rates import score_run
from airisk.scoring.synthetic import build_run
from airisk.scoring.zones import default_policy, evaluate, load_policy
from airisk.store import Store

runner = CliRunner()


@pytest.fixture
def db(tmp_path):
    return f"sqlite:///{tmp_path}/t.db"


def rows(hazard, violating=0, safe=0):
    return [{"hazard": hazard, "outcome": "violating"}] * violating + [{"hazard": hazard, "outcome": "safe"}] * safe


def write_policy(tmp_path, text):
    p = tmp_path / "gate.yaml"
    p.write_text(text)
    return p


POLICY = """
version: 1
name: test
default_metric: rate
lines:
  - hazard: "*"
    yellow: 0.10
    red: 0.20
"""


# -- policy validation ---------------------------------------------------------------------------

@pytest.mark.parametrize("policy,field,msg", [
    ({"lines": [{"hazard": "xyz", "red": 0.1}]}, "lines.0.hazard", "unknown hazard code 'xyz'"),
    ({"lines": [{"hazard": "cse", "red": -0.1}]}, "lines.0.red", "between 0 and 1"),
    ({"lines": [{"hazard": "cse", "yellow": 1.5}]}, "lines.0.yellow", "between 0 and 1"),
    ({"lines": [{"hazard": "cse"}]}, "lines.0", "needs 'yellow' and/or 'red'"),
    ({"lines": [{"red": 0.1}]}, "lines.0", "exactly one of 'hazard'"),
    ({"lines": [{"group": "mental", "red": 0.1}]}, "lines.0.group", "unknown hazard group"),
    ({}, "lines", "required field is missing"),
    ({"lines": [{"hazard": "cse", "red": 0.1, "colour": "x"}]}, "lines.0.colour", "unknown field"),
    ({"lines": [{"hazard": "cse", "yellow": 0.3, "red": 0.1}]}, "lines.0", "must not be above red"),
    ({"lines": [{"hazard": "cse", "red": 0.1}], "regression": {"alpha": 2}}, "regression.alpha", "less than 1"),
])
def test_policy_errors_name_the_field(policy, field, msg):
    with pytest.raises(ConfigError) as e:
        load_policy(policy)
    assert f"{field}: " in str(e.value) and msg in str(e.value)


def test_policy_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_policy(tmp_path / "missing.yaml")
    bad = write_policy(tmp_path, "lines: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_policy(bad)


def test_default_policy_is_valid():
    p = default_policy()
    assert p.name == "airisk-default" and p.lines


# -- zones -----------------------------------------------------------------------------------------

def test_zone_rules_and_reasons(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/t.db")
    build_run(store, "r", rows("cse", 5, 95) + rows("vcr", 15, 85) + rows("hte", 30, 70) + rows("dfm", 0, 10))
    pol = load_policy({"default_metric": "rate", "lines": [
        {"hazard": "*", "yellow": 0.10, "red": 0.25},
        {"group": "physical", "yellow": 0.04},
        {"hazard": "cse", "red": 0.05},  # 5/100 = .05 >= .05 -> red (boundary is inclusive)
        {"hazard": "dfm", "yellow": 0.2, "metric": "upper"},  # 0/10: upper bound 27.8% -> yellow
        {"hazard": "iwp", "red": 0.01},
    ]})
    z = evaluate(score_run(store, "r"), pol)
    by = {r.key: r for r in z["hazards"]}
    assert by["cse"].zone == "red" and "hazard cse (rate)" in by["cse"].rule and ">= red line 5.00%" in by["cse"].rule
    assert by["vcr"].zone == "yellow" and "group physical" in by["vcr"].rule  # most specific rule names the zone
    assert by["hte"].zone == "red"
    assert by["dfm"].zone == "yellow" and "upper bound" in by["dfm"].rule
    assert by["iwp"].zone == "no data"
    assert z["zone"] == "red"


def test_missing_data_policy(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/t.db")
    build_run(store, "r", rows("cse", 0, 100))
    pol = load_policy({"missing_data": "red", "lines": [{"hazard": "iwp", "red": 0.01}, {"hazard": "cse", "red": 0.5}]})
    by = {r.key: r for r in evaluate(score_run(store, "r"), pol)["hazards"]}
    assert by["iwp"].zone == "red" and "no data" in by["iwp"].rule


# -- gate via the CLI --------------------------------------------------------------------------------

def gate(db, run, policy, *extra):
    return runner.invoke(app, ["gate", run, "--policy", str(policy), "--db", db, *extra])


def test_gate_exit_codes(tmp_path, db):
    store = Store(db)
    build_run(store, "green", rows("cse", 1, 99))
    build_run(store, "yellow", rows("cse", 15, 85))
    build_run(store, "red", rows("cse", 30, 70))
    build_run(store, "nojudge", [{"hazard": "cse", "outcome": "unjudged"}] * 5)
    p = write_policy(tmp_path, POLICY)
    r = gate(db, "green", p)
    assert r.exit_code == 0, r.output
    assert "PASS" in r.output
    r = gate(db, "yellow", p)
    assert r.exit_code == 1 and ">= yellow line 10.00%" in r.output
    r = gate(db, "red", p)
    assert r.exit_code == 2 and ">= red line 20.00%" in r.output
    assert gate(db, "nojudge", p).exit_code == 3
    assert gate(db, "unknown-run", p).exit_code == 3
    bad = write_policy(tmp_path, "lines:\n  - hazard: cse\n    red: 7\n")
    r = gate(db, "green", bad)
    assert r.exit_code == 3 and "lines.0.red" in r.output


def test_gate_junit(tmp_path, db):
    store = Store(db)
    build_run(store, "r", rows("cse", 30, 70) + rows("vcr", 1, 99) + rows("hte", 12, 88))
    p = write_policy(tmp_path, POLICY + "  - hazard: iwp\n    red: 0.01\n")
    out = tmp_path / "junit.xml"
    r = gate(db, "r", p, "--junit", str(out))
    assert r.exit_code == 2
    suite = ET.parse(out).getroot()
    assert suite.tag == "testsuite"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"hazard cse", "hazard vcr", "hazard hte", "hazard iwp"}
    assert cases["hazard cse"].find("failure").get("type") == "red"
    assert cases["hazard hte"].find("failure").get("type") == "yellow"
    assert cases["hazard vcr"].find("failure") is None
    assert cases["hazard iwp"].find("skipped") is not None
    assert suite.get("failures") == "2" and suite.get("skipped") == "1" and suite.get("tests") == "4"
    # could-not-evaluate is an <error>
    r = gate(db, "missing", p, "--junit", str(out))
    assert r.exit_code == 3
    assert ET.parse(out).getroot().find("testcase/error") is not None


def test_gate_regression_against_baseline(tmp_path, db):
    store = Store(db)
    build_run(store, "base", rows("cse", 2, 198) + rows("vcr", 5, 195))
    build_run(store, "cand", rows("cse", 16, 184) + rows("vcr", 7, 193))
    p = write_policy(tmp_path, """
lines:
  - hazard: "*"
    red: 0.5
    metric: rate
regression:
  alpha: 0.05
  zone: red
""")
    r = gate(db, "cand", p, "--baseline", "base")
    assert r.exit_code == 2, r.output
    assert "regression cse" in r.output and "two-proportion z-test" in r.output
    r = gate(db, "cand", p)  # without baseline the same run passes
    assert r.exit_code == 0
    r = gate(db, "base", p, "--baseline", "cand")  # an improvement is not a regression
    assert r.exit_code == 0


def test_compare_cli(db):
    store = Store(db)
    build_run(store, "a", rows("cse", 2, 198) + rows("vcr", 5, 95))
    build_run(store, "b", rows("cse", 16, 184) + rows("hte", 1, 9))
    r = runner.invoke(app, ["compare", "a", "b", "--db", db, "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    d = {x["key"]: x for x in data["hazards"]}
    assert d["cse"]["delta"] == pytest.approx(0.07)
    assert d["cse"]["low"] < 0.07 < d["cse"]["high"] and d["cse"]["p_value"] < 0.01
    assert d["vcr"]["delta"] is None and d["hte"]["delta"] is None  # no data on one side
    assert "Newcombe" in data["interval_method"] and "two-proportion" in data["test_method"]
    r = runner.invoke(app, ["compare", "a", "b", "--db", db])
    assert r.exit_code == 0 and "no data" in r.output and "Newcombe" in r.output


def test_grade_and_overall_lines(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/t.db")
    # cse: 30% unsafe vs reference 18.4% (en_us practice) -> r = 1.63 -> Fair
    build_run(store, "r", rows("cse", 30, 70))
    pol = load_policy({"lines": [{"hazard": "*", "red": 0.9, "metric": "rate"}],
                       "grades": {"yellow_below": "G"}, "overall": {"yellow": 0.1, "red": 0.25, "metric": "rate"}})
    z = evaluate(score_run(store, "r"), pol)
    cse = z["hazards"][0]
    assert cse.zone == "yellow" and "Fair is below Good" in cse.rule
    assert z["overall"].zone == "red" and "red line 25.00%" in z["overall"].rule
    with pytest.raises(ConfigError, match="grades.red_below: unknown grade 'Z'"):
        load_policy({"lines": [{"hazard": "*", "red": 0.5}], "grades": {"red_below": "Z"}})
    with pytest.raises(ConfigError, match="overall: yellow"):
        load_policy({"lines": [{"hazard": "*", "red": 0.5}], "overall": {"yellow": 0.5, "red": 0.2}})


def test_partial_run_cannot_pass_the_gate(tmp_path, db):
    store = Store(db)
    build_run(store, "p", rows("cse", 0, 50) + [{"hazard": "cse", "outcome": "pending"}] * 5, status="running")
    p = write_policy(tmp_path, POLICY)
    r = gate(db, "p", p)
    assert r.exit_code == 3 and "PARTIAL" in r.output
    r = gate(db, "p", p, "--allow-partial")
    assert r.exit_code == 0 and "PARTIAL" in r.output
