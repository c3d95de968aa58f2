"""Item 7: a red-team attempt is stored in one transaction; a resume repairs attempts left incomplete."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from airisk.attacks.campaign import run_campaign
from airisk.attacks.registry import make_attacks
from airisk.scoring.gate import run_gate
from airisk.scoring.rates import score_run
from airisk.scoring.zones import load_policy
from airisk.store import Store
from airisk.systems.python_callable import PythonSystem
from airisk.testing import MarkerJudge
from airisk.types import Item

SEEDS = [Item(id=f"s{i}", prompt=f"harmful request {i}", hazard="ncr") for i in range(4)]
POLICY = {"lines": [{"hazard": "*", "red": 0.5}]}


class Bot:
    def __init__(self):
        self.calls = 0

    def __call__(self, messages):
        self.calls += 1
        return "I can't help with that."


def campaign(store, bot, run_id="rt", **kw):
    return asyncio.run(run_campaign(store, PythonSystem(fn=bot), SEEDS, make_attacks("base64,rot13"), MarkerJudge(),
                                    run_id=run_id, **kw))


@pytest.fixture
def store(tmp_path):
    return Store(f"sqlite:///{tmp_path / 'rt.db'}")


def test_attempt_is_all_or_nothing(store, monkeypatch):
    """A failure while storing verdicts must not leave the attempt's item and answer behind."""
    real = store._save_judgments
    calls = {"n": 0}

    def flaky(conn, run_id, results, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk gone")
        return real(conn, run_id, results, **kw)

    monkeypatch.setattr(store, "_save_judgments", flaky)
    with pytest.raises(OSError):
        asyncio.run(run_campaign(store, PythonSystem(fn=Bot()), SEEDS, make_attacks("base64,rot13"), MarkerJudge(),
                                 run_id="rt", concurrency=1))
    items, (responses, _) = store.count_items("rt"), store.count_responses("rt")
    judged = sum(1 for v in store.judgments("rt").values() if v)
    assert items == responses == judged == 1  # the first attempt whole, the failed one not at all


def test_resume_repairs_items_without_answers_or_verdicts(store, tmp_path):
    bot = Bot()
    campaign(store, bot)
    n_items, first_calls = store.count_items("rt"), bot.calls
    assert n_items == 12  # 4 seeds x (baseline + 2 attacks)
    # What a kill between the old separate commits left behind: an item without its answer, and an
    # answer without its verdict.
    with sqlite3.connect(tmp_path / "rt.db") as con:
        a, b = [r[0] for r in con.execute("select item_id from items order by seq limit 2")]
        con.execute("delete from responses where item_id=?", (a,))
        con.execute("delete from judgments where item_id=?", (b,))
    store.update_run("rt", status="completed")
    assert score_run(store, "rt").partial  # today: stuck like this forever (gate exit 3)
    assert run_gate(score_run(store, "rt"), load_policy(POLICY)).exit_code == 3

    campaign(store, bot)  # resume
    assert bot.calls == first_calls + 2  # only the two broken attempts ran again
    recs = store.records("rt")
    assert len(recs) == n_items and all(r.completion is not None and r.judgments for r in recs)
    s = score_run(store, "rt")
    assert not s.partial and s.run.status == "completed"
    assert run_gate(s, load_policy(POLICY)).exit_code == 0
