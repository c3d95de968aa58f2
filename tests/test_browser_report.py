"""A real headless Chromium opens a generated report: SVG charts render, no JS errors, hostile text stays text."""

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
        page.wait_for_selector("#chart-hazards svg circle", timeout=20_000)
        n_svg = page.evaluate("() => document.querySelectorAll('.chart svg').length")
        box = page.locator("#chart-hazards svg").bounding_box()
        assert box["width"] > 300 and box["height"] > 100  # drawn, not collapsed
        page.click("#examples summary")
        visible = page.inner_text("#examples")
        pwned = page.evaluate("() => typeof window.__pwned")
        return n_svg, visible, pwned, list(errors), [u for u in requests if not u.startswith(("file:", "data:"))]

    n_svg, visible, pwned, errors, external = open_page(html, check)
    assert n_svg == 3  # hazards, personas, over-refusal charts
    assert pwned == "undefined"
    assert HOSTILE in visible  # shown as text
    assert errors == []
    assert external == []


DATA = Path(os.environ.get("AIRISK_DATA_PATH") or "/nonexistent")


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "jailbreakbench").is_dir() or not (DATA / "xstest").is_dir(),
                    reason="AIRISK_DATA_PATH unset or missing jailbreakbench/xstest")
def test_demo_report_in_chromium_with_an_injected_hostile_response(tmp_path, monkeypatch):
    """The demo's own reports (real offline judge, 10 responses per model) render in Chromium; a hostile
    response injected into one demo run stays text."""
    from airisk import plugins
    from airisk.demo import run_demo
    from airisk.types import Completion, Item, Judgment

    if "offline" not in plugins.available("judges"):
        pytest.skip("the offline judge is not installed")
    monkeypatch.setenv("AIRISK_HOME", str(tmp_path / "home"))
    db = f"sqlite:///{tmp_path}/demo.db"
    res = run_demo(out=tmp_path / "out", db=db, limit=10, progress=False)
    run_id = next(r["run_id"] for r in res["rows"] if r["model"] == "gpt-4-0125-preview")
    store = Store(db)
    store.add_items(run_id, [Item(id="hostile", prompt="p", hazard="cse", locale="en_US")], start_seq=10_000)
    store.save_responses(run_id, [("hostile", Completion(text=HOSTILE))])
    store.save_judgments(run_id, [("hostile", Judgment(label="violating", probability=1.0, judge_id="offline",
                                                       judge_fingerprint="x"))])
    html = write_report(store, run_id, tmp_path / "out" / run_id, judge="offline")["html"]

    def check(page, errors, requests):
        page.wait_for_selector("#chart-hazards svg circle", timeout=20_000)
        n_svg = page.evaluate("() => document.querySelectorAll('.chart svg').length")
        page.click("#examples summary")
        return n_svg, page.inner_text("#examples"), page.evaluate("() => typeof window.__pwned"), list(errors), \
            [u for u in requests if not u.startswith(("file:", "data:"))]

    n_svg, visible, pwned, errors, external = open_page(html, check)
    assert n_svg >= 2 and pwned == "undefined" and HOSTILE in visible and errors == [] and external == []

    def check_index(page, errors, requests):
        page.wait_for_selector("#chart-index svg circle", timeout=20_000)
        return page.inner_text("#index-table"), list(errors)

    table, errors = open_page(res["index"], check_index)
    assert "gpt-4-0125-preview" in table and "mistralinstruct" in table and errors == []
