"""Columns of pandas, pyarrow and polars frames as Arrow arrays, without
copies where the memory can be shared, and results back in the caller's
frame type."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from oups._pandas_compat import column_values, frame_from_blocks
from oups.exceptions import ParameterTypeError


def column_to_arrow(column: Any) -> pa.Array:
    """A column (a Series, or its values) as Arrow; numpy numeric and naive
    temporal columns without a copy."""
    values = column.array if isinstance(column, pd.Series) else column
    raw = values if isinstance(values, np.ndarray) else getattr(values, "_ndarray", None)
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iufmM" and raw is not None:
        return numpy_to_arrow(np.asarray(raw))
    return pa.Array.from_pandas(values)


def numpy_to_arrow(values: np.ndarray) -> pa.Array:
    """Zero-copy Arrow view of a numpy array. Temporal values are viewed as
    int64 first: pyarrow would scan them for NaT (5 ms per million); NaT stays
    the int64 minimum, which the engine rejects in keys and passes through as
    NaT in values."""
    if values.dtype.kind in "mM":
        return pa.array(values.view(np.int64)).view(pa.from_numpy_dtype(values.dtype))
    return pa.array(values)


def frame_kind(df: Any) -> str:
    """'pandas', 'arrow' or 'polars'."""
    if isinstance(df, pd.DataFrame):
        return "pandas"
    if isinstance(df, (pa.Table, pa.RecordBatch)):
        return "arrow"
    cls = type(df)
    if cls.__name__ == "DataFrame" and cls.__module__.startswith("polars"):
        return "polars"
    raise ParameterTypeError(
        f"'df': a chunk must be a pandas DataFrame, a pyarrow Table or RecordBatch, or a polars "
        f"DataFrame, not {cls.__name__!r}"
    )


def frame_columns(df: Any, kind: str) -> list[str]:
    if kind == "pandas":
        return [c for c in df.columns]
    if kind == "arrow":
        return list(df.schema.names)
    return list(df.columns)


def frame_column(df: Any, kind: str, name: str) -> pa.Array:
    """One column as a single Arrow array."""
    if kind == "pandas":
        return column_to_arrow(column_values(df, name))
    column = df.column(name) if kind == "arrow" else df[name].to_arrow()
    if isinstance(column, pa.ChunkedArray):
        return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    return column


# Results this long skip the copy into one block per dtype (rolling windows
# give a row per input row).
_STACK_ROWS = 65_536


def _pandas_part(array: Any, nan_nulls: bool) -> Any:
    """One result column for pandas: a numpy array (numbers, with missing values
    as NaN as pyarrow converts them; naive timestamps) or a pandas extension
    array (zoned timestamps, categoricals, the rest). ``nan_nulls``: a float64
    column whose missing values already hold NaN, whose buffer is taken as is."""
    if not isinstance(array, pa.Array):
        return array  # already pandas
    t = array.type
    if nan_nulls and t == pa.float64() and array.null_count:
        return np.frombuffer(array.buffers()[1], np.float64, len(array), array.offset * 8)
    if pa.types.is_floating(t) or pa.types.is_integer(t):
        return array.to_numpy(zero_copy_only=False)
    if pa.types.is_timestamp(t) and not array.null_count:
        values = np.array(array.view(pa.int64()).to_numpy()).view(f"M8[{t.unit}]")
        if t.tz is None:
            return values
        dtype = pd.DatetimeTZDtype(t.unit, t.tz)
        return pd.arrays.DatetimeArray._simple_new(values, dtype=dtype)  # type: ignore[attr-defined]
    return array.to_pandas().array


def to_frame(
    columns: dict[str, Any], kind: str, index: pd.Index, nan_nulls: frozenset[str] = frozenset()
) -> Any:
    """``columns`` (Arrow arrays, or pandas arrays for a pandas result) in the
    caller's frame type, writable; ``index`` holds their names, ``nan_nulls``
    those of float64 columns whose missing values hold NaN. For pandas the
    blocks are built directly: pyarrow's conversion, or the DataFrame
    constructor, spend most of a millisecond on metadata and checks, which a
    stream of small results would pay every call."""
    if kind != "pandas":
        table = pa.table(columns)
        if kind == "polars":
            import polars as pl

            return pl.from_arrow(table)
        return table
    same: dict[np.dtype, list[tuple[int, np.ndarray]]] = {}
    parts: list[tuple[Any, Any]] = []
    n = 0
    for i, (name, column) in enumerate(columns.items()):
        part = _pandas_part(column, name in nan_nulls)
        n = len(part)
        if isinstance(part, np.ndarray) and part.dtype.kind in "iufM":
            same.setdefault(part.dtype, []).append((i, part))
        elif isinstance(part, np.ndarray):
            parts.append((part.reshape(1, -1), np.array([i])))
        else:
            parts.append((part, np.array([i])))
    for dtype, members in same.items():
        if n < _STACK_ROWS:
            # One block per dtype, as pandas builds them; the copy also makes
            # Arrow's read-only views writable.
            block = np.empty((len(members), n), dtype=dtype)
            for row, (_, values) in enumerate(members):
                block[row] = values
            blocks = [(block, [i for i, _ in members])]
        else:
            # Long results: a block per column, copied only where read-only.
            blocks = [
                ((v if v.flags.writeable else v.copy()).reshape(1, -1), [i]) for i, v in members
            ]
        for block, where in blocks:
            if dtype.kind == "M":
                block = pd.arrays.DatetimeArray._simple_new(block, dtype=dtype)  # type: ignore[attr-defined]
            parts.append((block, np.array(where)))
    return frame_from_blocks(parts, index, n)
