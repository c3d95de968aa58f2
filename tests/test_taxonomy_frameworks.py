"""Framework coverage: ISO/IEC 42001 (our titles), MITRE ATLAS read from the shared data by path, gaps CLI."""

import yaml
from typer.testing import CliRunner

import pytest

from airisk.errors import ConfigError
from airisk.taxonomy import crosswalks, get_crosswalk
from airisk.taxonomy.frameworks import TESTS, all_tests, coverage, frameworks, gaps, get_any_crosswalk, validate_items


def test_iso_42001_controls_and_gaps():
    iso = get_crosswalk("iso_42001")
    assert len(iso.targets) == 38 and not iso.official and iso.basis
    ids = [t.id for t in iso.targets]
    assert ids[0] == "A.2.2" and ids[-1] == "A.10.4" and len(set(ids)) == 38
    cov = {c.id: c for c in coverage("iso_42001")}
    assert "hazard:iwp" in cov["A.6.2.4"].tests and "guard:action_gate" in cov["A.6.2.6"].tests
    # organisational controls are gaps by design: no behavioural test can evidence a written policy
    assert {"A.2.2", "A.3.2", "A.10.3"} <= {g.id for g in gaps("iso_42001")}
    for fw in frameworks().values():  # every test id a mapping uses is one airisk knows
        assert set(fw.tests) <= set(all_tests()), fw.id


def test_mitre_atlas_is_read_from_shared_data_not_copied(shared_data):
    src = yaml.safe_load((shared_data / "taxonomies" / "mitre_atlas.yaml").read_text(encoding="utf-8"))
    atlas = get_any_crosswalk("mitre_atlas")
    assert [t.id for t in atlas.targets] == [t["id"] for t in src["techniques"]]
    assert atlas.target_name("AML.T0054") == "LLM Jailbreak"
    assert "atlas" not in crosswalks()  # not a packaged crosswalk file: the data stays in the shared folder
    fw = frameworks()["mitre_atlas"]
    known = {t["id"] for t in src["techniques"]}
    assert all(set(ids) <= known for ids in fw.tests.values())  # our mapping references real technique ids
    cov = {c.id: c for c in coverage("mitre_atlas")}
    assert cov["AML.T0054"].tests and "attack:jailbreak" in cov["AML.T0054"].tests
    assert cov["AML.T0051.001"].tests == ["agent:indirect_injection"]
    assert cov["AML.T0020"].gap and "Poison" in cov["AML.T0020"].name  # poisoning: outside what airisk tests
    assert cov["AML.T0054"].group  # tactics come from the shared data
    with pytest.raises(ValueError, match="AML.T9999"):
        validate_items("mitre_atlas", ["AML.T9999"])


def test_unknown_framework_and_items():
    with pytest.raises(ConfigError, match="available"):
        get_any_crosswalk("mitre")
    with pytest.raises(ValueError, match="unknown framework"):
        validate_items("cobit", ["x"])
    with pytest.raises(ValueError, match="no item"):
        validate_items("owasp_llm_2025", ["LLM99:2025"])
    assert "over_refusal" in TESTS


def test_crosswalk_gaps_cli():
    from airisk.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["hazards", "crosswalk"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "iso_42001" in r.output and "owasp_llm_2025" in r.output
    r = runner.invoke(app, ["hazards", "crosswalk", "owasp_llm_2025", "--gaps"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "LLM03:2025" in r.output and "Supply Chain" in r.output
    assert "LLM02:2025" not in r.output  # covered (prv) is not a gap
    r = runner.invoke(app, ["hazards", "crosswalk", "llama_guard_3"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "S13 Elections" in r.output  # the per-hazard view is unchanged
