"""oups: ordered, updatable Parquet datasets with a Rust core."""

from oups import exceptions
from oups._oups import DEBUG_BUILD as _DEBUG_BUILD
from oups._oups import __version__
from oups.stateful_loop import StatefulLoop
from oups.stateful_ops import AsofMerger, SegmentedAggregator, Threshold
from oups.store import (
    OrderedParquetDataset,
    ReadOnlyOrderedParquetDataset,
    Store,
    check_cmidx,
    conform_cmidx,
    is_toplevel,
    sublevel,
    toplevel,
    write,
)

if _DEBUG_BUILD:
    import warnings

    warnings.warn(
        "oups was built in debug mode and will be slow; build it with "
        "'maturin develop --release' or install a wheel.",
        RuntimeWarning,
        stacklevel=2,
    )

__all__ = [
    "AsofMerger",
    "OrderedParquetDataset",
    "ReadOnlyOrderedParquetDataset",
    "SegmentedAggregator",
    "StatefulLoop",
    "Store",
    "Threshold",
    "__version__",
    "check_cmidx",
    "conform_cmidx",
    "exceptions",
    "is_toplevel",
    "sublevel",
    "toplevel",
    "write",
]
