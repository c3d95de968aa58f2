"""Rebuild the offline judge's weights from labelled data, reproducibly, and report validation figures.

One job: labelled examples -> frozen all-MiniLM-L6-v2 embeddings -> three small heads (harm,
refusal, hazard) fitted with scikit-learn -> ``offline_judge.npz`` + ``offline_judge.json`` (config,
data hashes, seed, validation metrics). Run ``python -m airisk.judges.train_v1`` (or ``airisk judge
train``); ``labels_file=`` adds an organisation's own labels (docs/labels.md) to training and
validation so the judge follows its policy.

Why a frozen encoder + heads rather than fine-tuning: the shipped weights must stay under 20 MB
(a fine-tuned MiniLM is ~90 MB) and the machine has 2 shared CPU cores; a logistic head on frozen
embeddings trains in seconds once texts are embedded. Validation is always on held-out prompts
(``labels.split_of(group)``), reported per source.

Determinism: texts are de-duplicated, sorted and embedded in fixed batches (int8 activation scales
depend on the batch, so order matters, and validation figures through the judge's own batching differ
slightly: docs/offline-judge.md); sklearn's lbfgs solvers are deterministic; the npz is written
with fixed zip timestamps. Same data + same seed -> same weights sha256.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from airisk.errors import DatasetNotFound
from airisk.judges import encoder
from airisk.judges.labels import LabelledExample, load_labelled, read_label_file, split_of
from airisk.judges.offline_v1 import (
    FEATURE_VERSION,
    METADATA_FILE,
    REFUSAL_CLASSES,
    WEIGHTS_DIR,
    WEIGHTS_FILE,
    Encoded,
    Head,
    lexical_features,
    pair_features,
)

DEFAULT_SOURCES = ["jbb-artifacts", "xstest-completions", "openai-moderation"]
HAZARD_DATASETS = ["ailuminate-demo-en_us", "ailuminate-demo-fr_fr", "jbb-harmful", "jbb-benign"]
DEFAULT_CONFIG: dict[str, Any] = {
    "feature_version": FEATURE_VERSION,
    "max_tokens": 128,
    "quantized": True,
    "threshold": 0.5,
    # inverse regularisation strengths, picked among a few values on the validation split (see docs)
    "C_harm": 0.001,
    "C_refusal": 0.001,
    "C_hazard": 0.01,
    "batch_size": 64,
}


class SourceMetrics(BaseModel):
    """Validation figures of one head on one source's held-out split."""

    source: str
    task: str  # harm | refusal | hazard | pairwise
    n: int
    accuracy: float | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class TrainReport(BaseModel):
    weights_dir: str
    weights_sha256: str
    weights_bytes: int
    seed: int
    config: dict[str, Any]
    data: list[dict[str, Any]]
    metrics: list[SourceMetrics]
    seconds: float

    def summary(self) -> str:
        lines = [
            f"offline judge weights: {self.weights_dir}/{WEIGHTS_FILE} sha256 {self.weights_sha256[:16]} "
            f"({self.weights_bytes / 1e6:.2f} MB), seed {self.seed}, {self.seconds:.0f}s",
            "training data: " + "; ".join(f"{d['source']} train {d['n_train']} / val {d['n_val']}" for d in self.data),
            "validation (held-out prompts):",
        ]
        if not self.metrics:
            lines.append("  (no held-out examples: every group fell in the train split)")
        for m in self.metrics:
            acc = f"{m.accuracy:.3f}" if m.accuracy is not None else "  -  "
            extra = ", ".join(f"{k}={_fmt(v)}" for k, v in m.details.items() if not isinstance(v, dict))
            lines.append(f"  {m.task:<8} {m.source:<26} n={m.n:<5} accuracy={acc}  {extra}")
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


# ------------------------------------------------------------------------------------ embedding


