"""The public Python API: the README example runs as written against a local OpenAI-compatible server,
results are typed, and the API and the CLI give the same run."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import airisk
from airisk.errors import ConfigError
from airisk.testing import MarkerJudge
from airisk.testing.openai_server import last_user_text, running_server
from airisk.types import Item

README = Path(__file__).resolve().parents[1] / "README.md"
DATA = Path(os.environ.get("AIRISK_DATA_PATH") or "/nonexistent")
MARK = "[[HARMFUL-ANSWER]]"


def _readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## From Python"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_is_short():
    code = [line for line in _readme_example().splitlines() if line.strip()]
    assert len(code) <= 10, code


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "ailuminate").is_dir(), reason="AIRISK_DATA_PATH without ailuminate")
def test_readme_example_runs_against_a_local_openai_server(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # "sqlite:///runs.db" and "report/" land in the test's folder
    # About half the prompts get a harmful-looking answer, so the table has non-zero rates to show.
    with running_server(responder=lambda body: "Sure. Step one: acquire the materials and mix them."
                        if len(last_user_text(body)) % 2 else "I'm sorry, I can't help with that.") as url:
        code = _readme_example().replace("http://localhost:8000/v1", url)
        exec(compile(code, str(README), "exec"), {})
    out = capsys.readouterr().out
    assert "offline: violating" in out and "total" in out
    assert (tmp_path / "report" / "report.html").exists() and (tmp_path / "report" / "report.json").exists()
    assert re.search(r"report\.html (pass|yellow|red|error)$", out.strip()), out[-300:]
    res = airisk.run_result(airisk.open_store("sqlite:///runs.db").list_runs(1)[0].id, db="sqlite:///runs.db")
    assert res.total.items == 48 and res.total.responses == 48 and len(res.hazards) >= 12


def _items(n: int = 6) -> list[Item]:
    return [Item(id=f"i{k}", prompt=f"prompt {k}", hazard=("vcr", "cse")[k % 2]) for k in range(n)]


def _responder(body):
    return f"{MARK} ok" if "prompt 1" in last_user_text(body) or "prompt 3" in last_user_text(body) else "no"


def test_evaluate_returns_a_typed_result_with_per_hazard_counts(tmp_path):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    with running_server(responder=_responder) as url:
        res = airisk.evaluate(_items(), f"openai:model=m,base_url={url}", MarkerJudge(), db=db, max_retries=1,
                              label="api")
    assert isinstance(res, airisk.RunResult) and res.status == "completed" and res.judges == ["marker"]
    by = {h.hazard: h for h in res.hazards}
    assert by["cse"].judges["marker"].violating == 2 and by["cse"].judges["marker"].judged == 3
    assert by["vcr"].judges["marker"].rate == 0.0 and res.total.responses == 6
    assert "2/3 (67%)" in res.table()
    stored = airisk.open_store(db).get_run(res.run_id).config
    assert stored["version"] == 2 and stored["retry"]["max_retries"] == 1 and stored["label"] == "api"


def test_evaluate_rejects_unknown_options_naming_the_field():
    with pytest.raises(ConfigError, match="concurency"):
        airisk.evaluate(_items(), "python:target=builtins:print", concurency=3)


def test_score_report_and_gate_use_the_same_run(tmp_path):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    with running_server(responder=_responder) as url:
        res = airisk.evaluate(_items(), f"openai:model=m,base_url={url}", MarkerJudge(), db=db)
    scores = airisk.score(res.run_id, db=db)
    assert scores.overall.violating == 2 and scores.overall.judged == 6
    rep = airisk.report(res.run_id, tmp_path / "rep", db=db, min_items=1)
    assert rep.html.exists() and rep.json_path.exists() and rep.data["meta"]["run_id"] == res.run_id
    g = airisk.gate(res.run_id, db=db)
    assert g.status in ("pass", "yellow", "red") and g.exit_code in (0, 1, 2)
    assert airisk.gate("no-such-run", db=db).exit_code == 3


def test_cli_run_and_api_store_the_same_config(tmp_path):
    from typer.testing import CliRunner

    from airisk.cli import app

    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(f'{{"id": "{it.id}", "prompt": "{it.prompt}", "hazard": "{it.hazard}"}}\n'
                               for it in _items()), encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'r.db'}"
    with running_server(responder=_responder) as url:
        r = CliRunner().invoke(app, ["run", "-d", str(prompts), "-s", f"openai:model=m,base_url={url}", "--db", db,
                                     "--max-retries", "2", "--concurrency", "3", "--no-progress"])
        assert r.exit_code == 0, r.output
        api = airisk.evaluate(str(prompts), f"openai:model=m,base_url={url}", db=db, max_retries=2, concurrency=3)
    runs = airisk.open_store(db).list_runs()
    cli_cfg = next(x.config for x in runs if x.id != api.run_id)
    api_cfg = next(x.config for x in runs if x.id == api.run_id)
    assert cli_cfg == api_cfg and cli_cfg["retry"]["max_retries"] == 2 and cli_cfg["concurrency"] == 3


def test_public_api_functions_document_their_arguments():
    import inspect

    for name in ("evaluate", "evaluate_async", "resume", "resume_async", "judge_stored", "run_result", "score",
                 "report", "gate", "compare", "redteam", "redteam_async", "run_agents", "run_agents_async",
                 "load_dataset", "make_system", "make_judge", "open_store"):
        fn = getattr(airisk, name)
        doc = inspect.getdoc(fn) or ""
        assert "Args:" in doc, name
        params = [p for p in inspect.signature(fn).parameters if p not in ("self",)]
        for p in params:
            assert re.search(rf"^\s+\**{p}:", doc, re.M), f"{name}: argument {p} not documented"
