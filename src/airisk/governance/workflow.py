"""The governance loop as three library calls the CLI wraps: init, check, pack.

>>> from airisk.governance.workflow import write_starter, check_register, make_pack
>>> write_starter("register.yaml")                                   # doctest: +SKIP
>>> report = check_register("register.yaml", runs=["demo-*"], db=url)  # doctest: +SKIP
>>> paths = make_pack("register.yaml", runs=["demo-*"], out="pack", db=url)  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from airisk.errors import ConfigError
from airisk.governance.check import CheckReport, evaluate_register, resolve_runs
from airisk.governance.register import Register, load_register


def starter_text() -> str:
    return resources.files("airisk.governance").joinpath("templates", "register.yaml").read_text(encoding="utf-8")


def write_starter(path: str | Path, *, force: bool = False) -> Path:
    """Write the commented starter register; never overwrites an existing file unless ``force``."""
    p = Path(path)
    if p.exists() and not force:
        raise ConfigError(f"{p} already exists; pass --force to overwrite it")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(starter_text(), encoding="utf-8")
    return p


def _inputs(register: str | Path, runs: list[str], db: str | None) -> tuple[Register, Any, list[Any], str]:
    from airisk.store.store import Store

    reg = load_register(register)
    if not runs:
        raise ConfigError("--runs: give at least one run id or glob (e.g. --runs 'demo-*')")
    store = Store(db)
    return reg, store, resolve_runs(store, runs), Path(register).read_text(encoding="utf-8")


def check_register(register: str | Path, *, runs: list[str], db: str | None = None, seed: int = 0,
                   judge: str | None = None) -> tuple[Register, CheckReport]:
    reg, store, selected, _ = _inputs(register, runs, db)
    return reg, evaluate_register(reg, store, selected, seed=seed, judge=judge)


def assess(register: str | Path, *, runs: list[str], db: str | None = None, seed: int = 0, draws: int = 100_000,
           judge: str | None = None) -> dict[str, Any]:
    """Check the register and run the QRA: ``{register, report, risks, raw, store, text}``."""
    from airisk.governance.qra import assess_risks

    reg, store, selected, text = _inputs(register, runs, db)
    report = evaluate_register(reg, store, selected, seed=seed, judge=judge)
    risks, raw = assess_risks(reg, report, draws=draws, seed=seed)
    return {"register": reg, "report": report, "risks": risks, "raw": raw, "store": store, "text": text}


def make_pack(register: str | Path, *, runs: list[str], out: str | Path, db: str | None = None, seed: int = 0,
              draws: int = 100_000, reports_dir: str | Path | None = None, judge: str | None = None) -> dict[str, Path]:
    """Check, assess and write the evidence pack (``pack.html``, ``pack.md``, ``pack.json``) into ``out``."""
    from airisk.governance.pack import build_pack, write_pack

    a = assess(register, runs=runs, db=db, seed=seed, draws=draws, judge=judge)
    pack = build_pack(a["register"], a["report"], a["risks"], a["raw"], a["store"], register_text=a["text"],
                      reports_dir=Path(reports_dir) if reports_dir else None, out_dir=Path(out), draws=draws, seed=seed)
    return write_pack(pack, out)
