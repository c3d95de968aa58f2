"""Speed of the offline judges side by side in one run: offline-v1 (old), offline (v2) and offline-fast.

    python benchmarks/judge_speed.py [--n 512] [--single 200] [--batch-size 64] [--judges offline-v1,offline,offline-fast,offline:weights=DIR]
                                     [--precision auto|bf16|fp32] [--threads N] [--profile]

Real responses from the shared data (XSTest, JailbreakBench and HarmBench generations, via
AIRISK_DATA_PATH), every conversation distinct and no verdict cache, so nothing is served from a
cache (the per-text tokeniser cache starts empty too). Prints batched items/s, single-item p50/p99,
and with ``--profile`` where v2's time goes (tokenising, network, heads). Prints the load average: on
a shared machine the figures move with what else is running.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

from airisk.types import Conversation


def conversations(n: int) -> tuple[list[Conversation], str]:
    from airisk.judges.labels import load_labelled

    ex = (load_labelled("xstest-completions") + load_labelled("jbb-artifacts") + load_labelled("harmbench-cls-val"))
    ex = ex[:: max(1, len(ex) // n)][:n]
    return ([Conversation(prompt=e.prompt, response=e.response, intent=e.intent) for e in ex],
            "XSTest + JBB + HarmBench responses (shared data)")


def make(name: str, args: argparse.Namespace) -> Any:
    from airisk.judges.factory import make_judge

    spec = f"{name}{',' if ':' in name else ':'}batch_size={args.batch_size}"  # NAME or a spec, e.g. offline:weights=DIR
    if name.split(":")[0] in ("offline", "offline-fast") and args.precision:
        spec += f",precision={args.precision}"
    return make_judge(spec)


def measure(judge: Any, batch: list[Conversation], single: list[Conversation]) -> dict[str, float]:
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
    return {"items_s": len(batch) / secs, "p50": lat[len(lat) // 2] * 1e3,
            "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3}


def profile(judge: Any, convs: list[Conversation]) -> None:
    """Where v2's time goes on these conversations: tokenising, the network, the heads."""
    from airisk.judges import _crossenc as ce

    sc = judge.scorer
    sc.tokens = ce.Tokens()  # cold tokeniser cache
    intents, responses = [c.intent or c.prompt for c in convs], [c.response for c in convs]
    t = time.perf_counter()
    seqs, _ = sc._pair_seqs(intents, responses)
    tok = time.perf_counter() - t
    t = time.perf_counter()
    pooled = sc._run(seqs)
    net = time.perf_counter() - t
    t = time.perf_counter()
    for h in ("harm", "refusal", "hazard"):
        sc._heads(pooled, h)
    heads = time.perf_counter() - t
    lens = [len(s[0]) for s in seqs]
    total = tok + net + heads
    print(f"  profile over {len(convs)} items ({len(seqs)} windows, mean {statistics.mean(lens):.0f} tokens, "
          f"max {max(lens)}): tokenise {tok:.2f}s ({tok / total:.0%}), network {net:.2f}s ({net / total:.0%}), "
          f"heads {heads:.3f}s ({heads / total:.0%})")
    ceiling(lens, len(convs), net, sc.precision, judge.model.net.depth)


def network_flops(n_tokens: int, depth: int = 6) -> float:
    """Multiply-adds x 2 of one pass of ``depth`` MiniLM layers (six unless a shallower network was
    trained) over a sequence of ``n_tokens``: the projections and feed-forward (linear in length)
    plus attention scores and mixing (quadratic)."""
    from airisk.judges import _crossenc as ce

    per_token = 2 * (4 * ce.HIDDEN * ce.HIDDEN + 2 * ce.HIDDEN * ce.INTER)
    return depth * (n_tokens * per_token + 2 * 2 * n_tokens * n_tokens * ce.HIDDEN)


def matmul_rate(dtype_name: str) -> float:
    """FLOP/s of one large feed-forward-shaped matmul on this CPU (threads as set): what the network
    could reach at best, since its time is almost all matmuls."""
    import torch

    dtype = torch.bfloat16 if dtype_name == "bf16" else torch.float32
    x, w = torch.randn(4096, 384).to(dtype), torch.randn(1536, 384).to(dtype)
    with torch.inference_mode():
        for _ in range(3):
            torch.nn.functional.linear(x, w)
        t, reps = time.perf_counter(), 20
        for _ in range(reps):
            torch.nn.functional.linear(x, w)
    return reps * 2 * 4096 * 384 * 1536 / (time.perf_counter() - t)


def ceiling(lens: list[int], items: int, net_s: float, precision: str, depth: int = 6) -> None:
    """How far the measured speed is from what this network can do on this CPU at all: the work per
    item divided by the best matmul rate. A target above the ceiling needs a smaller network (fewer
    layers or tokens), not more tuning of the runtime."""
    flops = sum(network_flops(n, depth) for n in lens)
    rate = matmul_rate(precision)
    print(f"  ceiling: {flops / items / 1e9:.2f} GFLOP per item ({len(lens) / items:.2f} windows); network ran at "
          f"{flops / net_s / 1e9:.0f} GFLOP/s, a large {precision} matmul on this CPU at {rate / 1e9:.0f} GFLOP/s; "
          f"so at most {rate * items / flops:.0f} items/s for this network here, measured {items / net_s:.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512, help="items for the batched measurement")
    ap.add_argument("--single", type=int, default=200, help="items for the single-item latency")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--judges", default="offline-v1,offline,offline-fast")
    ap.add_argument("--precision", default=None, help="v2 precision: auto, bf16 or fp32")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from airisk import _torch_thread

    convs, origin = conversations(args.n + args.single)
    batch, single = convs[: args.n], convs[args.n :]
    la = os.getloadavg()
    print(f"data: {origin}; {len(batch)} batched, {len(single)} single; mean response "
          f"{statistics.mean(len(c.response) for c in batch):.0f} chars")
    print(f"machine: {os.cpu_count()} CPUs, load average {la[0]:.1f} / {la[1]:.1f} / {la[2]:.1f} (shared machine: figures vary)")
    print(f"{'judge':<12} {'fingerprint':<17} {'load s':>7} {'items/s':>9} {'p50 ms':>8} {'p99 ms':>8}  notes")
    for name in [j.strip() for j in args.judges.split(",") if j.strip()]:
        t0 = time.perf_counter()
        # every torch call of this process on the judges' one torch thread, loading and profiling included:
        # torch work on a second thread would slow all of it (airisk._torch_thread)
        judge = _torch_thread.run(make, name, args)
        asyncio.run(judge.judge(Conversation(prompt="warm up", response="warm up the encoder")))
        load_s = time.perf_counter() - t0
        judge._memo.clear()
        r = measure(judge, batch, single)
        note = f"precision {judge.scorer.precision}" if hasattr(judge, "scorer") else "int8 dynamic, one text per pass"
        print(f"{name[:12]:<12} {judge.fingerprint:<17} {load_s:>7.1f} {r['items_s']:>9.1f} {r['p50']:>8.1f} {r['p99']:>8.1f}  {note}")
        if args.profile and hasattr(judge, "scorer"):
            _torch_thread.run(profile, judge, batch)


if __name__ == "__main__":
    main()
