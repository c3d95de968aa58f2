"""The dataset catalog and file resolution: which prompt sets exist and where their bytes come from.

A file is identified by ``(folder, relpath)``, e.g. ``("xstest", "xstest_prompts.csv")``, and
found in this order:

1. ``<dir>/<folder>/<relpath>`` for each ``dir`` in ``$AIRISK_DATA_PATH`` (``os.pathsep``-separated);
2. the local cache ``$AIRISK_CACHE/<folder>/<relpath>`` (default ``~/.cache/airisk/datasets``);
3. a download from the catalog's canonical URL (or ``$AIRISK_DATA_MIRROR/<folder>/<relpath>``),
   verified against the recorded sha256 before it is moved into the cache.

Offline (or with ``AIRISK_OFFLINE=1``) and with no local copy, one :class:`DatasetNotFound`
says which file was looked for where and what to set.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path, PurePosixPath

import httpx
import yaml
from pydantic import BaseModel, Field

from airisk.errors import ConfigError, DatasetNotFound

DOWNLOAD_TIMEOUT_S = 30.0


class ChecksumMismatch(DatasetNotFound):
    """A downloaded file's sha256 differs from the catalog's; nothing was written to the cache."""


class FileSpec(BaseModel):
    """One file of a dataset: where it lives under its folder, its expected hash and its source URL."""

    relpath: str
    sha256: str | None = None
    url: str | None = None
    url_sha256: str | None = None  # hash of the downloaded bytes when they differ (compressed source)
    compression: str | None = None  # "gzip": the URL serves a .gz of the file


class CatalogEntry(BaseModel):
    """A named prompt set: version, license, files and the loader that turns them into items."""

    name: str
    version: str
    license: str
    description: str
    folder: str
    files: list[FileSpec]
    loader: str
    locale: str | None = None
    provenance: str = ""
    options: dict = Field(default_factory=dict)
    id_prefix: str | None = None  # defaults to the name; splits of one set share their parent's prefix

    @property
    def prefix(self) -> str:
        return self.id_prefix or self.name

    @property
    def primary(self) -> FileSpec:
        return self.files[0]


class _ExtraFile(FileSpec):
    folder: str


@cache
def _raw() -> dict:
    text = resources.files("airisk.datasets").joinpath("data", "catalog.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@cache
def catalog() -> dict[str, CatalogEntry]:
    """All catalog entries by name."""
    return {e["name"]: CatalogEntry.model_validate(e) for e in _raw()["datasets"]}


def list_datasets() -> list[CatalogEntry]:
    """Catalog entries in catalog order."""
    return list(catalog().values())


def get_entry(name: str) -> CatalogEntry:
    try:
        return catalog()[name]
    except KeyError:
        raise DatasetNotFound(f"unknown dataset {name!r}; known datasets: {', '.join(catalog())}") from None


@cache
def _file_specs() -> dict[tuple[str, str], FileSpec]:
    specs: dict[tuple[str, str], FileSpec] = {}
    for e in catalog().values():
        for f in e.files:
            specs[(e.folder, f.relpath)] = f
    for raw in _raw().get("files", []):
        x = _ExtraFile.model_validate(raw)
        specs[(x.folder, x.relpath)] = FileSpec.model_validate(x.model_dump(exclude={"folder"}))
    return specs


def register_file(folder: str, relpath: str, *, sha256: str | None, url: str | None = None,
                  url_sha256: str | None = None, compression: str | None = None) -> FileSpec:
    """Declare (or override) a file's expected hash and download URL, e.g. for a plugin's own data."""
    _check_rel(folder, relpath)
    spec = FileSpec(relpath=relpath, sha256=sha256, url=url, url_sha256=url_sha256, compression=compression)
    _file_specs()[(folder, relpath)] = spec
    return spec


def file_spec(folder: str, relpath: str) -> FileSpec | None:
    """The catalog's record for a file (hash, URL), or None for a file the catalog does not know."""
    return _file_specs().get((folder, relpath))


