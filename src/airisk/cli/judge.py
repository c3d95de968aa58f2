"""CLI commands for judges: ``airisk judge list|validate|train|run|card show|card list``."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from airisk.cli._common import DB_OPTION, console, group
from airisk.errors import ConfigError

judge_app = group("Judges: list, validate against labels, train the offline judge, judge stored runs.")
card_app = group("Judge cards: measured error rates keyed by judge fingerprint.")
judge_app.add_typer(card_app, name="card")


@judge_app.command("list")
def list_judges() -> None:
    """Judges available through the airisk.judges entry points."""
    from rich.markup import escape
    from rich.table import Table

    from airisk import plugins

    t = Table("judge", "description")
    for name in plugins.available("judges"):
        try:
            doc = (plugins.load("judges", name).__doc__ or "").strip().splitlines()[0]
        except Exception as e:  # a broken third-party plugin is listed, not fatal
            doc = f"(cannot load: {type(e).__name__}: {e})"
        t.add_row(escape(name), escape(doc))
    console.print(t)


def print_card(card: Any) -> None:
    """A card as a Rich table (all text escaped: names can come from user files)."""
    from rich.markup import escape
    from rich.table import Table

    from airisk.judges.cards import JudgeCard

    assert isinstance(card, JudgeCard)
    ls = card.label_set
    console.print(f"[bold]{escape(card.judge_id)}[/] fingerprint [cyan]{escape(card.judge_fingerprint)}[/] "
                  f"task={card.task} on {escape(ls.name)} split={escape(str(ls.split))} (n={card.n}, errors={card.n_errors})")
    t = Table("metric", "value", "95% interval", "method")
    rows = [("accuracy (errors count wrong)", card.accuracy, True), ("accuracy (answered)", card.accuracy_answered, True),
            ("Cohen's kappa", card.kappa, False), ("precision (violating)", card.precision, True),
            ("recall (violating)", card.recall, True), ("F1 (violating)", card.f1, False),
            ("false-safe rate", card.false_safe_rate, True), ("false-unsafe rate", card.false_unsafe_rate, True),
            ("judge error rate", card.error_rate, True)]
    if card.task == "refusal":  # binary view: positive class = refused
        names = {"false-safe rate": "missed-refusal rate (refused judged complied)",
                 "false-unsafe rate": "false-refusal rate (complied judged refused)"}
        rows = [(names.get(n, n.replace("violating", "refused")), e, p) for n, e, p in rows]
    for name, est, pct in rows:
        if est.value is None:
            t.add_row(name, "n/a", "", est.method)
            continue
        f = (lambda x: f"{100 * x:.1f}%") if pct else (lambda x: f"{x:.3f}")
        t.add_row(name, f(est.value), f"[{f(est.low)}, {f(est.high)}]" if est.low is not None else "", est.method)
    t.add_row("confusion", f"tp={card.tp} fp={card.fp} tn={card.tn} fn={card.fn}", "", "")
    t.add_row("ECE", "n/a" if card.ece is None else f"{card.ece:.3f}", "", "10 equal-width bins" if card.ece is not None else "")
    console.print(t)
    if card.multiclass:
        mc = card.multiclass
        console.print(f"3-class accuracy {mc.accuracy.fmt()}  kappa {mc.kappa.fmt(pct=False)}")
        mt = Table("true \\ predicted", *mc.classes, "error")
        for c in mc.classes:
            mt.add_row(c, *(str(mc.confusion[c][p]) for p in mc.classes + ["error"]))
        console.print(mt)
    if card.per_hazard:
        fs, fu = ("missed-refusal", "false-refusal") if card.task == "refusal" else ("false-safe", "false-unsafe")
        ht = Table("hazard", "n", "accuracy", fs, fu, "errors")
        for h, b in card.per_hazard.items():
            ht.add_row(escape(h), str(b.n), b.accuracy.fmt(), b.false_safe_rate.fmt(), b.false_unsafe_rate.fmt(), str(b.n_errors))
        console.print(ht)
    for note in card.notes:
        console.print(f"note: {escape(note)}")


@judge_app.command("validate")
def validate_cmd(
    judge: str = typer.Option(..., "--judge", "-j", help="Judge spec, e.g. offline or rubric:model=...,base_url=..."),
    labels: str = typer.Option(..., "--labels", "-l", help="Built-in labelled set (jbb-artifacts, xstest-completions, ...) or a label file (.jsonl/.csv)."),
    split: Optional[str] = typer.Option(None, "--split", help="all | train | val (default: val for built-in sets, all for files)."),
    task: str = typer.Option("harm", help="harm (violating vs non_violating) or refusal (full/partial refusal vs compliance)."),
    limit: Optional[int] = typer.Option(None, help="Validate on a seeded random sample of this many examples."),
    out: Optional[Path] = typer.Option(None, help="Also write the card JSON here."),
    cards_dir: Optional[Path] = typer.Option(None, help="Directory to save the card in (default $AIRISK_HOME/judge_cards)."),
    save: bool = typer.Option(True, help="Save the card keyed by the judge's fingerprint."),
    batch_size: int = typer.Option(32, help="Conversations per judge call."),
    seed: int = typer.Option(0, help="Seed for --limit sampling and bootstrap intervals."),
    as_json: bool = typer.Option(False, "--json", help="Print the card(s) as JSON (schema airisk.judge-validation/1) instead of tables."),
    compare: Optional[list[str]] = typer.Option(None, "--compare", help="Other judge spec(s) to validate on the same examples; prints one side-by-side table (repeatable)."),
) -> None:
    """Judge labelled examples, compute agreement with 95% intervals, print and save the judge card(s)."""
    import asyncio

    from rich.markup import escape

    from airisk import make_judge
    from airisk.judges.cards import save_card
    from airisk.judges.metrics import validate, validation_examples

    if task not in ("harm", "refusal"):
        raise ConfigError(f"--task must be 'harm' or 'refusal', got {task!r}")
    examples, info = validation_examples(labels, split, task=task, limit=limit, seed=seed)
    if not examples:
        raise ConfigError(f"no examples with a {task} label in {labels!r} split {info['split']}")
    cards = []
    say = (lambda *a, **k: None) if as_json else console.print
    for spec in [judge, *(compare or [])]:
        j = make_judge(spec)
        say(f"validating [bold]{escape(j.id)}[/] ({escape(j.fingerprint)}) on {len(examples)} examples of "
                      f"{escape(info['name'])}/{info['split']}" + (f" ({info['without_label']} without a {task} label skipped)" if info["without_label"] else ""))

        async def go(j=j):
            try:
                return await validate(j, examples, label_set=info["name"], split=info["split"], source=info["source"], task=task,
                                      seed=seed, batch_size=batch_size, command=_command_line())
            finally:
                await j.aclose()

        card, _ = asyncio.run(go())
        if info["without_label"]:
            card.notes.append(f"{info['without_label']} examples in the split had no {task} label and were skipped")
        if not compare and not as_json:
            print_card(card)
        if save:
            path = save_card(card, cards_dir)
            say(f"card saved: {escape(str(path))}")
        cards.append(card)
    if as_json:
        from airisk.viewer import json_out

        typer.echo(json_out.dumps(json_out.judge_cards(cards)))
    elif compare:
        print_comparison(cards)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(cards[0].model_dump_json(indent=2) + "\n", encoding="utf-8")
        say(f"card written: {escape(str(out))}")


def _command_line() -> str:
    args = sys.argv[1:]
    return "airisk " + " ".join(shlex.quote(a) for a in args) if args else "airisk judge validate"


def print_comparison(cards: list) -> None:
    """Judges side by side on the same examples: agreement, F1 and both error rates with 95% intervals."""
    from rich.markup import escape
    from rich.table import Table

    ls = cards[0].label_set
    t = Table(title=f"{escape(ls.name)}/{escape(str(ls.split))}: n={cards[0].n}, labels by {ls.label_kind or 'unknown'}")
    for col in ("judge", "fingerprint", "accuracy", "F1", "false-safe", "false-unsafe", "errors"):
        t.add_column(col, no_wrap=col in ("judge", "fingerprint"))
    for c in cards:
        t.add_row(escape(c.judge_id), c.judge_fingerprint, c.accuracy.fmt(), c.f1.fmt(pct=False), c.false_safe_rate.fmt(),
                  c.false_unsafe_rate.fmt(), str(c.n_errors))
    console.print(t)
    hazards = sorted({h for c in cards for h in c.per_hazard})
    if hazards and cards[0].task == "harm":
        h = Table(title="false-safe by hazard (missed violations / violations)")
        h.add_column("hazard")
        for c in cards:
            h.add_column(escape(c.judge_id))
        for hz in hazards:
            cells = []
            for c in cards:
                b = c.per_hazard.get(hz)
                cells.append(f"{b.fn}/{b.tp + b.fn}" if b and (b.tp + b.fn) else "-")
            h.add_row(escape(hz), *cells)
        console.print(h)
    if cards[0].multiclass is not None:
        m = Table(title="refusal classes: recall per class")
        m.add_column("judge")
        classes = cards[0].multiclass.classes
        for cl in classes:
            m.add_column(cl)
        for c in cards:
            rec = c.multiclass.per_class_recall if c.multiclass else {}
            m.add_row(escape(c.judge_id), *[rec[cl].fmt() if cl in rec else "-" for cl in classes])
        console.print(m)


@judge_app.command("train")
def train_cmd(
    sources: Optional[str] = typer.Option(None, help="Comma-separated built-in labelled pair sets (default: harmbench-cls-val,xstest-completions,jbb-artifacts; airisk-authored is opt-in)."),
    labels_file: Optional[Path] = typer.Option(None, "--labels-file", help="Your own label file (.jsonl/.csv) to train on, see docs/labels.md."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="Where to write weights (default: the package's weights dir)."),
    seed: int = typer.Option(0, help="Random seed (data order, dropout, head initialisation)."),
    limit: Optional[int] = typer.Option(None, help="Keep the first N examples of each source (quick runs)."),
    epochs: Optional[int] = typer.Option(None, help="Passes over the data (default 3)."),
    device: str = typer.Option("cpu", help="cpu (the reference) or cuda when a GPU is present."),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads (default: torch's choice)."),
    texts: bool = typer.Option(True, help="Also train the prompt-harm head on texts alone (the content guard's input check)."),
    windows: Optional[int] = typer.Option(None, help="Response windows per pair (default 1, the head; more trains on the max over windows, as the judge reads)."),
    fold: int = typer.Option(0, help="Group fold held out for validation (0 of 5 is the shipped split)."),
    folds: int = typer.Option(5, help="Number of group folds."),
    soft_labels: bool = typer.Option(False, "--soft-labels", help="Train the harm head on the share of human votes (HarmBench has three) instead of the majority."),
    source_weight: Optional[list[str]] = typer.Option(None, "--source-weight", help="SOURCE=WEIGHT loss weight over the default, repeatable (e.g. harmbench-cls-val=3)."),
    tune_layers: Optional[int] = typer.Option(None, "--tune-layers", help="MiniLM layers fine-tuned, from the top (default 5; each adds training time and 3.5 MB of weights)."),
    hazard_loss: Optional[float] = typer.Option(None, "--hazard-loss", help="Weight of the hazard head's loss against the harm head's (default 1.0)."),
    depth: Optional[int] = typer.Option(None, "--depth", help="MiniLM layers the network keeps, from the bottom (default 6; fewer judges faster, see docs/offline-judge.md)."),
    teacher: Optional[Path] = typer.Option(None, "--teacher", help="Weights of a judge trained on the same fold: its probabilities become soft targets (distillation)."),
    distill: Optional[float] = typer.Option(None, "--distill", help="The teacher's share of each target (default 0.5)."),
    max_len: Optional[int] = typer.Option(None, "--max-len", help="Tokens per (intent, response window) sequence (default 192, at most 512; longer reads long responses whole; the shipped offline judge: 512)."),
    max_intent: Optional[int] = typer.Option(None, "--max-intent", help="Intent tokens each sequence keeps, head and tail (default 48, at most half of --max-len; longer keeps more of a contextual request)."),
) -> None:
    """Fine-tune the offline judge (v2) and print its held-out validation figures."""
    from rich.markup import escape

    from airisk.judges.train import train

    report = train(out_dir=str(out_dir) if out_dir else None, device=device, threads=threads, fold=fold, folds=folds,
                   log=lambda m: console.print(escape(str(m))),
                   **_recipe(sources, labels_file, seed, limit, epochs, texts, windows, soft_labels, source_weight, tune_layers, hazard_loss, depth,
                                   teacher, distill, max_len, max_intent))
    console.print(escape(str(report.summary())))


def _recipe(sources: str | None, labels_file: Path | None, seed: int, limit: int | None, epochs: int | None, texts: bool,
            windows: int | None, soft_labels: bool, source_weight: list[str] | None,
            tune_layers: int | None = None, hazard_loss: float | None = None,
            depth: int | None = None, teacher: Path | str | None = None,
            distill: float | None = None, max_len: int | None = None, max_intent: int | None = None) -> dict[str, Any]:
    """The training options shared by ``judge train`` and ``judge cv``, parsed and checked."""
    weights: dict[str, float] = {}
    for item in source_weight or []:
        name, sep, value = item.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--source-weight {item!r}: expected SOURCE=NUMBER, e.g. harmbench-cls-val=3") from None
        if not sep or not name.strip():
            raise ConfigError(f"--source-weight {item!r}: expected SOURCE=NUMBER, e.g. harmbench-cls-val=3")
    return {"sources": [s.strip() for s in sources.split(",") if s.strip()] if sources else None,
            "labels_file": str(labels_file) if labels_file else None, "seed": seed, "limit": limit, "epochs": epochs,
            "texts": texts, "windows": windows, "soft_labels": soft_labels or None, "source_weights": weights or None,
            "tune_layers": tune_layers, "hazard_loss": hazard_loss, "depth": depth,
            "teacher": str(teacher) if teacher else None, "distill": distill, "max_len": max_len,
            "max_intent": max_intent}


@judge_app.command("cv")
def cv_cmd(
    out: Path = typer.Option(..., "--out", help="Directory for this recipe's folds (weights and held-out predictions); a rerun resumes."),
    folds: int = typer.Option(5, help="Number of group folds (fold 0 of 5 is the shipped split)."),
    fold: Optional[list[int]] = typer.Option(None, "--fold", help="Train only these folds now (repeatable); default all."),
    fold0_weights: Optional[Path] = typer.Option(None, "--fold0-weights", help="Weights trained with this same recipe on fold 0 (the shipped ones are): reused instead of training fold 0."),
    compare_with: Optional[Path] = typer.Option(None, "--compare", help="Another recipe's --out directory (or its exported scores file): paired comparison (McNemar) on the items both judged."),
    export_scores: Optional[Path] = typer.Option(None, "--export-scores", help="Also write the held-out scores (ids and probabilities, no labels or texts; gzipped JSON lines) to this file, which --out and --compare read like a directory."),
    summary_only: bool = typer.Option(False, "--summary-only", help="Train nothing: print the figures of the folds already done."),
    sources: Optional[str] = typer.Option(None, help="As for `judge train`."),
    labels_file: Optional[Path] = typer.Option(None, "--labels-file", help="As for `judge train`."),
    seed: int = typer.Option(0, help="As for `judge train`."),
    limit: Optional[int] = typer.Option(None, help="As for `judge train`."),
    epochs: Optional[int] = typer.Option(None, help="As for `judge train`."),
    texts: bool = typer.Option(True, help="As for `judge train`."),
    windows: Optional[int] = typer.Option(None, help="As for `judge train`."),
    soft_labels: bool = typer.Option(False, "--soft-labels", help="As for `judge train`."),
    source_weight: Optional[list[str]] = typer.Option(None, "--source-weight", help="As for `judge train`."),
    tune_layers: Optional[int] = typer.Option(None, "--tune-layers", help="As for `judge train`."),
    hazard_loss: Optional[float] = typer.Option(None, "--hazard-loss", help="As for `judge train`."),
    depth: Optional[int] = typer.Option(None, "--depth", help="As for `judge train`."),
    teacher: Optional[str] = typer.Option(None, "--teacher", help="As for `judge train`, per fold: a path with {fold}, e.g. cv/big/fold{fold}."),
    distill: Optional[float] = typer.Option(None, "--distill", help="As for `judge train`."),
    max_len: Optional[int] = typer.Option(None, "--max-len", help="As for `judge train`."),
    max_intent: Optional[int] = typer.Option(None, "--max-intent", help="As for `judge train`."),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads per training."),
    threshold: float = typer.Option(0.5, "--threshold", help="P(violating) threshold for the pooled figures and --compare."),
    choose_threshold: Optional[str] = typer.Option(None, "--choose-threshold", metavar="SOURCE",
                                                   help="Choose the harm threshold on this source's held-out verdicts "
                                                        "(e.g. harmbench-cls-val), measured by nested cross-validation."),
    max_false_safe: float = typer.Option(0.10, "--max-false-safe", help="With --choose-threshold: the most violations "
                                                                           "it may judge safe (share of the source's violating items)."),
    write_threshold: Optional[Path] = typer.Option(None, "--write-threshold", help="With --choose-threshold: store the "
                                                   "chosen threshold in these weights (their offline_v2.json)."),
) -> None:
    """Cross-validate a training recipe: train it on every group fold and pool the held-out verdicts
    (every labelled item judged by a model that never saw its group); --compare ranks two recipes;
    --choose-threshold picks the harm threshold by nested cross-validation."""
    from rich.markup import escape
    from rich.table import Table

    from airisk.judges import cv

    if not 0 < threshold < 1 or not 0 <= max_false_safe < 1:
        raise ConfigError(f"--threshold must be in (0, 1) and --max-false-safe in [0, 1), got {threshold} and {max_false_safe}")
    if write_threshold is not None and choose_threshold is None:
        raise ConfigError("--write-threshold needs --choose-threshold SOURCE")
    if out.is_file() and not summary_only:
        raise ConfigError(f"--out {out} is a scores file: it can only be read (--summary-only), not trained into")
    if summary_only:
        pooled = cv.summarize(out, threshold=threshold)
    else:
        pooled = cv.cross_validate(out, folds=folds, only=fold or None, fold0_weights=fold0_weights, threads=threads,
                                   log=lambda m: console.print(escape(str(m))),
                                   **_recipe(sources, labels_file, seed, limit, epochs, texts, windows, soft_labels, source_weight, tune_layers, hazard_loss, depth,
                                   teacher, distill, max_len, max_intent))
    if not pooled:
        raise ConfigError(f"{out}: no fold is done yet")
    t = Table("source", "task", "labels", "n", "folds", "accuracy [95%]", "F1", "false-safe", "false-unsafe / partial found",
              title=f"{escape(str(out))}: held-out verdicts pooled over folds")
    for m in pooled:
        d, ci = m.details, m.accuracy_ci or (m.accuracy, m.accuracy)
        if m.task == "refusal":
            extra = ("", "", f"{d['partial_found']}/{d['partial_refusals']}")
        else:
            extra = (f"{d['f1']:.3f}", f"{d['false_safe']:.1%}", f"{d['false_unsafe']:.1%}")
        t.add_row(escape(m.source), m.task, escape(m.labels), str(m.n), ",".join(map(str, m.folds)),
                  f"{m.accuracy:.1%} [{ci[0]:.1%}, {ci[1]:.1%}]", *extra)
    console.print(t)
    _print_categories(pooled, escape)
    if export_scores is not None:
        n = cv.export_scores(out, export_scores)
        console.print(f"{n} held-out scores written to {escape(str(export_scores))} (no labels: read again from the data)")
    if compare_with is not None:
        c = Table("source", "task", "labels", "n (paired)", "accuracy A", "accuracy B", "only A right", "only B right",
                  "McNemar p", "AUC A / B", "AUC B-A [95%]", title=f"A = {escape(str(compare_with))}, B = {escape(str(out))}",
                  caption="AUC: how well each ranks violating above non-violating items, whatever the threshold "
                          "(interval: paired bootstrap over the items)")
        for r in cv.compare(compare_with, out, threshold=threshold):
            auc, diff = "", ""
            if r.auc_a is not None and r.auc_b is not None:
                auc = f"{r.auc_a:.3f} / {r.auc_b:.3f}"
                if r.auc_diff_ci is not None:
                    diff = f"{r.auc_b - r.auc_a:+.3f} [{r.auc_diff_ci[0]:+.3f}, {r.auc_diff_ci[1]:+.3f}]"
            c.add_row(escape(r.source), r.task, escape(r.labels), str(r.n), f"{r.accuracy_a:.1%}", f"{r.accuracy_b:.1%}",
                      str(r.only_a_right), str(r.only_b_right), f"{r.p_value:.3f}", auc, diff)
        console.print(c)
    if choose_threshold is not None:
        choice = cv.choose_threshold(out, choose_threshold, max_false_safe, default=threshold)
        _print_threshold_choice(choice, escape)
        if write_threshold is not None:
            console.print(f"threshold {choice.threshold:.2f} written to {escape(str(cv.write_threshold(write_threshold, choice, out)))}")


def _print_threshold_choice(ch: Any, escape: Callable[[str], str]) -> None:
    from rich.table import Table

    def fmt(d: dict[str, float]) -> str:
        return f"{d['accuracy']:.1%} / {d['false_safe']:.1%} / {d['false_unsafe']:.1%}"

    t = Table("source", "labels", "n", f"at {ch.default:g}", "nested (held out)", f"at {ch.threshold:.2f} (all folds)",
              title=f"harm threshold chosen on {escape(ch.source)}: most accurate with false-safe <= {ch.max_false_safe:.0%}",
              caption="accuracy / false-safe / false-unsafe. Nested: each fold at the threshold chosen on the other folds "
                      "(per fold: " + ", ".join(f"{f}: {v:.2f}" for f, v in ch.per_fold.items()) + "); the last column "
                      f"is optimistic for {escape(ch.source)}, whose verdicts chose it")
    for r in ch.rows:
        t.add_row(escape(r.source), escape(r.labels), str(r.n), fmt(r.default), fmt(r.nested), fmt(r.chosen))
    console.print(t)
    sel = next(r for r in ch.rows if r.source == ch.source)
    nested = sel.nested
    # the cap is checked against a point estimate: show how wide it is before anyone reads 10.6% as "over 10%"
    console.print(f"nested false-safe on {escape(ch.source)}: {int(nested['missed'])} of {int(nested['positives'])} "
                  f"violations missed, {nested['false_safe']:.1%} [95%: {nested['false_safe_lo']:.1%}, "
                  f"{nested['false_safe_hi']:.1%}] against the cap of {ch.max_false_safe:.0%}")
    console.print(f"threshold for this recipe: {ch.threshold:.2f}")


def _print_categories(pooled: list[Any], escape: Callable[[str], str]) -> None:
    """Where a human-labelled set's errors are: its own categories (worst first), response length in
    windows read, and the false-safe rate per hazard of its violations (a few items per row are noise:
    the n is printed)."""
    from rich.table import Table

    def rate(k: int, n: int) -> str:
        return f"{k / n:.1%} of {n}" if n else "–"

    for m in pooled:
        if m.task != "harm" or m.labels != "human":
            continue
        cats, hazards = m.details.get("by_category") or {}, m.details.get("by_hazard") or {}
        if len(cats) > 1:
            t = Table("category", "n", "accuracy", "false-safe", "false-unsafe",
                      title=f"{escape(m.source)} by its own category (human labels)")
            for name, b in sorted(cats.items(), key=lambda kv: kv[1]["accuracy"]):
                t.add_row(escape(name), str(b["n"]), f"{b['accuracy']:.1%}", rate(b["missed"], b["positives"]),
                          rate(b["false_alarms"], b["n"] - b["positives"]))
            console.print(t)
        wins = m.details.get("by_windows") or {}
        if len(wins) > 1:
            console.print(f"{escape(m.source)} by response length (windows read): " + "; ".join(
                f"{w}: {b['accuracy']:.1%} of {b['n']}, false-unsafe {rate(b['false_alarms'], b['n'] - b['positives'])}"
                for w, b in sorted(wins.items())))
        if hazards:
            console.print(f"{escape(m.source)} false-safe by hazard of the violation: " + ", ".join(
                f"{escape(h)} {rate(b['missed'], b['n'])}" for h, b in hazards.items()))


@judge_app.command("run")
def run_cmd(
    run_id: str = typer.Argument(..., help="Stored run id."),
    judge: str = typer.Option(..., "--judge", "-j", help="Judge spec."),
    rejudge: bool = typer.Option(False, "--rejudge", help="Replace existing judgments by this judge."),
    batch_size: int = typer.Option(64, "--batch-size", help="Conversations per judge call."),
    db: Optional[str] = DB_OPTION,
    executor: str = typer.Option("local", "--executor", help="local (this process) or ray (judge actors on a Ray cluster, docs/distributed.md)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="With --executor ray: 'auto' or ray://host:port joins a cluster; default starts a local Ray."),
    workers: Optional[int] = typer.Option(None, "--workers", help="With --executor ray: judge actors (default: the cluster's CPUs)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress output."),
) -> None:
    """Judge the answered items of a stored run."""
    from rich.markup import escape

    import airisk
    from airisk.distributed.options import ray_options

    opts = ray_options(executor, ray_address, workers)
    res = airisk.judge_stored(run_id, judge, db=db, batch_size=batch_size, rejudge=rejudge, executor=executor,
                              ray=opts, progress=not no_progress)
    if executor == "ray":
        from airisk.cli._ray import print_workers

        print_workers(airisk.open_store(db).get_run(res.run_id).stats.get("last_judge") or {}, what="judged")
    console.print(f"judged {res.judged} items of run {escape(res.run_id)} with {escape(res.judge_id)} "
                  f"({escape(res.judge_fingerprint)}); " + ", ".join(f"{k}={v}" for k, v in res.labels.items()))


@card_app.command("show")
def card_show(target: str = typer.Argument(..., help="A fingerprint (or prefix), a judge id, or a judge spec.")) -> None:
    """Show the card(s) of a judge."""
    from airisk.judges.cards import iter_cards

    cards = iter_cards()
    hits = [c for c in cards if c.judge_fingerprint.startswith(target)] or [c for c in cards if c.judge_id == target]
    if not hits:
        try:
            from airisk import make_judge

            fp = make_judge(target).fingerprint
            hits = [c for c in cards if c.judge_fingerprint == fp]
        except Exception:  # not a buildable spec either
            hits = []
    if not hits:
        raise ConfigError(f"no judge card for {target!r}; run 'airisk judge validate --judge ... --labels ...' first")
    for c in hits:
        print_card(c)


@card_app.command("list")
def card_list() -> None:
    """All cards found ($AIRISK_HOME/judge_cards first, then the shipped ones)."""
    from rich.markup import escape
    from rich.table import Column, Table

    from airisk.judges.cards import iter_cards

    t = Table("fingerprint", "task", "labels", "split", "n", "accuracy", "kappa", "false-safe", "false-unsafe")
    t.columns.insert(0, Column("judge", no_wrap=True))
    for c in iter_cards():
        t.add_row(escape(c.judge_id), c.judge_fingerprint, c.task, escape(c.label_set.name), escape(str(c.label_set.split)),
                  str(c.n), c.accuracy.fmt(), c.kappa.fmt(pct=False), c.false_safe_rate.fmt(), c.false_unsafe_rate.fmt())
    console.print(t)


def register(app: typer.Typer) -> None:
    app.add_typer(judge_app, name="judge")
