"""Hazard names, groups and grading keys for scoring, read from ``airisk.taxonomy``.

One job: answer "what is this hazard code called, which group is it in, and which ModelBench grading
key does it fall under". ModelBench grades at 12 keys and groups sub-codes by the prefix before
``_`` (``spc_fin`` -> ``spc``, ``sxc_prn`` -> ``sxc``); a grading key with only sub-codes in the
taxonomy (``spc``) takes its family's name, group and crosswalk from them.
"""

from __future__ import annotations

from typing import Any

from airisk import taxonomy as tx

GROUPS = ("physical", "non_physical", "contextual")


def grading_key(code: str) -> str:
    """ModelBench grading key of a hazard code: the prefix before ``_``."""
    return code.split("_", 1)[0]


def _family(code: str) -> list[Any]:
    """The taxonomy hazards whose grading key is ``code`` (``spc`` -> spc_ele, spc_fin, ...)."""
    return [v for k, v in tx.HAZARDS.items() if grading_key(k) == code]


def _lookup(code: str) -> Any:
    return tx.HAZARDS.get(code) or tx.HAZARDS.get(grading_key(code))


def known_codes() -> set[str]:
    """Every accepted code: the taxonomy's codes plus their grading keys."""
    return set(tx.HAZARDS) | {grading_key(c) for c in tx.HAZARDS}


def hazard_name(code: str) -> str:
    """The hazard's name; a grading key with only sub-codes gets the family name; unknown codes stay as is."""
    h = _lookup(code)
    if h is not None:
        return str(h.name)
    subs = _family(code)
    if subs:  # e.g. "Specialized Advice; financial" -> "Specialized Advice"
        return str(subs[0].name).split(";")[0].split(":")[0].strip()
    return code


def hazard_group(code: str) -> str | None:
    """physical / non_physical / contextual, or None for a code outside the taxonomy."""
    h = _lookup(code)
    if h is not None:
        return str(h.group)
    subs = _family(code)
    return str(subs[0].group) if subs else None


def hazard_info(code: str) -> dict[str, Any]:
    """Name, group, definition and Llama Guard crosswalk of a code (empty fields when unknown)."""
    out: dict[str, Any] = {"code": code, "name": hazard_name(code), "group": hazard_group(code), "definition": None,
                           "llama_guard": []}
    h = _lookup(code)
    if h is not None:
        out["definition"] = h.definition
        out["llama_guard"] = list(h.llama_guard or [])
    else:  # a grading key such as "spc": the union of its sub-codes' crosswalk
        out["llama_guard"] = sorted({s for v in _family(code) for s in (v.llama_guard or [])},
                                    key=lambda x: int(x[1:]) if x[1:].isdigit() else 99)
    cats = tx.llama_guard_categories()
    out["llama_guard_names"] = {s: cats.get(s, s) for s in out["llama_guard"]}
    return out
