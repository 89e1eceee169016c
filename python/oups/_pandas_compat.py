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


def column_values(df: pd.DataFrame, name: Any) -> Any:
    """The values of column ``name`` (a numpy or pandas array), without the
    Series that ``df[name]`` builds: 10 to 30 us a column on each new frame,
    which a stream of chunks pays for every column of every chunk."""
    loc = df.columns.get_loc(name)
    manager = getattr(df, "_mgr", None)
    if isinstance(loc, int) and hasattr(manager, "iget_values"):
        return manager.iget_values(loc)  # type: ignore[union-attr]
    return df[name].array  # pragma: no cover - repeated names, or no block manager


def _resolve_block_builder() -> Any:
    """The fastest public-enough way of this pandas to make a frame from blocks.

    Resolved once: a failed import is not cached by Python, and retrying it on every
    chunk of a synchronised read cost about 80 µs a frame."""
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

        def build(parts: list[tuple[Any, Any]], index: pd.Index, columns: pd.Index) -> Any:
            blocks = [make_block(values, placement=where, ndim=2) for values, where in parts]
            manager = BlockManager(blocks, [columns, index])
            return pd.DataFrame._from_mgr(manager, axes=manager.axes)  # type: ignore[attr-defined]

        return build

    def build_public(parts: list[tuple[Any, Any]], index: pd.Index, columns: pd.Index) -> Any:
        return create_dataframe_from_blocks(parts, index=index, columns=columns)

    return build_public


_BUILD_FROM_BLOCKS = _resolve_block_builder()


def frame_from_blocks(
    parts: list[tuple[Any, Any]], names: Any, n: int, index: pd.Index | None = None
) -> pd.DataFrame:
    """A frame from 2-D blocks (or 1-D extension arrays) and their column placements,
    without consolidating; the index is a RangeIndex unless given. ``names`` may be
    a ready ``pd.Index``, shared between frames as pandas shares immutable indexes."""
    columns = names if isinstance(names, pd.Index) else pd.Index(names)
    frame: pd.DataFrame = _BUILD_FROM_BLOCKS(
        parts, pd.RangeIndex(n) if index is None else index, columns
    )
    return frame


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
            # Wrapped here: pandas' own wrapping of a datetime64 block goes
            # through its sequence parser, about 60 µs a call.
            wrapper: Any = pd.arrays.DatetimeArray if kind == "M" else pd.arrays.TimedeltaArray
            return wrapper._simple_new(raw.view(dtype).reshape(1, -1), dtype=dtype)
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
    rest: pa.Table | pa.RecordBatch, schema: pa.Schema, raw: list[tuple[str, np.ndarray]]
) -> pd.DataFrame:
    """The frame pyarrow's ``to_pandas`` would make of a table of ``schema``, built
    from ``rest`` (the other columns) and fixed-width columns given as writable byte
    arrays, which become the frame's blocks without a copy.

    A column whose pandas dtype needs a conversion (a date, an extension dtype the
    pandas metadata asks for, an index column) goes back to pyarrow.
    """
    plan = _plan(schema)
    if not plan.simple:
        return _frame_with_raw_columns_slow(rest, schema, raw)
    n = rest.num_rows
    parts: list[tuple[Any, Any]] = []
    for name, data in raw:
        i = schema.get_field_index(name)
        how = plan.fields[i]
        values = None if how is None else _zero_copy_values(data, schema.field(i), how[1])
        if values is None:
            field = schema.field(i)
            array = pa.Array.from_buffers(field.type, n, [None, pa.py_buffer(data)])
            rest = rest.append_column(field, array)
        else:
            parts.append((values, np.array([i])))
    if rest.num_columns:
        converted = frame_from_arrow(rest)
        where = [schema.get_field_index(c) for c in rest.schema.names]
        for block in converted._mgr.blocks:
            parts.append((block.values, np.array([where[j] for j in block.mgr_locs.as_array])))
    return frame_from_blocks(parts, plan.columns.copy(), n)


def _frame_with_raw_columns_slow(
    rest: pa.Table | pa.RecordBatch, schema: pa.Schema, raw: list[tuple[str, np.ndarray]]
) -> pd.DataFrame:
    """``frame_with_raw_columns`` for a schema with a stored index or labels that
    are not plain column names."""
    if isinstance(rest, pa.RecordBatch):
        rest = pa.Table.from_batches([rest])
    n = rest.num_rows
    target = _plan(schema).target
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


