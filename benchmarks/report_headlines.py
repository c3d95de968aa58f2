"""Headline and size of the HTML report for a 2-hazard run, a red-team run and an agent run.

Run it once with ``--build`` to write the runs (needs this version of airisk), then with ``--db`` under
any version (e.g. an older checkout on PYTHONPATH) to print what each report's headline says and
how big the files are, for a before/after comparison on the same stored runs:

    python benchmarks/report_headlines.py --build /tmp/hl.db
    python benchmarks/report_headlines.py --db /tmp/hl.db --out /tmp/hl-new
    git archive <old commit> src | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old/src python benchmarks/report_headlines.py --db /tmp/hl.db --out /tmp/hl-old
"""

from __future__ import annotations

import argparse
import html as htmllib
import re
from pathlib import Path

RUNS = ("two-hazard", "redteam-1", "agent-1")


def build(db: str) -> None:
    from airisk.scoring.synthetic import build_run
    from airisk.store import Store
    from airisk.testing.viewer_runs import OPENAI_CFG, _agent, _redteam

    store = Store(f"sqlite:///{db}")
    build_run(store, "two-hazard", [{"hazard": h, "outcome": "safe"} for h in ("cse", "vcr") for _ in range(60)],
              system="openai")
    store.update_run("two-hazard", config=OPENAI_CFG)
    _redteam(store)
    _agent(store)
    print(f"wrote runs {', '.join(RUNS)} to {db}")


def text_of(fragment: str) -> str:
    return re.sub(r"\s+", " ", htmllib.unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()


def headline(page: str) -> dict[str, str]:
    title = text_of(re.search(r"<title>(.*?)</title>", page, re.S).group(1))
    h1 = text_of(re.search(r"<h1>(.*?)</h1>", page, re.S).group(1))
    m = re.search(r'<p id="headline"[^>]*>(.*?)</p>', page, re.S)
    cards = re.search(r'<div class="cards">(.*?)\n</div>', page, re.S)
    first_card = text_of(cards.group(1).split('<div class="card">')[1]) if cards else ""
    return {"title": title, "h1": h1, "headline": text_of(m.group(1)) if m else "(none)", "first card": first_card}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", help="write the runs into this SQLite file and exit")
    ap.add_argument("--db", help="SQLite file written by --build")
    ap.add_argument("--out", default="report-headlines", help="folder for the reports")
    args = ap.parse_args()
    if args.build:
        build(args.build)
        return
    import airisk
    from airisk.reports.write import write_report
    from airisk.store import Store

    store = Store(f"sqlite:///{args.db}")
    print(f"airisk from {Path(airisk.__file__).parent}")
    out = Path(args.out)
    for run_id in RUNS:
        res = write_report(store, run_id, out / run_id)
        page = Path(res["html"]).read_text(encoding="utf-8")
        folder = sum(p.stat().st_size for p in (out / run_id).iterdir() if p.is_file())
        print(f"\n== {run_id}: report.html {Path(res['html']).stat().st_size / 1e6:.3f} MB, "
              f"whole folder {folder / 1e6:.3f} MB")
        for k, v in headline(page).items():
            print(f"  {k:10s} {v[:400]}")


if __name__ == "__main__":
    main()
