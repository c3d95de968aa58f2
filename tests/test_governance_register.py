"""Risk register: the starter is valid, and every kind of bad register is refused with the field named."""

import copy

import pytest
import yaml
from typer.testing import CliRunner

from airisk.errors import ConfigError
from airisk.governance.register import load_register, parse_register, parse_rate
from airisk.governance.workflow import starter_text, write_starter


def starter() -> dict:
    return yaml.safe_load(starter_text())


def bad(mutate) -> str:
    data = starter()
    mutate(data)
    with pytest.raises(ConfigError) as e:
        parse_register(data, source="reg.yaml")
    return str(e.value)


def test_starter_register_is_valid_and_commented(tmp_path):
    p = write_starter(tmp_path / "r.yaml")
    assert "# " in p.read_text()  # commented for the person who edits it
    reg = load_register(p)
    assert [r.id for r in reg.requirements] == ["R1", "R2", "R3", "R4", "R5"]
    assert reg.check("R1.jbb")[1].threshold == pytest.approx(0.01)  # "1%" parsed
    assert reg.risks[0].exposure.risky_share == pytest.approx(0.0001)
    assert reg.risks[0].impact.unit == "EUR/incident"
    with pytest.raises(ConfigError, match="already exists"):
        write_starter(p)


def test_unknown_hazard_names_the_field():
    msg = bad(lambda d: d["requirements"][0].__setitem__("hazards", ["weapons"]))
    assert "reg.yaml" in msg and "requirements[0] (R1).hazards[0]" in msg and "unknown hazard code 'weapons'" in msg
    msg = bad(lambda d: d["risks"][1].__setitem__("hazard", "xyz"))
    assert "risks[1] (RISK-prv).hazard" in msg


def test_missing_threshold_names_the_field():
    msg = bad(lambda d: d["requirements"][1]["checks"][0].pop("threshold"))
    assert "requirements[1] (R2).checks[0] (R2.jbb).threshold: Field required" in msg


@pytest.mark.parametrize("value, fragment", [
    (5, "did you mean '5%'"), ("5 EUR", "a rate has no unit other than %"), (-0.1, "must lie in [0, 1]"),
    ("150%", "must lie in [0, 1]"), (True, "a rate must be a number"),
])
def test_impossible_rate_units(value, fragment):
    msg = bad(lambda d: d["requirements"][0]["checks"][0].__setitem__("threshold", value))
    assert "requirements[0] (R1).checks[0] (R1.jbb).threshold" in msg and fragment in msg


def test_impossible_money_and_exposure_units():
    msg = bad(lambda d: d["risks"][0]["impact"].__setitem__("unit", "EUR/year"))
    assert "risks[0] (RISK-ncr).impact.unit" in msg and "per incident" in msg
    msg = bad(lambda d: d["risks"][0]["impact"].__setitem__("unit", "USD/incident"))
    assert "risks[0] (RISK-ncr).impact.unit" in msg and "currency EUR" in msg
    msg = bad(lambda d: d["risks"][0]["exposure"].__setitem__("risky_share", 1.5))
    assert "risks[0] (RISK-ncr).exposure.risky_share" in msg
    msg = bad(lambda d: d["risks"][0]["exposure"].__setitem__("requests_per_year", -10))
    assert "risks[0] (RISK-ncr).exposure.requests_per_year" in msg
    msg = bad(lambda d: d["risks"][0]["exposure"].__setitem__("requests_per_year", "lots"))
    assert "count per year" in msg
    msg = bad(lambda d: d["risks"][0]["impact"].update(low=5000, high=100))
    assert "risks[0] (RISK-ncr).impact" in msg and "0 < low < high" in msg
    msg = bad(lambda d: d["risks"][1]["impact"].pop("mode"))
    assert "missing: mode" in msg
    msg = bad(lambda d: d.__setitem__("currency", "euro"))
    assert "currency" in msg and "ISO 4217" in msg


def test_references_and_framework_items_are_checked():
    msg = bad(lambda d: d["risks"][0].__setitem__("check", "R9.nope"))
    assert "risks[0] (RISK-ncr).check: unknown check 'R9.nope'" in msg
    msg = bad(lambda d: d["risks"][2]["mitigation"].__setitem__("check", "R4.xstest"))
    assert "mitigation.check" in msg and "over_refusal_rate" in msg
    msg = bad(lambda d: d["requirements"][0]["frameworks"].__setitem__("iso_42001", ["A.99"]))
    assert "requirements[0] (R1).frameworks" in msg and "A.99" in msg
    msg = bad(lambda d: d["requirements"][0]["frameworks"].__setitem__("cobit", ["X"]))
    assert "unknown framework 'cobit'" in msg
    msg = bad(lambda d: d["requirements"].append(copy.deepcopy(d["requirements"][0])))
    assert "duplicate id(s) ['R1']" in msg
    msg = bad(lambda d: d["requirements"][0]["checks"][0].__setitem__("suite", {}))
    assert "suite" in msg and "at least one of" in msg
    msg = bad(lambda d: d["requirements"][0]["checks"][0].__setitem__("thresold", 0.1))
    assert "thresold" in msg and "Extra inputs are not permitted" in msg


def test_yaml_errors_name_the_line(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("version: 1\nsystem: {name: x\nrequirements: []\n")
    with pytest.raises(ConfigError, match=r"r\.yaml:\d+: not valid YAML"):
        load_register(p)
    with pytest.raises(ConfigError, match="cannot read register"):
        load_register(tmp_path / "missing.yaml")


def test_parse_rate():
    assert parse_rate("2.5%") == pytest.approx(0.025) and parse_rate(0.3) == 0.3 and parse_rate("0.1") == 0.1


def test_cli_init_and_validate_errors_are_one_line(tmp_path):
    from airisk.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["govern", "init", str(tmp_path / "reg.yaml")])
    assert r.exit_code == 0 and (tmp_path / "reg.yaml").exists()
    r = runner.invoke(app, ["govern", "validate", str(tmp_path / "reg.yaml")])
    assert r.exit_code == 0 and "5 requirements" in r.output
    text = (tmp_path / "reg.yaml").read_text().replace("threshold: 10%", "threshold: 10")
    (tmp_path / "bad.yaml").write_text(text)
    r = runner.invoke(app, ["govern", "validate", str(tmp_path / "bad.yaml")])
    assert r.exit_code != 0 and isinstance(r.exception, ConfigError)
    assert "requirements[1] (R2).checks[0] (R2.jbb).threshold" in str(r.exception)
