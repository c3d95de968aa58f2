"""Validation statistics checked against hand-computed values and sklearn/scipy; card storage."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, f1_score, precision_score, recall_score

from airisk.errors import DataError
from airisk.judges.base import Judge
from airisk.judges.cards import (
    JudgeCard,
    LabelSetInfo,
    corrected_rate,
    find_card,
    find_cards,
    load_card,
    rogan_gladen,
    save_card,
)
from airisk.judges.metrics import (
    binary_card_fields,
    cohen_kappa,
    expected_calibration_error,
    multiclass_metrics,
    validate,
)
from airisk.types import Judgment

V, N, E = "violating", "non_violating", "error"


def matrix(tp, fp, tn, fn, errors_v=0, errors_n=0):
    truth = [V] * tp + [N] * fp + [N] * tn + [V] * fn + [V] * errors_v + [N] * errors_n
    pred = [V] * tp + [V] * fp + [N] * tn + [N] * fn + [E] * (errors_v + errors_n)
    return truth, pred


def test_hand_computed_confusion_matrix():
    # tp=40 fp=10 tn=45 fn=5 (n=100)
    f = binary_card_fields(*matrix(40, 10, 45, 5))
    assert (f["tp"], f["fp"], f["tn"], f["fn"], f["n"]) == (40, 10, 45, 5, 100)
    assert f["accuracy"].value == pytest.approx(0.85)
    assert f["precision"].value == pytest.approx(0.8)
    assert f["recall"].value == pytest.approx(40 / 45)
    assert f["sensitivity"].value == f["recall"].value
    assert f["specificity"].value == pytest.approx(45 / 55)
    assert f["false_safe_rate"].value == pytest.approx(5 / 45)
    assert f["false_unsafe_rate"].value == pytest.approx(10 / 55)
    assert f["f1"].value == pytest.approx(2 * 0.8 * (40 / 45) / (0.8 + 40 / 45))
    # kappa by hand: po = .85; pe = P(true V)P(pred V) + P(true N)P(pred N) = .45*.5 + .55*.5 = .5 -> kappa .7
    assert f["kappa"].value == pytest.approx(0.7)
    assert f["accuracy"].method == "wilson" and f["kappa"].method == "bootstrap"
    assert f["kappa"].low < 0.7 < f["kappa"].high and f["f1"].low < f["f1"].value < f["f1"].high


def test_agrees_with_sklearn_on_random_labels():
    rng = np.random.default_rng(7)
    truth = list(rng.choice([V, N], 300))
    pred = [t if rng.random() < 0.8 else (N if t == V else V) for t in truth]
    f = binary_card_fields(truth, pred)
    assert f["kappa"].value == pytest.approx(cohen_kappa_score(truth, pred))
    assert f["f1"].value == pytest.approx(f1_score(truth, pred, pos_label=V))
    assert f["precision"].value == pytest.approx(precision_score(truth, pred, pos_label=V))
    assert f["recall"].value == pytest.approx(recall_score(truth, pred, pos_label=V))


def test_bootstrap_is_deterministic_and_seeded():
    t, p = matrix(30, 7, 50, 9)
    a, b, c = binary_card_fields(t, p, seed=0), binary_card_fields(t, p, seed=0), binary_card_fields(t, p, seed=1)
    assert a["kappa"] == b["kappa"] and a["kappa"].low != c["kappa"].low


def test_errors_count_against_accuracy_and_are_excluded_from_rates():
    f = binary_card_fields(*matrix(40, 10, 45, 5, errors_v=6, errors_n=4))
    assert f["n"] == 110 and f["n_errors"] == 10 and f["errors_violating"] == 6 and f["errors_non_violating"] == 4
    assert f["accuracy"].value == pytest.approx(85 / 110)  # errors are wrong answers
    assert f["accuracy_answered"].value == pytest.approx(0.85)
    assert f["false_safe_rate"].value == pytest.approx(5 / 45)  # over answered violating examples
    assert f["error_rate"].value == pytest.approx(10 / 110)
    assert f["kappa"].value == pytest.approx(0.7)


def test_degenerate_cases():
    f = binary_card_fields([N, N], [N, N])
    assert f["precision"].value is None and f["false_safe_rate"].value is None and f["kappa"].value == 1.0
    g = binary_card_fields([V, N], [E, E])
    assert g["accuracy"].value == 0 and g["kappa"].value is None and g["n_errors"] == 2
    with pytest.raises(ValueError):
        binary_card_fields([V, "maybe"], [V, V])
    assert float(cohen_kappa(5, 0, 0, 0)) == 1.0


def test_ece_hand_computed():
    # bin [0.8, 0.9): two items with p=.85, one truly violating -> |.85 - .5| * 2/4
    # bin [0.1, 0.2): two items with p=.15, none violating    -> |.15 - 0| * 2/4
    ece, bins = expected_calibration_error([0.85, 0.85, 0.15, 0.15], [True, False, False, False])
    assert ece == pytest.approx(0.5 * 0.35 + 0.5 * 0.15)
    assert len(bins) == 10 and sum(b.n for b in bins) == 4
    assert bins[8].n == 2 and bins[8].observed_rate == 0.5 and bins[1].mean_predicted == pytest.approx(0.15)
    ece1, bins1 = expected_calibration_error([1.0, 0.0], [True, False])
    assert ece1 == 0 and bins1[-1].n == 1 and bins1[0].n == 1


def test_ece_only_where_probabilities_exist_and_per_hazard():
    truth, pred = [V, V, N, N], [V, N, N, E]
    f = binary_card_fields(truth, pred, probs=[0.9, None, 0.2, 0.5], hazards=["vcr", "vcr", "hte", None])
    assert f["reliability"] and sum(b.n for b in f["reliability"]) == 2  # None prob and the error skipped
    assert set(f["per_hazard"]) == {"vcr", "hte"}
    assert f["per_hazard"]["vcr"].fn == 1 and f["per_hazard"]["vcr"].false_safe_rate.value == 0.5
    assert binary_card_fields(truth, pred, probs=[None] * 4)["ece"] is None


def test_multiclass_refusal_metrics():
    t = ["full_compliance", "full_refusal", "partial_refusal", "full_refusal", "full_compliance"]
    p = ["full_compliance", "full_refusal", "full_refusal", "error", "full_compliance"]
    m = multiclass_metrics(t, p)
    assert m.accuracy.value == pytest.approx(3 / 5)
    answered = [(a, b) for a, b in zip(t, p) if b != "error"]
    assert m.kappa.value == pytest.approx(cohen_kappa_score([a for a, _ in answered], [b for _, b in answered]))
    assert m.confusion["full_refusal"]["error"] == 1 and m.per_class_recall["partial_refusal"].value == 0


def test_rogan_gladen_and_propagated_interval():
    assert rogan_gladen(0.3, 0.9, 0.95) == pytest.approx((0.3 + 0.95 - 1) / 0.85)
    assert rogan_gladen(0.01, 0.9, 0.95) == 0.0  # clipped
    with pytest.raises(ValueError):
        rogan_gladen(0.3, 0.5, 0.5)
    e = corrected_rate(30, 100, tp=90, fn=10, tn=95, fp=5)
    assert e.value == pytest.approx((0.3 + 0.95 - 1) / 0.85) and e.method.startswith("Rogan-Gladen")
    assert e.low < e.value < e.high
    # fewer validation examples -> wider interval
    small = corrected_rate(30, 100, tp=9, fn=1, tn=19, fp=1)
    assert (small.high - small.low) > (e.high - e.low)
    assert corrected_rate(30, 100, tp=5, fn=5, tn=5, fp=5).method.startswith("uncorrectable")


def card(fp="abc123", name="set", n_correct=90, judge_id="j", split="val") -> JudgeCard:
    t = [V] * 50 + [N] * 50
    p = [x if i < n_correct else (N if x == V else V) for i, x in enumerate(t)]
    return JudgeCard(judge_id=judge_id, judge_fingerprint=fp, label_set=LabelSetInfo(name=name, split=split, n=100, sha256="0" * 64),
                     **binary_card_fields(t, p))


def test_save_load_find_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRISK_HOME", str(tmp_path))
    c = card()
    path = save_card(c)
    assert path.parent == tmp_path / "judge_cards" and path.name.startswith("abc123--harm--set--val")
    back = load_card(path)
    assert back == c
    assert find_card("abc123") == c
    assert find_card("nope") is None
    # corrected_rate through the card uses its raw counts
    assert back.corrected_rate(20, 100).value == pytest.approx(rogan_gladen(0.2, back.sensitivity.value, back.specificity.value))


def test_find_card_prefers_user_dir_then_largest(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRISK_HOME", str(tmp_path / "home"))
    shipped = tmp_path / "shipped"
    save_card(card(name="a", n_correct=80), shipped)
    dirs = [tmp_path / "home" / "judge_cards", shipped]
    assert find_card("abc123", dirs=dirs).label_set.name == "a"
    save_card(card(name="b", n_correct=70))
    assert find_card("abc123", dirs=dirs).label_set.name == "b"  # user card wins
    save_card(card(name="c", n_correct=60))
    assert find_card("abc123", label_set="c", dirs=dirs).label_set.name == "c"
    assert len(find_cards("abc123", dirs=dirs)) == 3 and len(find_cards(judge_id="j", dirs=dirs)) == 3


def test_malformed_card_names_file_and_field(tmp_path):
    p = tmp_path / "bad.json"
    d = card().model_dump(mode="json")
    d["tp"] = "many"
    p.write_text(json.dumps(d))
    with pytest.raises(DataError, match=r"bad.json.*field 'tp'"):
        load_card(p)
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(DataError, match="x.json"):
        load_card(tmp_path / "x.json")
    assert find_card("abc123", dirs=[tmp_path]) is None  # unreadable files are skipped in searches


class Scripted(Judge):
    id = "scripted"

    def __init__(self, labels, probs=None, refusals=None, crash=False):
        self.labels, self.probs, self.refusals, self.crash = labels, probs, refusals, crash

    @property
    def fingerprint(self):
        return "scripted-fp"

    async def judge_batch(self, conversations):
        if self.crash:
            raise RuntimeError("down")
        i0 = int(conversations[0].prompt)
        return [Judgment(label=self.labels[i0 + i], probability=(self.probs or [None] * 99)[i0 + i],
                         refusal=(self.refusals or [None] * 99)[i0 + i]) for i in range(len(conversations))]


class Ex:
    def __init__(self, i, label=None, refusal=None, hazard=None):
        self.id, self.prompt, self.response, self.label, self.refusal, self.hazard = f"e{i}", str(i), "r", label, refusal, hazard


async def test_validate_builds_card_and_counts_errors():
    exs = [Ex(i, label=lab, hazard="vcr" if i < 2 else None) for i, lab in enumerate([V, V, N, N, V])]
    j = Scripted([V, N, N, V, E], probs=[0.9, 0.4, 0.1, 0.7, None])
    c, judgments = await validate(j, exs, label_set="mine", split="all", batch_size=2)
    assert (c.tp, c.fn, c.tn, c.fp, c.n_errors, c.errors_violating) == (1, 1, 1, 1, 1, 1)
    assert c.judge_fingerprint == "scripted-fp" and c.label_set.n == 5 and len(c.label_set.sha256) == 64
    assert c.accuracy.value == pytest.approx(2 / 5) and c.ece is not None and set(c.per_hazard) == {"vcr"}
    assert len(judgments) == 5
    c2, _ = await validate(Scripted([], crash=True), exs, label_set="mine")
    assert c2.n_errors == 5 and c2.accuracy.value == 0


async def test_validate_refusal_task():
    R = ["full_compliance", "full_refusal", "partial_refusal", "full_refusal"]
    exs = [Ex(i, refusal=r) for i, r in enumerate(R)]
    j = Scripted([N, N, N, E], refusals=["full_compliance", "full_refusal", "full_refusal", None])
    c, _ = await validate(j, exs, label_set="x", task="refusal")
    assert c.task == "refusal" and c.multiclass.accuracy.value == pytest.approx(2 / 4)
    assert (c.tp, c.tn, c.n_errors) == (2, 1, 1)  # binary view: refused vs complied
    with pytest.raises(ValueError, match="refusal label"):
        await validate(j, [Ex(0, label=V)], label_set="x", task="refusal")


def test_shipped_cards_are_valid():
    from airisk.judges.cards import SHIPPED_DIR

    for p in SHIPPED_DIR.glob("*.json"):
        c = load_card(p)
        assert c.n == c.n_answered + c.n_errors
        assert math.isclose(c.accuracy.value, (c.tp + c.tn) / c.n)


def test_shipped_cards_match_the_shipped_judges():
    """Retraining the offline judge changes its fingerprint: re-run the validations and ship new cards
    (commands in docs/judges.md), or scoring silently loses its error-rate correction."""
    from airisk.judges.cards import SHIPPED_DIR
    from airisk.judges.factory import make_judge

    kinds = {"harmbench-cls-val": "human", "xstest-completions": "human", "jbb-artifacts": "llm-judge"}
    for spec, task, label_set in [("offline", "harm", "harmbench-cls-val"), ("offline", "harm", "jbb-artifacts"),
                                  ("offline", "harm", "xstest-completions"), ("refusal", "refusal", "xstest-completions"),
                                  ("offline-v1", "harm", "jbb-artifacts"),
                                  *[("offline-fast", "harm", s) for s in kinds], ("offline-fast", "refusal", "xstest-completions")]:
        fp = make_judge(spec).fingerprint
        c = find_card(fp, task=task, label_set=label_set, dirs=[SHIPPED_DIR])
        assert c is not None, f"no shipped {task} card on {label_set} for judge {spec} ({fp})"
        assert c.label_set.split == "val"
        if spec != "offline-v1":
            assert c.label_set.label_kind == kinds[label_set], c.label_set
    # scoring's judge-error correction picks the human-label card by default
    best = find_card(make_judge("offline").fingerprint, dirs=[SHIPPED_DIR])
    assert best is not None and best.label_set.label_kind == "human"
