"""What a two-stage judge would score, from two `airisk judge cv` recipes' held-out predictions.

    python benchmarks/judge_cascade_cv.py cv/t5h cv/d3kd8 [--folds 0,1,2,3,4] [--bands 0.1-0.9,0.05-0.95]
        [--thresholds 0.17,0.5]

A cascade judges every item with the fast recipe (second directory) and passes the items it is
unsure of (P(violating) inside the band) to the accurate one (first directory). Both recipes' verdicts
come from ``DIR/fold<k>/predictions.jsonl``, so every item is judged by models that never saw its
group. Prints, per source and task, the accuracy of each recipe alone and of the cascade, and the
share of items passed on: that share, plus the fast network's own cost, is what the cascade costs
relative to the accurate judge. Harm and prompt-harm verdicts only, each recipe at its own harm
threshold for responses (``--thresholds ACCURATE,FAST``, default 0.5 for both; the shipped `offline`
uses 0.17); prompts read alone (task ``text``) at 0.5, as the trainer reports them.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def _load(d: Path, folds: list[int]) -> dict[tuple[str, str], dict]:
    out = {}
    for f in folds:
        with open(d / f"fold{f}" / "predictions.jsonl", encoding="utf-8") as fh:
            for line in fh:
                r = json.loads(line)
                out[(r["task"], r["id"])] = r
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("accurate", type=Path)
    ap.add_argument("fast", type=Path)
    ap.add_argument("--folds", default="0,1,2,3,4")
    ap.add_argument("--bands", default="0.2-0.8,0.1-0.9,0.05-0.95")
    ap.add_argument("--thresholds", default="0.5,0.5", help="harm thresholds: accurate,fast")
    args = ap.parse_args()
    folds = [int(x) for x in args.folds.split(",")]
    thresholds = tuple(float(x) for x in args.thresholds.split(","))
    acc, fast = _load(args.accurate, folds), _load(args.fast, folds)
    rows: dict[tuple[str, str, str], list[tuple[bool, float, float]]] = defaultdict(list)
    for key, a in acc.items():
        if a.get("harm") is None or key not in fast:
            continue
        rows[(a["source"], a["task"], a["kind"])].append((a["harm"] >= 0.5, a["p_harm"], fast[key]["p_harm"]))
    for band in args.bands.split(","):
        lo, hi = (float(x) for x in band.split("-"))
        print(f"band [{lo}, {hi}]: {args.fast} alone outside it, {args.accurate} inside")
        print(f"  {'source':<24} {'task':<7} {'labels':<10} {'n':>5} {'accurate':>9} {'fast':>7} {'cascade':>8} {'passed on':>10}")
        total = passed_all = 0
        for (source, task, kind), rs in sorted(rows.items()):
            t_acc, t_fast = thresholds if task == "pair" else (0.5, 0.5)
            right = lambda i, t: sum((r[i] >= t) == r[0] for r in rs) / len(rs)  # noqa: E731
            passed = [lo <= r[2] <= hi for r in rs]
            cascade = sum(((r[1] >= t_acc) if p else (r[2] >= t_fast)) == r[0] for r, p in zip(rs, passed)) / len(rs)
            total += len(rs)
            passed_all += sum(passed)
            print(f"  {source:<24} {task:<7} {kind:<10} {len(rs):>5} {right(1, t_acc):>9.1%} "
                  f"{right(2, t_fast):>7.1%} {cascade:>8.1%} {sum(passed) / len(rs):>10.0%}")
        print(f"  passed on, all items: {passed_all / total:.0%}")


if __name__ == "__main__":
    main()
