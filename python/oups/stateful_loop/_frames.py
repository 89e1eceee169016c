"""Frame kinds accepted by ``StatefulLoop.buffer()``: recognition, memory size
and concatenation for pandas, pyarrow and polars frames."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

try:  # pandas' own helper for the deep size of object arrays
    from pandas._libs.lib import memory_usage_of_objects as _object_bytes
except ImportError:  # pragma: no cover - private API moved
    _object_bytes = None

PANDAS, ARROW, POLARS = "pandas", "pyarrow", "polars"


def frame_kind(value: Any) -> str | None:
    """Return the kind of frame ``value`` is, or None if it is not a frame."""
    if isinstance(value, pd.DataFrame):
        return PANDAS
    if isinstance(value, (pa.Table, pa.RecordBatch)):
        return ARROW
    # Checked by name so that polars stays an optional dependency.
    cls = type(value)
    if cls.__name__ == "DataFrame" and cls.__module__.startswith("polars"):
        return POLARS
    return None


def _pandas_bytes(df: pd.DataFrame) -> int:
    """``df.memory_usage(deep=True).sum()`` without building a Series.

    pandas' own call costs hundreds of microseconds on a one-row frame, which
    would dominate a loop that buffers small chunks. This walks the blocks and
    counts exactly what pandas counts (values, deep object sizes, the index).
    """
    try:
        blocks = df._mgr.blocks
    except AttributeError:  # pragma: no cover - pandas internals changed
        return int(df.memory_usage(deep=True).sum())
    total = df.index.memory_usage(deep=True)
    for block in blocks:
        values = block.values
        if isinstance(values, np.ndarray):
            total += values.nbytes
            if values.dtype == object:
                if _object_bytes is None:  # pragma: no cover
                    return int(df.memory_usage(deep=True).sum())
                total += _object_bytes(values.ravel("K"))
        else:
            usage = getattr(values, "memory_usage", None)
            total += usage(deep=True) if usage is not None else values.nbytes
    return int(total)


def frame_bytes(kind: str, value: Any) -> int:
    """Memory held by a frame: deep for pandas, buffer sizes for Arrow and polars."""
    if kind == PANDAS:
        return _pandas_bytes(value)
    if kind == ARROW:
        return int(value.nbytes)
    return int(value.estimated_size())


def _concat_arrow(frames: list) -> pa.Table:
    tables = [pa.Table.from_batches([f]) if isinstance(f, pa.RecordBatch) else f for f in frames]
    return pa.concat_tables(tables)


def _concat_polars(frames: list) -> Any:
    import polars as pl

    return pl.concat(frames)


DEFAULT_CONCAT: dict[str, Callable[[list], Any]] = {
    PANDAS: pd.concat,
    ARROW: _concat_arrow,
    POLARS: _concat_polars,
}
