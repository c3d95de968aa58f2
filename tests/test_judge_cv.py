"""Cross-validation of the judge's training recipe (``airisk judge cv``): folds, resume, pooling, paired comparison.

Trainings here are real (base model, real label sets) but tiny (a few rows per source, one epoch).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from airisk.cli import app
from airisk.errors import ConfigError
from airisk.judges.labels import fold_of, split_of

runner = CliRunner()
needs_data = pytest.mark.skipif(
    not os.environ.get("AIRISK_DATA_PATH") or not Path(os.environ.get("AIRISK_DATA_PATH", ""), "harmbench-cls-val").is_dir(),
    reason="AIRISK_DATA_PATH unset or lacks the shared data sets")


def test_fold_zero_of_five_is_the_shipped_validation_split():
    keys = [f"behaviour-{i}" for i in range(2000)]
    assert all((fold_of(k, 5) == 0) == (split_of(k) == "val") for k in keys)
    counts = [sum(fold_of(k, 5) == f for k in keys) for f in range(5)]
    assert min(counts) > 300 and sum(counts) == 2000  # every key in exactly one fold, folds about equal
    with pytest.raises(ValueError, match="folds"):
        fold_of("x", 1)


@needs_data
def test_folds_partition_the_groups_and_soft_labels_follow_the_votes():
    from airisk.judges.train import _target, build_examples
    from airisk.taxonomy import hazard_codes

    codes = list(hazard_codes())
    seen: dict[str, int] = {}
    for k in range(5):
        rows = build_examples(codes, sources=["harmbench-cls-val"], texts=False, refusals=False, fold=k)
        for r in rows:
            if r.split == "val":
                assert seen.setdefault(r.group, k) == k  # a group is held out in one fold only
    n_groups = len({r.group for r in build_examples(codes, sources=["harmbench-cls-val"], texts=False, refusals=False)})
    assert len(seen) == n_groups
    rows = build_examples(codes, sources=["harmbench-cls-val"], texts=False, refusals=False)
    split_vote = next(r for r in rows if r.meta["votes"] and 0 < sum(r.meta["votes"]) < 3)
    share = sum(split_vote.meta["votes"]) / 3
    assert _target(split_vote, {"soft_labels": True}) == pytest.approx(share)
    assert _target(split_vote, {"soft_labels": False}) == split_vote.harm == float(share > 0.5)
    with pytest.raises(ConfigError, match="fold"):
        build_examples(codes, sources=["harmbench-cls-val"], fold=5)


@pytest.mark.slow
@needs_data
def test_cross_validation_pools_resumes_refuses_another_recipe_and_compares(tmp_path):
    from airisk.judges.cv import compare, cross_validate, load_predictions, summarize

    recipe = dict(sources=["harmbench-cls-val", "xstest-completions"], limit=30, epochs=1, texts=False, seed=0, tune_layers=3,
                  hazard_loss=0.3)
    logs: list[str] = []
    pooled = cross_validate(tmp_path / "a", folds=5, only=[0, 1], log=logs.append, **recipe)
    preds = load_predictions(tmp_path / "a")
    assert {p["fold"] for p in preds} == {0, 1}
    hb = next(m for m in pooled if m.source == "harmbench-cls-val" and m.task == "harm")
    n_hb = sum(p["source"] == "harmbench-cls-val" for p in preds)
    assert hb.n == n_hb and hb.labels == "human" and hb.folds == [0, 1] and set(hb.per_fold) == {"0", "1"}
    assert hb.accuracy_ci is not None and hb.accuracy_ci[0] <= hb.accuracy <= hb.accuracy_ci[1]
    right = sum((p["p_harm"] >= 0.5) == (p["harm"] >= 0.5) for p in preds if p["source"] == "harmbench-cls-val")
    assert hb.accuracy == pytest.approx(right / n_hb)
    assert any(m.task == "refusal" and m.source == "xstest-completions" for m in pooled)
    # per HarmBench category: every item counted once, the accuracies weigh back to the pooled one
    cats = hb.details["by_category"]
    assert len(cats) > 1 and sum(b["n"] for b in cats.values()) == n_hb
    assert sum(b["accuracy"] * b["n"] for b in cats.values()) == pytest.approx(right)
    assert sum(b["n"] for b in hb.details["by_windows"].values()) == n_hb
    # false-safe per hazard counts violations only
    assert all(b["positives"] == b["n"] for b in hb.details["by_hazard"].values())

    # a rerun resumes: the done folds are kept, not retrained (options spelt out at their defaults are the same recipe)
    logs.clear()
    cross_validate(tmp_path / "a", folds=5, only=[0, 1], log=logs.append, soft_labels=False, refusals=True, **recipe)
    assert sum("done before" in m for m in logs) == 2 and not any("training" in m for m in logs)
    # a directory written by an older airisk (defaults as null, no tune_layers or hazard_loss key) resumes too
    rfile = tmp_path / "a" / "cv.json"
    was = json.loads(rfile.read_text())["recipe"]
    assert was["hazard_loss"] == 0.3 and was["tune_layers"] == 3 and was["depth"] == 6
    was.update(refusals=None, soft_labels=None)
    for key in ("tune_layers", "hazard_loss", "depth"):
        was.pop(key)
    rfile.write_text(json.dumps({"recipe": was}))
    logs.clear()
    cross_validate(tmp_path / "a", folds=5, only=[0, 1], log=logs.append, **recipe)
    assert sum("done before" in m for m in logs) == 2
    with pytest.raises(ConfigError, match="another recipe"):
        cross_validate(tmp_path / "a", folds=5, only=[0], **{**recipe, "tune_layers": 5})
    with pytest.raises(ConfigError, match="another recipe"):
        cross_validate(tmp_path / "a", folds=5, only=[0], **{**recipe, "hazard_loss": 1.0})
    with pytest.raises(ConfigError, match="another recipe"):
        cross_validate(tmp_path / "a", folds=5, only=[0], **{**recipe, "depth": 3})
    # the same directory with another recipe is refused before anything is trained
    with pytest.raises(ConfigError, match="another recipe"):
        cross_validate(tmp_path / "a", folds=5, only=[2], **{**recipe, "soft_labels": True})
    # a damaged predictions file names its path and line
    bad = tmp_path / "a" / "fold1" / "predictions.jsonl"
    good = bad.read_text()
    bad.write_text(good + "{not json\n")
    with pytest.raises(ConfigError, match=r"fold1.predictions\.jsonl:\d+"):
        summarize(tmp_path / "a")
    bad.write_text(good)

    # a recipe compared with itself: every item paired, no discordant pair
    same = compare(tmp_path / "a", tmp_path / "a")
    assert same and all(c.only_a_right == c.only_b_right == 0 and c.p_value == 1.0 for c in same)
    # soft labels on fold 0 only: paired on fold 0's items alone
    cross_validate(tmp_path / "b", folds=5, only=[0], soft_labels=True, **recipe)
    c = next(x for x in compare(tmp_path / "a", tmp_path / "b") if x.source == "harmbench-cls-val" and x.task == "harm")
    assert c.n == sum(p["source"] == "harmbench-cls-val" and p["fold"] == 0 for p in preds)
    assert json.loads((tmp_path / "b" / "cv.json").read_text())["recipe"]["soft_labels"] is True

    r = runner.invoke(app, ["judge", "cv", "--out", str(tmp_path / "b"), "--summary-only", "--compare", str(tmp_path / "a")],
                      env={"COLUMNS": "220"})
    assert r.exit_code == 0, r.output
    assert "harmbench-cls-val" in r.output and "McNemar" in r.output and "by its own category" in r.output


def test_cv_command_rejects_bad_options(tmp_path):
    r = runner.invoke(app, ["judge", "cv", "--out", str(tmp_path / "x"), "--source-weight", "harmbench-cls-val"])
    assert isinstance(r.exception, ConfigError) and "SOURCE=NUMBER" in str(r.exception)
    assert not (tmp_path / "x").exists()  # refused before anything was written
    r = runner.invoke(app, ["judge", "cv", "--out", str(tmp_path / "empty"), "--summary-only"])
    assert isinstance(r.exception, ConfigError) and "no fold is done" in str(r.exception)


def test_two_workers_starting_together_share_one_recipe_file(tmp_path, monkeypatch):
    """Two workers sharing a directory (``--fold``) may start at the same instant: neither may fail
    on the other's temporary file, and a different recipe is still refused."""
    import threading
    import time

    from airisk.judges import cv
    from airisk.judges.cv import cross_validate

    def slowed(fn):  # widen the window between writing the temporary file and moving it into place
        def run(*a, **k):
            time.sleep(0.05)
            return fn(*a, **k)
        return run

    monkeypatch.setattr(cv.os, "replace", slowed(os.replace))
    monkeypatch.setattr(cv.os, "link", slowed(os.link))
    for i in range(3):
        out, errors, go = tmp_path / f"r{i}", [], threading.Barrier(2)

        def worker() -> None:
            go.wait()
            try:
                cross_validate(out, only=[], epochs=1)
            except Exception as e:  # noqa: BLE001 - any failure is the finding
                errors.append(e)

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert json.loads((out / "cv.json").read_text())["recipe"]["epochs"] == 1
        assert sorted(p.name for p in out.iterdir()) == ["cv.json"]  # no temporary file left behind
    with pytest.raises(ConfigError, match="another recipe"):
        cross_validate(tmp_path / "r0", only=[], epochs=2)



def test_compare_tells_a_threshold_shift_from_better_ranking(tmp_path):
    """Two recipes whose scores rank the items identically (B = A pushed towards 'safe') differ in
    accuracy but not in AUC; a recipe that ranks better has the higher AUC."""
    from airisk.judges.cv import compare

    rng = np.random.default_rng(1)
    y = rng.random(200) < 0.4
    p = np.clip(0.35 + 0.3 * y + rng.normal(0, 0.2, 200), 0.001, 0.999)

    def write(name: str, scores: np.ndarray) -> Path:
        d = tmp_path / name / "fold0"
        d.mkdir(parents=True)
        with (d / "predictions.jsonl").open("w") as f:
            for i, (yy, s) in enumerate(zip(y, scores)):
                f.write(json.dumps({"fold": 0, "id": f"x{i}", "group": f"g{i}", "source": "s", "task": "pair",
                                    "kind": "human", "harm": float(yy), "p_harm": float(s), "refusal": None}) + "\n")
        return d.parent

    a, shifted = write("a", p), write("b", p ** 2)  # monotone: same order, fewer items over 0.5
    better = write("c", np.where(y, np.maximum(p, 0.6), np.minimum(p, 0.4)))
    c = compare(a, shifted)[0]
    assert c.accuracy_a != c.accuracy_b and c.auc_a == pytest.approx(c.auc_b) and c.auc_diff_ci == (0.0, 0.0)
    c = compare(a, better)[0]
    assert c.auc_b is not None and c.auc_a is not None and c.auc_b > c.auc_a
    assert c.auc_diff_ci is not None and c.auc_diff_ci[0] > 0