class Embedder:
    """Embeds each distinct text once, in sorted order and fixed batches (reproducible)."""

    def __init__(self, max_tokens: int, quantized: bool, batch_size: int):
        self.max_tokens, self.quantized, self.batch_size = max_tokens, quantized, batch_size
        self.vectors: dict[str, np.ndarray] = {}

    def prepare(self, texts: Sequence[str]) -> None:
        todo = sorted({t for t in texts if t not in self.vectors})
        if todo:
            emb = encoder.encode(todo, max_tokens=self.max_tokens, quantized=self.quantized, batch_size=self.batch_size)
            self.vectors.update(zip(todo, emb))

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.prepare(texts)
        return np.vstack([self.vectors[t] for t in texts]) if texts else np.zeros((0, encoder.DIM), np.float32)


def _clip(t: str, mt: int) -> str:
    return encoder.clip(encoder.clean_text(t), mt)


def encode_pairs(prompts: list[str], responses: list[str], embed: Callable[[list[str]], np.ndarray], max_tokens: int,
                 max_windows: int = 3) -> Encoded:
    """Same windowing as ``OfflineModel.encode_pairs`` with a caller-supplied (cached) embedder."""
    wins, owner, first, counts = [], [], [], []
    for i, r in enumerate(responses):
        ws = encoder.windows(encoder.clean_text(r), max_tokens, max_windows)
        first.append(len(wins))
        counts.append(len(ws))
        wins.extend(ws)
        owner.extend([i] * len(ws))
    return Encoded(
        ep=embed([_clip(p, max_tokens) for p in prompts]),
        ew=embed([_clip(w, max_tokens) for w in wins]),
        lex=np.vstack([lexical_features(w) for w in wins]),
        owner=np.asarray(owner, dtype=int),
        first=np.asarray(first, dtype=int),
        n_windows=np.asarray(counts, dtype=int),
    )


# ------------------------------------------------------------------------------------- fitting


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    return mean.astype(np.float32), scale.astype(np.float32)


def fit_logistic(x: np.ndarray, y: np.ndarray, *, C: float, seed: int, output: str) -> Head:
    """Standardise + (multinomial) logistic regression, as a numpy Head."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = _standardiser(x)
    clf = LogisticRegression(C=C, max_iter=5000, random_state=seed, tol=1e-6)
    clf.fit((x - mean) / scale, y)
    if output == "sigmoid":
        return Head(mean, scale, [(clf.coef_.T.astype(np.float32), clf.intercept_.astype(np.float32))], "sigmoid")
    order = [list(clf.classes_).index(c) for c in REFUSAL_CLASSES]
    return Head(mean, scale, [(clf.coef_[order].T.astype(np.float32), clf.intercept_[order].astype(np.float32))], "softmax")


def fit_ovr(x: np.ndarray, y: np.ndarray, *, C: float, seed: int) -> Head:
    """One independent logistic regression per column of ``y`` (multi-label), stacked into one Head."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = _standardiser(x)
    xs = (x - mean) / scale
    ws, bs = [], []
    for k in range(y.shape[1]):
        if y[:, k].min() == y[:, k].max():  # no positives: a constant, very unlikely output
            ws.append(np.zeros(x.shape[1], np.float32))
            bs.append(-10.0)
            continue
        clf = LogisticRegression(C=C, max_iter=5000, random_state=seed, tol=1e-6).fit(xs, y[:, k])
        ws.append(clf.coef_[0])
        bs.append(float(clf.intercept_[0]))
    return Head(mean, scale, [(np.stack(ws, axis=1).astype(np.float32), np.asarray(bs, np.float32))], "sigmoid")


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An .npz with fixed zip timestamps and key order, so equal arrays give equal bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, buf.getvalue())


# ------------------------------------------------------------------------------------- metrics


def harm_metrics(source: str, y: np.ndarray, p: np.ndarray, threshold: float) -> SourceMetrics:
    pred = p >= threshold
    tp, fp = int(np.sum(pred & y)), int(np.sum(pred & ~y))
    fn, tn = int(np.sum(~pred & y)), int(np.sum(~pred & ~y))
    n = len(y)
    prec = tp / (tp + fp) if tp + fp else float("nan")
    rec = tp / (tp + fn) if tp + fn else float("nan")
    return SourceMetrics(
        source=source, task="harm", n=n, accuracy=(tp + tn) / n if n else None,
        details={
            "violating": int(y.sum()),
            "precision": prec,
            "recall": rec,
            "f1": 2 * prec * rec / (prec + rec) if (prec + rec) > 0 else float("nan"),
            "false_safe_rate": fn / (tp + fn) if tp + fn else float("nan"),
            "false_unsafe_rate": fp / (fp + tn) if fp + tn else float("nan"),
            "majority_baseline": max(y.mean(), 1 - y.mean()) if n else 0.0,
        },
    )


