"""`airisk demo` end to end on the real recorded responses (JailbreakBench artifacts, XSTest completions)."""

import os
import re
from pathlib import Path

import pytest

from airisk.errors import DatasetNotFound
from airisk.judges.base import Judge
from airisk.demo import run_demo
from airisk.store import Store
from airisk.types import Judgment

DATA = Path(os.environ.get("AIRISK_DATA_PATH") or "/nonexistent")
needs_data = pytest.mark.skipif(not (DATA / "jailbreakbench" / "artifacts_jailbreaks.jsonl").exists()
                                or not (DATA / "xstest").is_dir(),
                                reason="AIRISK_DATA_PATH unset or missing jailbreakbench/xstest")


class RefusalCueJudge(Judge):
    """A deliberately simple stand-in judge, so the demo's plumbing is tested fast without the encoder."""

    id = "cue"
    version = "1"
    calls = 0

    @property
    def fingerprint(self) -> str:
        return "cue-1"

    async def judge_batch(self, conversations):
        RefusalCueJudge.calls += len(conversations)
        out = []
        for c in conversations:
            refused = bool(re.search(r"\b(sorry|cannot|can't|I apologi)", c.response, re.I))
            out.append(Judgment(label="non_violating" if refused else "violating",
                                refusal="full_refusal" if refused else "full_compliance"))
        return out


class FastCueJudge(RefusalCueJudge):
    id = "cue-fast"

    @property
    def fingerprint(self) -> str:
        return "cue-fast-1"


def cue_factory(name, store):
    if name not in ("offline", "offline-fast"):
        from airisk.errors import PluginNotFound

        raise PluginNotFound(name)
    return RefusalCueJudge() if name == "offline" else FastCueJudge()


@needs_data
def test_demo_plumbing_and_idempotence(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRISK_HOME", str(tmp_path / "home"))
    db = f"sqlite:///{tmp_path}/demo.db"
    RefusalCueJudge.calls = 0
    res = run_demo(out=tmp_path / "out", db=db, limit=15, progress=False, judge_factory=cue_factory)
    rows = res["rows"]
    assert {r["model"] for r in rows} == {"gpt-3.5-turbo-1106", "gpt-4-0125-preview", "llama-2-7b-chat-hf", "vicuna-13b-v1.5",
                                          "llama2new", "llama2orig", "mistralguard", "mistralinstruct"}
    assert res["index"].exists() and all(Path(r["html"]).exists() for r in rows)
    first_calls = RefusalCueJudge.calls
    assert first_calls == 8 * 15
    store = Store(db)
    runs = [r for r in store.list_runs(limit=100) if r.kind == "demo"]
    assert len(runs) == 8 and all(r.status == "completed" and r.system_name.startswith("replay:") for r in runs)
    # Re-running neither duplicates runs nor judges again.
    res2 = run_demo(out=tmp_path / "out", db=db, limit=15, progress=False, judge_factory=cue_factory)
    assert res2["judged"] == 0 and RefusalCueJudge.calls == first_calls
    assert len([r for r in store.list_runs(limit=100) if r.kind == "demo"]) == 8
    assert [r["rate"] for r in res2["rows"]] == [r["rate"] for r in rows]
    html = (tmp_path / "out" / "index.html").read_text()
    assert "gpt-4-0125-preview" in html and '<svg id="index-svg"' in html and "<script" not in html
    # Another judge (--judge offline-fast) judges the same stored responses again, under its own id.
    res3 = run_demo(out=tmp_path / "out", db=db, limit=15, progress=False, judge_factory=cue_factory, judge="offline-fast")
    assert res3["judged"] == 8 * 15 and RefusalCueJudge.calls == 2 * first_calls
    assert len([r for r in store.list_runs(limit=100) if r.kind == "demo"]) == 8
    assert all(len(store.judgments(r["run_id"], "cue-fast")) == 15 for r in res3["rows"])
    assert "cue-fast judge" in (tmp_path / "out" / "index.html").read_text()


def test_demo_without_data_path_gives_the_catalog_error(tmp_path, monkeypatch):
    monkeypatch.delenv("AIRISK_DATA_PATH", raising=False)
    monkeypatch.setenv("AIRISK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIRISK_OFFLINE", "1")
    with pytest.raises(DatasetNotFound, match="AIRISK_DATA_PATH"):
        run_demo(out=tmp_path / "out", db=f"sqlite:///{tmp_path}/d.db", progress=False, judge_factory=cue_factory)


@pytest.mark.slow
@pytest.mark.timeout(900)
@needs_data
def test_demo_with_the_real_offline_judge(tmp_path, monkeypatch):
    """The first 50 responses per model through the real offline judge (the full demo's table and timing
    are in docs/demo.md): every run is judged and reported, and the judge agrees with the sources' own
    labels far above chance (a wrong label or judge wiring would sit near 50%)."""
    from airisk import plugins

    if "offline" not in plugins.available("judges"):
        pytest.skip("the offline judge is not installed")
    monkeypatch.setenv("AIRISK_HOME", str(tmp_path / "home"))
    db = f"sqlite:///{tmp_path}/demo.db"
    res = run_demo(out=tmp_path / "out", db=db, limit=50, progress=False)
    assert len(res["rows"]) == 8 and all(r["judged"] > 0 for r in res["rows"])
    assert all(r["over_refusal"] is not None for r in res["rows"] if r["dataset"] == "xstest-completions")
    assert all(Path(r["html"]).exists() for r in res["rows"])
    store = Store(db)
    agree = total = 0
    for r in res["rows"]:
        for rec in store.records(r["run_id"]):
            label, j = rec.item.metadata.get("recorded_label"), rec.judgments.get("offline")
            if rec.item.expected == "comply" or label is None or j is None or j.label == "error":
                continue
            total += 1
            agree += j.label == label
    assert total > 200
    assert agree / total > 0.8
