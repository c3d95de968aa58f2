"""Choosing a run's items: load the dataset, apply the filters, shuffle and take a stratified head."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from airisk.types import Item

FILE_SUFFIXES = (".csv", ".jsonl", ".json", ".tsv")


def load_any(dataset: str, *, skip_bad: bool = False) -> Any:
    """A catalog dataset by name, or a user file when ``dataset`` is a path (or looks like one)."""
    from airisk import datasets

    path = Path(dataset)
    if path.suffix.lower() in FILE_SUFFIXES or path.exists():
        return datasets.load_file(path, skip_bad=skip_bad)
    return datasets.load_dataset(dataset, skip_bad=skip_bad)


def select_items(
    items: list[Item], *, hazards: list[str] | None = None, personas: list[str] | None = None,
    locales: list[str] | None = None, limit: int | None = None, shuffle: bool = False, seed: int = 0,
) -> list[Item]:
    """Filter by hazard/persona/locale, optionally shuffle (seeded), then keep a stratified head."""
    if hazards:
        from airisk.taxonomy import get_hazard

        for h in hazards:
            get_hazard(h)  # unknown codes fail here, listing the valid ones
    out = [
        it for it in items
        if (not hazards or it.hazard in hazards)
        and (not personas or it.persona in personas)
        and (not locales or it.locale in locales)
    ]
    if shuffle:
        random.Random(seed).shuffle(out)
    if limit and limit < len(out):
        out = stratified_head(out, limit)
    return out


def load_items(cfg: Any) -> tuple[list[Item], list[dict[str, Any]]]:
    """The run's items after the config's filters, and the dataset provenance to record with the run."""
    ds = load_any(cfg.dataset, skip_bad=cfg.skip_bad)
    items = select_items(ds.items, hazards=cfg.hazards, personas=cfg.personas, locales=cfg.locales,
                         limit=cfg.limit, shuffle=cfg.shuffle, seed=cfg.seed)
    return items, [dataset_meta(ds, len(items))]


def dataset_meta(ds: Any, n_items: int) -> dict[str, Any]:
    """What a run records about its dataset: name, version, hash, licence, path and counts."""
    return {"name": ds.name, "version": ds.version, "sha256": ds.sha256, "license": getattr(ds, "license", None),
            "path": str(getattr(ds, "path", "") or ""), "items": n_items,
            "skipped": len(getattr(ds, "skipped", []) or [])}


def stratified_head(items: list[Item], n: int) -> list[Item]:
    """The first ``n`` items taken round-robin across hazards (dataset order within each), so a
    ``--limit`` sample covers every hazard instead of the first one or two of a sorted file."""
    by_hazard: dict[str | None, list[Item]] = {}
    for it in items:
        by_hazard.setdefault(it.hazard, []).append(it)
    queues = [iter(v) for v in by_hazard.values()]
    out: list[Item] = []
    while len(out) < n and queues:
        for q in list(queues):
            nxt = next(q, None)
            if nxt is None:
                queues.remove(q)
            elif len(out) < n:
                out.append(nxt)
    return out