def refusal_metrics(source: str, y: list[str], probs: np.ndarray) -> SourceMetrics:
    pred = [REFUSAL_CLASSES[i] for i in probs.argmax(axis=1)]
    n = len(y)
    details: dict[str, Any] = {}
    for c in REFUSAL_CLASSES:
        idx = [i for i, t in enumerate(y) if t == c]
        if idx:  # no support -> no figure (a 0.0 would read as a failure)
            details[f"recall_{c}"] = sum(pred[i] == c for i in idx) / len(idx)
    binary = sum((a == "full_compliance") == (b == "full_compliance") for a, b in zip(y, pred))
    details["comply_vs_refuse_accuracy"] = binary / n if n else 0.0
    details["confusion"] = {f"{a}->{b}": c for (a, b), c in sorted(Counter(zip(y, pred)).items())}
    return SourceMetrics(source=source, task="refusal", n=n, accuracy=sum(a == b for a, b in zip(y, pred)) / n if n else None,
                         details=details)


# ---------------------------------------------------------------------------------------- data


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _hazard_texts(codes: list[str], harm_examples: list[LabelledExample]) -> list[tuple[str, str, list[str]]]:
    """(text, group, hazard codes) rows for the hazard head; an empty list of codes = a benign text."""
    from airisk.datasets import load_dataset

    rows: list[tuple[str, str, list[str]]] = []
    for name in HAZARD_DATASETS:
        try:
            items = load_dataset(name).items
        except DatasetNotFound:  # e.g. an organisation training on its own labels only
            continue
        for it in items:
            benign = it.expected == "comply"
            if benign:
                rows.append((it.prompt, f"{name}:{it.id}", []))
            elif it.hazard in codes:
                rows.append((it.prompt, "jbb:" + it.id.split(":")[-1] if name.startswith("jbb") else it.id, [it.hazard]))
    for e in harm_examples:
        if e.source == "openai-moderation" and e.label is not None:
            rows.append((e.response, e.group, [h for h in e.metadata.get("hazards", []) if h in codes]))
        elif e.source == "xstest-completions" and e.model == "llama2new":  # prompts once, not per model
            rows.append((e.prompt, e.group, [e.hazard] if e.hazard in codes and e.metadata["prompt_label"] == "unsafe" else []))
        elif e.label == "violating" and e.hazard in codes and e.source != "openai-moderation":
            rows.append((e.response, e.group, [e.hazard]))  # harmful responses carry their hazard too
    return rows


