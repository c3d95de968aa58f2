"""Hazard taxonomy: codes match the AILuminate data, Llama Guard crosswalk, crosswalk validation, CLI."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import airisk.taxonomy as tx
from airisk.errors import ConfigError
from airisk.taxonomy.crosswalks import Crosswalk

CODES = ["vcr", "src", "cse", "ssh", "iwp", "ipv", "dfm", "ncr", "hte", "prv",
         "spc_ele", "spc_fin", "spc_hlt", "spc_lgl", "sxc_prn"]


@pytest.fixture
def shared_data() -> Path:
    raw = os.environ.get("AIRISK_DATA_PATH", "")
    dirs = [Path(d) for d in raw.split(os.pathsep) if d and (Path(d) / "taxonomies").is_dir()]
    if not dirs:
        pytest.skip("AIRISK_DATA_PATH is unset or has no taxonomies/ folder: shared public data not available")
    return dirs[0]


def test_codes_and_groups():
    assert tx.hazard_codes() == CODES
    assert tx.hazards_in_group("physical") == ["vcr", "src", "cse", "ssh", "iwp"]
    assert tx.hazards_in_group("non_physical") == ["ipv", "dfm", "ncr", "hte", "prv"]
    assert tx.hazards_in_group("contextual") == ["spc_ele", "spc_fin", "spc_hlt", "spc_lgl", "sxc_prn"]
    assert set(tx.GROUPS) == {"physical", "non_physical", "contextual"}
    assert set(tx.PERSONAS) == {"skilled", "unskilled", "normal"}
    assert all(p.description for p in tx.PERSONAS.values())
    assert {h.key for h in tx.HAZARDS.values()} == {"vcr", "src", "cse", "ssh", "iwp", "ipv", "dfm", "ncr", "hte", "prv", "spc", "sxc"}


def test_get_hazard_unknown_lists_valid_codes():
    assert tx.get_hazard("iwp").name == "Indiscriminate Weapons (CBRNE)"
    with pytest.raises(ConfigError) as e:
        tx.get_hazard("weapons")
    assert "'weapons'" in str(e.value) and ", ".join(CODES) in str(e.value)
    assert not tx.is_hazard("VCR") and tx.is_hazard("vcr")
    with pytest.raises(ConfigError):
        tx.hazards_in_group("physicals")


def test_llama_guard_mapping():
    cats = tx.llama_guard_categories()
    assert list(cats) == [f"S{i}" for i in range(1, 15)]
    assert cats["S14"] == "Code Interpreter Abuse" and cats["S13"] == "Elections"
    assert tx.hazards_for_llama_guard("S6") == ["spc_fin", "spc_hlt", "spc_lgl"]
    assert tx.hazards_for_llama_guard("s1") == ["vcr"]
    assert tx.hazards_for_llama_guard("S14") == []
    for h in tx.HAZARDS.values():  # every hazard maps to exactly one Llama Guard category and back
        assert len(h.llama_guard) == 1
        assert h.code in tx.hazards_for_llama_guard(h.llama_guard[0])
    for bad in ("S15", "X1", "", "S0"):
        with pytest.raises(ConfigError):
            tx.hazards_for_llama_guard(bad)


def test_facts_match_shared_sources(shared_data):
    """Codes, names and groups agree with the shared AILuminate and Llama Guard source files."""
    with open(shared_data / "ailuminate" / "hazard_taxonomy.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    group = {"Physical Hazards": "physical", "Non-Physical Hazards": "non_physical", "Contextual Hazards": "contextual"}
    assert {r["hazard_uid"] for r in rows} == set(CODES)
    for r in rows:
        h = tx.get_hazard(r["hazard_uid"])
        if r["listed_in_readme_table"] == "yes":
            assert h.name == r["hazard_name"] and h.group == group[r["hazard_group"]]
    lg = yaml.safe_load((shared_data / "taxonomies" / "llama_guard3_categories.yaml").read_text(encoding="utf-8"))
    assert {c["id"]: c["name"] for c in lg["categories"]} == tx.llama_guard_categories()


def test_definitions_are_our_own_words(shared_data):
    """No definition is copied from the shared (third-party-derived) taxonomy files."""
    texts = []
    for name in ("ailuminate_v1_hazards.yaml", "llama_guard3_categories.yaml"):
        texts.append((shared_data / "taxonomies" / name).read_text(encoding="utf-8").lower())
    blob = " ".join(" ".join(t.split()) for t in texts)
    for h in tx.HAZARDS.values():
        assert len(h.definition) > 40
        words = h.definition.lower().split()
        # no run of 8 consecutive words appears in the source files
        for i in range(len(words) - 7):
            assert " ".join(words[i:i + 8]) not in blob, (h.code, " ".join(words[i:i + 8]))


def test_crosswalks_are_data_and_validated():
    cws = tx.crosswalks()
    assert {"llama_guard_3", "owasp_llm_2025", "nist_ai_rmf_1_0", "air_2024", "eu_ai_act"} <= set(cws)
    assert all(not c.official and c.basis for c in cws.values())  # every mapping says it is our judgement
    assert tx.get_crosswalk("eu_ai_act").targets_for("ipv")[-1] == "Art. 53(1)(c)"
    owasp = tx.get_crosswalk("OWASP Top 10 for LLM Applications")
    assert len(owasp.targets) == 10 and owasp.targets_for("prv") == ["LLM02:2025"] and not owasp.official
    assert tx.get_hazard("hte").crosswalks["nist_ai_rmf_1_0"] == ["MAP 5.1", "MEASURE 2.6", "MEASURE 2.11"]
    with pytest.raises(ConfigError, match="available"):
        tx.get_crosswalk("mitre")
    with pytest.raises(ValueError, match="unknown target ids"):
        Crosswalk(id="x", framework="X", version="1", targets=[{"id": "A", "name": "a"}], mapping={"vcr": ["B"]})


def test_hazards_cli():
    from airisk.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["hazards", "list"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    for code in CODES:
        assert code in r.output
    assert "S6 Specialized Advice" in r.output and "non_physical" in r.output
    r = runner.invoke(app, ["hazards", "crosswalk", "llama_guard_3"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "S13 Elections" in r.output
    r = runner.invoke(app, ["hazards", "crosswalk", "nope"])
    assert r.exit_code != 0 and isinstance(r.exception, ConfigError)


def test_air_2024_crosswalk_covers_all_314_leaves(shared_data):
    air = tx.get_crosswalk("AIR 2024")
    with open(shared_data / "taxonomies" / "air_2024_level4.csv", newline="", encoding="utf-8") as f:
        leaves = list(csv.DictReader(f))
    assert [t.id for t in air.targets] == [r["l4_id"] for r in leaves]
    assert len(air.targets) == 314
    assert tx.get_hazard("iwp").crosswalks["air_2024"]  # CBRNE leaves
    assert set(air.mapping) == set(CODES)  # every hazard has at least one AIR leaf
    # a leaf maps to at most one hazard: the judgement partitions the mapped leaves
    mapped = [i for ids in air.mapping.values() for i in ids]
    assert len(mapped) == len(set(mapped))
