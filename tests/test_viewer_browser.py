"""`airisk view` in a real headless Chromium: every page, search and filters, compare, live status,
export download, hostile model output, no console errors and no request leaving the viewer's origin.

Set AIRISK_VIEWER_SCREENSHOTS=docs/viewer to refresh the screenshots committed under docs/.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from airisk.store import Store
from airisk.testing.viewer_runs import HOSTILE, NEEDLE, sample_runs

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
SHOTS = os.environ.get("AIRISK_VIEWER_SCREENSHOTS")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed (apt-get install chromium)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def viewer(tmp_path_factory):
    """A real uvicorn server over a store holding every kind of run."""
    import uvicorn

    from airisk.viewer.app import create_app

    db = tmp_path_factory.mktemp("viewer") / "v.db"
    store = Store(f"sqlite:///{db}")
    ids = sample_runs(store)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(store), host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield {"base": f"http://127.0.0.1:{port}", "store": store, "ids": ids}
    server.should_exit = True
    t.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Page:
    """A page that records console errors and every request URL."""

    def __init__(self, browser, base: str):
        self.ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        self.page = self.ctx.new_page()
        self.base = base
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def goto(self, path: str):
        self.page.goto(self.base + path, wait_until="load")
        return self.page

    def shot(self, name: str) -> None:
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=False)

    def check_clean(self) -> None:
        assert self.errors == []
        foreign = [u for u in self.requests if not u.startswith(self.base + "/")]
        assert foreign == [], f"requests left the viewer: {foreign}"
        self.ctx.close()


def rows(page, table: str = "#items-table") -> list[str]:
    return page.eval_on_selector_all(f"{table} tbody tr[data-item]", "els => els.map(e => e.getAttribute('data-item'))")


def test_navigation_through_every_page(viewer, browser):
    p = Page(browser, viewer["base"])
    page = p.goto("/")
    assert "acme-chat-7b" in page.inner_text("#runs-table")  # the model is named, not just "openai"
    assert page.inner_text('tr[data-run="live-1"] [data-field="status"]') == "running"
    p.shot("runs")
    page.click('a.run-link:text-is("bench-a")')
    page.wait_for_selector("#headline")
    assert "graded on 3 of 12 hazards" in page.inner_text("#headline")
    assert page.locator("#chart-hazards circle").count() == 3  # one point per hazard, drawn as SVG
    p.shot("run")
    page.click("#items-link")
    page.wait_for_selector("#items-table")
    assert page.inner_text("#result-count").startswith("30 item(s)")
    p.shot("items")
    page.click('a.item-link:text-is("bench-5")')
    page.wait_for_selector("#transcript")
    assert "reason for bench-5" in page.inner_text("#judgments")
    p.shot("item")
    page.click("#nav-judges")
    page.wait_for_selector("#cards")
    p.shot("judges")
    page.click("#nav-compare")
    page.wait_for_selector("#compare-pick")
    p.check_clean()


def test_redteam_and_agent_pages(viewer, browser):
    p = Page(browser, viewer["base"])
    page = p.goto("/runs/redteam-1")
    head = page.inner_text("#headline")
    assert "Attack success" in head and "baseline" in head and "Not graded" in head and "grade" not in head.replace("graded", "")
    assert page.locator("#heatmap tbody tr").count() == 3  # baseline, base64, crescendo
    p.shot("run-redteam")
    page = p.goto("/runs/redteam-1/items/rt-0-crescendo")
    assert page.locator("#transcript .turn").count() == 6  # three user/assistant turns
    assert "seed-0" in page.inner_text("#lineage")
    page = p.goto("/runs/agent-1")
    head = page.inner_text("#headline")
    assert "Unsafe actions in 37.5%" in head and "task completed in 50.0%" in head
    assert "data_loss" in page.inner_text("#agent-table")
    p.shot("run-agent")
    page = p.goto("/runs/agent-1/items/scenario-1")
    traj = page.inner_text("#trajectory")
    assert "delete_file" in traj and "DENY" in traj and "no-delete" in traj
    p.shot("item-agent")
    p.check_clean()


def test_search_and_filters_return_the_right_items(viewer, browser):
    p = Page(browser, viewer["base"])
    page = p.goto("/runs/bench-a/items")
    page.fill("#f-search", NEEDLE.upper())  # case-insensitive
    page.click("#apply")
    page.wait_for_selector("#result-count")
    assert sorted(rows(page)) == ["bench-3", "bench-7"]
    page.fill("#f-search", "")
    page.select_option("#f-hazard", "cse")
    page.select_option("#f-verdict", "violating")
    page.click("#apply")
    assert sorted(rows(page)) == ["bench-0", "bench-15"]  # i % 5 == 0 and i % 3 == 0, i < 29
    page = p.goto("/runs/bench-a/items?verdict=system_error")
    assert rows(page) == ["bench-29"]
    page = p.goto("/runs/bench-a/items")
    page.fill("#f-pmin", "0.2")
    page.fill("#f-pmax", "0.25")
    page.click("#apply")
    assert sorted(rows(page)) == ["bench-11", "bench-12", "bench-13", "bench-14"]  # p = 0.1 + i/100, non-violating
    page = p.goto("/runs/bench-a/items?per_page=10&page=3")
    assert len(rows(page)) == 10 and rows(page)[0] == "bench-20"
    page.click("#prev-page")
    assert rows(page)[0] == "bench-10"
    page = p.goto("/runs/redteam-1/items")
    page.select_option("#f-attack", "base64")
    page.click("#apply")
    assert len(rows(page)) == 6 and all(r.endswith("base64") for r in rows(page))
    p.check_clean()


def test_compare_lists_deltas_and_verdict_flips_with_links(viewer, browser):
    p = Page(browser, viewer["base"])
    page = p.goto("/")
    page.check('input[value="bench-a"]')
    page.check('input[value="bench-b"]')
    page.click("#compare-button")
    page.wait_for_selector("#compare-table")
    assert page.inner_text("#flip-count-0").startswith("3 item(s)")
    assert "pts" in page.inner_text("#compare-table")
    p.shot("compare")
    page.click('#flips-0 a[href="/runs/bench-b/items/bench-1"]')
    page.wait_for_selector("#judgments")
    assert "violating" in page.inner_text("#judgments")
    p.check_clean()


def test_live_status_of_a_running_run_updates_without_reload(viewer, browser):
    from airisk.testing.viewer_runs import live_run
    from airisk.types import Completion

    store = viewer["store"]
    live_run(store, "live-2")
    p = Page(browser, viewer["base"])
    page = p.goto("/")
    cell = 'tr[data-run="live-2"] [data-field="responses"]'
    assert page.inner_text(cell) == "2"
    store.save_responses("live-2", [(f"live-{i}", Completion(text="more")) for i in range(2, 7)])
    page.wait_for_function(f"() => document.querySelector('{cell}').textContent === '7'", timeout=15_000)
    store.save_responses("live-2", [(f"live-{i}", Completion(text="more")) for i in range(7, 10)])
    store.update_run("live-2", status="completed")
    status = 'tr[data-run="live-2"] [data-field="status"]'
    page.wait_for_function(f"() => document.querySelector('{status}').textContent === 'completed'", timeout=15_000)
    assert page.inner_text(cell) == "10"
    p.check_clean()


def test_export_download(viewer, browser):
    import csv
    import json

    p = Page(browser, viewer["base"])
    page = p.goto("/runs/bench-a")
    with page.expect_download() as dl:
        page.click("#export-jsonl")
    lines = Path(dl.value.path()).read_text(encoding="utf-8").splitlines()
    assert dl.value.suggested_filename == "bench-a.jsonl" and len(lines) == 30
    first = json.loads(lines[0])
    assert first["response"] == HOSTILE and first["judgments"]["marker"]["label"] == "violating"
    with page.expect_download() as dl:
        page.click("#export-csv")
    table = list(csv.DictReader(open(dl.value.path(), encoding="utf-8")))
    assert len(table) == 30 and table[29]["error_kind"] == "http_500"
    p.check_clean()


@pytest.mark.parametrize("path", ["/runs/bench-a/items", "/runs/bench-a/items/bench-0", "/api/runs/bench-a/items/bench-0"])
def test_hostile_response_is_shown_as_text(viewer, browser, path):
    p = Page(browser, viewer["base"])
    page = p.goto(path)
    time.sleep(0.3)  # give any injected script or failed image a moment to run
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    assert page.locator('a[href^="javascript:"]').count() == 0
    assert page.locator("img").count() == 0
    if not path.startswith("/api/"):
        assert "<script>window.__pwned=1</script>" in page.inner_text("main")
    p.check_clean()
