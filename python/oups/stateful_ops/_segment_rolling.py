"""The rolling windows of SegmentedAggregator: the window spec, and the runs
at every row and at query keys (window joins)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import numpy as np
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
from oups.stateful_ops._segment_bins import Unit, key_values, unit_factor
from oups.stateful_ops._segment_columns import STATE_VERSION, key_array, same_type, untyped

if TYPE_CHECKING:
    from oups.stateful_ops._segment_state import Inputs
    from oups.stateful_ops.segmented_aggregator import SegmentedAggregator


class RollingWindow:
    """``window=``: a trailing duration ("5min", a Timedelta) or a row count."""

    def __init__(self, window: Any, min_periods: int | None) -> None:
        if isinstance(window, (bool, np.bool_)):
            raise ParameterTypeError("'window' must be a duration or a row count")
        if isinstance(window, (int, np.integer)):
            if window < 1:
                raise InvalidParameterError(f"'window' must be at least 1 row, not {window}")
            self.rows: int | None = int(window)
            self.span = None
        else:
            try:
                self.span = pd.Timedelta(window)
            except (TypeError, ValueError):
                raise InvalidParameterError(
                    f"'window' must be a duration ('5min', a Timedelta) or a row count, not "
                    f"{window!r}"
                ) from None
            if self.span <= pd.Timedelta(0):
                raise InvalidParameterError(f"'window' must be positive, not {window!r}")
            self.rows = None
        if min_periods is None:
            # pandas' defaults: 1 for a duration, the window for a row count.
            min_periods = self.rows if self.rows is not None else 1
        if isinstance(min_periods, bool) or not isinstance(min_periods, (int, np.integer)):
            raise ParameterTypeError(f"'min_periods' must be an integer, not {min_periods!r}")
        if min_periods < 0:
            raise InvalidParameterError(f"'min_periods' must be 0 or more, not {min_periods}")
        self.min_periods = int(min_periods)

    def describe(self) -> str:
        return f"window={self.rows if self.rows is not None else str(self.span)!r}"

    def check(
        self,
        closed: str | None,
        label: str | None,
        empty: str,
        aggs: list[tuple[str, str, Any]],
        names: list[str],
    ) -> None:
        if closed not in (None, "right", "left", "both", "neither"):
            raise InvalidParameterError(
                f"'closed' of a rolling window is 'right', 'left', 'both' or 'neither', not "
                f"{closed!r}"
            )
        if label is not None or empty != "keep":
            raise InvalidParameterError(
                "'label' and 'empty' apply to bins, not to rolling windows (each row is "
                "labelled by its own key)"
            )
        for name, (_, kind, _) in zip(names, aggs, strict=False):
            if kind in ("first", "last", "nunique"):
                raise InvalidParameterError(
                    f"'aggs'[{name!r}]: {kind!r} is not available for rolling windows; use sum, "
                    "mean, count, min, max, var, std or wmean"
                )

    def spec(self, key_type: pa.DataType) -> tuple[str, int]:
        span = self.span
        if self.rows is not None or span is None:
            return ("rows", int(self.rows or 0))
        if not pa.types.is_timestamp(key_type):
            raise ParameterTypeError(
                f"'window'={str(self.span)!r} needs a timestamp 'on' column, not {key_type}; "
                "use a row count for other keys"
            )
        nanos = int(span.value)
        step, rest = divmod(nanos, unit_factor(cast(Unit, key_type.unit)))
        if rest or step == 0:
            raise InvalidParameterError(
                f"'window'={str(self.span)!r} is finer than the '{key_type.unit}' resolution "
                "of the 'on' column"
            )
        return ("span", step)


def _rows_args(
    agg: SegmentedAggregator, inputs: Inputs, window: RollingWindow, n_groups: int
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


def _named_types(agg: SegmentedAggregator, inputs: Inputs) -> dict[str, pa.DataType]:
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


def _family(t: pa.DataType) -> str:
    """The kind of values of a type, whatever their layout or width."""
    for name, test in (
        ("string", pa.types.is_string),
        ("string", pa.types.is_large_string),
        ("string", lambda t: t == pa.string_view()),
        ("integer", pa.types.is_integer),
        ("binary", pa.types.is_binary),
        ("binary", pa.types.is_large_binary),
    ):
        if test(t):
            return name
    return str(t)


def _query_columns(
    agg: SegmentedAggregator, at: Any, inputs: Inputs
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
    if values_of(by.type) != data_by and not untyped(data_by):
        if by.null_count == len(by):
            dictionary = pa.array([], type=data_by)
        else:
            # The same values in another layout (pandas 3 strings are
            # large_string, a categorical's categories string) are the same groups.
            try:
                if _family(values_of(by.type)) != _family(data_by):
                    raise pa.ArrowTypeError("another kind of values")
                dictionary = by.dictionary.cast(data_by)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                raise SchemaMismatchError(
                    f"'at'[{agg.by!r}] holds {values_of(by.type)} and the chunks' {agg.by!r} "
                    f"holds {data_by}; give the queries' groups the same type"
                ) from None
        by = pa.DictionaryArray.from_arrays(by.indices, dictionary)
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
