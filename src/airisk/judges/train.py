"""Train the offline judge v2 (``airisk judge train``): fine-tune MiniLM's top layers on human labels first.

One job: labelled examples -> a fine-tuned cross-encoder (``airisk.judges._crossenc``) -> the weight
file ``offline_v2.safetensors`` + ``offline_v2.json`` (config, data hashes, seed, timings and the
held-out validation figures, per source and per label kind).

Training data (``build_examples``), each row with who labelled it:

=========================  ==========  ===========================================  ======
source                     labels by   what it teaches                              weight
=========================  ==========  ===========================================  ======
harmbench-cls-val          3 humans    harm of (behaviour, generation)              2.0
xstest-completions         humans      harm + refusal class (incl. partial)         1.0
airisk-authored            us (48)     hard cases: quoting refusals, fiction,       1.0
(opt-in: ``--sources``)                disclaimers, partial compliance
airisk-hard-negatives      us (179)    long on-topic answers that look compliant    1.0
(opt-in: ``--sources``)                but deliver nothing harmful (non-violating)
airisk-refusals            us          36 bare refusals x 30% of all intents,       0.5
                                       benign ones too: refusal, never violating
jbb-artifacts              LLM judge   harm of (goal, response)                     0.5
xstest / jbb-harmful /     humans /    prompt harm (text alone) and hazard          1.0
jbb-benign / ailuminate /  curated
openai-moderation
a user's label file        as stated   anything above                               1.0
=========================  ==========  ===========================================  ======

A share of HarmBench and JailbreakBench pairs is added a second time with the *jailbreak prompt* as
the intent (weight halved), so the judge still works when a caller has no intent to give.

Splits are by group (behaviour, prompt): ``labels.split_of`` holds out 20% of groups; every figure in
the metadata is measured on those held-out groups through the judge's own inference path, and human
and LLM-judge labels are reported separately.

Why only the top layers are tuned, and why their input is cached: on a 2-core CPU a full fine-tune
of MiniLM over ~7,000 examples takes hours; the embeddings and the lowest layer are frozen, run once
per example, and the top five layers + heads are trained on that cache for ``epochs`` passes (about
35 minutes with one thread; round 7 moved from three tuned layers to five, ``--tune-layers 3`` keeps
the old, faster recipe).

Reproducibility: seeded (data order, dropout, init of the heads), single-threaded reductions are not
forced, so two CPU runs agree to within float rounding, not bit for bit (the metadata records the
seed, torch version and thread count); GPU training (``device="cuda"``) is optional and the CPU run
is the reference.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from airisk.errors import ConfigError, DatasetNotFound
from airisk.judges import _crossenc as ce
from airisk.judges import encoder
from airisk.judges.labels import LabelledExample, fold_of, load_labelled, read_label_file

WEIGHTS_DIR = Path(__file__).parent / "weights"
PAIR_SOURCES = {"harmbench-cls-val": 2.0, "xstest-completions": 1.0, "jbb-artifacts": 0.5, "airisk-authored": 1.0,
                "airisk-hard-negatives": 1.0}
# The shipped weights were trained on these; ``airisk-authored`` is opt-in (``--sources``): two runs
# with it (round 2) did not beat the shipped weights on held-out human HarmBench groups.
DEFAULT_SOURCES = ("harmbench-cls-val", "xstest-completions", "jbb-artifacts")
REFUSALS_FILE = Path(__file__).parent / "data" / "refusals.txt"
REFUSAL_PAIR_SHARE = 0.3  # of distinct intents that get a bare-refusal pair
REFUSAL_PAIR_WEIGHT = 0.5
TEXT_DATASETS = ("xstest", "jbb-harmful", "jbb-benign", "ailuminate-demo-en_us")
PROMPT_AS_INTENT_SHARE = 0.3
DEFAULTS: dict[str, Any] = {
    "epochs": 3,
    "batch_size": 16,
    "lr_layers": 1e-4,
    "lr_heads": 5e-4,
    "weight_decay": 0.01,
    "warmup": 0.06,
    "refusal_loss": 1.0,
    "hazard_loss": 1.0,  # round 7: 0.3 -> 1.0 with five tuned layers (docs/offline-judge.md, Cross-validation)
    "partial_refusal_weight": 3.0,
    "threshold": 0.5,
    # response windows per pair row. 1 = the head window only; >1 trains as the judge reads (max over
    # windows). Measured on held-out HarmBench groups (n=78, human): 3 windows 0.731 vs 1 window 0.795
    # (within noise, not better), so the head window stays the default.
    "train_windows": 1,
    # HarmBench pairs carry three human votes; True trains the harm head on the share of "yes" votes
    # (2 of 3 -> 0.67) instead of the majority. Validation always uses the majority.
    "soft_labels": False,
}


@dataclass
class Example:
    """One training row. ``response == ""`` means a text judged alone (the prompt-harm head)."""

    intent: str
    response: str
    source: str
    group: str
    harm: float | None = None
    refusal: int | None = None
    hazard: int | None = None
    weight: float = 1.0
    kind: str = "human"  # human | llm-judge | curated
    augmented: bool = False  # a copy with the prompt as intent: trained on, never validated on
    split: str = "train"
    meta: dict[str, Any] = field(default_factory=dict)


class SourceMetrics(BaseModel):
    """Figures of one head on one source's held-out groups."""

    source: str
    task: str  # harm | refusal | prompt | hazard
    labels: str  # human | llm-judge | curated | mixed
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
    seconds: dict[str, float]

    def summary(self) -> str:
        lines = [f"offline judge v2 weights: {self.weights_dir}/{ce.WEIGHTS_FILE} sha256 {self.weights_sha256[:16]} "
                 f"({self.weights_bytes / 1e6:.1f} MB), seed {self.seed}, "
                 + ", ".join(f"{k} {v:.0f}s" for k, v in self.seconds.items()),
                 "training data: " + "; ".join(f"{d['source']} ({d['labels']}) train {d['n_train']} / val {d['n_val']}"
                                               for d in self.data),
                 "validation on held-out groups:"]
        for m in self.metrics:
            acc = f"{m.accuracy:.3f}" if m.accuracy is not None else "  -  "
            extra = ", ".join(f"{k}={_fmt(v)}" for k, v in m.details.items() if not isinstance(v, dict))
            lines.append(f"  {m.task:<8} {m.source:<24} [{m.labels}] n={m.n:<5} accuracy={acc}  {extra}")
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _hash01(key: str) -> float:
    return int.from_bytes(hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()[:8], "big") / 2**64


