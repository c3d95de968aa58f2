"""Attack specs to Attack objects, through the ``airisk.mutators`` and ``airisk.attacks`` entry points.

A spec term is either a registered attack (``crescendo``, ``pair[iterations=3]``) or a chain of
registered mutators joined by ``+`` (``base64+roleplay[variant=all]``). Unknown names raise
PluginNotFound listing every available attack and mutator.
"""

from __future__ import annotations

import re
from typing import Any

from airisk import plugins
from airisk.attacks.attack import Attack, ChainAttack
from airisk.attacks.base import Chain, parse_term_spec, split_specs
from airisk.attacks.mutators import Identity
from airisk.errors import ConfigError, PluginNotFound
from airisk.spec import build, split_top

BASELINE = "baseline"


def catalog() -> list[dict[str, Any]]:
    """Every registered attack and mutator: name, kind, description, whether it needs an attacker model."""
    out = []
    for group, kind in (("attacks", "attack"), ("mutators", "mutator")):
        for name in plugins.available(group):
            try:
                cls = plugins.load(group, name)
                out.append({"name": name, "kind": kind, "description": getattr(cls, "description", ""),
                            "needs_attacker": bool(getattr(cls, "needs_attacker", False)),
                            "multi_turn": bool(getattr(cls, "multi_turn", False))})
            except Exception as e:  # a broken third-party plugin is listed, not fatal
                out.append({"name": name, "kind": kind, "description": f"(failed to load: {e})",
                            "needs_attacker": False, "multi_turn": False})
    return out


def _unknown(name: str) -> PluginNotFound:
    return PluginNotFound(
        f"unknown attack or mutator '{name}'; available attacks: {', '.join(plugins.available('attacks')) or '(none)'}; "
        f"mutators (combine with +): {', '.join(plugins.available('mutators')) or '(none)'}"
    )


def make_attack(term: str) -> Attack:
    """One spec term -> Attack."""
    term = term.strip()
    if term == BASELINE:
        return baseline()
    parts = split_top(term, "+")
    if re.search(r"^\s*\+|\+\s*\+|\+\s*$", term):
        raise ConfigError(f"bad attack spec '{term}': empty element in a '+' chain")
    if len(parts) == 1:
        sp = parse_term_spec(parts[0])
        if sp.name in plugins.available("attacks"):
            return build(plugins.load("attacks", sp.name), sp, what="attack")
    mutators = []
    for p in parts:
        sp = parse_term_spec(p)
        if sp.name in plugins.available("attacks"):
            raise ConfigError(f"'{sp.name}' is a multi-turn attack and cannot be chained with '+' in '{term}'")
        if sp.name not in plugins.available("mutators"):
            raise _unknown(sp.name)
        mutators.append(build(plugins.load("mutators", sp.name), sp, what="mutator"))
    return ChainAttack(Chain(mutators), label=term)


def make_attacks(spec: str | list[str]) -> list[Attack]:
    """Comma-separated spec (or list of terms) -> attacks, duplicates rejected."""
    terms = split_specs(spec) if isinstance(spec, str) else [t for s in spec for t in split_specs(s)]
    if not terms:
        raise ConfigError("no attacks given; see `airisk attacks list`")
    attacks = [make_attack(t) for t in terms]
    labels = [a.label for a in attacks]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise ConfigError(f"attack listed twice: {', '.join(dupes)}")
    return attacks


def baseline() -> ChainAttack:
    """The un-mutated seed, sent once: the reference every attack's uplift is measured against."""
    return ChainAttack(Chain([Identity()]), label=BASELINE)
