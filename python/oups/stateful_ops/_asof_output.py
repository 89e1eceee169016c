"""The AsofMerger output: numpy blocks the engine fills, Arrow columns
converted to the frames' dtypes, and the frame assembled from both without
consolidating (copying) the blocks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from oups._pandas_compat import frame_from_blocks


def with_missing(dtype: Any) -> Any:
    """The dtype pandas gives a column of ``dtype`` with missing values."""
    if isinstance(dtype, np.dtype) and dtype.kind in "iu":
        return np.dtype("float64")
    if isinstance(dtype, np.dtype) and dtype.kind == "b":
        return np.dtype("object")
    return dtype


def output_blocks(
    dtypes: list[Any],
    raw: list[Any],
    chunks: list[Any],
    carry: list[Any],
    n_prev: list[int],
    n: int,
) -> tuple[dict[Any, tuple[np.ndarray[Any, Any], list[int]]], list[Any]]:
    """Numpy blocks (one 2-D array per dtype) that the engine fills directly,
    and the per-column byte views it writes to (None: built from Arrow).

    Only numpy numeric and naive temporal columns without missing values
    qualify; the others keep their exact dtype through Arrow.
    """
    if n == 0:
        return {}, []
    # Per frame and column (as ordered in the output of one join position):
    # may it go to a block? Only if no source array has missing values.
    per_position = []
    for i, tables in enumerate(zip(*chunks, strict=True)):
        windows = [carry_g[i] for carry_g in carry]
        for c in range(tables[0].num_columns):
            ok = all(t.column(c).null_count == 0 for t in (*tables, *windows))
            per_position.extend([ok] * (n_prev[i] + 1))
    flags = per_position * (len(dtypes) // len(per_position)) if per_position else []
    rows: dict[np.dtype, list[int]] = {}
    for col, (dtype, source, ok) in enumerate(zip(dtypes, raw, flags, strict=True)):
        # The engine writes the source values' bytes: the dtypes must agree.
        if ok and dtype == source and isinstance(dtype, np.dtype) and dtype.kind in "iufmM":
            rows.setdefault(dtype, []).append(col)
    blocks = {dtype: (np.empty((len(cols), n), dtype=dtype), cols) for dtype, cols in rows.items()}
    slots: list[Any] = [None] * len(dtypes)
    for values, cols in blocks.values():
        for row, col in enumerate(cols):
            slots[col] = values[row].view(np.uint8)
    return blocks, slots


def assemble(
    main: Any, names: list[str], dtypes: list[Any], columns: list[Any], blocks: dict[Any, Any]
) -> pd.DataFrame:
    """The output frame, from the engine's blocks and Arrow columns, without
    consolidating (copying) the blocks."""
    n = len(main)
    on = main.array if isinstance(main, (pd.Series, pd.Index)) else main
    parts: list[tuple[Any, Any]] = [
        (on.reshape(1, -1) if isinstance(on, np.ndarray) else on, np.array([0]))
    ]
    for values, cols in blocks.values():
        parts.append((values, np.asarray(cols, dtype=np.intp) + 1))
    for col, (array, dtype) in enumerate(zip(columns, dtypes, strict=True)):
        if array is None:
            continue
        values = _array_to_pandas(array, dtype)
        if isinstance(values, pd.Series):
            values = values.to_numpy()
        if isinstance(values, np.ndarray):
            values = values.reshape(1, -1)
        parts.append((values, np.array([col + 1])))
    try:
        return frame_from_blocks(parts, names, n)
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - pandas internals
        data: dict[int, Any] = {}
        for values, placement in parts:
            for row, col in enumerate(placement):
                data[col] = values[row] if isinstance(values, np.ndarray) else values
        frame: pd.DataFrame = pd.DataFrame({names[c]: data[c] for c in range(len(names))})
        return frame


def _array_to_pandas(array: pa.Array, dtype: Any) -> Any:
    """An output column with the dtype of the frame column it comes from."""
    if isinstance(dtype, np.dtype):
        if dtype.kind in "iufbmM" and array.null_count == 0:
            return array.to_numpy(zero_copy_only=False).astype(dtype, copy=False)
        values = array.to_pandas().to_numpy(dtype=dtype)
        # A Series keeps object dtype; pandas 3 would infer `str` from a bare array.
        return pd.Series(values, dtype=dtype) if dtype.kind == "O" else values
    mapper = (lambda _: dtype) if hasattr(dtype, "__from_arrow__") else None
    series = array.to_pandas(types_mapper=mapper)
    return (series if series.dtype == dtype else series.astype(dtype)).array