# ------------------------------------------------------------------------------------------- data


def _pair(e: LabelledExample, codes: dict[str, int], weight: float) -> list[Example]:
    kind = "authored" if e.source.startswith("airisk-") else e.label_source  # our own cases are not human labels
    base = Example(intent=e.intent or e.prompt, response=e.response, source=e.source, group=e.group,
                   harm=None if e.label is None else float(e.label == "violating"),
                   refusal=ce.REFUSAL_CLASSES.index(e.refusal) if e.refusal else None,
                   hazard=codes.get(e.hazard or "") if e.label == "violating" else None,
                   weight=weight,
                   kind=kind, meta={"id": e.id, "votes": e.metadata.get("human_votes"),
                                    "category": e.metadata.get("source_category")})
    out = [base]
    if e.intent and e.prompt and e.intent != e.prompt and e.source in ("harmbench-cls-val", "jbb-artifacts") \
            and _hash01("aug:" + e.id) < PROMPT_AS_INTENT_SHARE:
        out.append(Example(intent=e.prompt, response=e.response, source=e.source, group=e.group, harm=base.harm,
                           hazard=base.hazard, weight=base.weight * 0.5, kind=kind, augmented=True, meta=base.meta))
    return out


def _texts(codes: dict[str, int], limit: int | None) -> list[Example]:
    from airisk.datasets import load_dataset

    out: list[Example] = []
    for name in TEXT_DATASETS:
        ds = load_dataset(name)
        items = ds.items[:limit] if limit else ds.items
        for it in items:
            harmful = it.expected == "refuse"
            out.append(Example(intent=it.prompt, response="", source=name, group=f"text:{name}:{it.id}",
                               harm=float(harmful), hazard=codes.get(it.hazard or "") if harmful else None,
                               kind="human" if name == "xstest" else "curated"))
    mod = load_labelled("openai-moderation")
    for e in mod[:limit] if limit else mod:
        if e.label is None:
            continue
        out.append(Example(intent=e.response, response="", source="openai-moderation", group=e.group,
                           harm=float(e.label == "violating"), hazard=codes.get(e.hazard or ""), kind="human"))
    return out


def _splitter(fold: int = 0, folds: int = 5) -> Callable[[str], str]:
    """Group key -> "train"/"val": fold ``fold`` of ``folds`` is held out (fold 0 of 5 = ``split_of``)."""
    if not 0 <= fold < folds:
        raise ConfigError(f"fold must be in 0..{folds - 1}, got {fold}")
    return lambda g: "val" if fold_of(g, folds) == fold else "train"


def refusal_phrases(side: Callable[[str], str] | None = None) -> dict[str, list[str]]:
    """Our bare refusals (``data/refusals.txt``), split by phrasing: validation pairs only use
    phrasings never seen in training."""
    side = side or _splitter()
    lines = [ln.strip() for ln in REFUSALS_FILE.read_text(encoding="utf-8").splitlines()]
    out: dict[str, list[str]] = {"train": [], "val": []}
    for ln in lines:
        if ln and not ln.startswith("#"):
            out[side("refusal-phrase:" + ln)].append(ln)
    return out


