"""The rolling windows of SegmentedAggregator: at every row, and at query keys
(window joins), with their states."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from oups._oups import segment_join, segment_roll
from oups.exceptions import (
    ColumnNotFoundError,
    InvalidParameterError,
    ParameterTypeError,
    SchemaMismatchError,
)
from oups.stateful_ops._arrow_io import frame_column, frame_columns, frame_kind, to_frame
from oups.stateful_ops._segment_bins import RollingWindow, key_values
from oups.stateful_ops._segment_columns import STATE_VERSION, key_array, same_type, untyped

if TYPE_CHECKING:
    from oups.stateful_ops.segmented_aggregator import SegmentedAggregator, _Inputs


def _rows_args(
    agg: SegmentedAggregator, inputs: _Inputs, window: RollingWindow, n_groups: int
) -> tuple[tuple[str, int], str, int, Any, pa.Array, Any, int, list[pa.Array]]:
    """The engine's arguments that describe the window and the chunk's rows."""
    return (
        window.spec(inputs.types[agg.on]),
        agg.closed,
        window.min_periods,
        agg._engine_aggs,
        inputs.keys,
        inputs.group_codes,
        n_groups,
        [v for v, _ in inputs.values],
    )


def _named_types(agg: SegmentedAggregator, inputs: _Inputs) -> dict[str, pa.DataType]:
    """The types of the output's ``by`` and ``on`` columns; the rest are floats."""
    return {c: inputs.types[c] for c in (agg.by, agg.on) if c is not None}


def run_rolling(
    agg: SegmentedAggregator, df: Any, kind: str, final: bool, window: RollingWindow
) -> Any:
    """Every row's window, emitted with the row; nothing waits for a flush."""
    inputs = agg._inputs(df, kind, "rolling")
    if inputs is None or len(inputs.keys) == 0:
        if final:
            agg._keep(None)
        return agg._empty_output(kind, None if inputs is None else _named_types(agg, inputs))
    n_groups = len(inputs.group_values) if inputs.group_values is not None else 1
    out, handed, live = segment_roll(
        *_rows_args(agg, inputs, window, n_groups), agg._engine_state(), kind == "pandas"
    )
    rows = out.column(0)
    every = len(rows) == len(inputs.keys)
    columns: dict[str, Any] = {}
    for name in ([agg.by] if agg.by else []) + [agg.on]:
        array = inputs.arrays[name]
        columns[name] = array if every else array.take(rows)
    cached = agg._pandas_categories
    if kind == "pandas" and agg.by is not None and cached is not None:
        by = columns[agg.by]
        if not by.null_count and by.dictionary.equals(cached[1]):
            # A pandas categorical in, the same categorical out.
            codes = by.indices.to_numpy()
            columns[agg.by] = pd.Categorical.from_codes(codes, dtype=cached[0], validate=False)
    for j, name in enumerate(agg._names):
        columns[name] = out.column(str(j)) if handed[j] is None else handed[j]
    meta = {
        "version": STATE_VERSION,
        "kind": "rolling",
        "groups_values": inputs.group_values,
        "types": inputs.types_table,
    }
    agg._keep(None if final else meta, live)
    return to_frame(columns, kind, agg._index, agg._engine_floats)


def _query_columns(
    agg: SegmentedAggregator, at: Any, inputs: _Inputs
) -> tuple[pa.Array, Any, pa.Table | None]:
    """The query keys as int64, their group codes (or None without ``by``),
    and the group values, with the groups that only queries name added."""
    on_type = inputs.types[agg.on]
    if at is None:
        at = pa.table({agg.on: pa.array([], type=on_type)})
        if agg.by is not None:
            at = at.append_column(agg.by, pa.array([], type=pa.string()))
    try:
        at_kind = frame_kind(at)
    except ParameterTypeError:
        if agg.by is not None:
            raise ParameterTypeError(
                f"'at' must be a frame with the columns {agg.on!r} and {agg.by!r} (the "
                f"queries' keys and groups), not {type(at).__name__!r}"
            ) from None
        keys = key_values(at, on_type, "at", strict=False)
        return pa.array(keys, type=pa.int64()), None, inputs.group_values
    present = frame_columns(at, at_kind)
    wanted = [agg.on, *([agg.by] if agg.by else [])]
    missing = [c for c in wanted if c not in present]
    if missing:
        raise ColumnNotFoundError(
            f"'at' lacks the column(s) {missing}: the queries need {wanted}; it has {present}"
        )
    on = frame_column(at, at_kind, agg.on)
    if not same_type(on_type, on.type):
        raise SchemaMismatchError(
            f"'at'[{agg.on!r}] is {on.type} and the chunks' {agg.on!r} is {on_type}; cast the "
            "queries' keys to the same type"
        )
    keys = key_array(on, agg.on)
    if agg.by is None:
        return keys, None, inputs.group_values
    by = agg._by_array(at, at_kind, agg.by)
    by = by if pa.types.is_dictionary(by.type) else by.dictionary_encode()

    def values_of(t: pa.DataType) -> pa.DataType:
        return t.value_type if pa.types.is_dictionary(t) else t

    data_by = values_of(inputs.types[agg.by])
    typed = by.null_count < len(by) and not untyped(data_by)
    if typed and values_of(by.type) != data_by:
        raise SchemaMismatchError(
            f"'at'[{agg.by!r}] holds {values_of(by.type)} and the chunks' {agg.by!r} holds "
            f"{data_by}; give the queries' groups the same type"
        )
    if by.null_count == len(by) and values_of(by.type) != data_by:
        by = pa.DictionaryArray.from_arrays(by.indices, pa.array([], type=data_by))
    codes, group_values = agg._group_codes(by, inputs.group_values)
    return keys, codes, group_values


def run_join(
    agg: SegmentedAggregator, df: Any, kind: str, at: Any, final: bool, window: RollingWindow
) -> Any:
    """The windows at the queries that the rows seen so far complete."""
    state = agg._saved()
    if state is not None and state.get("kind") == "rolling":
        raise InvalidParameterError(
            "this aggregator has rolled at every row so far; windows at query keys ('at') "
            "need a new aggregator, or state=None"
        )
    inputs = agg._inputs(df, kind, "rolling_at")
    if inputs is None:
        return agg._empty_output(kind)
    query_keys, query_codes, group_values = _query_columns(agg, at, inputs)
    n_groups = len(group_values) if group_values is not None else 1
    out, handed, live = segment_join(
        *_rows_args(agg, inputs, window, n_groups),
        query_keys,
        query_codes,
        agg._engine_state(),
        final,
        kind == "pandas",
    )
    columns = agg._output(
        kind, out, inputs.types, inputs.values, group_values, handed, typed_picks=False
    )
    meta = {
        "version": STATE_VERSION,
        "kind": "rolling_at",
        "groups_values": group_values,
        "types": inputs.types_table,
    }
    agg._keep(None if final else meta, live)
    return to_frame(columns, kind, agg._index, agg._engine_floats)
