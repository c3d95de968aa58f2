"""Ray executor scaling on this machine: generation and judging items/s, local executor as the baseline.

Generation: N prompts through the real ``openai`` system to a local OpenAI-compatible server (its
own process) with a fixed latency and a global concurrency; ideal = concurrency / latency.
Judging: the same run's answers judged by ``make_judge("offline")`` (whatever the factory returns).
Each is measured on ``--executor local`` and on Ray with 1 and 2 worker processes, in one run, on
one private local Ray instance (started once; its start-up is measured separately on a small run).

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


def gen(store: Store, url: str, n: int, tag: str, executor: str, concurrency: int, workers: int | None = None):
    spec = f"openai:model=m,base_url={url}"
    t0 = time.perf_counter()
    rid = run_items(store, spec, make_items(n, tag), executor=executor, concurrency=concurrency, progress=False,
                    ray=RayOptions(workers=workers, shard_size=max(16, n // (4 * (workers or 1)))) if workers else None)
    wall = time.perf_counter() - t0
    run = store.get_run(rid)
    done, errs = store.count_responses(rid)
    assert done == n and run.status == "completed", (done, n, run.status)
    return rid, wall, run.stats["last_execute"]


def startup(store: Store, url: str, a) -> None:
    _, w_local, _ = gen(store, url, a.small, "small-local", "local", a.concurrency)
    _, w_ray, st = gen(store, url, a.small, "small-ray", "ray", a.concurrency, workers=2)
    print(f"\nstart-up, {a.small} items: local {w_local:.2f} s wall, ray {w_ray:.2f} s wall "
          f"(Ray start + workers ready {st['ray_ready_s']:.2f} s) -> overhead {w_ray - w_local:.2f} s")


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
    tmp = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    store = Store(a.db or f"sqlite:///{tmp / 'bench.db'}")
    proc, url = start_server(a.latency)
    ideal = a.concurrency / a.latency
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; endpoint latency "
          f"{a.latency * 1000:.0f} ms, global concurrency {a.concurrency}, ideal {ideal:.1f} items/s; "
          f"store {store.engine.dialect.name}")
    try:
        # 1. Ray's start-up overhead: the same small run on local, then on a private Ray instance started for it.
        if not a.skip_startup:
            startup(store, url, a)
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # reused by the runs below
        print(f"\ngeneration, {a.items} items:")
        print(f"{'executor':<18}{'items/s':>10}{'ratio to ideal':>16}{'max in flight':>15}{'wall s':>9}")
        for label, executor, workers in (("local", "local", None), ("ray, 1 worker", "ray", 1),
                                         ("ray, 2 workers", "ray", 2)):
            rid, wall, st = gen(store, url, a.items, f"gen-{executor}-{workers}", executor, a.concurrency, workers)
            rate = st["items_per_s"]
            mif = st.get("max_in_flight") or server_stats(url)["max_in_flight"]
            print(f"{label:<18}{rate:>10.1f}{rate / ideal:>16.2f}{mif:>15}{wall:>9.2f}")

        if a.skip_judge:
            return
        from airisk.judges.factory import make_judge

        judge = make_judge("offline")
        jrun = run_items(store, f"openai:model=m,base_url={url}", make_items(a.judge_items, "judge"),
                         concurrency=a.concurrency, progress=False)
        print(f"\njudging, {a.judge_items} answers, judge {judge.id} ({type(judge).__name__}, {judge.fingerprint}):")
        print(f"{'executor':<18}{'items/s':>10}{'speed-up vs 1 worker':>22}{'wall s':>9}")
        one = None
        for label, executor, workers in (("local", "local", None), ("ray, 1 worker", "ray", 1),
                                         ("ray, 2 workers", "ray", 2)):
            t0 = time.perf_counter()
            n = judge_items(store, jrun, "offline", executor=executor, rejudge=True, progress=False,
                            ray=RayOptions(workers=workers) if workers else None)
            wall = time.perf_counter() - t0
            assert n == a.judge_items, (n, a.judge_items)
            rate = n / wall
            one = rate if workers == 1 else one
            up = f"{rate / one:.2f}x" if one and workers else "-"
            print(f"{label:<18}{rate:>10.1f}{up:>22}{wall:>9.2f}")
        print("(judging wall time includes loading the judge once per worker: Ray actors load it in parallel)")
        ray.shutdown()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
