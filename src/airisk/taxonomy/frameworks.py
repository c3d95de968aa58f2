"""Framework coverage: which items of each framework airisk's tests produce evidence for, and the gaps.

A *test id* names one kind of evidence airisk can produce (see ``TESTS``): ``hazard:<code>`` for a
per-hazard benchmark, ``over_refusal``, ``attack:jailbreak``, ``agent:unsafe_action``,
``guard:action_gate`` ... A framework maps test ids to its items:

* the hazard crosswalks (``taxonomy/data/crosswalks/*.yaml``) give ``hazard:<code>`` -> targets,
  and may add a ``tests:`` block for the other test ids (ISO/IEC 42001 does);
* MITRE ATLAS is read from the shared data (``$AIRISK_DATA_PATH/taxonomies/mitre_atlas.yaml``,
  never copied into the package) with our mapping in ``taxonomy/data/coverage/mitre_atlas.yaml``.

``coverage(framework_id, tests)`` lists every item with the test ids that cover it; an item no test
covers is a *gap*. Without ``tests`` it uses every test airisk ships (what airisk *could* cover);
the governance package passes the tests a register's requirements actually use.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, Field

from airisk.errors import ConfigError
from airisk.taxonomy.crosswalks import Crosswalk, Target, crosswalks

ATLAS_ID = "mitre_atlas"
_ATLAS_ID_RE = r"AML\.T\d{4}(\.\d{3})?"

# The kinds of evidence airisk produces (besides hazard:<code>, one per AILuminate hazard code).
TESTS: dict[str, str] = {
    "over_refusal": "over-refusal of benign prompts (XSTest safe set)",
    "attack:jailbreak": "jailbreak prompts (JailbreakBench artifacts, template attacks)",
    "attack:obfuscation": "obfuscated prompts (base64, rot13, leetspeak, homoglyphs, zero-width)",
    "attack:multiturn": "multi-turn attacks (crescendo, PAIR)",
    "agent:unsafe_action": "unsafe tool use by agents (ToolEmu, Agent-SafetyBench scenarios)",
    "agent:indirect_injection": "instructions injected through tool outputs (web/inbox injection scenarios)",
    "guard:action_gate": "the guard's action gate in the agent loop (gate-in-the-loop runs)",
    "guard:audit_log": "the guard's audit log of decisions",
    "judge:card": "judge validity measured on labelled data (judge cards)",
    "data:provenance": "dataset versions and checksums recorded with each run",
    "governance:register": "requirements formalised in a risk register",
    "governance:qra": "quantitative risk assessment (annualised loss)",
    "governance:pack": "evidence pack with system card and risk cards",
}


class Item(BaseModel):
    id: str
    name: str
    group: str | None = None


class Framework(BaseModel):
    """A framework's items and which airisk test ids cover each (our judgement unless ``official``)."""

    id: str
    name: str
    version: str
    official: bool = False
    basis: str = ""
    source: str = ""
    items: list[Item]
    tests: dict[str, list[str]] = Field(default_factory=dict)  # test id -> item ids

    def covered_by(self, item_id: str, tests: set[str] | None = None) -> list[str]:
        return sorted(t for t, ids in self.tests.items() if item_id in ids and (tests is None or t in tests))


class ItemCoverage(BaseModel):
    id: str
    name: str
    group: str | None = None
    tests: list[str]

    @property
    def gap(self) -> bool:
        return not self.tests


def all_tests() -> list[str]:
    from airisk.taxonomy.hazards import _base_codes

    return [f"hazard:{c}" for c in _base_codes()] + list(TESTS)


def _from_crosswalk(cw: Crosswalk, extra_tests: dict[str, list[str]], source: str) -> Framework:
    tests = {f"hazard:{code}": list(ids) for code, ids in cw.mapping.items()}
    for t, ids in extra_tests.items():
        tests.setdefault(t, []).extend(ids)
    return Framework(id=cw.id, name=cw.framework, version=cw.version, official=cw.official, basis=cw.basis,
                     source=source, items=[Item(id=t.id, name=t.name) for t in cw.targets], tests=tests)


def atlas_data_path() -> Path | None:
    """The shared ATLAS file, or None when ``AIRISK_DATA_PATH`` does not hold it.

    Looked up in the data path directly (not through ``airisk.datasets``, which imports this package:
    the taxonomy stays at the bottom of the import graph). ATLAS has no download in the catalog.
    """
    import os

    for d in os.environ.get("AIRISK_DATA_PATH", "").split(os.pathsep):
        p = Path(d.strip()).expanduser() / "taxonomies" / "mitre_atlas.yaml"
        if d.strip() and p.is_file():
            return p
    return None


