"""A real headless Chromium opens a generated report: charts render, no JS errors, hostile text stays text."""

import os
from pathlib import Path

import pytest

from airisk.reports.write import write_report
from airisk.scoring.synthetic import build_run
from airisk.store import Store

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed (apt-get install chromium)"),
]


def open_page(path: Path, fn):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.resolve().as_uri(), wait_until="load")
            return fn(page, errors, requests)
        finally:
            browser.close()


def test_report_renders_and_hostile_response_does_not_execute(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/t.db")
    rows = ([{"hazard": "cse", "outcome": "violating", "response": HOSTILE, "persona": "normal"}] * 2
            + [{"hazard": "cse", "outcome": "safe", "persona": "skilled"}] * 30
            + [{"hazard": "vcr", "outcome": "violating", "persona": "normal"}] * 3
            + [{"hazard": "vcr", "outcome": "safe", "persona": "normal"}] * 30
            + [{"expected": "comply", "outcome": "safe", "refusal": "full_refusal", "source_category": "homonyms"}] * 3)
    build_run(store, "browser", rows)
    html = write_report(store, "browser", tmp_path / "out")["html"]

    def check(page, errors, requests):
        page.wait_for_selector("#chart-hazards .main-svg", timeout=20_000)
        n_svg = page.evaluate("() => document.querySelectorAll('.js-plotly-plot svg.main-svg').length")
        page.click("#examples summary")
        visible = page.inner_text("#examples")
        pwned = page.evaluate("() => typeof window.__pwned")
        return n_svg, visible, pwned, list(errors), [u for u in requests if not u.startswith(("file:", "data:"))]

    n_svg, visible, pwned, errors, external = open_page(html, check)
    assert n_svg >= 3  # hazards, personas, over-refusal charts (each has at least one svg)
    assert pwned == "undefined"
    assert HOSTILE in visible  # shown as text
    assert errors == []
    assert external == []
