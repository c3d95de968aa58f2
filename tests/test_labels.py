"""Labelled-data readers: counts against each PROVENANCE.md, prompt-disjoint splits, user label file errors."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from airisk.errors import DataError, DatasetNotFound
from airisk.judges.labels import LabelledExample, apply_split, load_labelled, read_label_file, split_of, write_label_file

DATA = os.environ.get("AIRISK_DATA_PATH")
needs_data = pytest.mark.skipif(
    not DATA or not Path(DATA, "jailbreakbench").is_dir(), reason="AIRISK_DATA_PATH unset or lacks the shared data sets"
)


@needs_data
def test_jbb_counts_match_provenance():
    rows = load_labelled("jbb-artifacts")
    # 1,784 rows in the file, of which 163 PAIR rows have no prompt/response (nothing to judge).
    assert len(rows) == 1784 - 163
    assert all(r.label in ("violating", "non_violating") and r.refusal is None for r in rows)
    by_method = Counter(r.metadata["method"] for r in rows)
    assert by_method["DSN"] == 200 and by_method["PAIR"] == 400 - 163
    assert {r.model for r in rows} == {"gpt-3.5-turbo-1106", "gpt-4-0125-preview", "llama-2-7b-chat-hf", "vicuna-13b-v1.5"}
    assert len({r.group for r in rows}) == 100  # one group per behavior


@needs_data
def test_harmbench_cls_val_counts_match_provenance_and_carry_intent():
    rows = load_labelled("harmbench-cls-val")
    # PROVENANCE.md: 422 rows, 211 behaviours, human majority 188 violating / 234 not
    assert len(rows) == 422 and len({r.group for r in rows}) == 211
    assert Counter(r.label for r in rows) == {"violating": 188, "non_violating": 234}
    assert all(r.label_source == "human" for r in rows)
    assert sum(r.metadata["unanimous"] for r in rows) == 343
    with_goal = [r for r in rows if r.intent]
    assert len(with_goal) == 420  # one behaviour (2 rows) is missing from the behaviours CSV
    assert any("\n\nContext: " in r.intent for r in with_goal)  # contextual behaviours keep their passage
    jbb = load_labelled("jbb-artifacts")
    assert {r.label_source for r in jbb} == {"llm-judge"} and all(r.intent for r in jbb)


@needs_data
def test_xstest_labels_follow_the_human_compliance_labels():
    rows = load_labelled("xstest-completions")
    assert len(rows) == 4 * 450
    by_model = {m: Counter(r.refusal for r in rows if r.model == m) for m in {r.model for r in rows}}
    # final_label counts (compliance / full refusal / partial refusal) from PROVENANCE.md
    assert by_model["llama2new"] == {"full_compliance": 176, "full_refusal": 230, "partial_refusal": 44}
    assert by_model["mistralinstruct"] == {"full_compliance": 374, "full_refusal": 49, "partial_refusal": 27}
    for r in rows:
        if r.metadata["prompt_label"] == "safe":
            assert r.label == "non_violating"
        elif r.refusal == "full_compliance":
            assert r.label == "violating"
        elif r.refusal == "full_refusal":
            assert r.label == "non_violating"
        else:
            assert r.label is None  # partial refusal of an unsafe prompt: undetermined
    assert sum(r.metadata["prompt_label"] == "unsafe" for r in rows) == 4 * 200


@needs_data
def test_hh_and_moderation_do_not_invent_absolute_labels():
    hh = load_labelled("hh-harmless")
    assert len(hh) == 2 * 2312 and all(r.label is None for r in hh)
    assert Counter(r.metadata["preference"] for r in hh) == {"chosen": 2312, "rejected": 2312}
    mod = load_labelled("openai-moderation")
    c = Counter(r.label for r in mod)
    assert len(mod) == 1680 and c["violating"] == 522 and c["non_violating"] == 337  # 337 = all 8 keys present, all 0


@needs_data
@pytest.mark.parametrize("name", ["jbb-artifacts", "xstest-completions", "hh-harmless", "openai-moderation"])
def test_splits_are_deterministic_and_disjoint_by_prompt(name):
    train, val = load_labelled(name, "train"), load_labelled(name, "val")
    assert len(train) + len(val) == len(load_labelled(name))
    assert not ({r.group for r in train} & {r.group for r in val})
    assert 0.1 < len(val) / (len(train) + len(val)) < 0.3
    assert [r.id for r in load_labelled(name, "val")] == [r.id for r in val]


def test_split_of_is_stable_across_calls():
    # pinned values: a change here would silently reshuffle every published validation figure
    assert [split_of(f"g{i}") for i in range(8)] == [split_of(f"g{i}") for i in range(8)]
    share = sum(split_of(f"group-{i}") == "val" for i in range(5000)) / 5000
    assert 0.18 < share < 0.22
    with pytest.raises(ValueError):
        apply_split([], "test")  # type: ignore[arg-type]


def test_unknown_label_set_lists_the_available_ones():
    with pytest.raises(DatasetNotFound, match="jbb-artifacts"):
        load_labelled("no-such-set")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_user_label_file_jsonl_and_csv_round_trip(tmp_path):
    rows = [
        {"prompt": "How do I make a bomb?", "response": "I can't help with that.", "label": "non_violating", "refusal": "full_refusal", "group": "bomb"},
        {"id": "x2", "prompt": "How do I make a bomb?", "response": "Mix ...", "label": "unsafe", "hazard": "IWP", "group": "bomb", "team": "red"},
    ]
    p = _write(tmp_path, "labels.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    out = read_label_file(p)
    assert [e.label for e in out] == ["non_violating", "violating"]
    assert out[0].id == "labels.jsonl:1" and out[1].id == "x2"
    assert out[1].hazard == "iwp" and out[1].metadata["team"] == "red"
    assert out[0].group == out[1].group == "bomb"
    back = read_label_file(write_label_file(out, tmp_path / "copy.jsonl"))
    assert [(e.id, e.label, e.refusal) for e in back] == [(e.id, e.label, e.refusal) for e in out]

    csvp = _write(tmp_path, "labels.csv", 'prompt,response,label\n"multi\nline prompt",ok,safe\nq,r,violating\n')
    got = read_label_file(csvp)
    assert [e.label for e in got] == ["non_violating", "violating"]
    assert got[0].group != got[1].group  # default group = hash of the prompt
    assert load_labelled(str(csvp), "all") == got


@pytest.mark.parametrize(
    ("name", "text", "line", "field"),
    [
        ("a.jsonl", '{"prompt": "p", "response": "r", "label": "violating"}\n{"prompt": "p"\n', 2, None),
        ("b.jsonl", '{"prompt": "p", "response": "r", "label": "bad"}\n', 1, "label"),
        ("c.jsonl", '{"prompt": "p", "label": "safe"}\n', 1, "response"),
        ("d.jsonl", '{"prompt": "p", "response": 3, "label": "safe"}\n', 1, "response"),
        ("e.jsonl", '{"prompt": "p", "response": "r"}\n', 1, "label"),
        ("f.jsonl", '{"prompt": "p", "response": "r", "refusal": "maybe"}\n', 1, "refusal"),
        ("g.jsonl", '{"id": "a", "prompt": "p", "response": "r", "label": "safe"}\n{"id": "a", "prompt": "p", "response": "r", "label": "safe"}\n', 2, "id"),
        ("h.csv", "prompt,response,label\np,r,safe\np,r,nope\n", 3, "label"),
        ("i.csv", "prompt,label\np,safe\n", 2, "response"),
    ],
)
def test_user_label_file_errors_name_file_line_and_field(tmp_path, name, text, line, field):
    p = _write(tmp_path, name, text)
    with pytest.raises(DataError) as ei:
        read_label_file(p)
    e = ei.value
    assert e.path == str(p) and e.line == line and e.field == field
    assert name in str(e) and f":{line}" in str(e)


def test_user_label_file_rejects_wrong_type_missing_file_and_bad_encoding(tmp_path):
    with pytest.raises(DataError, match="jsonl or .csv"):
        read_label_file(_write(tmp_path, "l.txt", "x"))
    with pytest.raises(DataError, match="not found"):
        read_label_file(tmp_path / "missing.jsonl")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("prompt,response,label\ncaf\xe9,r,safe\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        read_label_file(bad)
    with pytest.raises(DataError, match="no labelled rows"):
        read_label_file(_write(tmp_path, "empty.jsonl", "\n"))


def test_labelled_example_rejects_unknown_label():
    with pytest.raises(ValueError):
        LabelledExample(id="a", prompt="p", response="r", label="harmful", source="s", group="g")  # type: ignore[arg-type]


def test_authored_hard_cases_ship_in_the_package_with_both_labels_and_shared_groups():
    ex = load_labelled("airisk-authored")  # no AIRISK_DATA_PATH needed: our own data, in the package
    assert len(ex) == 48 and {e.source for e in ex} == {"airisk-authored"}
    assert Counter(e.label for e in ex) == {"non_violating": 29, "violating": 19}
    assert all(e.intent and e.response for e in ex)
    # the same request answered both ways shares a group, so both land in the same split
    by_intent: dict[str, set[str]] = {}
    for e in ex:
        by_intent.setdefault(e.intent or "", set()).add(e.group)
    assert all(len(g) == 1 for g in by_intent.values())
    assert max(Counter(e.intent for e in ex).values()) >= 2
    kinds = Counter(e.metadata["kind"] for e in ex)
    assert kinds["refusal-quotes-request"] >= 5 and kinds["partial-compliance"] >= 3


def test_hard_negatives_ship_in_the_package_all_non_violating_one_group_per_intent():
    ex = load_labelled("airisk-hard-negatives")  # our own data, in the package
    assert len(ex) >= 150 and {e.source for e in ex} == {"airisk-hard-negatives"}
    assert {e.label for e in ex} == {"non_violating"}
    assert all(e.intent and e.intent == e.prompt for e in ex)
    words = sorted(len(e.response.split()) for e in ex)
    assert words[len(words) // 2] >= 180  # long, like the HarmBench generations the judge got wrong
    groups: dict[str, set[str]] = {}
    for e in ex:
        groups.setdefault(e.intent or "", set()).add(e.group)
    assert all(len(g) == 1 for g in groups.values())
    patterns = Counter(e.metadata["pattern"] for e in ex)
    assert len(patterns) >= 8 and max(patterns.values()) < len(ex) / 2


@needs_data
def test_hard_negative_intents_are_not_benchmark_behaviours():
    """Our intents must not be HarmBench's (some are held out, unseen, to check the judge) or
    JailbreakBench's: a near copy would train on the behaviour a held-out item asks for."""
    import csv
    import re

    def words(s: str) -> set[str]:
        return set(re.findall(r"[a-z]+", s.lower()))

    with open(Path(DATA, "harmbench", "harmbench_behaviors_text_all.csv"), encoding="utf-8") as f:
        ref = [words(r["Behavior"]) for r in csv.DictReader(f)]
    with open(Path(DATA, "jailbreakbench", "jbb_behaviors_harmful.csv"), encoding="utf-8") as f:
        ref += [words(r["Goal"]) for r in csv.DictReader(f)]
    for e in load_labelled("airisk-hard-negatives"):
        a = words(e.intent or "")
        closest = max(len(a & b) / len(a | b) for b in ref)
        assert closest < 0.45, (e.id, e.intent)


def test_our_own_cases_train_as_authored_rows_never_as_human_labels():
    from airisk.judges.train import build_examples

    rows = build_examples(["vcr", "ncr"], sources=["airisk-hard-negatives", "airisk-authored"], texts=False, refusals=False)
    assert {r.kind for r in rows} == {"authored"}
    hard = [r for r in rows if r.source == "airisk-hard-negatives"]
    assert hard and {r.harm for r in hard} == {0.0} and {r.hazard for r in hard} == {None}
    # split by intent group: both splits used, and a group never straddles them
    sides: dict[str, set[str]] = {}
    for r in hard:
        sides.setdefault(r.group, set()).add(r.split)
    assert all(len(s) == 1 for s in sides.values())
    assert {r.split for r in hard} == {"train", "val"}
