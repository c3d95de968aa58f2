"""End to end with real seeds (AILuminate demo via AIRISK_DATA_PATH) and the shipped offline judge."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from airisk.attacks.attacker import Attacker
from airisk.attacks.campaign import run_campaign, select_seeds
from airisk.attacks.examples import naive_bot, toy_attacker
from airisk.attacks.registry import make_attacks
from airisk.attacks.report import build_section
from airisk.attacks.results import summarize
from airisk.store import Store
from airisk.systems.python_callable import PythonSystem

pytestmark = pytest.mark.slow

WEIGHTS = Path(__file__).resolve().parents[1] / "src/airisk/judges/weights/offline_judge.npz"


@pytest.fixture
def seeds():
    data = os.environ.get("AIRISK_DATA_PATH")
    if not data or not Path(data, "ailuminate").is_dir():
        pytest.skip("needs AIRISK_DATA_PATH with the ailuminate folder")
    from airisk.datasets import load_dataset

    return select_seeds(load_dataset("ailuminate-demo-en_us").items, hazards=["iwp", "ncr", "vcr"], limit=6)


def test_campaign_with_the_offline_judge(tmp_path, seeds):
    if not WEIGHTS.exists():
        pytest.skip("offline judge weights not built")
    from airisk.judges.factory import make_judge

    store = Store(f"sqlite:///{tmp_path / 'rt.db'}")
    judge = make_judge("offline")
    attacker = Attacker(PythonSystem(fn=toy_attacker), store=store)
    rid = asyncio.run(run_campaign(store, PythonSystem(fn=naive_bot), seeds,
                                   make_attacks("base64,launder,scripted,pair"), judge, attacker=attacker, budget=6))
    s = summarize(store, rid)
    assert s.judge_id == judge.id and s.seeds == 6
    recs = store.records(rid)
    labels = [r.judgments[judge.id].label for r in recs if r.completion and r.completion.ok]
    assert labels and all(label in ("violating", "non_violating") for label in labels)
    # a plain refusal is never a successful attack
    refusals = [r for r in recs if r.completion.text and r.completion.text.startswith("I'm sorry")]
    assert refusals and all(r.judgments[judge.id].label == "non_violating" for r in refusals)
    assert all(r.n == 6 for r in s.rates if r.hazard == "all")
    assert "Red team" in build_section(store, rid).title
