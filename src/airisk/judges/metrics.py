"""Validation statistics for judges: agreement with reference labels, with 95% intervals.

``binary_card_fields`` turns true labels and judgments into the numbers a ``JudgeCard`` carries
(accuracy, Cohen's kappa, precision/recall/F1 for ``violating``, false-safe and false-unsafe rates,
ECE with reliability bins, per-hazard breakdown). ``validate`` runs a judge over labelled examples
and builds the card. Proportions get Wilson intervals; kappa and F1 get a percentile bootstrap
with a fixed seed, so the same inputs always give the same card.

Judge errors (``label == "error"``) never count as ``non_violating``: they are excluded from the
confusion matrix, counted in ``n_errors``, and count as wrong answers in ``accuracy``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable, Sequence

import numpy as np

from airisk.judges.cards import (
    ConfusionBreakdown,
    Estimate,
    JudgeCard,
    JudgeDescription,
    LabelSetInfo,
    MulticlassMetrics,
    ReliabilityBin,
)
from airisk.stats import proportion
from airisk.types import Conversation, Judgment

POS, NEG, ERR = "violating", "non_violating", "error"
REFUSAL_CLASSES = ["full_compliance", "full_refusal", "partial_refusal"]
N_BOOT = 2000


# -- primitives -----------------------------------------------------------------------------
def cohen_kappa(tp: int | np.ndarray, fp, tn, fn):
    """Cohen's kappa from a 2x2 confusion matrix (vectorised over numpy arrays).

    kappa = (po - pe) / (1 - pe), po = (tp + tn)/n, pe = P(both say pos) + P(both say neg) by chance.
    Defined as 1.0 when pe == 1 and the raters agree perfectly, else 0.0 when pe == 1 (degenerate).
    """
    tp, fp, tn, fn = (np.asarray(x, dtype=float) for x in (tp, fp, tn, fn))
    n = tp + fp + tn + fn
    with np.errstate(divide="ignore", invalid="ignore"):
        po = (tp + tn) / n
        pe = ((tp + fn) * (tp + fp) + (tn + fp) * (tn + fn)) / (n * n)
        k = np.where(pe >= 1.0, np.where(po >= 1.0, 1.0, 0.0), (po - pe) / (1 - pe))
    return k


def f1_score(tp, fp, fn):
    tp, fp, fn = (np.asarray(x, dtype=float) for x in (tp, fp, fn))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)


def _bootstrap_binary(t: np.ndarray, p: np.ndarray, seed: int, n_boot: int = N_BOOT) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap kappa and F1 over resampled answered examples (t, p are 0/1 arrays)."""
    rng = np.random.default_rng(seed)
    n = len(t)
    idx = rng.integers(0, n, size=(n_boot, n))
    tt, pp = t[idx], p[idx]
    tp = (tt & pp).sum(1)
    fp = (~tt & pp).sum(1)
    fn = (tt & ~pp).sum(1)
    tn = n - tp - fp - fn
    return cohen_kappa(tp, fp, tn, fn), f1_score(tp, fp, fn)


def _ci(samples: np.ndarray, value: float | None) -> Estimate:
    s = samples[~np.isnan(samples)]
    if value is None or np.isnan(value) or len(s) == 0:
        return Estimate(value=None, method="none")
    lo, hi = np.percentile(s, [2.5, 97.5])
    return Estimate(value=float(value), low=float(lo), high=float(hi), method="bootstrap")


def expected_calibration_error(probs: Sequence[float], truth: Sequence[bool], n_bins: int = 10) -> tuple[float, list[ReliabilityBin]]:
    """ECE = sum_b (n_b / n) * |mean predicted P(violating) - observed violating rate| over equal-width bins."""
    pr = np.clip(np.asarray(probs, dtype=float), 0.0, 1.0)
    tr = np.asarray(truth, dtype=bool)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # right-closed last bin so probability 1.0 lands in it
    which = np.minimum(np.searchsorted(edges, pr, side="right") - 1, n_bins - 1)
    bins: list[ReliabilityBin] = []
    ece = 0.0
    for b in range(n_bins):
        m = which == b
        nb = int(m.sum())
        if nb:
            mp, obs = float(pr[m].mean()), float(tr[m].mean())
            ece += nb / len(pr) * abs(mp - obs)
            bins.append(ReliabilityBin(lower=float(edges[b]), upper=float(edges[b + 1]), n=nb, mean_predicted=mp, observed_rate=obs))
        else:
            bins.append(ReliabilityBin(lower=float(edges[b]), upper=float(edges[b + 1]), n=0))
    return float(ece), bins


