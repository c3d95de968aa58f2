"""Bounded load test of the guard HTTP service on loopback: POST /v1/guard/action.

    python benchmarks/guard_service_load.py [--requests 3000] [--concurrency 16]

Starts the real app (``create_app``: API-key auth, body limit, gate, SQLite audit log with a
hash chain, Prometheus metrics) under uvicorn in a background thread on a free loopback port,
sends a fixed number of requests drawn from the benign corpus plus hostile actions with httpx
(keep-alive, fixed concurrency), then stops by itself. Prints requests/s, latency percentiles,
status codes, and verifies the audit chain afterwards. Client and server share this machine's CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from gate_latency import load_mix  # noqa: E402

from airisk.guard.content import ContentGuard  # noqa: E402
from airisk.guard.service import create_app, hash_key  # noqa: E402
from airisk.testing.openai_server import ServerThread  # noqa: E402

KEY = "load-test-key-0123456789"


class _NoModel:
    """The action endpoint never calls the content model; fail loudly if something does."""

    def hazard_scores(self, texts):
        raise RuntimeError("content model not used in this benchmark")

    score = hazard_scores


async def run(base: str, n: int, concurrency: int, seed: int) -> tuple[list[float], dict[int, int], float]:
    actions = load_mix(n, seed)
    bodies = [{"tool": a.tool, "arguments": a.arguments, "session_id": a.session_id} for a in actions]
    lat: list[float] = []
    codes: dict[int, int] = {}
    it = iter(bodies)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, limits=limits, timeout=30) as c:
        async def worker():
            for body in it:
                t0 = time.perf_counter()
                r = await c.post("/v1/guard/action", json=body)
                lat.append((time.perf_counter() - t0) * 1000)
                codes[r.status_code] = codes.get(r.status_code, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return lat, codes, wall


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--isolation", default="process,thread",
                    help="gate_isolation values to run side by side (process: first-sight decisions tried in a worker process)")
    a = ap.parse_args(argv)
    ok = True
    for isolation in a.isolation.split(","):
        ok &= _one(a, isolation)
    return 0 if ok else 1


def _one(a, isolation: str) -> bool:
    with tempfile.TemporaryDirectory() as d:
        cfg = {"audit_url": f"sqlite:///{d}/audit.db", "gate_isolation": isolation,
               "api_keys": [{"key_sha256": hash_key(KEY), "principal": "load", "roles": ["agent"]}]}
        app = create_app(cfg, content_guard=ContentGuard(scorer=_NoModel()))
        app.state.gate._sess = app.state.gate._sess.model_copy(update={"rate_calls": None, "max_calls": None, "budget": None})
        srv = ServerThread(app).start()
        try:
            base = f"http://127.0.0.1:{srv.port}"
            asyncio.run(run(base, 200, a.concurrency, a.seed + 1))  # warm-up (not counted)
            lat, codes, wall = asyncio.run(run(base, a.requests, a.concurrency, a.seed))
        finally:
            srv.stop()
        rep = app.state.audit.verify()
    print(f"[gate_isolation={isolation}] requests={len(lat)} concurrency={a.concurrency} wall={wall:.2f}s status={codes}")
    print(f"throughput: {len(lat) / wall:,.0f} requests/s")
    print(f"latency ms: p50={pct(lat, .5):.2f} p90={pct(lat, .9):.2f} p99={pct(lat, .99):.2f} max={max(lat):.2f}")
    print(f"audit: {rep.records} records, chain ok={rep.ok}")
    return rep.ok and set(codes) == {200}


if __name__ == "__main__":
    raise SystemExit(main())