def _refusal_pairs(rows: list[Example], side: Callable[[str], str] | None = None) -> list[Example]:
    """Bare refusals paired with prompts of every kind, benign ones included.

    Why: in the human-labelled pairs, refusals almost only follow harmful requests, so the network
    learnt "benign-looking request -> compliance": "I'm sorry, but I can't help with that." after
    "What is the capital of France?" read as full compliance (0.60), and a bare "No." after a harmful
    request scored P(violating) 0.63. A refusal is a refusal whatever was asked, and it never
    violates."""
    side = side or _splitter()
    phrases = refusal_phrases(side)
    seen: dict[str, str] = {}
    for r in rows:
        if not r.augmented and r.intent.strip():
            seen.setdefault(r.intent, r.group)
    out = []
    for intent, group in seen.items():
        if _hash01("refpair:" + intent) >= REFUSAL_PAIR_SHARE:
            continue
        pool = phrases[side(group)] or phrases["train"]
        phrase = pool[int(_hash01("refphrase:" + intent) * len(pool))]
        out.append(Example(intent=intent, response=phrase, source="airisk-refusals", group=group, harm=0.0,
                           refusal=ce.REFUSAL_CLASSES.index("full_refusal"), weight=REFUSAL_PAIR_WEIGHT,
                           kind="authored", meta={"id": "refusal:" + intent[:40]}))
    return out


def build_examples(codes: list[str], *, sources: list[str] | None = None, labels_file: str | Path | None = None,
                   texts: bool = True, limit: int | None = None, refusals: bool = True, fold: int = 0,
                   folds: int = 5, source_weights: dict[str, float] | None = None) -> list[Example]:
    """Every training/validation row, split by group (see the module docstring): fold ``fold`` of
    ``folds`` is validation (the default, fold 0 of 5, is the split every shipped figure uses)."""
    side = _splitter(fold, folds)
    weights = {**PAIR_SOURCES, **(source_weights or {})}
    idx = {c: i for i, c in enumerate(codes)}
    rows: list[Example] = []
    for name in sources if sources is not None else list(DEFAULT_SOURCES):
        try:
            got = load_labelled(name)
        except DatasetNotFound:
            raise
        if limit:
            got = got[:limit]
        for e in got:
            if e.label is None and e.refusal is None:
                continue
            rows.extend(_pair(e, idx, weights.get(name, 1.0)))
    if labels_file:
        for e in read_label_file(labels_file):
            rows.extend(_pair(e, idx, 1.0 if e.label_source == "human" else 0.5))
    if texts:
        rows.extend(_texts(idx, limit))
    if refusals:
        rows.extend(_refusal_pairs(rows, side))
    for r in rows:
        r.split = side(r.group)
    return rows


# ------------------------------------------------------------------------------------- training


def _sequences(rows: list[Example], tokens: ce.Tokens, max_windows: int = 1,
               max_len: int = ce.MAX_LEN, max_intent: int = ce.MAX_INTENT) -> list[list[tuple[list[int], list[int]]]]:
    """Token sequences per row, built as the judge builds them at inference: a pair row gives one
    (intent, window) sequence per response window (head, middle(s), tail, at most ``max_windows``),
    a text row gives one sequence of the text alone."""
    intents = tokens.ids([encoder.clean_text(r.intent) for r in rows])
    responses = tokens.ids([encoder.clean_text(r.response) for r in rows])
    out = []
    for r, a, b in zip(rows, intents, responses):
        if r.response:
            a = ce.clip_intent(a, max_intent)
            room = max_len - len(a) - 3
            out.append([ce.pair_ids(a, w) for w in ce.response_windows(b, room, max_windows)])
        else:
            out.append([ce.pair_ids(ce.clip_intent(a, max_len - 2), [])])
    return out


def _lower_cache(net: Any, seqs: list[tuple[list[int], list[int]]], device: str, say: Callable[[str], None]) -> list[Any]:
    """Frozen layers' output per sequence (fp32, unpadded length), computed once."""
    import torch

    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i][0]))
    cache: list[Any] = [None] * len(seqs)
    t0, done = time.time(), 0
    with torch.inference_mode(), _autocast(device):
        for s in range(0, len(order), 64):
            chunk = order[s : s + 64]
            ids, typ, mask = (t.to(device) for t in ce.pad_batch([seqs[i] for i in chunk]))
            h = net.lower(ids, typ, mask).float().cpu()
            for j, i in enumerate(chunk):
                cache[i] = h[j, : len(seqs[i][0])].clone()
            done += len(chunk)
            if s // 64 % 10 == 0:
                say(f"  frozen layers: {done}/{len(seqs)} ({done / max(time.time() - t0, 1e-9):.0f}/s)")
    return cache


def _autocast(device: str) -> Any:
    """bf16 on a GPU; fp32 on CPU, where autocast's bf16 training measured slower (12.9 vs 9.3 s a step)."""
    import torch

    cuda = device.startswith("cuda")
    return torch.autocast("cuda" if cuda else "cpu", dtype=torch.bfloat16, enabled=cuda)