def data_dirs() -> list[Path]:
    """Directories listed in ``$AIRISK_DATA_PATH``, in order."""
    raw = os.environ.get("AIRISK_DATA_PATH", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def cache_dir() -> Path:
    """Where downloaded files are kept: ``$AIRISK_CACHE`` or ``~/.cache/airisk/datasets``."""
    raw = os.environ.get("AIRISK_CACHE")
    return Path(raw).expanduser() if raw else Path.home() / ".cache" / "airisk" / "datasets"


def _check_rel(folder: str, relpath: str) -> None:
    # folder/relpath come from catalog data and user options: never let them escape the base dirs
    for part in (folder, relpath):
        p = PurePosixPath(part)
        if not part or p.is_absolute() or ".." in p.parts or "\\" in part:
            raise ConfigError(f"invalid dataset path component {part!r}")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_local(folder: str, relpath: str) -> Path | None:
    """The first local copy (data path, then a cache copy with the right hash); never downloads."""
    _check_rel(folder, relpath)
    for d in data_dirs():
        p = d / folder / relpath
        if p.is_file():
            return p
    cached = cache_dir() / folder / relpath
    if cached.is_file():
        spec = file_spec(folder, relpath)
        if spec is None or spec.sha256 is None or sha256_file(cached) == spec.sha256:
            return cached
    return None


def _download_url(folder: str, relpath: str, spec: FileSpec) -> tuple[str, str | None, str | None]:
    """(url, sha256 of the bytes served, compression) honouring $AIRISK_DATA_MIRROR."""
    mirror = os.environ.get("AIRISK_DATA_MIRROR")
    if mirror:  # a mirror serves the files exactly as they sit in AIRISK_DATA_PATH
        return f"{mirror.rstrip('/')}/{folder}/{relpath}", spec.sha256, None
    return spec.url or "", spec.url_sha256 or spec.sha256, spec.compression


def download(url: str, dest: Path, *, sha256: str | None, served_sha256: str | None = None,
             compression: str | None = None, timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying hashes; a bad file never reaches ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as r:
            r.raise_for_status()
            for chunk in r.iter_bytes():
                h.update(chunk)
                out.write(chunk)
        got = h.hexdigest()
        if served_sha256 and got != served_sha256:
            raise ChecksumMismatch(f"checksum mismatch for {url}: expected sha256 {served_sha256}, got {got}; "
                                   f"the file was discarded")
        if compression == "gzip":
            data = gzip.decompress(tmp.read_bytes())
            tmp.write_bytes(data)
            got = hashlib.sha256(data).hexdigest()
        elif compression:
            raise ConfigError(f"unsupported compression {compression!r} for {url}")
        if sha256 and got != sha256:
            raise ChecksumMismatch(f"checksum mismatch for {url}: expected sha256 {sha256}, got {got}; "
                                   f"the file was discarded")
        os.replace(tmp, dest)
        return dest
    finally:
        tmp.unlink(missing_ok=True)


def _offline() -> bool:
    return os.environ.get("AIRISK_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def resolve_file(folder: str, relpath: str, *, download_missing: bool = True) -> Path:
    """Path of a local copy of ``<folder>/<relpath>``, downloading (with checksum) if needed.

    Raises :class:`DatasetNotFound` (one message: where it looked, what to set) if there is none.
    """
    found = find_local(folder, relpath)
    if found is not None:
        return found
    spec = file_spec(folder, relpath)
    cached = cache_dir() / folder / relpath
    reason: str
    if not download_missing or _offline():
        reason = "downloads are disabled (AIRISK_OFFLINE is set)" if _offline() else "download not attempted"
    elif spec is None:
        reason = "the catalog has no download URL for this file"
    else:
        url, served, compression = _download_url(folder, relpath, spec)
        if not url:
            reason = "the catalog has no download URL for this file (it is a derived file)"
        else:
            try:
                return download(url, cached, sha256=spec.sha256, served_sha256=served, compression=compression)
            except ChecksumMismatch:
                raise
            except (httpx.HTTPError, OSError) as e:
                reason = f"download from {url} failed ({type(e).__name__}: {e})"
    dirs = data_dirs()
    looked = (", ".join(str(d / folder / relpath) for d in dirs) if dirs else "AIRISK_DATA_PATH is not set")
    raise DatasetNotFound(
        f"dataset file {folder}/{relpath} not found. Looked in: {looked}; cache {cached}; {reason}. "
        f"Set AIRISK_DATA_PATH=<dir> so that <dir>/{folder}/{relpath} exists "
        f"(e.g. AIRISK_DATA_PATH=../shared/data in a checkout next to the shared data), "
        f"or allow network access to download it into the cache."
    )
