"""A real headless Chromium opens the evidence pack: offline, hostile text stays text, number links reach their run."""

import os

import pytest
import yaml

from airisk.governance.workflow import make_pack
from airisk.scoring.synthetic import build_run
from airisk.store import Store

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed (apt-get install chromium)"),
]


def test_pack_in_a_browser(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    st = Store(f"sqlite:///{tmp_path}/b.db")
    build_run(st, "b-1", [{"hazard": "ncr", "outcome": "violating" if i < 3 else "safe", "response": HOSTILE} for i in range(40)],
              system="bot", datasets=[{"name": "jbb-artifacts"}])
    reg = {"system": {"name": "bot " + HOSTILE, "description": HOSTILE},
           "requirements": [{"id": "R1", "text": HOSTILE, "hazards": ["ncr"],
                             "checks": [{"id": "R1.a", "suite": {"dataset": "jbb*"}, "threshold": "30%"}]}],
           "risks": [{"id": "K1", "title": HOSTILE, "hazard": "ncr", "check": "R1.a",
                      "exposure": {"requests_per_year": 1e5, "risky_share": "1%"},
                      "impact": {"distribution": "triangular", "low": 10, "mode": 100, "high": 1000, "unit": "EUR/incident"}}]}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(reg))
    html = make_pack(tmp_path / "r.yaml", runs=["b-*"], out=tmp_path / "pack", db=str(st.engine.url), draws=2000)["html"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(html.resolve().as_uri(), wait_until="load")
            assert page.evaluate("() => typeof window.__pwned") == "undefined"
            assert HOSTILE in page.inner_text("main")  # shown as text
            assert page.locator("svg path").count() >= 1  # loss exceedance curve drawn
            page.locator('a[href="#run-b-1"]').first.click(timeout=10_000)
            assert page.evaluate("() => location.hash") == "#run-b-1"
            assert page.locator("#run-b-1").is_visible()
        finally:
            browser.close()
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