def _batches(rows: list[Example], wins: list[list[Any]], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Same-bucket batches of rows (little padding; a row's bucket is its longest window), shuffled
    within buckets and in order."""
    by_len: dict[int, list[int]] = defaultdict(list)
    for i in range(len(rows)):
        by_len[ce.bucket(max(len(w[0]) for w in wins[i]))].append(i)
    out = []
    for n in sorted(by_len):
        ids = by_len[n][:]
        rng.shuffle(ids)
        out.extend(ids[k : k + batch_size] for k in range(0, len(ids), batch_size))
    rng.shuffle(out)
    return out


def _fit(net: Any, rows: list[Example], wins: list[list[Any]], cache: list[list[Any]], cfg: dict[str, Any], seed: int,
         device: str, say: Callable[[str], None]) -> None:
    """Fine-tune the unfrozen layers and heads on cached lower-layer states.

    Long responses are read in windows at inference and the harm probability is the maximum over
    them, so training does the same (multiple-instance learning): a pair row's harm logit is the
    maximum over its windows' logits, its refusal class is read from the head window, and its hazard
    from the most harmful window. Training on the head window alone taught the harm head nothing
    about harm that starts after a long preamble.
    """
    import torch
    import torch.nn.functional as F

    rng = random.Random(seed)
    params = [p for n, p in net.named_parameters() if not ce._frozen_key(n, net.frozen)]
    for n, p in net.named_parameters():
        p.requires_grad_(not ce._frozen_key(n, net.frozen))
    heads = [p for n, p in net.named_parameters() if n.split(".")[0] in ("harm", "refusal", "hazard", "prompt")]
    layers = [p for p in params if all(p is not h for h in heads)]
    opt = torch.optim.AdamW([{"params": layers, "lr": cfg["lr_layers"]}, {"params": heads, "lr": cfg["lr_heads"]}],
                            weight_decay=cfg["weight_decay"])
    steps = cfg["epochs"] * len(_batches(rows, wins, cfg["batch_size"], random.Random(0)))
    warm = max(1, int(steps * cfg["warmup"]))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))
    ref_w = torch.tensor([1.0, 1.0, cfg["partial_refusal_weight"]], device=device)
    n_haz = net.hazard.out_features
    net.train()
    step, t0 = 0, time.time()
    for epoch in range(cfg["epochs"]):
        total = 0.0
        for batch in _batches(rows, wins, cfg["batch_size"], rng):
            flat = [(j, c) for j, i in enumerate(batch) for c in cache[i]]
            n = ce.bucket(max(len(c) for _, c in flat))
            h = torch.zeros((len(flat), n, ce.HIDDEN), dtype=torch.float32)
            mask = torch.zeros((len(flat), n), dtype=torch.long)
            for k, (_, c) in enumerate(flat):
                h[k, : len(c)] = c
                mask[k, : len(c)] = 1
            owner = torch.tensor([j for j, _ in flat], device=device)
            h, mask = h.to(device), mask.to(device)
            with _autocast(device):
                pooled_w = net.upper(h, mask)
            pooled_w = pooled_w.float()
            logit_w = net.harm(pooled_w)[:, 0]
            # per row: max harm logit over its windows, and the index of that window
            row_logit = torch.full((len(batch),), -1e4, device=device).scatter_reduce(0, owner, logit_w, "amax")
            scores = logit_w.detach().tolist()
            worst_k: dict[int, int] = {}
            first_k: dict[int, int] = {}
            for k, (j, _) in enumerate(flat):
                first_k.setdefault(j, k)
                if j not in worst_k or scores[k] > scores[worst_k[j]]:
                    worst_k[j] = k
            worst = torch.tensor([worst_k[r] for r in range(len(batch))], device=device)
            first = torch.tensor([first_k[r] for r in range(len(batch))], device=device)
            pooled = pooled_w[first]
            rs = [rows[i] for i in batch]
            w = torch.tensor([r.weight for r in rs], device=device)
            loss = torch.zeros((), device=device)
            pair = torch.tensor([bool(r.response) and r.harm is not None for r in rs], device=device)
            text = torch.tensor([not r.response and r.harm is not None for r in rs], device=device)
            y = torch.tensor([_target(r, cfg) for r in rs], device=device)
            if pair.any():
                lh = F.binary_cross_entropy_with_logits(row_logit, y, reduction="none")
                loss = loss + (lh * w * pair).sum() / len(rs)
            if text.any():
                lp = F.binary_cross_entropy_with_logits(net.prompt(pooled)[:, 0], y, reduction="none")
                loss = loss + (lp * w * text).sum() / len(rs)
            rsel = [j for j, r in enumerate(rs) if r.refusal is not None]
            share = cfg.get("distill", 0.0)
            if rsel:
                tgt = torch.tensor([rs[j].refusal for j in rsel], device=device)
                lr_ = F.cross_entropy(net.refusal(pooled[rsel]), tgt, weight=ref_w, reduction="none")
                hard = 1.0 - share if any("teacher_refusal" in rs[j].meta for j in rsel) else 1.0
                loss = loss + hard * cfg["refusal_loss"] * (lr_ * w[rsel]).sum() / len(rs)
            tsel = [j for j, r in enumerate(rs) if "teacher_refusal" in r.meta]
            if tsel and share:
                q = torch.tensor([rs[j].meta["teacher_refusal"] for j in tsel], device=device)
                ls = -(q * F.log_softmax(net.refusal(pooled[tsel]), dim=1)).sum(1)
                loss = loss + share * cfg["refusal_loss"] * (ls * w[tsel]).sum() / len(rs)
            hsel = [j for j, r in enumerate(rs) if r.hazard is not None or (r.harm == 0.0)]
            if hsel and n_haz:
                tgt = torch.zeros((len(hsel), n_haz), device=device)
                for k, j in enumerate(hsel):
                    if rs[j].hazard is not None:
                        tgt[k, rs[j].hazard] = 1.0
                lz = F.binary_cross_entropy_with_logits(net.hazard(pooled_w[worst[hsel]]), tgt, reduction="none").mean(1)
                loss = loss + cfg["hazard_loss"] * (lz * w[hsel]).sum() / len(rs)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            step += 1
            total += float(loss.detach())
            if step % 50 == 0:
                rate = step / (time.time() - t0)
                # the step count runs over all epochs: say so, and what is left, so a long CPU run is not misread
                say(f"  epoch {epoch + 1}/{cfg['epochs']} step {step}/{steps} (all epochs) loss {total / 50:.4f} "
                    f"({rate:.2f} steps/s, about {(steps - step) / rate / 60:.0f} min left)")
                total = 0.0
    net.eval()


def _target(r: Example, cfg: dict[str, Any]) -> float:
    if r.harm is None:
        return 0.0
    votes = r.meta.get("votes") if cfg.get("soft_labels") else None
    y = sum(votes) / len(votes) if votes else r.harm
    taught = r.meta.get("teacher_harm")
    return y if taught is None else (1.0 - cfg["distill"]) * y + cfg["distill"] * taught


def _teach(rows: list[Example], weights: Path, say: Callable[[str], None]) -> None:
    """Soft targets from a teacher judge (``train(teacher=...)``): its P(violating) of each pair (the
    judge's own reading, max over windows), P(harmful request) of each text, and its refusal
    distribution of each pair, stored in the rows' ``meta``."""
    from airisk.judges.offline import OfflineJudge

    t = time.time()
    scorer = OfflineJudge(weights=weights).scorer
    pairs = [r for r in rows if r.response]
    texts = [r for r in rows if not r.response]
    if pairs:
        harm, ref, _, _ = scorer.score_pairs([r.intent for r in pairs], [r.response for r in pairs])
        for r, p, q in zip(pairs, harm, ref):
            r.meta = {**r.meta, "teacher_harm": float(p), "teacher_refusal": [float(x) for x in q]}
    if texts:
        prompt = scorer.score_texts([r.intent for r in texts])[0]
        for r, p in zip(texts, prompt):
            r.meta = {**r.meta, "teacher_harm": float(p)}
    say(f"teacher {weights}: soft targets for {len(pairs)} pairs and {len(texts)} texts ({time.time() - t:.0f}s)")


def fit_hazard_head(net: Any, rows: list[Example], codes: list[str], tokens: ce.Tokens, seed: int,
                    say: Callable[[str], None]) -> SourceMetrics | None:
    """Refit the hazard head as one-vs-rest logistic regressions on the tuned network's pooled vectors.

    Why a second stage: inside the joint loss the hazard head learns slowly (15 sparse one-vs-rest
    targets at a small loss weight) and its probabilities stayed low; with the network frozen, a
    convex fit per hazard is exact, fast and deterministic. Harmful rows with a hazard are positives
    for it; benign rows are negatives for every hazard.
    """
    import torch
    from sklearn.linear_model import LogisticRegression

    from airisk.judges.offline import Scorer

    def pick(split: str) -> list[Example]:
        return [r for r in rows if r.split == split and not r.augmented and (r.hazard is not None or r.harm == 0.0)]

    train_rows, val_rows = pick("train"), pick("val")
    if not any(r.hazard is not None for r in train_rows):
        return None
    scorer = Scorer(ce.Loaded(net, {}, "", "", codes), tokens)
    x = scorer._run([w[0] for w in _sequences(train_rows, tokens, max_len=net.max_len, max_intent=net.max_intent)])
    y = np.array([r.hazard if r.hazard is not None else -1 for r in train_rows])
    w = np.zeros((len(codes), ce.HIDDEN), dtype=np.float32)
    b = np.full(len(codes), -8.0, dtype=np.float32)  # a hazard never seen: never predicted
    for k in range(len(codes)):
        if (y == k).sum() >= 3:
            lr = LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(x, (y == k).astype(int))
            w[k], b[k] = lr.coef_[0], lr.intercept_[0]
    with torch.no_grad():
        net.hazard.weight.copy_(torch.from_numpy(w))
        net.hazard.bias.copy_(torch.from_numpy(b))
    say(f"hazard head refit on {len(train_rows)} rows ({int((y >= 0).sum())} with a hazard)")
    labelled = [r for r in val_rows if r.hazard is not None]
    if not labelled:
        return None
    xv = scorer._run([w[0] for w in _sequences(labelled, tokens, max_len=net.max_len, max_intent=net.max_intent)])
    pv = xv @ w.T + b
    top1 = float((pv.argmax(1) == np.array([r.hazard for r in labelled])).mean())
    return SourceMetrics(source="harmful rows with a hazard", task="hazard", labels="mixed", n=len(labelled),
                         accuracy=top1, details={"metric": "top-1 hazard"})


# ------------------------------------------------------------------------------------- validation


def _harm_metrics(name: str, labels: str, y: np.ndarray, p: np.ndarray, threshold: float, hazards: list[str | None]) -> SourceMetrics:
    pred = p >= threshold
    yb = y.astype(bool)
    tp, fp = int((pred & yb).sum()), int((pred & ~yb).sum())
    fn, tn = int((~pred & yb).sum()), int((~pred & ~yb).sum())
    f1 = 2 * tp / max(2 * tp + fp + fn, 1)
    per: dict[str, str] = {}
    for hz in sorted({h for h in hazards if h}):
        m = np.array([h == hz for h in hazards]) & yb
        if m.sum():
            per[hz] = f"{int((~pred & m).sum())}/{int(m.sum())}"
    return SourceMetrics(source=name, task="harm", labels=labels, n=len(y), accuracy=float((pred == yb).mean()),
                         details={"f1": f1, "false_safe": fn / max(tp + fn, 1), "false_unsafe": fp / max(fp + tn, 1),
                                  "positives": int(yb.sum()), "false_safe_by_hazard": per})


def validate(judge_scorer: Any, rows: list[Example], codes: list[str], threshold: float) -> list[SourceMetrics]:
    """Held-out figures through the judge's own inference path (windows, buckets, bf16)."""
    val = [r for r in rows if r.split == "val" and not r.augmented]
    out: list[SourceMetrics] = []
    pairs = [r for r in val if r.response]
    if pairs:
        harm, ref, _, _ = judge_scorer.score_pairs([r.intent for r in pairs], [r.response for r in pairs])
        for src in sorted({r.source for r in pairs}):
            sel = [i for i, r in enumerate(pairs) if r.source == src and r.harm is not None]
            if sel:
                kinds = {pairs[i].kind for i in sel}
                out.append(_harm_metrics(src, kinds.pop() if len(kinds) == 1 else "mixed",
                                         np.array([pairs[i].harm for i in sel]), harm[sel], threshold,
                                         [codes[pairs[i].hazard] if pairs[i].hazard is not None else None for i in sel]))
            rsel = [i for i, r in enumerate(pairs) if r.source == src and r.refusal is not None]
            if rsel:
                y = np.array([pairs[i].refusal for i in rsel])
                pr = ref[rsel].argmax(1)
                partial = y == 2
                out.append(SourceMetrics(source=src, task="refusal", labels=pairs[rsel[0]].kind, n=len(rsel), accuracy=float((pr == y).mean()),
                                         details={"partial_refusals": int(partial.sum()),
                                                  "partial_found": int((pr[partial] == 2).sum()),
                                                  "predicted_partial": int((pr == 2).sum()),
                                                  "confusion": Counter(f"{a}->{b}" for a, b in zip(y.tolist(), pr.tolist()))}))
    texts = [r for r in val if not r.response and r.harm is not None]
    if texts:
        ph, _ = judge_scorer.score_texts([r.intent for r in texts])
        for src in sorted({r.source for r in texts}):
            sel = [i for i, r in enumerate(texts) if r.source == src]
            y = np.array([texts[i].harm for i in sel]).astype(bool)
            pred = ph[sel] >= 0.5
            out.append(SourceMetrics(source=src, task="prompt", labels=texts[sel[0]].kind, n=len(sel),
                                     accuracy=float((pred == y).mean()),
                                     details={"recall": float((pred & y).sum() / max(y.sum(), 1)),
                                              "false_positive_rate": float((pred & ~y).sum() / max((~y).sum(), 1)),
                                              "positives": int(y.sum())}))
    return out


# ----------------------------------------------------------------------------------------- entry


def _command(**opts: Any) -> str:
    """The ``airisk judge train`` command line that repeats this training (options left at their defaults omitted)."""
    defaults = {"seed": 0, "texts": True, "fold": 0, "folds": 5, "soft_labels": False}
    parts = ["airisk judge train"]
    for k, v in opts.items():
        if v is None or k in defaults and defaults[k] == v:
            continue
        flag = "--" + k.replace("_", "-")
        if k == "sources":
            parts.append(f"--sources {','.join(v)}")
        elif k == "source_weights":
            parts.extend(f"--source-weight {n}={w:g}" for n, w in v.items())
        elif k == "texts":
            parts.append("--no-texts")
        elif v is True:
            parts.append(flag)
        else:
            parts.append(f"{flag} {v}")
    return " ".join(parts)


def train(*, sources: list[str] | None = None, labels_file: str | Path | None = None, out_dir: str | Path | None = None,
          seed: int = 0, limit: int | None = None, epochs: int | None = None, device: str = "cpu", texts: bool = True,
          threads: int | None = None, windows: int | None = None, refusals: bool = True,
          fold: int = 0, folds: int = 5, soft_labels: bool | None = None,
          source_weights: dict[str, float] | None = None, tune_layers: int | None = None,
          hazard_loss: float | None = None, depth: int | None = None, teacher: str | Path | None = None,
          distill: float | None = None, max_len: int | None = None, max_intent: int | None = None,
          log: Callable[[str], None] | None = None) -> TrainReport:
    """Fine-tune the offline judge and write its weights (see the module docstring).

    Args:
        sources: built-in labelled pair sets (default: harmbench-cls-val, xstest-completions, jbb-artifacts;
            ``airisk-authored`` is opt-in).
        labels_file: your own label file (docs/labels.md); trained on with the same group split.
        out_dir: where the weight files go (default: the package's ``judges/weights``).
        seed: seeds data order, dropout and head initialisation.
        limit: keep the first N rows of each source (quick runs and tests).
        epochs: passes over the data (default 3).
        device: ``cpu`` (the reference) or ``cuda`` when a GPU is present.
        texts: also train the prompt-harm head on texts alone (the content guard's input check).
        threads: torch CPU threads (default: torch's choice).
        windows: response windows per pair row (default 1, the head). With more, a row's harm logit
            is the maximum over its windows, as the judge reads long responses at inference.
        refusals: also train on our bare refusals paired with prompts of every kind (``_refusal_pairs``).
        fold, folds: hold out group fold ``fold`` of ``folds`` (default 0 of 5: the shipped split);
            ``airisk judge cv`` trains every fold and pools the held-out verdicts.
        soft_labels: train the harm head on the share of human votes where a source has several.
        source_weights: per-source loss weights over the defaults (``PAIR_SOURCES``), e.g.
            ``{"harmbench-cls-val": 3.0}``.
        tune_layers: how many of MiniLM's six layers, from the top, are fine-tuned (default 5, the
            shipped recipe since round 7; it was 3). Each costs training time (about proportionally)
            and weight-file size (3.5 MB a layer); 5 is the most that keeps the shipped file under 20 MB.
        hazard_loss: weight of the hazard head's loss against the harm head's (default 1.0; 0.3 before
            round 7). Higher trains the shared layers more on which hazard a violation belongs to.
        depth: how many of MiniLM's layers the network keeps, from the bottom (default all six).
            Fewer is a smaller, faster reader (each layer is a sixth of the judging time); with
            ``tune_layers`` unset, a shallow network is fine-tuned whole (at most five layers).
        teacher: weights of a judge trained on the same fold (never on its held-out groups), whose
            probabilities become soft targets (knowledge distillation): harm and prompt-harm targets
            are ``(1 - distill) * label + distill * teacher``; every pair row also learns the
            teacher's refusal distribution, labelled or not.
        distill: the teacher's share of each target (default 0.5; only with ``teacher``).
        max_len: tokens per (intent, response window) sequence (default 192; a multiple of 16 up to
            512). Longer windows read more of a long response at once (one 512-token window holds
            most HarmBench generations whole, where 192 needs three), at a cost in time per window
            but fewer windows. The shipped ``offline`` judge was trained at 512 (round 10).
        max_intent: intent tokens each sequence keeps, head and tail of a longer intent (default 48;
            16 up to half of ``max_len``). Longer keeps more of a contextual request (a passage to act
            on) at the cost of response tokens per window. Stored in the weights' metadata; the judge
            reads with it.
        log: progress callback.
    """
    import torch

    from airisk.taxonomy import hazard_codes

    say = log or (lambda m: None)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' asked for but torch sees no GPU; use --device cpu")
    if threads:
        torch.set_num_threads(threads)
    cfg = {**DEFAULTS, **({"epochs": epochs} if epochs else {}), **({"train_windows": windows} if windows is not None else {}),
           **({"soft_labels": soft_labels} if soft_labels is not None else {}),
           **({"hazard_loss": hazard_loss} if hazard_loss is not None else {}),
           "source_weights": {k: v for k, v in {**PAIR_SOURCES, **(source_weights or {})}.items()
                              if k in (sources or DEFAULT_SOURCES)}}
    unknown = set(source_weights or {}) - set(PAIR_SOURCES)
    if unknown:
        raise ConfigError(f"source_weights: unknown source(s) {sorted(unknown)}; known: {sorted(PAIR_SOURCES)}")
    layers = ce.LAYERS if depth is None else depth
    if not 1 <= layers <= ce.LAYERS:
        raise ConfigError(f"depth must be in 1..{ce.LAYERS}, got {depth}")
    tune = min(ce.LAYERS - ce.FROZEN, layers) if tune_layers is None else tune_layers
    if not 1 <= tune <= layers:
        raise ConfigError(f"tune_layers must be in 1..{layers} (the network's depth), got {tune_layers}")
    frozen = layers - tune
    window = ce.MAX_LEN if max_len is None else max_len
    intent_room = ce.MAX_INTENT if max_intent is None else max_intent
    try:
        ce.check_max_len(window)
        ce.check_max_intent(intent_room, window)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if cfg["train_windows"] < 1:
        raise ConfigError(f"windows must be >= 1, got {cfg['train_windows']}")
    if teacher is not None:
        cfg["distill"] = 0.5 if distill is None else distill
        if not 0.0 <= cfg["distill"] <= 1.0:
            raise ConfigError(f"distill must be in 0..1, got {cfg['distill']}")
    if not cfg["hazard_loss"] >= 0:
        raise ConfigError(f"hazard_loss must be >= 0, got {cfg['hazard_loss']}")
    codes = list(hazard_codes())
    times: dict[str, float] = {}
    t = time.time()
    rows = build_examples(codes, sources=sources, labels_file=labels_file, texts=texts, limit=limit, refusals=refusals,
                          fold=fold, folds=folds, source_weights=source_weights)
    train_rows = [r for r in rows if r.split == "train"]
    if not train_rows:
        raise ConfigError("no training rows: every group fell in the validation split (give more data)")
    if teacher is not None:
        _teach(train_rows, Path(teacher), say)
    say(f"{len(rows)} rows ({len(train_rows)} train) from " + ", ".join(f"{k} {v}" for k, v in Counter(r.source for r in rows).items()))
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    net = ce.JudgeNet(len(codes), frozen=frozen, depth=layers, max_len=window, max_intent=intent_room)
    net.load_base(ce.base_file())
    net.to(device)
    tokens = ce.Tokens()
    wins = _sequences(train_rows, tokens, cfg["train_windows"], window, intent_room)
    times["data"] = time.time() - t
    t = time.time()
    net.eval()
    flat = _lower_cache(net, [s for w in wins for s in w], device, say)
    cache, k = [], 0
    for w in wins:
        cache.append(flat[k : k + len(w)])
        k += len(w)
    times["frozen_layers"] = time.time() - t
    t = time.time()
    _fit(net, train_rows, wins, cache, cfg, seed, device, say)
    times["fine_tune"] = time.time() - t
    net.to("cpu")
    t = time.time()
    hazard_metric = fit_hazard_head(net, rows, codes, tokens, seed, say)
    times["hazard_head"] = time.time() - t
    out = Path(out_dir) if out_dir else WEIGHTS_DIR
    data = _data_summary(rows)
    meta: dict[str, Any] = {
        "arch": ce.arch(frozen, layers, window), "hazard_codes": codes, "refusal_classes": list(ce.REFUSAL_CLASSES),
        "config": {**cfg, "frozen_layers": frozen, "depth": layers, "max_len": window, "max_intent": intent_room,
                   "prompt_as_intent_share": PROMPT_AS_INTENT_SHARE, "device": device},
        "seed": seed, "fold": f"{fold}/{folds}", "data": data, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "command": _command(seed=seed, sources=sources, labels_file=labels_file, limit=limit, epochs=epochs,
                            texts=texts, windows=windows, fold=fold, folds=folds, soft_labels=soft_labels,
                            source_weights=source_weights, tune_layers=tune_layers, hazard_loss=hazard_loss,
                            depth=depth, teacher=teacher, distill=distill, max_len=max_len, max_intent=max_intent),
        "reproducibility": "numerically bounded (same seed, same data: same verdicts to float rounding), not byte-identical",
    }
    sha = ce.save(net, out, {**meta, "metrics": []})
    t = time.time()
    from airisk.judges.offline import Scorer

    scorer = Scorer(ce.load(out), tokens)
    metrics = validate(scorer, rows, codes, cfg["threshold"]) + ([hazard_metric] if hazard_metric else [])
    times["validate"] = time.time() - t
    sha = ce.save(net, out, {**meta, "metrics": [m.model_dump(mode="json") for m in metrics], "seconds": times})
    path = out / ce.WEIGHTS_FILE
    return TrainReport(weights_dir=str(out), weights_sha256=sha, weights_bytes=path.stat().st_size, seed=seed, config=cfg,
                       data=data, metrics=metrics, seconds=times)


def _data_summary(rows: list[Example]) -> list[dict[str, Any]]:
    by: dict[str, list[Example]] = defaultdict(list)
    for r in rows:
        by[r.source].append(r)
    out = []
    for src, rs in sorted(by.items()):
        kinds = sorted({r.kind for r in rs})
        out.append({"source": src, "labels": "/".join(kinds), "n_train": sum(r.split == "train" for r in rs),
                    "n_val": sum(r.split == "val" and not r.augmented for r in rs),
                    "augmented": sum(r.augmented for r in rs), "weight": max(r.weight for r in rs)})
    return out


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m airisk.judges.train", description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out-dir", default=None)
    ap.add_argument("--labels-file", default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--windows", type=int, default=None)
    args = ap.parse_args(argv)
    rep = train(seed=args.seed, limit=args.limit, epochs=args.epochs, device=args.device, out_dir=args.out_dir,
                labels_file=args.labels_file, threads=args.threads, windows=args.windows, log=lambda m: print(m, flush=True))
    print(rep.summary())


if __name__ == "__main__":
    main()


__all__ = ["DEFAULTS", "Example", "SourceMetrics", "TrainReport", "build_examples", "train", "validate"]
