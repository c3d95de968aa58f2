"""Write a run's report files: ``report.html`` (self-contained), ``report.json`` and risk cards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from airisk.reports.build import build_report
from airisk.reports.html import write_html
from airisk.reports.riskcard import risk_cards
from airisk.store.store import Store


def write_report(store: Store, run_id: str, out_dir: str | Path, **kw: Any) -> dict[str, Any]:
    """Build and write every report file for ``run_id`` into ``out_dir``; returns paths and the data."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = build_report(store, run_id, **kw)
    html = write_html(report, out / "report.html")
    js = out / "report.json"
    js.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    cards = []
    for name, text in risk_cards(report).items():
        p = out / name
        p.write_text(text, encoding="utf-8")
        cards.append(p)
    return {"html": html, "json": js, "risk_cards": cards, "report": report}
