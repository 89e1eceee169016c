"""Ordered Parquet datasets and collections of them."""

from oups.store.cmidx import check_cmidx, conform_cmidx
from oups.store.ordered_parquet_dataset import (
    OrderedParquetDataset,
    ReadOnlyOrderedParquetDataset,
)
from oups.store.write import write

__all__ = [
    "OrderedParquetDataset",
    "ReadOnlyOrderedParquetDataset",
    "check_cmidx",
    "conform_cmidx",
    "write",
]