def test_cv_reads_an_unset_tune_layers_as_train_does():
    from airisk.judges import _crossenc as ce
    from airisk.judges import cv

    assert cv._DEFAULT_TUNED == ce.LAYERS - ce.FROZEN
    assert cv._recipe(5, {})["tune_layers"] == 5 and cv._recipe(5, {"depth": 2})["tune_layers"] == 2
    # the teacher's share is part of a recipe only with a teacher (one path per fold: "{fold}")
    assert cv._recipe(5, {"distill": 0.7})["distill"] is None
    assert cv._recipe(5, {"teacher": "cv/big/fold{fold}"})["distill"] == 0.5


def _write_folds(root: Path, rows: list[tuple[int, bool, float]], source: str = "hb", kind: str = "human") -> Path:
    for fold in sorted({r[0] for r in rows}):
        d = root / f"fold{fold}"
        d.mkdir(parents=True, exist_ok=True)
        with (d / "predictions.jsonl").open("a") as f:
            for i, (k, y, p) in enumerate(rows):
                if k == fold:
                    f.write(json.dumps({"fold": k, "id": f"{source}{i}", "group": f"g{i}", "source": source, "task": "pair",
                                        "kind": kind, "harm": float(y), "p_harm": p, "refusal": None}) + "\n")
    return root


