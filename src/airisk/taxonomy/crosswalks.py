"""Crosswalks: how each hazard code maps onto another framework's categories.

A crosswalk is plain data (one YAML file per framework under ``taxonomy/data/crosswalks/``):
the framework's ids and names plus a hazard-code -> target-ids mapping and a note on who made
the judgement. Adding AIR 2024, MITRE ATLAS or the EU AI Act means adding a file, not code.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml
from pydantic import BaseModel, Field, model_validator

from airisk.errors import ConfigError


class Target(BaseModel):
    """One category of the other framework."""

    id: str
    name: str


class Crosswalk(BaseModel):
    """A mapping from AILuminate hazard codes to another framework's category ids."""

    id: str
    framework: str
    version: str
    official: bool = False
    basis: str = ""
    targets: list[Target]
    mapping: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _targets_exist(self) -> "Crosswalk":
        known = {t.id for t in self.targets}
        for code, ids in self.mapping.items():
            bad = [i for i in ids if i not in known]
            if bad:
                raise ValueError(f"crosswalk {self.id}: hazard {code!r} maps to unknown target ids {bad}")
        return self

    def target_name(self, target_id: str) -> str:
        for t in self.targets:
            if t.id == target_id:
                return t.name
        raise ConfigError(f"{self.framework} has no category {target_id!r}")

    def targets_for(self, code: str) -> list[str]:
        return list(self.mapping.get(code, []))

    def hazards_for(self, target_id: str) -> list[str]:
        return [code for code, ids in self.mapping.items() if target_id in ids]


@cache
def crosswalks() -> dict[str, Crosswalk]:
    """All shipped crosswalks, by id (e.g. ``llama_guard_3``, ``owasp_llm_2025``)."""
    from airisk.taxonomy.hazards import _base_codes

    out: dict[str, Crosswalk] = {}
    folder = resources.files("airisk.taxonomy").joinpath("data", "crosswalks")
    codes = set(_base_codes())
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".yaml"):
            continue
        cw = Crosswalk.model_validate(yaml.safe_load(entry.read_text(encoding="utf-8")))
        unknown = sorted(set(cw.mapping) - codes)
        if unknown:  # a typo in a data file must fail loudly, not drop a mapping
            raise ConfigError(f"crosswalk file {entry.name}: unknown hazard codes {unknown}")
        out[cw.id] = cw
    return out


def get_crosswalk(name: str) -> Crosswalk:
    """Look a crosswalk up by id or framework name (case-insensitive, ``-`` same as ``_``), or by a
    unique id prefix without the version: ``owasp-llm`` finds ``owasp_llm_2025``."""
    all_ = crosswalks()
    wanted = name.strip().lower().replace("-", "_")
    for cw in all_.values():
        if wanted in (cw.id.lower(), cw.framework.lower().replace("-", "_")):
            return cw
    prefixed = [cw for cw in all_.values() if cw.id.lower().startswith(wanted + "_")]
    if len(prefixed) == 1:
        return prefixed[0]
    raise ConfigError(f"unknown crosswalk {name!r}; available: {', '.join(all_)}")
