"""Named prompt sets and user files, loaded into :class:`airisk.types.Item` lists.

>>> ds = load_dataset("xstest")          # found via AIRISK_DATA_PATH, the cache, or downloaded
>>> ds.items[0].id, ds.items[0].expected
('xstest:1', 'comply')
"""

from airisk.datasets.catalog import (
    CatalogEntry,
    ChecksumMismatch,
    FileSpec,
    cache_dir,
    data_dirs,
    find_local,
    get_entry,
    list_datasets,
    register_file,
    resolve_file,
)
from airisk.datasets.dataset import FORMATS, Dataset, load_dataset, load_file

__all__ = [
    "FORMATS",
    "CatalogEntry",
    "ChecksumMismatch",
    "Dataset",
    "FileSpec",
    "cache_dir",
    "data_dirs",
    "find_local",
    "get_entry",
    "list_datasets",
    "load_dataset",
    "load_file",
    "register_file",
    "resolve_file",
]
