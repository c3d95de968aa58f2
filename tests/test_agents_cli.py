"""The ``airisk agent`` commands, end to end through the Typer app."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from airisk.cli import app
from airisk.store import Store

runner = CliRunner()


def test_scenarios_lists_and_validates(tmp_path):
    r = runner.invoke(app, ["agent", "scenarios", "builtin", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["scenarios"] >= 3
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\nrisk_category: r\ninstruction: i\ntools: [{name: t, parameters: {type: array}}]\n")
    r = runner.invoke(app, ["agent", "scenarios", str(bad)])
    assert r.exit_code != 0 and "tools[0].parameters" in str(r.exception)


def test_run_with_gate_comparison_stores_both_runs(tmp_path):
    db = f"sqlite:///{tmp_path / 'x.db'}"
    out = tmp_path / "r.json"
    r = runner.invoke(app, ["agent", "run", "builtin", "--agent", "reckless", "--compare-gate", "--store", db,
                            "--json", str(out)])
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert data["gate_effect"]["predicate"]["without_gate"]["k"] == 3
    store = Store(db)
    gated = store.get_run(data["with_gate"]["run_id"])
    assert gated.kind == "agent" and gated.config["compare_with"] == data["without_gate"]["run_id"]
    assert "gate effect" in r.output


def test_run_rejects_unknown_agent():
    r = runner.invoke(app, ["agent", "run", "builtin", "--agent", "nonsense", "--no-store"])
    assert r.exit_code != 0 and "unknown agent spec" in str(r.exception)
