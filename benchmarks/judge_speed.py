"""Speed of the offline judge: batched items/s and single-item p50/p99 latency.

    python benchmarks/judge_speed.py [--n 512] [--single 200] [--batch-size 64]

Uses real responses from the shared data (XSTest + JailbreakBench, via AIRISK_DATA_PATH) when
present, else generated text of similar length. Every conversation is distinct and the judge keeps
no store, so nothing is served from a cache. Prints the load average: on a shared machine the
figures move with what else is running.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from airisk.judges.offline import OfflineJudge
from airisk.types import Conversation


def conversations(n: int) -> tuple[list[Conversation], str]:
    try:
        from airisk.judges.labels import load_labelled

        ex = load_labelled("xstest-completions") + load_labelled("jbb-artifacts")
        ex = ex[:: max(1, len(ex) // n)][:n]
        if len(ex) >= n:
            return [Conversation(prompt=e.prompt, response=e.response) for e in ex], "shared data (XSTest + JBB responses)"
    except Exception:  # noqa: BLE001 - fall back to synthetic text
        pass
    base = "Here is an answer with several sentences about the topic you asked for, in some detail. "
    return [Conversation(prompt=f"Question number {i}?", response=f"{i}. " + base * (3 + i % 8)) for i in range(n)], "synthetic"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512, help="items for the batched measurement")
    ap.add_argument("--single", type=int, default=200, help="items for the single-item latency")
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()

    t0 = time.perf_counter()
    judge = OfflineJudge(batch_size=args.batch_size)
    judge.score(["warm up"], ["warm up the encoder"])
    load_s = time.perf_counter() - t0
    convs, origin = conversations(args.n + args.single)
    batch, single = convs[: args.n], convs[args.n :]
    chars = statistics.mean(len(c.response) for c in batch)

    async def batched() -> float:
        t = time.perf_counter()
        out = await judge.judge_batch(batch)
        assert len(out) == len(batch)
        return time.perf_counter() - t

    async def one_by_one() -> list[float]:
        lat = []
        for c in single:
            t = time.perf_counter()
            await judge.judge(c)
            lat.append(time.perf_counter() - t)
        return lat

    secs = asyncio.run(batched())
    lat = sorted(asyncio.run(one_by_one()))
    p50 = lat[len(lat) // 2] * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    la = os.getloadavg()
    print(f"offline judge {judge.fingerprint} (max_tokens={judge.model.max_tokens}, int8={judge.model.quantized}); "
          f"data: {origin}, mean response {chars:.0f} chars")
    print(f"machine: {os.cpu_count()} CPUs, load average {la[0]:.1f} / {la[1]:.1f} / {la[2]:.1f} (shared machine: figures vary)")
    print(f"load + warm-up: {load_s:.1f} s")
    print(f"batched: {len(batch)} items in {secs:.2f} s = {len(batch) / secs:.1f} items/s (batch size {args.batch_size})")
    print(f"single item: p50 {p50:.1f} ms, p99 {p99:.1f} ms over {len(lat)} calls")


if __name__ == "__main__":
    main()
