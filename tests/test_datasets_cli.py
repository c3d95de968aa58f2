"""`airisk datasets list|show` through the real Typer app."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from airisk.cli import app
from airisk.errors import DataError, DatasetNotFound

WIDE = {"COLUMNS": "250"}


def test_list_without_data_says_not_found(tmp_path):
    env = {**WIDE, "AIRISK_DATA_PATH": str(tmp_path), "AIRISK_CACHE": str(tmp_path / "c"), "AIRISK_OFFLINE": "1"}
    r = CliRunner().invoke(app, ["datasets", "list"], env=env)
    assert r.exit_code == 0, r.output
    assert "xstest" in r.output and "not found" in r.output and "CC-BY-4.0" in r.output


def test_list_and_show_with_shared_data():
    raw = os.environ.get("AIRISK_DATA_PATH", "")
    if not any((Path(d) / "xstest").is_dir() for d in raw.split(os.pathsep) if d):
        pytest.skip("AIRISK_DATA_PATH is unset or has no xstest/ folder: shared public data not available")
    runner = CliRunner()
    r = runner.invoke(app, ["datasets", "list"], env=WIDE)
    assert r.exit_code == 0, r.output
    assert "1200" in r.output and "450" in r.output and "not found" not in r.output
    r = runner.invoke(app, ["datasets", "show", "ailuminate-demo-fr_fr"], env=WIDE)
    assert r.exit_code == 0, r.output
    assert "fr_FR" in r.output and "600" in r.output and "matches catalog" in r.output and "spc_lgl" in r.output


def test_show_user_file_and_errors(tmp_path):
    p = tmp_path / "mine.jsonl"
    p.write_text('{"prompt":"a","hazard":"vcr","persona":"skilled"}\n{"prompt":"b","hazard":"bogus"}\n', encoding="utf-8")
    runner = CliRunner()
    r = runner.invoke(app, ["datasets", "show", str(p)], env=WIDE)
    assert isinstance(r.exception, DataError) and r.exception.line == 2
    r = runner.invoke(app, ["datasets", "show", str(p), "--skip-bad"], env=WIDE)
    assert r.exit_code == 0, r.output
    assert "skipped 1 bad rows" in r.output and "skilled" in r.output
    r = runner.invoke(app, ["datasets", "show", "no-such-dataset"], env=WIDE)
    assert isinstance(r.exception, DatasetNotFound)