@cache
def _atlas_mapping() -> dict:
    return yaml.safe_load(resources.files("airisk.taxonomy").joinpath("data", "coverage", "mitre_atlas.yaml")
                          .read_text(encoding="utf-8"))


@cache
def _atlas_source(path: str) -> dict:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def atlas_crosswalk() -> Crosswalk:
    """ATLAS techniques (from the shared data) with our hazard mapping, as a ``Crosswalk``."""
    path = atlas_data_path()
    if path is None:
        raise ConfigError("MITRE ATLAS data not found: set AIRISK_DATA_PATH to the folder holding "
                          "taxonomies/mitre_atlas.yaml (built from mitre-atlas/atlas-data)")
    data = _atlas_source(str(path))
    m = _atlas_mapping()
    targets = [Target(id=t["id"], name=t["name"]) for t in data["techniques"]]
    return Crosswalk(id=ATLAS_ID, framework=m["framework"], version=str(data.get("version", "")), official=False,
                     basis=m["basis"], targets=targets, mapping=m["mapping"])


def _atlas() -> Framework:
    cw = atlas_crosswalk()
    data = _atlas_source(str(atlas_data_path()))
    tactics = {t["id"]: t["name"] for t in data["tactics"]}
    fw = _from_crosswalk(cw, _atlas_mapping()["tests"], f"{atlas_data_path()} (ATLAS {cw.version}); mapping: airisk")
    for item, t in zip(fw.items, data["techniques"]):
        tac = t.get("tactics") or t.get("inherited_tactics") or []
        item.group = ", ".join(tactics.get(x, x) for x in tac) or None
    return fw


def frameworks(*, with_atlas: bool = True) -> dict[str, Framework]:
    """Every framework airisk crosswalks, by id; ATLAS only when its shared data is found."""
    path = atlas_data_path() if with_atlas else None
    return dict(_frameworks(str(path) if path else None))


@cache
def _frameworks(atlas_path: str | None) -> dict[str, Framework]:
    out: dict[str, Framework] = {}
    folder = resources.files("airisk.taxonomy").joinpath("data", "crosswalks")
    for cid, cw in crosswalks().items():
        raw = yaml.safe_load(folder.joinpath(f"{cid}.yaml").read_text(encoding="utf-8")) if folder.joinpath(f"{cid}.yaml").is_file() else {}
        out[cid] = _from_crosswalk(cw, (raw or {}).get("tests") or {}, f"airisk/taxonomy/data/crosswalks/{cid}.yaml")
    if atlas_path is not None:
        out[ATLAS_ID] = _atlas()
    return out


def get_framework(name: str) -> Framework:
    fws = frameworks()
    wanted = name.strip().lower()
    for fw in fws.values():
        if wanted in (fw.id.lower(), fw.name.lower()):
            return fw
    hint = " (MITRE ATLAS needs AIRISK_DATA_PATH with taxonomies/mitre_atlas.yaml)" if wanted in (ATLAS_ID, "mitre atlas") else ""
    raise ConfigError(f"unknown framework {name!r}; available: {', '.join(fws)}{hint}")


def get_any_crosswalk(name: str) -> Crosswalk:
    """``get_crosswalk`` plus MITRE ATLAS (built from the shared data, so not in ``crosswalks()``)."""
    from airisk.taxonomy.crosswalks import get_crosswalk

    if name.strip().lower() in (ATLAS_ID, "mitre atlas"):
        return atlas_crosswalk()
    return get_crosswalk(name)


def validate_items(framework: str, ids: list[str]) -> None:
    """Raise ``ValueError`` naming the framework and any item id it does not have."""
    import re

    if framework == ATLAS_ID and atlas_data_path() is None:
        bad = [i for i in ids if not re.fullmatch(_ATLAS_ID_RE, i)]  # no data here: check the id's shape only
    else:
        try:
            fw = get_framework(framework)
        except ConfigError as e:
            raise ValueError(str(e)) from None
        known = {i.id for i in fw.items}
        bad = [i for i in ids if i not in known]
    if bad:
        raise ValueError(f"framework '{framework}' has no item(s) {bad}")


def coverage(framework: str, tests: set[str] | None = None) -> list[ItemCoverage]:
    """Every item of the framework with the test ids (among ``tests``, default all) that cover it."""
    fw = get_framework(framework)
    return [ItemCoverage(id=i.id, name=i.name, group=i.group, tests=fw.covered_by(i.id, tests)) for i in fw.items]


def gaps(framework: str, tests: set[str] | None = None) -> list[ItemCoverage]:
    return [c for c in coverage(framework, tests) if c.gap]
