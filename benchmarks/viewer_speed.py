"""Server-side latency of `airisk view` on a generated 100,000-item SQLite run.

Generates a completed run (12 hazards, 3 personas, ~120-word responses, 1% timeouts, one judge with
probabilities) in a temporary SQLite file, then times requests through the FastAPI app in process
(routing, SQL, template rendering; no network): the items page (first page, a deep page, a search,
a filter), the run page and the live-status poll. Prints p50/p99 over --reps requests each.

Baseline, side by side: what a page costs without the viewer's SQL paging, i.e. loading every record
through ``Store.records`` and filtering in Python (timed on --naive-reps runs only, it is slow).

    python benchmarks/viewer_speed.py                # 100,000 items, 50 requests per case
    python benchmarks/viewer_speed.py --items 20000 --reps 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def timed(fn, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(1000 * (time.perf_counter() - t))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--naive-reps", type=int, default=3)
    ap.add_argument("--db", help="reuse (or create) the generated run in this SQLite file instead of a temporary one")
    args = ap.parse_args()

    from fastapi.testclient import TestClient

    from airisk.store import Store
    from airisk.testing.viewer_runs import large_run, vocabulary
    from airisk.viewer import data
    from airisk.viewer.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(args.db) if args.db else Path(tmp) / "big.db"
        store = Store(f"sqlite:///{db}")
        if store.count_items("big") != args.items:
            store.delete_run("big")
            t = time.perf_counter()
            large_run(store, "big", args.items)
            print(f"generated {args.items} items in {time.perf_counter() - t:.1f} s")
        print(f"run 'big': {store.count_items('big')} items; SQLite file {db.stat().st_size / 1e6:.0f} MB; "
              f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        # The app starts building a finished run's search index in the background when its items page
        # opens; off here, so that "cold" for the first search shows the whole build it can wait for.
        data.SEARCH.prefetch = lambda *a, **k: None
        client = TestClient(create_app(store))
        per_page = 50
        deep = max(1, args.items // per_page - 10)
        vocab = vocabulary()
        word, prefix = vocab[300], vocab[40][:4]
        cases = {
            "items, first page": "/runs/big/items",
            f"items, deep page ({deep})": f"/runs/big/items?page={deep}",
            f"items, search '{word}'": f"/runs/big/items?search={word}",
            f"items, search prefix '{prefix}'": f"/runs/big/items?search={prefix}",
            f"items, search '{word}' + hazard": f"/runs/big/items?search={word}&hazard=vcr",
            "items, filter hazard+verdict+p": "/runs/big/items?hazard=cse&verdict=violating&pmin=0.95",
            "items, filter error kind": "/runs/big/items?error_kind=timeout",
            "run page": "/runs/big",
            "status poll (1 run)": "/api/status?ids=big",
            "runs list page": "/",
        }
        cold, matches = {}, {}
        for name, url in cases.items():
            t = time.perf_counter()
            r = client.get(url)
            cold[name] = 1000 * (time.perf_counter() - t)
            assert r.status_code == 200, (url, r.status_code, r.text[:300])
            if "/items" in url:
                matches[name] = client.get(url.replace("/runs/", "/api/runs/", 1)).json()["total"]
        print("cold = first request (builds the per-run caches and, for the first search, the in-memory FTS5 index)")
        print(f"\n{'request':40s} {'matches':>8s} {'cold ms':>8s} {'p50 ms':>8s} {'p99 ms':>8s}   (reps={args.reps}, in-process TestClient)")
        worst = 0.0
        for name, url in cases.items():
            xs = timed(lambda: client.get(url), args.reps)
            worst = max(worst, pct(xs, 0.99))
            print(f"{name:40s} {matches.get(name, ''):>8} {cold[name]:8.1f} {statistics.median(xs):8.1f} {pct(xs, 0.99):8.1f}")
        print(f"worst p99: {worst:.1f} ms (target <= 200 ms); load average now "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")

        # The same searches through the substring (LIKE) path used for running runs and PostgreSQL.
        fts, data.SEARCH = data.SEARCH, type("NoFTS", (), {"search": staticmethod(lambda *a, **k: None),
                                                         "prefetch": staticmethod(lambda *a, **k: None)})()
        print("\nsubstring search in SQL (LIKE; what running runs and PostgreSQL use), same requests;")
        print("cold = first request, counting every match; p50/p99 = later pages (the count is cached per run version):")
        for name, url in cases.items():
            if "search" in url:
                t = time.perf_counter()
                client.get(url)
                first = 1000 * (time.perf_counter() - t)
                xs = timed(lambda: client.get(url + "&page=2"), max(3, args.reps // 5))
                print(f"{name + ' [LIKE]':40s} {'':>8s} {first:8.1f} {statistics.median(xs):8.1f} {pct(xs, 0.99):8.1f}")
        data.SEARCH = fts

        def naive_first_page():
            recs = store.records("big")
            return recs[:per_page]

        def naive_search():
            recs = store.records("big")
            hits = [r for r in recs if word in (r.item.prompt + " " + ((r.completion and r.completion.text) or "")).lower()]
            return hits[:per_page]

        print(f"\nbaseline without SQL paging (Store.records + Python), reps={args.naive_reps}:")
        for name, fn in (("naive first page", naive_first_page), ("naive search", naive_search)):
            xs = timed(fn, args.naive_reps)
            print(f"{name:40s} {'':>8s} {'':>8s} {statistics.median(xs):8.1f} {max(xs):8.1f} (max)")
        store.close()


if __name__ == "__main__":
    main()
