"""Loading a named catalog dataset or a user's file into a :class:`Dataset` of items."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field

from airisk.datasets.catalog import get_entry, catalog, resolve_file
from airisk.datasets.loaders import LOADERS, LoadContext
from airisk.datasets.readers import RowErrors, read_text
from airisk.errors import ConfigError, DataError, DatasetNotFound
from airisk.taxonomy import get_hazard
from airisk.types import Item

log = logging.getLogger(__name__)


class Dataset(BaseModel):
    """A loaded prompt set. ``skipped`` lists ``(line, reason)`` for rows dropped with ``skip_bad``."""

    name: str
    version: str
    items: list[Item]
    sha256: str
    expected_sha256: str | None = None
    license: str | None = None
    path: str
    skipped: list[tuple[int, str]] = Field(default_factory=list)

    @property
    def verified(self) -> bool:
        """True when the file's bytes match the catalog's recorded sha256."""
        return self.expected_sha256 is not None and self.sha256 == self.expected_sha256

    def __len__(self) -> int:
        return len(self.items)

    def counts(self, field: str) -> dict[str, int]:
        """Items per value of ``hazard``, ``persona``, ``locale``, ``expected`` or ``source_category``."""
        c = Counter(getattr(i, field) or "-" for i in self.items)
        return dict(sorted(c.items()))


def _select(items: list[Item], hazards: list[str] | str | None, limit: int | None) -> list[Item]:
    if hazards:
        wanted = [h.strip() for h in (hazards.split(",") if isinstance(hazards, str) else hazards) if h.strip()]
        for h in wanted:
            get_hazard(h)  # unknown code -> ConfigError naming the valid ones
        items = [i for i in items if i.hazard in set(wanted)]
    if limit is not None:
        if limit < 0:
            raise ConfigError(f"limit must be >= 0, got {limit}")
        items = items[:limit]
    return items


def _load(path: Path, loader: str, ctx: LoadContext, skip_bad: bool) -> tuple[list[Item], list[tuple[int, str]], str]:
    data_sha = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
    errors = RowErrors(path, skip_bad)
    items = LOADERS[loader](read_text(path), errors, ctx)
    if not items:
        detail = f" ({len(errors.skipped)} bad rows skipped; first: {errors.skipped[0][1]})" if errors.skipped else ""
        raise DataError(f"no usable rows{detail}", path=str(path))
    return items, errors.skipped, data_sha


def load_dataset(name: str, *, skip_bad: bool = False, limit: int | None = None,
                 hazards: list[str] | str | None = None) -> Dataset:
    """Load a catalog dataset by name (see :func:`list_datasets`), or a user file if ``name`` is a path."""
    if name not in catalog():
        if Path(name).expanduser().is_file():
            return load_file(name, skip_bad=skip_bad, limit=limit, hazards=hazards)
        raise DatasetNotFound(f"unknown dataset {name!r}: not a catalog name ({', '.join(catalog())}) "
                              f"and no such file")
    entry = get_entry(name)
    path = resolve_file(entry.folder, entry.primary.relpath)
    ctx = LoadContext(dataset=entry.name, prefix=entry.prefix, locale=entry.locale, options=entry.options)
    items, skipped, sha = _load(path, entry.loader, ctx, skip_bad)
    if entry.primary.sha256 and sha != entry.primary.sha256:
        # a local copy may be a deliberate edit; load it, but say so (Dataset.verified is False)
        log.warning("%s: sha256 %s differs from the catalog's %s for %s", path, sha, entry.primary.sha256, entry.name)
    return Dataset(name=entry.name, version=entry.version, items=_select(items, hazards, limit), sha256=sha,
                   expected_sha256=entry.primary.sha256, license=entry.license, path=str(path), skipped=skipped)


FORMATS = ("jsonl", "csv", "ailuminate")


def _sniff(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise ConfigError(f"unknown dataset format {fmt!r}; valid formats: {', '.join(FORMATS)}")
        return fmt
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        with open(path, "rb") as f:
            head = f.readline().decode("utf-8", errors="replace")
        return "ailuminate" if "release_prompt_id" in head and "prompt_text" in head else "csv"
    raise ConfigError(f"cannot tell the format of {path} from its extension; pass fmt= one of {', '.join(FORMATS)}")


def load_file(path: str | Path, *, skip_bad: bool = False, fmt: str | None = None, name: str | None = None,
              limit: int | None = None, hazards: list[str] | str | None = None) -> Dataset:
    """Load a user's prompt file: the generic JSONL/CSV format (see docs/datasets.md) or an AILuminate CSV.

    User-given ids are kept as they are; rows without an id get ``<name>:<hash of the prompt>``.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise DatasetNotFound(f"dataset file {p} does not exist")
    kind = _sniff(p, fmt)
    ds_name = name or p.stem
    loader = {"ailuminate": "ailuminate", "jsonl": "jsonl", "csv": "csv"}[kind]
    ctx = LoadContext(dataset=ds_name, prefix=None, locale=None)
    if kind != "ailuminate":
        # only hash-made ids get a prefix; explicit user ids stay verbatim
        ctx = _PrefixHashesOnly(dataset=ds_name, prefix=ds_name, locale=None)
    items, skipped, sha = _load(p, loader, ctx, skip_bad)
    return Dataset(name=ds_name, version=f"file-sha256:{sha[:12]}", items=_select(items, hazards, limit), sha256=sha,
                   license=None, path=str(p.resolve()), skipped=skipped)


class _PrefixHashesOnly(LoadContext):
    def make_id(self, source_id, prompt_key):  # type: ignore[override]
        if source_id not in (None, ""):
            return str(source_id)
        return super().make_id(None, prompt_key)