class _Plan:
    """How frames of one schema are built: the labels pandas gives them and, per
    column, the dtype its raw bytes become when it needs no conversion."""

    __slots__ = ("target", "columns", "simple", "fields")

    def __init__(self, schema: pa.Schema) -> None:
        target = schema.empty_table().to_pandas()
        meta = json.loads((schema.metadata or {}).get(b"pandas", b"{}") or b"{}")
        stored_index = any(isinstance(c, str) for c in meta.get("index_columns", []))
        self.simple = (
            not stored_index
            and not isinstance(target.columns, pd.MultiIndex)
            and list(target.columns) == schema.names
            and target.columns.is_unique
        )
        self.target = target
        self.columns = target.columns
        # Per field: (byte width, dtype, consolidated) or None for pyarrow's path.
        # Columns of one numpy dtype share one 2-D block, as pyarrow's to_pandas
        # lays them out; tz-aware timestamps are one extension array each.
        self.fields: list[tuple[int, Any, bool] | None] = []
        for field in schema:
            width = _byte_width(field.type)
            dtype = target[field.name].dtype if self.simple else None
            probe = np.zeros(8, dtype=np.uint8)
            values = _zero_copy_values(probe, field, dtype) if width else None
            if values is None:
                self.fields.append(None)
            else:
                self.fields.append((width, dtype, isinstance(dtype, np.dtype)))


# Plans by schema. Hashing a pyarrow schema costs about 25 µs, comparing two
# a microsecond: the chunks of a read share a few schemas, found by comparison.
_PLANS: dict[pa.Schema, _Plan] = {}
_RECENT: list[tuple[pa.Schema, _Plan]] = []


def _plan(schema: pa.Schema) -> _Plan:
    for known, plan in _RECENT:
        if known is schema or known.equals(schema, check_metadata=True):
            return plan
    found = _PLANS.get(schema)
    if found is None:
        if len(_PLANS) >= 256:
            _PLANS.clear()
        found = _PLANS[schema] = _Plan(schema)
    _RECENT.insert(0, (schema, found))
    del _RECENT[16:]
    return found


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


def _value_bytes(column: pa.Array, width: int, n: int) -> np.ndarray | None:
    """The values of a fixed-width column without nulls as n * width bytes, or None."""
    if column.null_count:
        return None
    buffers = column.buffers()
    if len(buffers) != 2 or buffers[1] is None:
        return None
    return np.frombuffer(buffers[1], dtype=np.uint8, count=n * width, offset=column.offset * width)


def frame_from_arrow(data: pa.RecordBatch | pa.Table) -> pd.DataFrame:
    """``data.to_pandas()``, writable, with fixed-width columns without nulls copied
    straight into consolidated blocks: pyarrow's conversion costs about a
    millisecond a call in metadata handling, which dominates the many small chunks
    of a synchronised read."""
    plan = _plan(data.schema)
    if not plan.simple:
        return writable(data.to_pandas())
    n = data.num_rows
    groups: dict[Any, list[tuple[int, np.ndarray]]] = {}
    parts: list[tuple[Any, Any]] = []
    rest: list[int] = []
    for i, how in enumerate(plan.fields):
        raw = None
        if how is not None:
            column = data.column(i)
            if isinstance(column, pa.ChunkedArray):
                column = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
            raw = _value_bytes(column, how[0], n)
        if raw is None or how is None:
            rest.append(i)
        elif how[2]:
            groups.setdefault(how[1], []).append((i, raw))
        else:
            copy = _pooled(raw.size)
            copy[:] = raw
            parts.append((_zero_copy_values(copy, data.schema.field(i), how[1]), np.array([i])))
    for dtype, members in groups.items():
        block = _pooled(len(members) * members[0][1].size).reshape(len(members), -1)
        for row, (_, raw) in enumerate(members):
            block[row] = raw
        parts.append((block.view(dtype), np.array([i for i, _ in members])))
    if not parts:
        return writable(data.to_pandas())
    if rest:
        others = data.select(rest).to_pandas()
        for block in others._mgr.blocks:
            parts.append((block.values, np.array([rest[j] for j in block.mgr_locs.as_array])))
        return writable(frame_from_blocks(parts, plan.columns.copy(), n))
    return frame_from_blocks(parts, plan.columns.copy(), n)
