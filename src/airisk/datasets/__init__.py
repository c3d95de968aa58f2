"""Named prompt sets and user files, loaded into :class:`airisk.types.Item` lists."""

from airisk.datasets.catalog import CatalogEntry, get_entry, list_datasets, resolve_file

__all__ = ["CatalogEntry", "get_entry", "list_datasets", "resolve_file"]