def test_threshold_is_chosen_by_nested_cross_validation_and_written_to_the_weights(tmp_path):
    """The rule keeps false-safe under the cap on the selection folds; its held-out figure comes from
    thresholds chosen without each fold; the written threshold becomes the judge's default and changes
    its fingerprint."""
    from airisk.judges import cv
    from airisk.judges.offline import FAST_WEIGHTS_DIR, OfflineFastJudge

    rng = np.random.default_rng(3)
    rows = []
    for k in range(5):
        y = rng.random(120) < 0.4
        p = np.clip(0.45 + 0.25 * y + rng.normal(0, 0.18, 120), 0.001, 0.999)
        rows += [(k, bool(a), float(b)) for a, b in zip(y, p)]
    out = _write_folds(tmp_path / "cv", rows)
    _write_folds(out, [(k, bool(rng.random() < 0.5), float(rng.random())) for k in range(5) for _ in range(40)], source="jbb", kind="llm-judge")

    ch = cv.choose_threshold(out, "hb", max_false_safe=0.10)
    hb = next(r for r in ch.rows if r.source == "hb")
    assert {r.source for r in ch.rows} == {"hb", "jbb"} and hb.n == 600
    assert hb.chosen["false_safe"] <= 0.10 < hb.default["false_safe"]  # the cap binds: 0.5 misses more
    assert ch.threshold < 0.5 and ch.threshold in cv.THRESHOLD_GRID
    assert set(ch.per_fold) == {"0", "1", "2", "3", "4"} and all(abs(t - ch.threshold) <= 0.1 for t in ch.per_fold.values())
    # the nested figure is each fold at its own out-of-fold threshold, recomputed here by hand
    y = np.array([r[1] for r in rows])
    p = np.array([r[2] for r in rows])
    t = np.array([ch.per_fold[str(r[0])] for r in rows])
    assert hb.nested["false_safe"] == pytest.approx(((p < t) & y).sum() / y.sum())
    assert hb.nested["accuracy"] == pytest.approx(((p >= t) == y).mean())
    # the cap is checked against a rate on a few hundred violations: its counts and interval come with it
    assert (hb.nested["missed"], hb.nested["positives"]) == (((p < t) & y).sum(), y.sum())
    assert hb.nested["false_safe_lo"] < hb.nested["false_safe"] < hb.nested["false_safe_hi"]
    # the rule on items it cannot satisfy: the fewest misses (then the fewest false alarms), not an error
    unsatisfiable = [{"y": True, "p_harm": 0.01}, {"y": True, "p_harm": 0.5}, {"y": False, "p_harm": 0.9}]
    assert cv.pick_threshold(unsatisfiable, 0.0) == 0.5
    with pytest.raises(ConfigError, match="no held-out harm verdicts on 'nope'.*hb"):
        cv.choose_threshold(out, "nope")

    weights = tmp_path / "w"
    weights.mkdir()
    for f in FAST_WEIGHTS_DIR.iterdir():
        (weights / f.name).write_bytes(f.read_bytes())
    before = OfflineFastJudge(weights=weights)
    result = runner.invoke(app, ["judge", "cv", "--out", str(out), "--summary-only", "--choose-threshold", "hb",
                                 "--write-threshold", str(weights)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "nested (held out)" in result.output and f"threshold for this recipe: {ch.threshold:.2f}" in result.output
    assert f"{int(hb.nested['missed'])} of {int(y.sum())} violations missed" in result.output
    after = OfflineFastJudge(weights=weights)
    assert after.threshold == ch.threshold and before.threshold == 0.5 and after.fingerprint != before.fingerprint
    meta = json.loads((weights / "offline_v2.json").read_text())
    assert meta["threshold_rule"]["source"] == "hb" and meta["threshold_rule"]["per_fold"] == ch.per_fold
    # the pooled table at another threshold; bad options are refused before anything is written
    at = runner.invoke(app, ["judge", "cv", "--out", str(out), "--summary-only", "--threshold", "0.3"], env={"COLUMNS": "250"})
    assert at.exit_code == 0 and cv.summarize(out, 0.3)[0].accuracy != cv.summarize(out, 0.5)[0].accuracy
    bad = runner.invoke(app, ["judge", "cv", "--out", str(out), "--summary-only", "--write-threshold", str(weights)])
    assert isinstance(bad.exception, ConfigError) and "--write-threshold needs --choose-threshold" in str(bad.exception)
    assert json.loads((weights / "offline_v2.json").read_text()) == meta


@needs_data
def test_exported_scores_carry_no_labels_and_read_back_as_the_directory(tmp_path):
    """A recipe's held-out scores exported without labels (so they can be kept in the repository) give
    the same pooled figures, comparison and threshold choice as the directory, the labels joined again
    from the data; a file that no longer matches the data is refused with its line."""
    import gzip

    from airisk.judges import cv
    from airisk.judges.offline import FAST_WEIGHTS_DIR

    recipe = {"sources": ["harmbench-cls-val", "xstest-completions"], "limit": 40, "texts": True}
    out = tmp_path / "cv"
    (out / "fold0").mkdir(parents=True)
    (out / "fold1").mkdir()
    (out / cv.RECIPE_FILE).write_text(json.dumps({"recipe": cv._recipe(5, recipe)}))
    for k in (0, 1):  # real held-out items of two folds, scored by the shipped fast weights (no training)
        preds = cv.predict_fold(FAST_WEIGHTS_DIR, k, 5, **recipe)
        (out / f"fold{k}" / cv.PREDICTIONS_FILE).write_text("".join(json.dumps(p) + "\n" for p in preds))
    n = cv.export_scores(out, tmp_path / "scores.jsonl.gz")
    again = tmp_path / "again.jsonl.gz"
    assert cv.export_scores(out, again) == n > 20
    assert again.read_bytes() == (tmp_path / "scores.jsonl.gz").read_bytes()  # byte-stable
    lines = gzip.decompress(again.read_bytes()).decode().splitlines()
    assert json.loads(lines[0])["format"] == cv.SCORES_FORMAT
    assert all(not set(json.loads(x)) & {"harm", "refusal", "hazard", "category"} for x in lines[1:])

    assert cv.load_predictions(again) == cv.load_predictions(out)
    assert cv.summarize(again) == cv.summarize(out)
    assert all(r.n > 0 and r.only_a_right == r.only_b_right == 0 for r in cv.compare(out, again))
    r = runner.invoke(app, ["judge", "cv", "--out", str(again), "--summary-only", "--compare", str(out)])
    assert r.exit_code == 0, r.output
    assert "harmbench-cls-val" in r.output
    r = runner.invoke(app, ["judge", "cv", "--out", str(again), "--epochs", "1"])
    assert isinstance(r.exception, ConfigError) and "scores file" in str(r.exception)

    rows = [json.loads(x) for x in lines]
    rows[3]["id"] = "not-an-item"
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(gzip.compress("".join(json.dumps(x) + "\n" for x in rows).encode()))
    with pytest.raises(ConfigError, match=r"bad.jsonl.gz: line 4: .*not-an-item"):
        cv.load_predictions(bad)
    (tmp_path / "junk.jsonl.gz").write_bytes(b"not gzip")
    with pytest.raises(ConfigError, match="not a scores file"):
        cv.summarize(tmp_path / "junk.jsonl.gz")
