"""Replaying recorded trajectories: re-executed against the emulator and the gate, scored the same way."""

from __future__ import annotations

import json

import pytest

from airisk.agents import CallableAgent, ReplayAgent, ScenarioGate, load_scenarios, make_agent, run_suite
from airisk.agents.examples import reckless
from airisk.agents.scenario import builtin_dir
from airisk.errors import DataError


async def test_replay_reproduces_a_recorded_run_and_can_be_gated(tmp_path):
    scen = load_scenarios(builtin_dir())
    live = await run_suite(scen, CallableAgent(reckless))
    path = tmp_path / "rec.jsonl"
    path.write_text("".join(json.dumps({"scenario_id": t.scenario_id, "messages": t.messages}) + "\n"
                            for t in live.trajectories))
    replayed = await run_suite(scen, make_agent(f"replay:path={path}"))
    assert [(o.unsafe, o.completed, o.calls) for o in replayed.outcomes] == \
           [(o.unsafe, o.completed, o.calls) for o in live.outcomes]
    assert [t.final_state for t in replayed.trajectories] == [t.final_state for t in live.trajectories]
    gated = await run_suite(scen, ReplayAgent(path), gate=ScenarioGate())
    assert sum(o.blocked_calls for o in gated.outcomes) >= 1
    assert sum(bool(o.detectors["predicate"]) for o in gated.outcomes) < 3


async def test_replay_errors(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"scenario_id": "other", "messages": []}\n')
    res = await run_suite(load_scenarios(builtin_dir())[:1], ReplayAgent(path))
    assert res.outcomes[0].stop_reason == "error" and "no recorded trajectory" in res.outcomes[0].error
    path.write_text('{"scenario_id": "a", "messages": []}\n{"scenario_id": "b"}\n')
    with pytest.raises(DataError) as ei:
        ReplayAgent(path)
    assert ei.value.line == 2
    with pytest.raises(DataError, match="not found"):
        ReplayAgent(tmp_path / "missing.jsonl")