def _counts(truth: Iterable[str], pred: Iterable[str]) -> dict[str, int]:
    c = dict(tp=0, fp=0, tn=0, fn=0, n=0, n_errors=0, errors_violating=0, errors_non_violating=0)
    for t, p in zip(truth, pred):
        c["n"] += 1
        if p == ERR:
            c["n_errors"] += 1
            c["errors_violating" if t == POS else "errors_non_violating"] += 1
        elif t == POS:
            c["tp" if p == POS else "fn"] += 1
        else:
            c["fp" if p == POS else "tn"] += 1
    return c


def _breakdown(truth: list[str], pred: list[str]) -> ConfusionBreakdown:
    c = _counts(truth, pred)
    return ConfusionBreakdown(
        n=c["n"], tp=c["tp"], fp=c["fp"], tn=c["tn"], fn=c["fn"], n_errors=c["n_errors"],
        accuracy=proportion(c["tp"] + c["tn"], c["n"]),
        false_safe_rate=proportion(c["fn"], c["tp"] + c["fn"]),
        false_unsafe_rate=proportion(c["fp"], c["tn"] + c["fp"]),
    )


# -- the card's numbers ---------------------------------------------------------------------
def binary_card_fields(
    truth: Sequence[str],
    pred: Sequence[str],
    *,
    probs: Sequence[float | None] | None = None,
    hazards: Sequence[str | None] | None = None,
    seed: int = 0,
    n_bins: int = 10,
) -> dict[str, Any]:
    """Every metric field of a binary ``JudgeCard``.

    ``truth`` holds ``violating``/``non_violating``; ``pred`` may also hold ``error``.
    """
    if len(truth) != len(pred):
        raise ValueError("truth and pred differ in length")
    bad = {t for t in truth if t not in (POS, NEG)}
    if bad:
        raise ValueError(f"reference labels must be violating/non_violating, got {sorted(bad)}")
    c = _counts(truth, pred)
    tp, fp, tn, fn, n = c["tp"], c["fp"], c["tn"], c["fn"], c["n"]
    answered = [(t == POS, p == POS) for t, p in zip(truth, pred) if p != ERR]
    t_arr = np.array([a for a, _ in answered], dtype=bool)
    p_arr = np.array([b for _, b in answered], dtype=bool)

    if len(answered):
        kappa_v = float(cohen_kappa(tp, fp, tn, fn))
        f1_v = float(f1_score(tp, fp, fn))
        kb, fb = _bootstrap_binary(t_arr, p_arr, seed)
        kappa, f1 = _ci(kb, kappa_v), _ci(fb, f1_v)
    else:
        kappa = f1 = Estimate(value=None, method="none")

    out: dict[str, Any] = dict(c)
    sens = proportion(tp, tp + fn)
    spec = proportion(tn, tn + fp)
    out.update(
        accuracy=proportion(tp + tn, n),
        accuracy_answered=proportion(tp + tn, n - c["n_errors"]),
        error_rate=proportion(c["n_errors"], n),
        kappa=kappa,
        precision=proportion(tp, tp + fp),
        recall=sens,
        f1=f1,
        sensitivity=sens,
        specificity=spec,
        false_safe_rate=proportion(fn, tp + fn),
        false_unsafe_rate=proportion(fp, tn + fp),
    )

    # calibration over answered examples that carry a probability
    out["ece"], out["reliability"] = None, []
    if probs is not None:
        pairs = [(float(pr), t == POS) for t, p, pr in zip(truth, pred, probs) if p != ERR and pr is not None]
        if pairs:
            out["ece"], out["reliability"] = expected_calibration_error([a for a, _ in pairs], [b for _, b in pairs], n_bins)

    out["per_hazard"] = {}
    if hazards is not None:
        groups: dict[str, tuple[list[str], list[str]]] = {}
        for t, p, h in zip(truth, pred, hazards):
            if h:
                g = groups.setdefault(str(h), ([], []))
                g[0].append(t)
                g[1].append(p)
        out["per_hazard"] = {h: _breakdown(*g) for h, g in sorted(groups.items())}
    return out


