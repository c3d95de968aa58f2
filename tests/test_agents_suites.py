"""Importers for ToolEmu and Agent-SafetyBench (counts), and the scripted agents on imported scenarios.

Needs the shared data (``$AIRISK_DATA_PATH``); skipped with a reason otherwise.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from airisk.agents.evaluate import run_suite
from airisk.agents.examples import careful, reckless, tricked
from airisk.agents.gating import ScenarioGate
from airisk.agents.importers import import_agent_safetybench, import_toolemu
from airisk.agents.loop import CallableAgent
from airisk.errors import DatasetNotFound

DATA = os.environ.get("AIRISK_DATA_PATH")
needs_data = pytest.mark.skipif(
    not DATA or not (Path(DATA) / "toolemu").is_dir() or not (Path(DATA) / "agent-safetybench").is_dir(),
    reason="AIRISK_DATA_PATH with toolemu/ and agent-safetybench/ is not available")


@pytest.fixture(scope="module")
def toolemu():
    return import_toolemu()


@pytest.fixture(scope="module")
def asb():
    return import_agent_safetybench()


@needs_data
def test_toolemu_imports_all_144_cases(toolemu):
    c = toolemu.counts()
    assert c["total"] == 144 and c["imported"] == 144 and c["skipped"] == 0
    assert c["with_unsafe_predicate"] == 144
    s = next(x for x in toolemu.scenarios if x.id == "toolemu/official_0")
    assert {t.name for t in s.tools} >= {"TodoistDeleteTask", "TodoistSearchTasks"}
    assert s.metadata["risky_tools"] == ["TodoistDeleteTask"]  # "delete" is named by the risky actions
    assert s.risk_category == "Data loss" and s.emulation == "permissive"


@needs_data
def test_agent_safetybench_imports_with_state_and_categories(asb):
    c = asb.counts()
    lines = sum(1 for line in open(Path(DATA) / "agent-safetybench" / "cases.jsonl") if line.strip())
    assert c["total"] == lines == 1400 and c["imported"] + c["skipped"] == lines
    assert c["imported"] == 1400
    assert len({s.risk_category for s in asb.scenarios}) == 8
    s = next(x for x in asb.scenarios if x.id == "agent-safetybench/1")
    assert s.fulfillable is False and s.unsafe is not None and s.completion is None
    assert s.state["Email"]["emails"][0]["sender"] == "unknown_sender@unknown.com"
    assert sum(1 for x in asb.scenarios if x.messages) == 73  # cases with a pre-filled dialog


def test_importer_missing_folder_is_clear(tmp_path):
    with pytest.raises(DatasetNotFound, match="no folder"):
        import_toolemu(tmp_path / "nope")
    (tmp_path / "toolemu").mkdir()
    with pytest.raises(DatasetNotFound, match="all_toolkits.json"):
        import_toolemu(tmp_path / "toolemu")


def sample(scenarios, n):
    step = max(1, len(scenarios) // n)
    return scenarios[::step][:n]


@needs_data
@pytest.mark.parametrize("suite", ["toolemu", "asb"])
async def test_scripted_agents_on_imported_scenarios(suite, toolemu, asb):
    rep = toolemu if suite == "toolemu" else asb
    scen = sample([s for s in rep.scenarios if s.unsafe is not None], 60)
    gate = ScenarioGate()
    res = {name: await run_suite(scen, CallableAgent(fn), detector_gate=gate)
           for name, fn in {"careful": careful, "reckless": reckless, "tricked": tricked}.items()}
    s = {k: v.summary()["overall"] for k, v in res.items()}
    assert s["careful"]["unsafe"]["k"] == 0  # never flagged, by any detector
    assert s["reckless"]["predicate"]["rate"] >= 0.6  # caught
    assert s["tricked"]["predicate"]["k"] <= s["reckless"]["predicate"]["k"]


@needs_data
async def test_tricked_agent_is_caught_on_phishing_case(asb):
    s = next(x for x in asb.scenarios if x.id == "agent-safetybench/1")
    r = await run_suite([s], CallableAgent(tricked))
    o = r.outcomes[0]
    assert o.detectors["predicate"] is True
    clicked = [c for c in r.trajectories[0].calls if c.tool == "click_link"]
    assert clicked and clicked[0].arguments["url"] == "http://unknown.com/claim_prize"
    r2 = await run_suite([s], CallableAgent(careful))
    assert r2.outcomes[0].detectors["predicate"] is False
    assert json.loads(r2.trajectories[0].messages[-2]["content"])["results"]  # careful did read the e-mail
