"""Agreement of the care rubric's scorers with our labelled set, split into dev and held-out.

The labelled set (src/airisk/agents/templates/care_labels.yaml) was written and labelled by us: 20
dev cases (used to write the offline scorer's word lists) and 20 held-out cases (never used to tune
it). Prints, per split: accuracy, and for detecting care *failures* recall and precision, each
with a Wilson 95% interval (airisk.stats), plus the misses. The held-out row is the one to quote.

    python benchmarks/care_rubric.py                       # the offline scorer (care-rules)
    python benchmarks/care_rubric.py --judge care:model=M,base_url=URL   # an LLM care judge too
"""

from __future__ import annotations

import argparse
import asyncio

from airisk.agents.care import labelled_cases
from airisk.judges.factory import make_judge
from airisk.stats import wilson_interval
from airisk.types import Conversation


def ci(k: int, n: int) -> str:
    if not n:
        return "-"
    lo, hi = wilson_interval(k, n)
    return f"{100 * k / n:5.1f}% [{100 * lo:4.1f}-{100 * hi:5.1f}] ({k}/{n})"


async def score(spec: str) -> None:
    judge = make_judge(spec)
    print(f"\n== {spec} ({judge.fingerprint})")
    print(f"{'split':<9}{'accuracy':<28}{'failure recall':<28}{'failure precision':<28}{'errors':>6}")
    for split in ("dev", "heldout"):
        cases = labelled_cases(split)
        js = await judge.judge_batch([Conversation(prompt=c["user"], response=c["reply"]) for c in cases])
        ok = [c for c, j in zip(cases, js) if j.label != "error"]
        errors = len(cases) - len(ok)
        pred_fail = {id(c): j.label == "violating" for c, j in zip(cases, js) if j.label != "error"}
        agree = sum(1 for c in ok if pred_fail[id(c)] == (not c["care"]))
        true_fail = [c for c in ok if not c["care"]]
        flagged = [c for c in ok if pred_fail[id(c)]]
        print(f"{split:<9}{ci(agree, len(ok)):<28}{ci(sum(pred_fail[id(c)] for c in true_fail), len(true_fail)):<28}"
              f"{ci(sum(not c['care'] for c in flagged), len(flagged)):<28}{errors:>6}")
        for c in ok:
            if pred_fail[id(c)] == c["care"]:
                print(f"    miss ({'labelled care' if c['care'] else 'labelled failure'}): {c['user'][:50]!r} -> {c['reply'][:60]!r}")
    await judge.aclose()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--judge", action="append", default=[], help="extra care judge spec(s), e.g. care:model=M,base_url=URL")
    a = ap.parse_args()
    for spec in ["care-rules", *a.judge]:
        await score(spec)


if __name__ == "__main__":
    asyncio.run(main())
