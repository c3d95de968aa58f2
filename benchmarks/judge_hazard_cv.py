"""Hazard-head accuracy of `airisk judge cv` recipes, per hazard, on each fold's held-out rows.

    python benchmarks/judge_hazard_cv.py --folds 0,1,2,3,4 cv/base cv/t5h [--fold0-weights DIR]

For every fold k and every recipe directory given (``DIR/fold<k>/`` as ``judge cv`` writes it), the
fold's weights name the hazard of each held-out harmful row that has one (pairs: the hazard of the
response against its intent; single texts: the prompt alone), and the top-1 answer is compared with
the row's label. Rows are those ``build_examples(fold=k)`` holds out, so no recipe saw them. Prints one
column per recipe: right / n per hazard, then per kind (pair, text) and in all. The labels are the
sources' own hazard mappings (curated, not per-item human judgements).
``--fold0-weights`` stands in for a recipe's missing ``fold0/`` (``judge cv --fold0-weights`` does
not copy the shipped weights into the directory).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np


def top1(weights: Path, fold: int, codes: list[str]) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    from airisk.judges.offline import OfflineJudge
    from airisk.judges.train import build_examples

    rows = [r for r in build_examples(codes, fold=fold) if r.split == "val" and r.hazard is not None and not r.augmented]
    scorer = OfflineJudge(weights=weights).scorer
    texts = [r for r in rows if r.response == ""]
    pairs = [r for r in rows if r.response != ""]
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    kinds: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    got = [(texts, scorer.score_texts([r.intent for r in texts])[1] if texts else [], "text"),
           (pairs, scorer.score_pairs([r.intent for r in pairs], [r.response for r in pairs])[2] if pairs else [], "pair")]
    for rs, probs, kind in got:
        for r, p in zip(rs, probs):
            ok = int(int(np.argmax(p)) == r.hazard)
            for tally in (per[codes[r.hazard]], kinds[kind]):
                tally[0] += ok
                tally[1] += 1
    return per, kinds


def main() -> None:
    from airisk.taxonomy import hazard_codes

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path, help="judge cv --out directories")
    ap.add_argument("--folds", default="0,1,2,3,4")
    ap.add_argument("--fold0-weights", type=Path, default=None)
    args = ap.parse_args()
    codes = list(hazard_codes())
    folds = [int(f) for f in args.folds.split(",")]
    table: dict[str, tuple[dict[str, list[int]], dict[str, list[int]]]] = {}
    for d in args.dirs:
        per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        kinds: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for k in folds:
            w = d / f"fold{k}"
            if not (w / "offline_v2.safetensors").is_file():
                if k == 0 and args.fold0_weights:
                    w = args.fold0_weights
                else:
                    raise SystemExit(f"{w}: no weights (train the fold, or give --fold0-weights for fold 0)")
            p, kd = top1(w, k, codes)
            for src, dst in ((p, per), (kd, kinds)):
                for key, (a, b) in src.items():
                    dst[key][0] += a
                    dst[key][1] += b
            print(f"{d} fold {k}: " + ", ".join(f"{key} {a}/{b}" for key, (a, b) in sorted(kd.items())), flush=True)
        table[str(d)] = (dict(per), dict(kinds))
    first = table[str(args.dirs[0])][0]
    order = sorted({c for per, _ in table.values() for c in per}, key=lambda c: -first.get(c, [0, 0])[1])
    print(f"\nhazard top-1 on held-out rows, folds {args.folds}")
    print("hazard".ljust(10) + "".join(str(d)[-18:].rjust(20) for d in args.dirs))
    for key in [*order, "pair", "text", "all"]:
        cells = []
        for per, kinds in table.values():
            if key == "all":
                a, b = sum(v[0] for v in kinds.values()), sum(v[1] for v in kinds.values())
            else:
                a, b = (kinds if key in ("pair", "text") else per).get(key, [0, 0])
            cells.append(f"{a}/{b} {a / b:.1%}" if b else "-")
        print(key.ljust(10) + "".join(c.rjust(20) for c in cells))


if __name__ == "__main__":
    main()
