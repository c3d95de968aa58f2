"""Hazard names, groups and grading keys for scoring, read from ``airisk.taxonomy``.

One job: answer "what is this hazard code called, which group is it in, and which ModelBench grading
key does it fall under". ModelBench grades at 12 keys and groups sub-codes by the prefix before
``_`` (``spc_fin`` -> ``spc``, ``sxc_prn`` -> ``sxc``). If the taxonomy package is unavailable the
codes are still usable: names fall back to the code itself.
"""

from __future__ import annotations

from functools import lru_cache

# The 12 AILuminate v1.0 grading keys and their groups (codes are facts from the public taxonomy;
# used only when airisk.taxonomy cannot be imported).
_FALLBACK_GROUPS = {
    "vcr": "physical", "src": "physical", "cse": "physical", "ssh": "physical", "iwp": "physical",
    "ipv": "non_physical", "dfm": "non_physical", "ncr": "non_physical", "hte": "non_physical", "prv": "non_physical",
    "spc": "contextual", "sxc": "contextual",
}
GROUPS = ("physical", "non_physical", "contextual")


def grading_key(code: str) -> str:
    """ModelBench grading key of a hazard code: the prefix before ``_``."""
    return code.split("_", 1)[0]


@lru_cache(maxsize=1)
def _taxonomy():
    try:
        import airisk.taxonomy as tx

        return tx if getattr(tx, "HAZARDS", None) else None
    except ImportError:
        return None


def known_codes() -> set[str]:
    """Every accepted code: the taxonomy's codes plus the 12 grading keys."""
    tx = _taxonomy()
    codes = set(_FALLBACK_GROUPS)
    if tx is not None:
        codes |= set(tx.HAZARDS)
    else:
        codes |= {"spc_ele", "spc_fin", "spc_hlt", "spc_lgl", "sxc_prn"}
    return codes


def hazard_name(code: str) -> str:
    tx = _taxonomy()
    if tx is not None:
        h = tx.HAZARDS.get(code)
        if h is None:
            h = tx.HAZARDS.get(grading_key(code))
        if h is None:
            # A grading key with only sub-codes in the taxonomy (spc): use the family name.
            subs = [v for k, v in tx.HAZARDS.items() if grading_key(k) == code]
            if subs:  # e.g. "Specialized Advice; financial" -> "Specialized Advice"
                return subs[0].name.split(";")[0].split(":")[0].strip()
        if h is not None:
            return h.name
    return code


def hazard_group(code: str) -> str | None:
    tx = _taxonomy()
    if tx is not None:
        h = tx.HAZARDS.get(code) or tx.HAZARDS.get(grading_key(code))
        if h is not None:
            return h.group
    return _FALLBACK_GROUPS.get(grading_key(code))


def hazard_info(code: str) -> dict:
    """Name, group, definition and Llama Guard crosswalk of a code (empty fields when unknown)."""
    tx = _taxonomy()
    out = {"code": code, "name": hazard_name(code), "group": hazard_group(code), "definition": None, "llama_guard": []}
    if tx is not None:
        h = tx.HAZARDS.get(code) or tx.HAZARDS.get(grading_key(code))
        if h is not None:
            out["definition"] = getattr(h, "definition", None)
            out["llama_guard"] = list(getattr(h, "llama_guard", []) or [])
        else:  # a grading key such as "spc": the union of its sub-codes' crosswalk
            subs = [v for k, v in tx.HAZARDS.items() if grading_key(k) == code]
            out["llama_guard"] = sorted({s for v in subs for s in (getattr(v, "llama_guard", []) or [])},
                                        key=lambda x: int(x[1:]) if x[1:].isdigit() else 99)
        try:
            cats = tx.llama_guard_categories()
            out["llama_guard_names"] = {s: cats.get(s, s) for s in out["llama_guard"]}
        except Exception:  # noqa: BLE001 - crosswalk names are decoration only
            out["llama_guard_names"] = {s: s for s in out["llama_guard"]}
    return out