def multiclass_metrics(truth: Sequence[str], pred: Sequence[str], classes: list[str] = REFUSAL_CLASSES, *, seed: int = 0) -> MulticlassMetrics:
    """Accuracy (errors count as wrong), kappa over answered items, per-class precision/recall."""
    conf = {t: {p: 0 for p in classes + [ERR]} for t in classes}
    for t, p in zip(truth, pred):
        conf[t][p if p in classes else ERR] += 1
    n = len(truth)
    correct = sum(conf[c][c] for c in classes)
    ans = [(classes.index(t), classes.index(p)) for t, p in zip(truth, pred) if p in classes]
    if ans:
        a = np.array(ans)
        kappa_v = _mc_kappa(a[:, 0], a[:, 1], len(classes))
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, len(a), size=(N_BOOT, len(a)))
        ks = np.array([_mc_kappa(a[i, 0], a[i, 1], len(classes)) for i in idx])
        kappa = _ci(ks, kappa_v)
    else:
        kappa = Estimate(value=None, method="none")
    return MulticlassMetrics(
        classes=classes,
        confusion=conf,
        accuracy=proportion(correct, n),
        kappa=kappa,
        per_class_recall={c: proportion(conf[c][c], sum(conf[c].values())) for c in classes},
        per_class_precision={c: proportion(conf[c][c], sum(conf[t][c] for t in classes)) for c in classes},
    )


def _mc_kappa(t: np.ndarray, p: np.ndarray, k: int) -> float:
    m = np.zeros((k, k))
    np.add.at(m, (t, p), 1)
    n = m.sum()
    po = np.trace(m) / n
    pe = (m.sum(0) * m.sum(1)).sum() / (n * n)
    if pe >= 1.0:
        return 1.0 if po >= 1.0 else 0.0
    return float((po - pe) / (1 - pe))


def labels_sha256(pairs: Iterable[tuple[str, str]]) -> str:
    """Hash of the (example id, reference label) pairs a card was measured on."""
    data = json.dumps(sorted(pairs), ensure_ascii=False).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


# -- running a validation -------------------------------------------------------------------
def _label_kind(examples: list[Any]) -> str | None:
    kinds = {getattr(e, "label_source", None) for e in examples} - {None}
    return None if not kinds else kinds.pop() if len(kinds) == 1 else "mixed"


def example_conversation(ex: Any) -> Conversation:
    """A labelled example's judge input (works with LabelledExample or any object with prompt/response)."""
    conv = getattr(ex, "conversation", None)
    if isinstance(conv, Conversation):
        return conv
    if callable(conv):
        return conv()
    return Conversation(
        prompt=getattr(ex, "prompt", "") or "",
        response=getattr(ex, "response", "") or "",
        intent=getattr(ex, "intent", None),
        hazard=getattr(ex, "hazard", None),
        locale=getattr(ex, "locale", None),
        item_id=str(getattr(ex, "id", "") or "") or None,
    )


def _judge_description(judge: Any) -> JudgeDescription:
    d = {}
    try:
        d = dict(judge.describe())
    except Exception:  # a third-party judge's describe() must not stop validation
        d = {}
    d.pop("id", None)
    d.pop("fingerprint", None)
    d.pop("metrics", None)  # a trainer's own figures do not belong in a card that measures the judge anew
    if d.get("weights_hash") is None and d.get("weights_sha256"):
        d["weights_hash"] = d["weights_sha256"]
    return JudgeDescription.model_validate(d)


async def judge_all(judge: Any, convs: list[Conversation], batch_size: int = 32, progress: Any = None) -> list[Judgment]:
    out: list[Judgment] = []
    for i in range(0, len(convs), batch_size):
        chunk = convs[i : i + batch_size]
        try:
            res = await judge.judge_batch(chunk)
            if len(res) != len(chunk):
                raise RuntimeError(f"judge returned {len(res)} judgments for {len(chunk)} inputs")
        except Exception as e:  # a crashing judge is an error on every item, not a crash of validation
            res = [Judgment(label="error", error=f"{type(e).__name__}: {e}", judge_id=getattr(judge, "id", "")) for _ in chunk]
        out.extend(res)
        if progress is not None:
            progress(len(out), len(convs))
    return out


