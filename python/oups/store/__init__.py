"""Ordered Parquet datasets and collections of them."""

from oups.store.cmidx import check_cmidx, conform_cmidx
from oups.store.indexer import is_toplevel, sublevel, toplevel
from oups.store.ordered_parquet_dataset import (
    OrderedParquetDataset,
    ReadOnlyOrderedParquetDataset,
)
from oups.store.store import Store
from oups.store.write import write

__all__ = [
    "OrderedParquetDataset",
    "ReadOnlyOrderedParquetDataset",
    "Store",
    "check_cmidx",
    "conform_cmidx",
    "is_toplevel",
    "sublevel",
    "toplevel",
    "write",
]
