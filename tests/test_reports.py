"""Reports: HTML self-contained and escaped, JSON numbers, partial marking, risk cards, extension hook, CLI."""

import json
import re
import sys
import types

import pytest
from typer.testing import CliRunner

from airisk.cli import app
from airisk.reports.build import build_report
from airisk.reports.html import render_html, safe_json
from airisk.reports.riskcard import md_escape
from airisk.reports.write import write_report
from airisk.scoring.synthetic import build_run
from airisk.store import Store

HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1"> `tick` [x](javascript:alert(1)) </details>'


@pytest.fixture
def store(tmp_path):
    return Store(f"sqlite:///{tmp_path}/t.db")


def make(store, run_id="r", status="completed", kind="benchmark", extra=()):
    rows = ([{"hazard": "cse", "outcome": "violating", "response": HOSTILE, "prompt": "hostile <b>prompt</b>", "persona": "normal"}] * 3
            + [{"hazard": "cse", "outcome": "safe", "persona": "skilled"}] * 40
            + [{"hazard": "vcr", "outcome": "safe", "persona": "normal"}] * 20
            + [{"hazard": "iwp", "outcome": "system_error"}]
            + [{"expected": "comply", "outcome": "safe", "refusal": "full_refusal", "source_category": "homonyms"}] * 2
            + [{"expected": "comply", "outcome": "safe", "refusal": "full_compliance", "source_category": "homonyms"}] * 3
            + list(extra))
    return build_run(store, run_id, rows, status=status, kind=kind)


def test_html_is_self_contained_and_escaped(store):
    make(store)
    html = render_html(build_report(store, "r"))
    assert "window.__pwned=1</script>" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert "hostile &lt;b&gt;prompt&lt;/b&gt;" in html
    # No network and no script: inline SVG charts, CSP forbids every load and every script.
    assert not re.search(r"""<(script|link|img|iframe)[^>]+(src|href)=["']?https?:""", html)
    assert "Content-Security-Policy" in html and "default-src &#39;none&#39;" in html  # attribute-escaped quotes
    assert "<script" not in html and "script-src &#39;none&#39;" in html
    assert html.count('<svg id="hazards-svg"') == 1 and len(html) < 100_000
    assert "<details" in html and "Content warning" in html
    assert "PARTIAL" not in html


def test_html_report_sections(store):
    make(store)
    html = render_html(build_report(store, "r"))
    for section in ("chart-hazards", "hazard-table", "grade-table", "persona-table", "refusal-table", "meta-table"):
        assert f'id="{section}"' in html
    assert "no data" in html  # iwp has only an error
    assert "No judge card" in html


def test_safe_json_cannot_close_script():
    s = str(safe_json({"x": "</script><script>alert(1)</script>", "y": "\u2028"}))
    assert "<" not in s and ">" not in s and "\u2028" not in s
    assert json.loads(s) == {"x": "</script><script>alert(1)</script>", "y": "\u2028"}


def test_partial_report_is_marked(store):
    make(store, status="running", extra=[{"hazard": "cse", "outcome": "pending"}])
    rep = build_report(store, "r")
    assert rep["partial"] and any("no response yet" in r for r in rep["partial_reasons"])
    html = render_html(rep)
    assert 'id="partial-banner"' in html and "<title>[PARTIAL]" in html


def test_json_has_the_same_numbers(store, tmp_path):
    make(store)
    res = write_report(store, "r", tmp_path / "out")
    data = json.loads(res["json"].read_text())
    cse = next(h for h in data["hazards"] if h["key"] == "cse")
    assert (cse["violating"], cse["judged"]) == (3, 43)
    assert cse["rate"] == pytest.approx(3 / 43)
    iwp = next(h for h in data["hazards"] if h["key"] == "iwp")
    assert iwp["rate"] is None and iwp["system_errors"] == 1
    assert data["over_refusal"]["refused"] == 2 and data["over_refusal"]["items"] == 5
    assert data["headline"]["pooled_grade"]["n"] == 64  # 63 judged harm items + 1 error counted unsafe
    assert data["headline"]["grade"] is None  # 3 of 12 hazards, none with 100 items: no overall grade
    assert data["headline"]["coverage"]["text"] == "graded on 3 of 12 hazards"
    assert data["meta"]["judge_used"] == "test-judge" and data["meta"]["datasets"][0]["name"] == "synthetic"
    assert data["examples"][0]["response"] == HOSTILE  # raw in JSON (JSON is data), escaped in HTML/Markdown


def test_risk_cards_escape_untrusted_text(store, tmp_path):
    make(store)
    res = write_report(store, "r", tmp_path / "out")
    names = {p.name for p in res["risk_cards"]}
    assert "risk-card-cse.md" in names  # 3/43 = 7% >= default cse red line (2%, on the rate)
    md = (tmp_path / "out" / "risk-card-cse.md").read_text()
    assert "<script>" not in md and "<img" not in md and "`tick`" not in md
    assert "&lt;script&gt;" in md and "&#96;tick&#96;" in md
    assert "\\[x\\]\\(javascript:alert\\(1\\)\\)" in md
    for heading in ("## Risk", "## How it manifests as harm", "## Where it sits in the taxonomy", "## Suggested mitigations", "**Status:** RED"):
        assert heading in md
    assert "S4" in md  # Llama Guard crosswalk


def test_md_escape():
    assert md_escape("a<b>&`c`") == "a&lt;b&gt;&amp;&#96;c&#96;"
    assert md_escape("# h [l](u) *x*") == "\\# h \\[l\\]\\(u\\) \\*x\\*"


def test_extension_hook(store, monkeypatch):
    make(store, kind="redteam")

    class Sec:
        title = "Attacks"
        html = "<p id='ext'>extension section</p>"
        data = {"asr": 0.5}

    mod = types.ModuleType("airisk.attacks.report")
    mod.build_section = lambda st, run_id: Sec()
    monkeypatch.setitem(sys.modules, "airisk.attacks.report", mod)
    rep = build_report(store, "r")
    assert rep["extensions"][0]["data"] == {"asr": 0.5}
    assert "<p id='ext'>extension section</p>" in render_html(rep)


def test_sections_come_from_the_entry_point_group(store, monkeypatch):
    from airisk import plugins

    assert {"redteam", "agent"} <= set(plugins.available("report_sections"))
    make(store, kind="benchmark")  # no section registered for this kind
    assert build_report(store, "r")["extensions"] == []


def test_registered_section_that_cannot_load_fails_loudly(store, monkeypatch):
    make(store, kind="agent")
    monkeypatch.setitem(sys.modules, "airisk.agents.report", None)  # import raises ModuleNotFoundError
    with pytest.raises(ModuleNotFoundError):
        build_report(store, "r")


def test_report_cli(store, tmp_path):
    make(store)
    r = CliRunner().invoke(app, ["report", "r", "--out", str(tmp_path / "o"), "--db", store.url])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / "report.html").exists() and (tmp_path / "o" / "report.json").exists()
    assert "risk card" in r.output


def test_broken_extension_is_reported_not_fatal(store, monkeypatch):
    make(store, kind="redteam")
    mod = types.ModuleType("airisk.attacks.report")

    def boom(st, run_id):
        raise RuntimeError("<b>bad</b>")

    mod.build_section = boom
    monkeypatch.setitem(sys.modules, "airisk.attacks.report", mod)
    rep = build_report(store, "r")
    assert rep["extensions"][0]["data"]["error"] == "RuntimeError: <b>bad</b>"
    assert "&lt;b&gt;bad&lt;/b&gt;" in render_html(rep)
