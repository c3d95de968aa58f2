"""Engine throughput against a local OpenAI-compatible server running in its own process.

Sends N prompts through the real ``openai`` system at a fixed concurrency to a server with a
fixed latency, stores every result in SQLite, and prints achieved items/s, its ratio to the ideal
(concurrency / latency), and the engine's CPU seconds per item. A second scenario injects 500s,
429s (with Retry-After) and timeouts and checks that every item is answered or recorded as an
error, with counts that add up.

    python benchmarks/engine_throughput.py                 # 2,000 items, 500 ms, concurrency 64
    python benchmarks/engine_throughput.py --items 500 --skip-faults
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from airisk.engine import RetryPolicy, run_items
from airisk.store import Store
from airisk.systems import make_system
from airisk.testing.openai_server import free_port
from airisk.types import Item


def start_server(latency: float, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "airisk.testing.openai_server", "--port", str(port), "--latency", str(latency),
         "--rule", "refuse", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        raise RuntimeError(f"server did not start: {line!r}")
    url = line.split()[1]
    for _ in range(100):  # wait until the socket accepts
        try:
            urllib.request.urlopen(url.replace("/v1", "/_stats"), timeout=1).read()
            break
        except OSError:
            time.sleep(0.05)
    return proc, url


def server_stats(url: str) -> dict:
    return json.loads(urllib.request.urlopen(url.replace("/v1", "/_stats"), timeout=5).read())


def make_items(n: int) -> list[Item]:
    return [Item(id=f"bench-{i:05d}", prompt=f"Benchmark prompt number {i}: please answer briefly.", hazard="vcr")
            for i in range(n)]


def scenario(name: str, n: int, latency: float, concurrency: int, server_args: list[str], timeout: float) -> dict:
    proc, url = start_server(latency, server_args)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
            system = make_system({"type": "openai", "model": "mock-model", "base_url": url, "timeout": timeout})
            items = make_items(n)

            async def go() -> str:
                try:
                    return await run_items(store, system, items, concurrency=concurrency, progress=False,
                                           use_cache=False, retry=RetryPolicy(max_retries=6, base_delay=0.2))
                finally:
                    await system.aclose()

            cpu0, t0 = time.process_time(), time.perf_counter()
            run_id = asyncio.run(go())
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            answered, errors = store.count_responses(run_id)
            stats = store.get_run(run_id).stats["last_execute"]
            srv = server_stats(url)
    finally:
        proc.kill()  # stalled 'timeout' requests would hold a graceful shutdown
        proc.wait(timeout=10)
    ideal = concurrency / latency
    return {
        "scenario": name, "items": n, "stored": answered, "ok": answered - errors, "errors": errors,
        "errors_by_kind": stats["errors"], "wall_s": round(wall, 2), "items_per_s": round(n / wall, 1),
        "ideal_per_s": ideal, "ratio": round(n / wall / ideal, 3), "cpu_s_per_item": round(cpu / n, 5),
        "server_requests": srv["requests"], "server_faults": srv["faults"],
        "counts_add_up": answered == n and (answered - errors) + errors == n,
    }


def bare_client(n: int, latency: float, concurrency: int) -> dict:
    """Reference point: a bare AsyncOpenAI client with a semaphore, nothing stored."""
    import openai

    proc, url = start_server(latency, [])
    try:
        async def go() -> None:
            client = openai.AsyncOpenAI(api_key="x", base_url=url, max_retries=0)
            sem = asyncio.Semaphore(concurrency)

            async def one(i: int) -> None:
                async with sem:
                    await client.chat.completions.create(
                        model="mock", messages=[{"role": "user", "content": f"Benchmark prompt number {i}"}])

            await asyncio.gather(*(one(i) for i in range(n)))
            await client.close()

        cpu0, t0 = time.process_time(), time.perf_counter()
        asyncio.run(go())
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        proc.kill()
        proc.wait(timeout=10)
    return {"items_per_s": round(n / wall, 1), "ratio": round(n / wall / (concurrency / latency), 3),
            "cpu_s_per_item": round(cpu / n, 5), "wall_s": round(wall, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--latency", type=float, default=0.5)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--skip-faults", action="store_true")
    ap.add_argument("--baseline", action="store_true", help="also time a bare AsyncOpenAI client on the same load")
    a = ap.parse_args()
    if a.baseline:
        b = bare_client(a.items, a.latency, a.concurrency)
        print(f"== bare AsyncOpenAI client (no engine, no store): {b['items_per_s']:.1f} items/s, ratio {b['ratio']:.3f}, "
              f"CPU {b['cpu_s_per_item'] * 1000:.2f} ms per item")
    results = [scenario("clean", a.items, a.latency, a.concurrency, [], timeout=30.0)]
    if not a.skip_faults:
        results.append(scenario(
            "faults 10% 500 / 5% 429 / 2% timeout", a.items, a.latency, a.concurrency,
            ["--fail-500", "0.10", "--fail-429", "0.05", "--fail-timeout", "0.02", "--retry-after", "0.5",
             "--stall", "30", "--seed", "7"], timeout=3.0))
    for r in results:
        print(f"\n== {r['scenario']}: {r['items']} items, latency {a.latency * 1000:.0f} ms, concurrency {a.concurrency}")
        print(f"achieved      {r['items_per_s']:.1f} items/s  (ideal {r['ideal_per_s']:.0f}/s, ratio {r['ratio']:.3f})")
        print(f"wall          {r['wall_s']:.2f} s")
        print(f"engine CPU    {r['cpu_s_per_item'] * 1000:.2f} ms per item")
        print(f"stored        {r['stored']} = {r['ok']} answered + {r['errors']} errors {r['errors_by_kind'] or ''}")
        print(f"server        {r['server_requests']} requests, injected faults {r['server_faults']}")
        print(f"counts add up {r['counts_add_up']}")
    print("\nJSON " + json.dumps(results))


if __name__ == "__main__":
    main()
