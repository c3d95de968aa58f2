"""The command line's shape: exit codes, --version, help on every option, lazy imports, no package cycles."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from airisk.cli import EXIT_USAGE, app, exit_code_for

SRC = Path(__file__).resolve().parents[1] / "src" / "airisk"
runner = CliRunner()


def _walk(cmd, path=()):
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _walk(sub, (*path, name))


ROOT_CMD = typer.main.get_command(app)
COMMANDS = list(_walk(ROOT_CMD))


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "airisk.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("args", [["run", "--datasett", "x"], ["runz"], ["gate"], ["hazards", "crosswalk", "a", "b"],
                                  ["run", "--limit", "many"]])
def test_usage_errors_exit_64_not_a_gate_code(args):
    r = runner.invoke(app, args)
    assert r.exit_code == EXIT_USAGE == 64, r.output


def test_version():
    from airisk import __version__

    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"airisk {__version__}"


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=[" ".join(p) or "airisk" for p, _ in COMMANDS])
def test_every_command_and_option_has_help(path, cmd):
    assert (cmd.help or "").strip(), f"airisk {' '.join(path)} has no help text"
    for p in cmd.params:
        if getattr(p, "hidden", False):
            continue
        assert (getattr(p, "help", None) or "").strip(), f"airisk {' '.join(path)}: {p.opts or p.name} has no help"


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=[" ".join(p) or "airisk" for p, _ in COMMANDS])
def test_every_help_works(path):
    r = runner.invoke(app, [*path, "--help"])
    assert r.exit_code == 0 and "Usage:" in r.output, r.output


def test_help_does_not_import_the_library():
    # `--help` must not pay for the store, SciPy, torch, HTTP clients or Rich: checked by module, not by clock.
    heavy = {"sqlalchemy", "scipy", "numpy", "torch", "openai", "httpx", "sklearn", "fastapi", "rich", "yaml"}
    for args in (["--help"], ["run", "--help"], ["judge", "card", "show", "--help"], ["agent", "run", "--help"]):
        r = subprocess.run([sys.executable, "-X", "importtime", "-m", "airisk.cli", *args], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        loaded = {line.split("|")[-1].strip().split(".")[0] for line in r.stderr.splitlines() if "|" in line}
        assert not loaded & heavy, (args, sorted(loaded & heavy))


def test_import_airisk_is_light_and_api_resolves_lazily():
    code = ("import sys, airisk; assert 'airisk._api' not in sys.modules and 'sqlalchemy' not in sys.modules; "
            "f = airisk.evaluate; assert 'airisk._api' in sys.modules; print(f.__module__)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "airisk._api", r.stderr


def test_exit_codes_of_airisk_errors():
    from airisk.errors import AiriskError, ConfigError, DataError, DatasetNotFound, InputNotFound, PreflightError
    from airisk.store.store import RunNotFound

    assert [exit_code_for(e) for e in (ConfigError("x"), DataError("x"), DatasetNotFound("x"), RunNotFound("x"),
                                       InputNotFound("x"), PreflightError("x"), AiriskError("x"))] == [64, 65, 66, 66, 66, 69, 1]


def test_main_prints_one_line_and_maps_the_exit_code(tmp_path):
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"id": "1", "prompt": "a"}\n{"id": "2", "prompt": \n', encoding="utf-8")
    r = _cli("datasets", "show", str(bad))
    assert r.returncode == 65, r.stderr
    assert r.stderr.startswith("error: ") and "p.jsonl:2" in r.stderr and "Traceback" not in r.stderr
    r = _cli("runs", "show", "no-such-run", "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert r.returncode == 66 and "no run 'no-such-run'" in r.stderr


def test_audit_verify_on_a_mistyped_db_fails_and_creates_nothing(tmp_path):
    missing = tmp_path / "typo.db"
    r = _cli("audit", "verify", "--db", f"sqlite:///{missing}")
    assert r.returncode == 66 and "no audit database" in r.stderr, (r.returncode, r.stdout, r.stderr)
    assert not missing.exists()


def test_crosswalk_aliases():
    r = runner.invoke(app, ["hazards", "crosswalk", "owasp-llm"])
    assert r.exit_code == 0 and "OWASP" in r.output
    assert runner.invoke(app, ["hazards", "crosswalk", "OWASP_LLM_2025"]).exit_code == 0
    r = runner.invoke(app, ["hazards", "crosswalk", "owasp-xyz"])
    assert r.exit_code != 0 and "owasp_llm_2025" in str(r.exception)


def test_agent_run_takes_db_and_the_deprecated_store_alias(tmp_path):
    for flag in ("--db", "--store"):
        db = tmp_path / f"{flag[2:]}.db"
        r = runner.invoke(app, ["agent", "run", "builtin", "--agent", "careful", "--limit", "2", flag, f"sqlite:///{db}"])
        assert r.exit_code == 0, r.output
        assert db.exists()
    assert "--store" not in runner.invoke(app, ["agent", "run", "--help"]).output


def _package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for f in SRC.rglob("*.py"):
        rel = f.relative_to(SRC).parts
        pkg = rel[0] if len(rel) > 1 else rel[0].removesuffix(".py")
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module == "airisk":
                names = [f"airisk.{a.name}" for a in node.names]
            for m in names:
                parts = m.split(".")
                if parts[0] == "airisk" and len(parts) > 1 and parts[1] != pkg and \
                        ((SRC / parts[1]).is_dir() or (SRC / f"{parts[1]}.py").exists()):
                    graph[pkg].add(parts[1])
    return graph


def test_no_package_cycles():
    import graphlib

    graph = _package_graph()
    assert "engine" in graph and "cli" in graph  # the graph was built from real imports
    assert not any("cli" in deps for pkg, deps in graph.items() if pkg != "cli"), "library imports the CLI"
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle
