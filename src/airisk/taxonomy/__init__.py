"""Hazard taxonomy: AILuminate v1.0 hazard codes, groups, personas and crosswalks to other frameworks.

>>> from airisk.taxonomy import get_hazard, hazards_for_llama_guard
>>> get_hazard("vcr").llama_guard
['S1']
>>> hazards_for_llama_guard("S6")
['spc_fin', 'spc_hlt', 'spc_lgl']
"""

from __future__ import annotations

import re

from airisk.errors import ConfigError
from airisk.taxonomy.crosswalks import Crosswalk, Target, crosswalks, get_crosswalk
from airisk.taxonomy.hazards import Group, Hazard, Persona, _base, _unknown

LLAMA_GUARD = "llama_guard_3"


def _build_hazards() -> dict[str, Hazard]:
    cws = crosswalks()
    out: dict[str, Hazard] = {}
    for raw in _base()["hazards"]:
        code = raw["code"]
        cw = {cid: c.targets_for(code) for cid, c in cws.items() if c.targets_for(code)}
        out[code] = Hazard(**raw, llama_guard=cws[LLAMA_GUARD].targets_for(code), crosswalks=cw)
    return out


HAZARDS: dict[str, Hazard] = _build_hazards()
GROUPS: dict[str, str] = dict(_base()["groups"])
PERSONAS: dict[str, Persona] = {k: Persona(code=k, description=v) for k, v in _base()["personas"].items()}


def hazard_codes() -> list[str]:
    """All hazard codes in taxonomy order (physical, non-physical, contextual)."""
    return list(HAZARDS)


def get_hazard(code: str) -> Hazard:
    """The hazard with this exact code; an unknown code raises ``ConfigError`` listing the valid ones."""
    try:
        return HAZARDS[code]
    except (KeyError, TypeError):
        raise _unknown(code) from None


def is_hazard(code: object) -> bool:
    return isinstance(code, str) and code in HAZARDS


def hazards_in_group(group: str) -> list[str]:
    if group not in GROUPS:
        raise ConfigError(f"unknown hazard group {group!r}; valid groups: {', '.join(GROUPS)}")
    return [h.code for h in HAZARDS.values() if h.group == group]


def _norm_s(s_code: str) -> str:
    m = re.fullmatch(r"\s*[sS](\d{1,2})\s*", str(s_code))
    if not m:
        raise ConfigError(f"not a Llama Guard category: {s_code!r} (expected S1..S14)")
    return f"S{int(m.group(1))}"


def llama_guard_categories() -> dict[str, str]:
    """Llama Guard 3 categories ``{"S1": "Violent Crimes", ...}`` (Llama Guard 4 uses the same S1-S14)."""
    return {t.id: t.name for t in crosswalks()[LLAMA_GUARD].targets}


def hazards_for_llama_guard(s_code: str) -> list[str]:
    """Hazard codes that a Llama Guard category corresponds to (``[]`` for S14, Code Interpreter Abuse)."""
    s = _norm_s(s_code)
    if s not in llama_guard_categories():
        raise ConfigError(f"unknown Llama Guard category {s_code!r}; valid: S1..S14")
    return crosswalks()[LLAMA_GUARD].hazards_for(s)


__all__ = [
    "Crosswalk",
    "GROUPS",
    "Group",
    "HAZARDS",
    "Hazard",
    "PERSONAS",
    "Persona",
    "Target",
    "crosswalks",
    "get_crosswalk",
    "get_hazard",
    "hazard_codes",
    "hazards_for_llama_guard",
    "hazards_in_group",
    "is_hazard",
    "llama_guard_categories",
]
