"""Where the offline judge's network runs: any pool thread (before) or the process's one torch thread (now).

    python benchmarks/judge_thread.py [--judges offline,offline-fast] [--n 256] [--single 100]

Each way runs in a fresh process, so one cannot slow the other (OpenMP thread teams outlive the
calls that made them), on the same real responses as ``judge_speed.py``:

- ``pool threads`` (the judges up to round 12): the network loaded on the main thread, each scoring
  call handed to ``asyncio.to_thread``, that is to any worker of the default executor.
- ``one torch thread`` (now): ``judge.judge`` / ``judge.judge_batch``, which load and score on
  ``airisk._torch_thread``.

Prints single-item p50/p99 (one ``asyncio.run`` per item, as a CLI call or a fresh script makes it)
and batched items/s for each way, side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time


def child(way: str, judge_name: str, n: int, single_n: int) -> dict[str, float]:
    from airisk.judges import _crossenc as ce
    from airisk.judges.factory import make_judge
    from judge_speed import conversations  # this directory is on sys.path when run as a script

    convs, _ = conversations(n + single_n)
    batch, single = convs[:n], convs[n:]
    if way == "pool":
        from airisk.judges.offline import FAST_WEIGHTS_DIR, WEIGHTS_DIR

        ce.load(FAST_WEIGHTS_DIR if judge_name == "offline-fast" else WEIGHTS_DIR)  # on the main thread, as before
    judge = make_judge(judge_name)

    async def pool_batch(items: list) -> list:
        out = []
        for s in range(0, len(items), judge.batch_size):
            out.extend(await asyncio.to_thread(judge._judge_sync, items[s : s + judge.batch_size]))
        return out

    def one(items: list) -> list:
        if way == "pool":
            return asyncio.run(pool_batch(items))
        return asyncio.run(judge.judge_batch(items))

    one(single[:1])
    judge._memo.clear()
    lat = []
    for c in single:
        t = time.perf_counter()
        one([c])
        lat.append(time.perf_counter() - t)
    judge._memo.clear()
    t = time.perf_counter()
    got = one(batch)
    secs = time.perf_counter() - t
    assert len(got) == len(batch) and not any(j.label == "error" for j in got)
    lat.sort()
    return {"p50": lat[len(lat) // 2] * 1e3, "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3,
            "items_s": len(batch) / secs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--judges", default="offline,offline-fast")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--single", type=int, default=100)
    ap.add_argument("--child", nargs=2, metavar=("WAY", "JUDGE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.n, args.single)))
        return
    la = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {la[0]:.1f} / {la[1]:.1f} / {la[2]:.1f}; "
          f"{args.n} batched, {args.single} single items (XSTest + JBB + HarmBench responses)")
    print(f"{'judge':<13} {'network runs on':<17} {'p50 ms':>7} {'p99 ms':>7} {'items/s':>8}")
    for name in [j.strip() for j in args.judges.split(",") if j.strip()]:
        for way, label in (("pool", "pool threads"), ("torch", "one torch thread")):
            cmd = [sys.executable, __file__, "--child", way, name, "--n", str(args.n), "--single", str(args.single)]
            res = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if res.returncode:
                sys.exit(f"{name} / {label} failed:\n{res.stderr[-2000:]}")
            r = json.loads(res.stdout.strip().splitlines()[-1])
            print(f"{name:<13} {label:<17} {r['p50']:>7.1f} {r['p99']:>7.1f} {r['items_s']:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