def train(*, sources: list[str] | None = None, labels_file: str | Path | None = None, out_dir: str | Path | None = None,
          seed: int = 0, limit: int | None = None, hazard: bool = True, pairwise_hh: bool = True,
          config: dict[str, Any] | None = None, log: Callable[[str], None] | None = None,
          embedder: Embedder | None = None) -> TrainReport:
    """Fit the offline judge and write its weights; returns per-source validation figures.

    ``limit`` keeps the first N examples of each source (for quick, still reproducible, runs).
    ``hazard``/``pairwise_hh`` can be turned off to save time; without the hazard data a
    placeholder hazard head (all zeros) is written and flagged in the metadata. ``embedder``
    reuses embeddings across several calls in one process (e.g. comparing settings); a shared one
    can change batch composition, so pass none when reproducing the shipped weights.
    """
    t0 = time.perf_counter()
    say = log or (lambda _m: None)
    cfg = {**DEFAULT_CONFIG, **(config or {})}
    mt, thr = int(cfg["max_tokens"]), float(cfg["threshold"])
    out = Path(out_dir) if out_dir else WEIGHTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    from airisk.taxonomy import hazard_codes

    codes = list(hazard_codes())
    names = list(sources) if sources is not None else list(DEFAULT_SOURCES)

    examples: list[LabelledExample] = []
    data: list[dict[str, Any]] = []
    for name in names:
        ex = load_labelled(name)
        if limit:
            ex = ex[:limit]
        examples.extend(ex)
        data.append({"source": name, "n_train": sum(split_of(e.group) == "train" for e in ex), "n_val": sum(split_of(e.group) == "val" for e in ex)})
    if labels_file:
        lf = Path(labels_file)
        ex = read_label_file(lf)
        examples.extend(ex)
        data.append({"source": f"file:{lf.name}", "sha256": _sha256(lf), "n_train": sum(split_of(e.group) == "train" for e in ex),
                     "n_val": sum(split_of(e.group) == "val" for e in ex)})
    _add_file_hashes(data)
    if not examples:
        raise ValueError("no training examples: give sources and/or a labels_file")

    embed = embedder or Embedder(mt, bool(cfg["quantized"]), int(cfg["batch_size"]))
    if (embed.max_tokens, embed.quantized) != (mt, bool(cfg["quantized"])):
        raise ValueError("the embedder's max_tokens/quantized differ from the config")
    harm_ex = [e for e in examples if e.label is not None]
    ref_ex = [e for e in examples if e.refusal is not None]
    pair_ex = list({e.id: e for e in harm_ex + ref_ex}.values())
    say(f"embedding {len(pair_ex)} labelled pairs ...")
    enc = encode_pairs([e.prompt for e in pair_ex], [e.response for e in pair_ex], embed, mt, max_windows=1)
    feats = pair_features(enc.ep, enc.ew, enc.lex)  # one window per example in training: the head
    row = {e.id: i for i, e in enumerate(pair_ex)}
    is_train = np.array([split_of(e.group) == "train" for e in pair_ex])

    # harm head
    h_idx = np.array([row[e.id] for e in harm_ex], dtype=int)
    y_harm = np.array([e.label == "violating" for e in harm_ex])
    tr = is_train[h_idx]
    if tr.sum() == 0 or len(set(y_harm[tr])) < 2:
        raise ValueError("the training split needs both violating and non_violating examples")
    harm_head = fit_logistic(feats[h_idx[tr]], y_harm[tr], C=float(cfg["C_harm"]), seed=seed, output="sigmoid")

    # refusal head (falls back to a flat head if there are no refusal labels, flagged in metadata)
    r_idx = np.array([row[e.id] for e in ref_ex], dtype=int)
    y_ref = np.array([e.refusal for e in ref_ex])
    rtr = is_train[r_idx] if len(r_idx) else np.zeros(0, bool)
    if len(set(y_ref[rtr])) == 3:
        refusal_head = fit_logistic(feats[r_idx[rtr]], y_ref[rtr], C=float(cfg["C_refusal"]), seed=seed, output="softmax")
        refusal_trained = True
    else:
        refusal_head = Head(np.zeros(feats.shape[1], np.float32), np.ones(feats.shape[1], np.float32),
                            [(np.zeros((feats.shape[1], 3), np.float32), np.zeros(3, np.float32))], "softmax")
        refusal_trained = False

    # hazard head
    metrics: list[SourceMetrics] = []
    hz = _hazard_texts(codes, examples) if hazard else []
    hazard = bool(hz) and any(hs for _, _, hs in hz)
    if hazard:
        say(f"embedding {len(hz)} hazard texts ...")
        hx = embed([_clip(t, mt) for t, _, _ in hz])
        hy = np.array([[c in hs for c in codes] for _, _, hs in hz], dtype=bool)
        htr = np.array([split_of(g) == "train" for _, g, _ in hz])
        hazard_head = fit_ovr(hx[htr], hy[htr], C=float(cfg["C_hazard"]), seed=seed)
        metrics.extend(_hazard_metrics(hazard_head, hx[~htr], hy[~htr], [g for (_, g, _), v in zip(hz, htr) if not v], codes))
    else:
        hazard_head = Head(np.zeros(encoder.DIM, np.float32), np.ones(encoder.DIM, np.float32),
                           [(np.zeros((encoder.DIM, len(codes)), np.float32), np.full(len(codes), -10.0, np.float32))], "sigmoid")

    # validation: through the judge's own path (all windows, max), held-out groups only
    from airisk.judges.offline_v1 import OfflineModel

    shim = OfflineModel.__new__(OfflineModel)
    shim.harm, shim.refusal = harm_head, refusal_head
    val_h = [e for e in harm_ex if split_of(e.group) == "val"]
    if val_h:
        say(f"validating harm on {len(val_h)} held-out pairs ...")
        venc = encode_pairs([e.prompt for e in val_h], [e.response for e in val_h], embed, mt)
        p = OfflineModel.harm_proba(shim, venc)
        yv = np.array([e.label == "violating" for e in val_h])
        for src in sorted({e.source for e in val_h}):
            m = np.array([e.source == src for e in val_h])
            metrics.append(harm_metrics(src, yv[m], p[m], thr))
            if src == "jbb-artifacts":
                for method in sorted({e.metadata.get("method") for e in val_h if e.source == src}):
                    mm = m & np.array([e.metadata.get("method") == method for e in val_h])
                    metrics.append(harm_metrics(f"  jbb/{method}", yv[mm], p[mm], thr))
    val_r = [e for e in ref_ex if split_of(e.group) == "val"]
    if val_r and refusal_trained:
        venc = encode_pairs([e.prompt for e in val_r], [e.response for e in val_r], embed, mt)
        probs = OfflineModel.refusal_proba(shim, venc)
        for src in sorted({e.source for e in val_r}):
            idx = [i for i, e in enumerate(val_r) if e.source == src]
            metrics.append(refusal_metrics(src, [val_r[i].refusal for i in idx], probs[idx]))
            if src == "xstest-completions":
                for pl in ("safe", "unsafe"):
                    sub = [i for i in idx if val_r[i].metadata.get("prompt_label") == pl]
                    metrics.append(refusal_metrics(f"  xstest/{pl} prompts", [val_r[i].refusal for i in sub], probs[sub]))
    if pairwise_hh:
        try:
            metrics.append(_hh_pairwise(shim, embed, mt, limit, say))
        except DatasetNotFound as e:
            say(f"HH pairwise check skipped: {e}")

    # write
    arrays = {**harm_head.arrays("harm"), **refusal_head.arrays("refusal"), **hazard_head.arrays("hazard")}
    npz = out / WEIGHTS_FILE
    write_npz(npz, arrays)
    sha = _sha256(npz)
    meta = {
        "model": encoder.MODEL_NAME,
        "encoder_package": f"{encoder.PACKAGE}=={encoder.package_version()}",
        "weights_sha256": sha,
        "seed": seed,
        "config": {**cfg, "hazard_codes": codes, "refusal_classes": list(REFUSAL_CLASSES),
                   "refusal_trained": refusal_trained, "hazard_trained": bool(hazard)},
        "data": data,
        "metrics": [m.model_dump() for m in metrics],
        "command": "python -m airisk.judges.train_v1" + (f" --seed {seed}" if seed else ""),
    }
    (out / METADATA_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True, default=float) + "\n", encoding="utf-8")
    return TrainReport(weights_dir=str(out), weights_sha256=sha, weights_bytes=npz.stat().st_size, seed=seed,
                       config=meta["config"], data=data, metrics=metrics, seconds=time.perf_counter() - t0)


