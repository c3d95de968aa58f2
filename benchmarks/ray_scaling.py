"""Ray executor scaling on this machine: generation and judging items/s, local executor as the baseline.

Generation: N prompts through the real ``openai`` system to a local OpenAI-compatible server (its
own process) with a fixed latency and a global concurrency; ideal = concurrency / latency.
Judging: the same run's answers judged by ``make_judge("offline")`` (whatever the factory returns).
Each is measured on ``--executor local`` and on Ray with 1 and 2 worker processes, in one run, on
one private local Ray instance (started once and warmed by one small run, so that the figures are
speeds, not Python start-up; Ray's start-up is measured separately, on a small run).

Figures printed: items/s end to end (what a user waits for) and, for Ray, items/s from the first
answer stored to the last (generation) or with the judges loaded (judging): the speed once workers
run. The default path is checked unchanged: the engine called directly and through
``airisk.distributed.run_items(executor="local")``, side by side.

    python benchmarks/ray_scaling.py                          # 1,536 items, 500 ms, concurrency 64
    python benchmarks/ray_scaling.py --items 512 --judge-items 256
    python benchmarks/ray_scaling.py --db postgresql+psycopg2://user@host/db
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from airisk.distributed import RayOptions, judge_items, run_items
from airisk.store import Store
from airisk.testing.openai_server import free_port
from airisk.types import Item


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "airisk.testing.openai_server", "--port", str(port),
                             "--latency", str(latency), "--rule", "echo"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        raise RuntimeError(f"server did not start: {line!r}")
    url = line.split()[1]
    for _ in range(200):
        try:
            urllib.request.urlopen(url.replace("/v1", "/_stats"), timeout=1).read()
            break
        except OSError:
            time.sleep(0.05)
    return proc, url


def server_stats(url: str) -> dict:
    return json.loads(urllib.request.urlopen(url.replace("/v1", "/_stats"), timeout=5).read())


def make_items(n: int, tag: str) -> list[Item]:
    # Distinct prompts per scenario, so no scenario is served from another's response cache.
    return [Item(id=f"{tag}-{i:05d}", prompt=f"[{tag}] Benchmark prompt number {i}: please answer briefly.",
                 hazard="vcr") for i in range(n)]


def gen(store: Store, url: str, n: int, tag: str, executor: str, concurrency: int, workers: int | None = None,
        direct: bool = False):
    spec = f"openai:model=m,base_url={url}"
    t0 = time.perf_counter()
    if direct:  # the local engine without the executor switch in front of it
        import asyncio

        from airisk.engine import runner
        from airisk.systems.factory import make_system

        async def go() -> str:
            system = make_system(spec)
            try:
                return await runner.run_items(store, system, make_items(n, tag), concurrency=concurrency,
                                              progress=False)
            finally:
                await system.aclose()
        rid = asyncio.run(go())
    else:
        rid = run_items(store, spec, make_items(n, tag), executor=executor, concurrency=concurrency, progress=False,
                        ray=RayOptions(workers=workers, shard_size=max(16, n // (4 * (workers or 1))))
                        if workers else None)
    wall = time.perf_counter() - t0
    run = store.get_run(rid)
    done, errs = store.count_responses(rid)
    assert done == n and errs == 0 and run.status == "completed", (done, errs, n, run.status)
    return rid, wall, run.stats["last_execute"]


def startup(store: Store, url: str, a) -> None:
    _, w_local, _ = gen(store, url, a.small, "small-local", "local", a.concurrency)
    _, w_ray, st = gen(store, url, a.small, "small-ray", "ray", a.concurrency, workers=2)
    print(f"\nRay start-up, {a.small} items: local {w_local:.2f} s wall, ray (a private instance started for the "
          f"run, 2 workers) {w_ray:.2f} s wall, of which Ray start {st['ray_ready_s']:.2f} s -> overhead "
          f"{w_ray - w_local:.2f} s")


def generation(store: Store, url: str, a, ideal: float) -> None:
    print(f"\ngeneration, {a.items} items (ratio = items/s / ideal {ideal:.0f}):")
    print(f"{'executor':<26}{'items/s':>9}{'ratio':>7}{'answering items/s':>19}{'ratio':>7}{'max in flight':>15}"
          f"{'wall s':>8}")
    for label, executor, workers, direct in (("local (engine directly)", "local", None, True),
                                             ("local (run_items)", "local", None, False),
                                             ("ray, 1 worker", "ray", 1, False), ("ray, 2 workers", "ray", 2, False)):
        before = server_stats(url)["max_in_flight"]
        _, wall, st = gen(store, url, a.items, f"gen-{executor}-{workers}-{direct}", executor, a.concurrency,
                          workers, direct)
        rate = st["items_per_s"]
        steady = st.get("answering_items_per_s")
        mif = st.get("max_in_flight") or max(before, server_stats(url)["max_in_flight"])
        steady_s = f"{steady:>19.1f}{steady / ideal:>7.2f}" if steady else f"{'-':>19}{'-':>7}"
        print(f"{label:<26}{rate:>9.1f}{rate / ideal:>7.2f}{steady_s}{mif:>15}{wall:>8.2f}")


def judging(store: Store, url: str, a) -> None:
    from airisk.judges.factory import make_judge

    jrun = run_items(store, f"openai:model=m,base_url={url}", make_items(a.judge_items, "judge"),
                     concurrency=a.concurrency, progress=False)
    t0 = time.perf_counter()
    judge = make_judge("offline")
    load = time.perf_counter() - t0
    print(f"\njudging, {a.judge_items} answers, judge {judge.id} ({type(judge).__name__}, {judge.fingerprint}):")
    print(f"{'executor':<18}{'judging items/s':>16}{'speed-up vs 1 worker':>22}{'load s':>8}{'wall s':>8}")
    t0 = time.perf_counter()
    n = judge_items(store, jrun, judge, rejudge=True, progress=False, close=False)
    js = time.perf_counter() - t0
    assert n == a.judge_items, (n, a.judge_items)
    print(f"{'local':<18}{n / js:>16.1f}{'-':>22}{load:>8.2f}{js + load:>8.2f}")
    one = None
    for workers in (1, 2):
        t0 = time.perf_counter()
        n = judge_items(store, jrun, "offline", executor="ray", rejudge=True, progress=False,
                        ray=RayOptions(workers=workers))
        wall = time.perf_counter() - t0
        assert n == a.judge_items, (n, a.judge_items)
        st = store.get_run(jrun).stats["last_judge"]
        rate = st["items_per_s"]
        one = one or rate
        label = f"ray, {workers} worker" + ("s" if workers > 1 else "")
        print(f"{label:<18}{rate:>16.1f}{rate / one:>21.2f}x{st['ready_s']:>8.2f}{wall:>8.2f}")
    print("(judging items/s: with the judge loaded; each Ray actor loads it once, in parallel: 'load s')")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1536)
    ap.add_argument("--latency", type=float, default=0.5)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--judge-items", type=int, default=512)
    ap.add_argument("--small", type=int, default=32, help="items of the start-up overhead run")
    ap.add_argument("--skip-judge", action="store_true")
    ap.add_argument("--skip-startup", action="store_true")
    ap.add_argument("--db", default=None, help="store URL (default: a fresh SQLite file)")
    a = ap.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_worker_niceness", "0")  # as a run's private instance does (airisk.distributed.cluster)
    tmp = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    store = Store(a.db or f"sqlite:///{tmp / 'bench.db'}")
    proc, url = start_server(a.latency)
    ideal = a.concurrency / a.latency
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; endpoint latency "
          f"{a.latency * 1000:.0f} ms, global concurrency {a.concurrency}, ideal {ideal:.1f} items/s; "
          f"store {store.engine.dialect.name}")
    try:
        if not a.skip_startup:
            startup(store, url, a)
        import ray

        # reused by the runs below; loopback only, as the private instance of a run
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
        try:
            gen(store, url, 64, "warm-up", "ray", a.concurrency, workers=2)  # worker processes import airisk
            generation(store, url, a, ideal)
            if not a.skip_judge:
                judging(store, url, a)
        finally:
            ray.shutdown()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
