"""Uses of pandas internals, gathered here and tested on pandas 2 and 3."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa


def writable(df: pd.DataFrame) -> pd.DataFrame:
    """``df``, or a copy of it when some of its blocks are read-only views.

    pyarrow hands zero-copy columns to pandas as read-only arrays, so that
    ``df.loc[0, "v"] = 9`` would fail with "assignment destination is
    read-only". Frames returned by reads must be the user's to modify, as
    those of ``pd.read_parquet`` are.
    """
    try:
        blocks = df._mgr.blocks
    except AttributeError:  # pragma: no cover - a pandas without block managers
        blocks = None
    read_only = blocks is None or any(
        isinstance(v := getattr(b.values, "_ndarray", b.values), np.ndarray)
        and not v.flags.writeable
        for b in blocks
    )
    if not read_only:
        return df
    copied: pd.DataFrame = df.copy()
    return copied


def frame_from_blocks(
    parts: list[tuple[Any, Any]], names: list[Any], n: int, index: pd.Index | None = None
) -> pd.DataFrame:
    """A frame from 2-D blocks (or 1-D extension arrays) and their column placements,
    without consolidating; the index is a RangeIndex unless given."""
    index, columns = pd.RangeIndex(n) if index is None else index, pd.Index(names)
    try:
        from pandas.api.internals import (  # type: ignore[import-not-found,unused-ignore]
            create_dataframe_from_blocks,
        )
    except ImportError:  # pandas 2: the route pyarrow's to_pandas takes
        from pandas.core.internals import (  # type: ignore[import-not-found,unused-ignore]
            BlockManager,
        )
        from pandas.core.internals.api import (  # type: ignore[import-not-found,unused-ignore]
            make_block,
        )

        blocks = [make_block(values, placement=placement, ndim=2) for values, placement in parts]
        manager = BlockManager(blocks, [columns, index])
        frame: pd.DataFrame = pd.DataFrame._from_mgr(  # type: ignore[attr-defined]
            manager, axes=manager.axes
        )
        return frame
    built: pd.DataFrame = create_dataframe_from_blocks(parts, index=index, columns=columns)
    return built


def _zero_copy_values(raw: np.ndarray, field: pa.Field, dtype: Any) -> Any:
    """``raw`` (the column's bytes) as the values pandas would hold for ``field`` with
    ``dtype``, without copying; None when that takes a conversion."""
    t = field.type
    if pa.types.is_timestamp(t) or pa.types.is_duration(t):
        unit = t.unit
        if isinstance(dtype, pd.DatetimeTZDtype):
            if pa.types.is_timestamp(t) and t.tz is not None and dtype.unit == unit:
                values = raw.view(f"M8[{unit}]")
                return pd.arrays.DatetimeArray._simple_new(values, dtype=dtype)  # type: ignore[attr-defined]
            return None
        kind = "M" if pa.types.is_timestamp(t) else "m"
        if (
            isinstance(dtype, np.dtype)
            and dtype.kind == kind
            and np.datetime_data(dtype)[0] == unit
            and (kind == "m" or t.tz is None)
        ):
            return raw.view(dtype).reshape(1, -1)
        return None
    if (
        isinstance(dtype, np.dtype)
        and dtype.kind in "iuf"
        and (pa.types.is_integer(t) or pa.types.is_floating(t))
        and dtype == np.dtype(t.to_pandas_dtype())
    ):
        return raw.view(dtype).reshape(1, -1)
    return None


def frame_with_raw_columns(
    rest: pa.Table, schema: pa.Schema, raw: list[tuple[str, np.ndarray]]
) -> pd.DataFrame:
    """The frame pyarrow's ``to_pandas`` would make of a table of ``schema``, built
    from ``rest`` (the other columns) and fixed-width columns given as writable byte
    arrays, which become the frame's blocks without a copy.

    A column whose pandas dtype needs a conversion (a date, an extension dtype the
    pandas metadata asks for, an index column) goes back to pyarrow.
    """
    n = rest.num_rows
    target = schema.empty_table().to_pandas()
    labels = list(target.columns)
    index_columns = set()
    pandas_meta = (schema.metadata or {}).get(b"pandas")
    if pandas_meta is not None:
        index_columns = {c for c in json.loads(pandas_meta)["index_columns"] if isinstance(c, str)}
    flat = isinstance(target.columns, pd.Index) and not isinstance(target.columns, pd.MultiIndex)
    position = {label: i for i, label in enumerate(labels)} if flat else {}
    direct: list[tuple[Any, Any]] = []
    for name, data in raw:
        field = schema.field(name)
        values = None
        if name in position and name not in index_columns and len(position) == len(labels):
            values = _zero_copy_values(data, field, target[name].dtype)
        if values is None:
            array = pa.Array.from_buffers(field.type, n, [None, pa.py_buffer(data)])
            rest = rest.append_column(field, array)
        else:
            direct.append((values, np.array([position[name]])))
    rest_df: pd.DataFrame = rest.to_pandas(self_destruct=True)
    if not direct:
        ordered: pd.DataFrame = rest_df[labels] if list(rest_df.columns) != labels else rest_df
        return ordered
    parts = list(direct)
    for block in rest_df._mgr.blocks:
        names = rest_df.columns[block.mgr_locs.indexer]
        parts.append((block.values, np.array([position[c] for c in names])))
    index = rest_df.index if len(rest_df.index) == n else None
    return frame_from_blocks(parts, labels, n, index)


# Per schema: the empty frame pyarrow makes of it (labels, dtypes), and whether its
# frames can be built column by column (flat string labels, no stored index).
_TEMPLATES: dict[pa.Schema, tuple[pd.DataFrame, bool]] = {}


def _template(schema: pa.Schema) -> tuple[pd.DataFrame, bool]:
    found = _TEMPLATES.get(schema)
    if found is not None:
        return found
    target = schema.empty_table().to_pandas()
    meta = json.loads((schema.metadata or {}).get(b"pandas", b"{}") or b"{}")
    stored_index = any(isinstance(c, str) for c in meta.get("index_columns", []))
    simple = (
        not stored_index
        and not isinstance(target.columns, pd.MultiIndex)
        and list(target.columns) == schema.names
        and target.columns.is_unique
    )
    if len(_TEMPLATES) >= 256:
        _TEMPLATES.clear()
    _TEMPLATES[schema] = (target, simple)
    return target, simple


def _pooled(nbytes: int) -> np.ndarray:
    """Writable memory from pyarrow's pool: it reuses freed memory, where numpy's
    fresh allocations of this size fault in every page."""
    return np.frombuffer(pa.allocate_buffer(nbytes), dtype=np.uint8)


def _byte_width(t: pa.DataType) -> int:
    """Bytes per value of a fixed-width numeric or temporal type, else 0."""
    fixed = (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_timestamp(t)
        or pa.types.is_duration(t)
    )
    return t.bit_width // 8 if fixed and t.bit_width >= 8 else 0


def frame_from_arrow(data: pa.RecordBatch | pa.Table) -> pd.DataFrame:
    """``data.to_pandas()``, writable, with fixed-width columns without nulls copied
    straight into their own blocks: pyarrow's conversion costs about a millisecond a
    call in metadata handling, which dominates the many small chunks of a
    synchronised read."""
    target, simple = _template(data.schema)
    if not simple:
        return writable(data.to_pandas())
    n = data.num_rows
    parts: list[tuple[Any, Any]] = []
    rest: list[str] = []
    for i, field in enumerate(data.schema):
        column = data.column(i)
        if isinstance(column, pa.ChunkedArray):
            column = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
        width = _byte_width(field.type)
        buffers = column.buffers()
        values = None
        if column.null_count == 0 and width > 0 and len(buffers) == 2 and buffers[1] is not None:
            start = column.offset * width
            raw = _pooled(n * width)
            raw[:] = np.frombuffer(buffers[1], dtype=np.uint8)[start : start + n * width]
            values = _zero_copy_values(raw, field, target[field.name].dtype)
        if values is None:
            rest.append(field.name)
        else:
            parts.append((values, np.array([i])))
    if not parts:
        return writable(data.to_pandas())
    if rest:
        others = data.select(rest).to_pandas()
        for block in others._mgr.blocks:
            names = others.columns[block.mgr_locs.indexer]
            parts.append((block.values, np.array([data.schema.get_field_index(c) for c in names])))
    return writable(frame_from_blocks(parts, data.schema.names, n))