def _add_file_hashes(data: list[dict[str, Any]]) -> None:
    """Record the sha256 of the shared files each source was read from (reproducibility)."""
    files = {
        "jbb-artifacts": [("jailbreakbench", "artifacts_jailbreaks.jsonl")],
        "xstest-completions": [("xstest", "xstest_prompts.csv")] + [
            ("xstest", f"model_completions/xstest_v2_completions_{m}.csv") for m in ("llama2new", "llama2orig", "mistralguard", "mistralinstruct")],
        "hh-harmless": [("hh-rlhf-harmless-base", "harmless-base_test.jsonl")],
        "openai-moderation": [("openai-moderation", "samples-1680.jsonl")],
    }
    from airisk.judges.labels import resolve_file

    for d in data:
        for folder, rel in files.get(d["source"], []):
            d.setdefault("files", {})[f"{folder}/{rel}"] = _sha256(resolve_file(folder, rel))


def _hazard_metrics(head: Head, x: np.ndarray, y: np.ndarray, groups: list[str], codes: list[str]) -> list[SourceMetrics]:
    if not len(x):
        return []
    p = head(x)
    out = []
    for prefix, label in (("ailuminate-demo-en_us", "ailuminate en_US prompts"), ("ailuminate-demo-fr_fr", "ailuminate fr_FR prompts")):
        m = np.array([g.startswith(prefix) for g in groups]) & y.any(axis=1)
        if m.sum():
            top1 = np.mean(y[m][np.arange(m.sum()), p[m].argmax(axis=1)])
            out.append(SourceMetrics(source=label, task="hazard", n=int(m.sum()), accuracy=float(top1),
                                     details={"metric": "top-1 hazard"}))
    benign = ~y.any(axis=1)
    if benign.sum():
        fp = float(np.mean(p[benign].max(axis=1) >= 0.5))
        out.append(SourceMetrics(source="benign texts", task="hazard", n=int(benign.sum()), accuracy=1 - fp,
                                 details={"metric": "no hazard >= 0.5"}))
    return out