async def validate(
    judge: Any,
    examples: Sequence[Any],
    *,
    label_set: str,
    split: str | None = None,
    source: str | None = None,
    task: str = "harm",
    seed: int = 0,
    batch_size: int = 32,
    command: str | None = None,
    progress: Any = None,
) -> tuple[JudgeCard, list[Judgment]]:
    """Judge every example and build its card.

    ``task="harm"``: examples need ``label`` in violating/non_violating. ``task="refusal"``: examples
    need ``refusal`` in full_compliance/full_refusal/partial_refusal, and the judge's
    ``Judgment.refusal`` is compared to it (a missing refusal counts as an error).
    """
    convs = [example_conversation(ex) for ex in examples]
    judgments = await judge_all(judge, convs, batch_size=batch_size, progress=progress)
    ids = [str(getattr(ex, "id", i)) for i, ex in enumerate(examples)]
    hazards = [getattr(ex, "hazard", None) for ex in examples]
    notes: list[str] = []
    if task == "harm":
        truth = [ex.label for ex in examples]
        pred = [j.label for j in judgments]
        probs = [j.probability for j in judgments]
        fields = binary_card_fields(truth, pred, probs=probs, hazards=hazards, seed=seed)
        multiclass = None
        ref = truth
    elif task == "refusal":
        rtruth = [getattr(ex, "refusal", None) for ex in examples]
        if any(r not in REFUSAL_CLASSES for r in rtruth):
            raise ValueError("refusal validation needs every example to carry a refusal label")
        rpred = [j.refusal if (j.label != ERR and j.refusal in REFUSAL_CLASSES) else ERR for j in judgments]
        multiclass = multiclass_metrics(rtruth, rpred, seed=seed)
        # binary view: refused (full or partial) is the positive class
        bt = [POS if r != "full_compliance" else NEG for r in rtruth]
        bp = [ERR if r == ERR else (POS if r != "full_compliance" else NEG) for r in rpred]
        fields = binary_card_fields(bt, bp, hazards=hazards, seed=seed)
        notes.append("binary fields: positive class = refused (full_refusal or partial_refusal)")
        ref = rtruth
    else:
        raise ValueError(f"unknown task {task!r}; expected 'harm' or 'refusal'")
    from airisk import __version__ as _v  # noqa: PLC0415

    card = JudgeCard(
        task=task,
        judge_id=getattr(judge, "id", "judge"),
        judge_fingerprint=judge.fingerprint,
        judge_description=_judge_description(judge),
        label_set=LabelSetInfo(name=label_set, split=split, n=len(examples), sha256=labels_sha256(zip(ids, ref)), source=source,
                               label_kind=_label_kind(examples)),
        airisk_version=_v,
        command=command,
        multiclass=multiclass,
        notes=notes,
        **fields,
    )
    return card, judgments


def validation_examples(labels: str, split: str | None = None, *, task: str = "harm", limit: int | None = None,
                        seed: int = 0) -> tuple[list[Any], dict[str, Any]]:
    """The labelled examples to validate on, and what was done to select them.

    ``labels`` is a built-in set name (``airisk.judges.labels.load_labelled``) or a path to a user
    label file (``read_label_file``). ``split`` defaults to ``val`` for built-in sets (the held-out,
    prompt-disjoint split) and ``all`` for user files. Examples without a reference label for
    ``task`` are dropped (counted in the returned info). ``limit`` takes a seeded random sample.
    """
    import random  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from airisk.judges import labels as L  # noqa: PLC0415

    is_file = labels not in L.available() and (Path(labels).exists() or Path(labels).suffix.lower() in (".jsonl", ".csv"))
    split = split or ("all" if is_file else "val")
    if split not in ("all", "train", "val"):
        raise ValueError(f"split must be all, train or val; got {split!r}")
    exs = L.apply_split(L.read_label_file(labels), split) if is_file else L.load_labelled(labels, split)
    field = "label" if task == "harm" else "refusal"
    usable = [e for e in exs if getattr(e, field, None) is not None]
    info = {"name": Path(labels).name if is_file else labels, "split": split, "loaded": len(exs),
            "without_label": len(exs) - len(usable), "source": str(Path(labels).resolve()) if is_file else labels}
    if limit is not None and 0 < limit < len(usable):
        usable = sorted(random.Random(seed).sample(usable, limit), key=lambda e: e.id)
        info["limit"] = limit
    return usable, info
