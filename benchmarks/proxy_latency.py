"""Added latency of the guarded proxy per request, streaming and not, at a bounded load on loopback.

Three processes: the upstream (airisk.testing.openai_server with a fixed answer of --words words),
the guard service (create_app with the proxy pointed at it) and this client. The same requests are
sent straight to the upstream and through the guard, at --concurrency requests in flight, and the
difference of the latency percentiles is the guard's added latency. For streams the latency is to
the last byte (the guard holds text back until a check has passed, so that is what a reader waits
for) and the time to the first content byte is shown too.

    python benchmarks/proxy_latency.py                       # marker scorer: the proxy's own cost
    python benchmarks/proxy_latency.py --scorer offline      # with the shipped content model

Every figure printed is measured in this run; nothing is carried over from earlier runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time

import httpx


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def serve_upstream(port: int, words: int) -> None:
    import uvicorn

    from airisk.testing.openai_server import build_app

    answer = " ".join(f"word{i % 50}" for i in range(words)) + "."
    app, _ = build_app(lambda body: answer)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def serve_guard(port: int, upstream: int, scorer: str, window: int) -> None:
    import uvicorn

    from airisk.guard.content import ContentGuard, set_inference_threads
    from airisk.guard.service import create_app

    set_inference_threads(1)
    if scorer == "offline":
        from airisk.judges.offline import OfflineJudge

        guard = ContentGuard(scorer=OfflineJudge(), policy={"harm_threshold": 0.999, "default_threshold": 0.999})
    else:
        from airisk.testing.scorers import MarkerScorer

        guard = ContentGuard(scorer=MarkerScorer())
    audit = os.path.join(tempfile.mkdtemp(prefix="airisk-bench-"), "audit.db")
    app = create_app({"require_auth": False, "audit_url": f"sqlite:///{audit}", "torch_threads": None,
                      "upstream": {"base_url": f"http://127.0.0.1:{upstream}/v1"},
                      "proxy": {"stream_window_chars": window}}, content_guard=guard)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def _wait(url: str, proc: subprocess.Popen, limit_s: float = 600) -> None:
    async with httpx.AsyncClient() as c:
        t0 = time.time()
        while time.time() - t0 < limit_s:
            if proc.poll() is not None:
                raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                if (await c.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"{url} not ready after {limit_s}s")


async def _one(c: httpx.AsyncClient, url: str, stream: bool, i: int) -> tuple[float, float | None]:
    body = {"model": "m", "messages": [{"role": "user", "content": f"Tell me about topic {i}."}], "stream": stream}
    t0 = time.perf_counter()
    if not stream:
        r = await c.post(url, json=body)
        r.raise_for_status()
        return time.perf_counter() - t0, None
    first = None
    async with c.stream("POST", url, json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if first is None and '"content"' in line:
                first = time.perf_counter() - t0
    return time.perf_counter() - t0, first


async def _load(url: str, stream: bool, n: int, concurrency: int) -> tuple[list[float], list[float]]:
    sem = asyncio.Semaphore(concurrency)
    lat, first = [], []
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=concurrency)) as c:
        for i in range(min(5, n)):  # warm connections and caches, not measured
            await _one(c, url, stream, -i)

        async def run(i: int) -> None:
            async with sem:
                t, f = await _one(c, url, stream, i)
                lat.append(t)
                if f is not None:
                    first.append(f)

        await asyncio.gather(*(run(i) for i in range(n)))
    return lat, first


async def bench(args: argparse.Namespace) -> None:
    from airisk.testing.openai_server import free_port

    up_port, guard_port = (args.port, args.port + 1) if args.port else (free_port(), free_port())
    procs = [_spawn("--serve-upstream", str(up_port), "--words", str(args.words))]
    procs.append(_spawn("--serve-guard", str(guard_port), "--upstream-port", str(up_port), "--scorer", args.scorer,
                        "--window", str(args.window)))
    try:
        await _wait(f"http://127.0.0.1:{up_port}/v1/models", procs[0])
        await _wait(f"http://127.0.0.1:{guard_port}/readyz", procs[1])
        print(f"load: {args.requests} requests per cell, {args.concurrency} in flight, answer {args.words} words, "
              f"scorer={args.scorer}, window={args.window} chars; loopback; {os.cpu_count()} CPUs")
        print(f"{'mode':<11} {'target':<8} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'first p50':>10}")
        rows = {}
        for stream in (False, True):
            for target, port in (("direct", up_port), ("guarded", guard_port)):
                lat, first = await _load(f"http://127.0.0.1:{port}/v1/chat/completions", stream, args.requests, args.concurrency)
                rows[(stream, target)] = lat
                fp = f"{_pct(first, 0.5) * 1e3:10.1f}" if first else f"{'-':>10}"
                print(f"{'stream' if stream else 'non-stream':<11} {target:<8} {_pct(lat, 0.5) * 1e3:8.1f} "
                      f"{_pct(lat, 0.99) * 1e3:8.1f} {statistics.mean(lat) * 1e3:8.1f} {fp}")
        print("added by the guard (guarded minus direct):")
        for stream in (False, True):
            d, g = rows[(stream, "direct")], rows[(stream, "guarded")]
            print(f"  {'stream' if stream else 'non-stream':<11} p50 +{(_pct(g, 0.5) - _pct(d, 0.5)) * 1e3:.1f} ms   "
                  f"p99 +{(_pct(g, 0.99) - _pct(d, 0.99)) * 1e3:.1f} ms")
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--words", type=int, default=150, help="words in the upstream's answer")
    ap.add_argument("--window", type=int, default=200, help="stream hold-back window (chars)")
    ap.add_argument("--scorer", choices=["marker", "offline"], default="marker")
    ap.add_argument("--port", type=int, default=0, help="first of two ports (default: free ones)")
    ap.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--serve-guard", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--upstream-port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_upstream:
        return serve_upstream(args.serve_upstream, args.words)
    if args.serve_guard:
        return serve_guard(args.serve_guard, args.upstream_port, args.scorer, args.window)
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