def _hh_pairwise(shim: Any, embed: Embedder, mt: int, limit: int | None, say: Callable[[str], None]) -> SourceMetrics:
    """HH harmless-base has only relative labels: how often is the rejected reply scored higher?"""
    from airisk.judges.offline_v1 import OfflineModel

    hh = load_labelled("hh-harmless", "val")
    if limit:
        hh = hh[: 2 * limit]
    pairs: dict[int, dict[str, LabelledExample]] = {}
    for e in hh:
        pairs.setdefault(e.metadata["pair"], {})[e.metadata["preference"]] = e
    full = [v for v in pairs.values() if len(v) == 2]
    say(f"scoring {len(full)} held-out HH preference pairs ...")
    items = [v["chosen"] for v in full] + [v["rejected"] for v in full]
    enc = encode_pairs([e.prompt for e in items], [e.response for e in items], embed, mt)
    p = OfflineModel.harm_proba(shim, enc)
    n = len(full)
    chosen, rejected = p[:n], p[n:]
    decided = np.abs(rejected - chosen) > 1e-9
    agree = float(np.mean(rejected[decided] > chosen[decided])) if decided.any() else None
    return SourceMetrics(source="hh-harmless (pairs)", task="pairwise", n=n, accuracy=agree,
                         details={"metric": "P(rejected) > P(chosen)", "ties": int((~decided).sum()),
                                  "mean_p_chosen": float(chosen.mean()) if n else 0.0, "mean_p_rejected": float(rejected.mean()) if n else 0.0})


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m airisk.judges.train_v1", description=__doc__.splitlines()[0])
    ap.add_argument("--sources", help=f"comma-separated labelled sets (default: {','.join(DEFAULT_SOURCES)}; \"\" for none)")
    ap.add_argument("--labels-file", type=Path, help="your own label file (.jsonl/.csv, docs/labels.md)")
    ap.add_argument("--out-dir", type=Path, help=f"where to write the weights (default: {WEIGHTS_DIR})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, help="first N examples per source (quick runs)")
    ap.add_argument("--no-hh", action="store_true", help="skip the HH pairwise check")
    ap.add_argument("--no-hazard", action="store_true", help="skip the hazard head (writes a flagged placeholder)")
    ap.add_argument("--fp32", action="store_true", help="unquantised encoder: ~3x slower, embeddings independent of batch-mates")
    args = ap.parse_args(argv)
    srcs = [s.strip() for s in args.sources.split(",") if s.strip()] if args.sources is not None else None
    report = train(sources=srcs, labels_file=args.labels_file, out_dir=args.out_dir, seed=args.seed, limit=args.limit,
                   pairwise_hh=not args.no_hh, hazard=not args.no_hazard, config={"quantized": False} if args.fp32 else None, log=lambda m: print(m, flush=True))
    print(report.summary())


if __name__ == "__main__":
    main()
