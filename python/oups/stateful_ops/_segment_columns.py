"""What SegmentedAggregator checks and converts before the engine: the
aggregation specs, the key and value columns as the engine reads them, and
the column types kept in the state."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from oups.exceptions import InvalidParameterError, ParameterTypeError, UnsortedError

NO_GROUP = np.uint32(0xFFFFFFFF)
# The layout of the states of SegmentedAggregator, checked on the way back.
STATE_VERSION = 1
# The engine's part of a state, per kind of aggregator, in the engine's order.
ENGINE_KEYS = {
    "bins": ("rows_seen", "last_key", "cur_bin", "groups", "slots"),
    "rolling": ("last_key", "lanes", "rows"),
    "rolling_at": ("last_key", "lanes", "rows", "queries", "last_query"),
}
PICKS = ("first", "last", "min", "max")
KINDS = (*PICKS, "sum", "mean", "count", "var", "std", "ohlc", "wmean", "vwap", "nunique")
OHLC = (("open", "first"), ("high", "max"), ("low", "min"), ("close", "last"))


def agg_list(aggs: Mapping[Any, Any]) -> tuple[list[str], list[tuple[str, str, Any]]]:
    """Output names and engine aggregations ``(column, kind, extra)``."""
    if not isinstance(aggs, Mapping) or not aggs:
        raise InvalidParameterError(
            "'aggs' must be a non-empty dict {output name: (column, aggregation)}, for example "
            "{'volume': ('qty', 'sum')}"
        )
    names: list[str] = []
    out: list[tuple[str, str, Any]] = []
    for name, spec in aggs.items():
        if not isinstance(spec, tuple) or len(spec) not in (2, 3) or not isinstance(spec[0], str):
            raise InvalidParameterError(
                f"'aggs'[{name!r}] must be a tuple (column, aggregation) or (column, "
                f"aggregation, argument), not {spec!r}"
            )
        column, kind = spec[0], spec[1]
        extra = spec[2] if len(spec) == 3 else None
        if kind not in KINDS:
            raise InvalidParameterError(
                f"'aggs'[{name!r}]: unknown aggregation {kind!r}; use one of {', '.join(KINDS)}"
            )
        if kind in ("wmean", "vwap"):
            if not isinstance(extra, str):
                raise InvalidParameterError(
                    f"'aggs'[{name!r}]: {kind!r} needs the weight column as third item, for "
                    f"example ('price', {kind!r}, 'qty')"
                )
            kind = "wmean"
        elif kind in ("var", "std"):
            extra = 1 if extra is None else extra
            if isinstance(extra, bool) or not isinstance(extra, int) or extra < 0:
                raise InvalidParameterError(
                    f"'aggs'[{name!r}]: the third item of {kind!r} is ddof, a non-negative "
                    f"integer, not {extra!r}"
                )
        elif extra is not None:
            raise InvalidParameterError(f"'aggs'[{name!r}]: {kind!r} takes no third item")
        if kind == "ohlc":
            if isinstance(name, tuple) and len(name) == 4 and all(isinstance(n, str) for n in name):
                sub = list(name)
            elif isinstance(name, str):
                sub = [f"{name}_{part}" for part, _ in OHLC]
            else:
                raise InvalidParameterError(
                    f"'aggs': the name of an 'ohlc' output is a string (a prefix) or four "
                    f"strings, not {name!r}"
                )
            names += sub
            out += [(column, pick, None) for _, pick in OHLC]
            continue
        if not isinstance(name, str):
            raise InvalidParameterError(f"'aggs': output names are strings, not {name!r}")
        names.append(name)
        out.append((column, kind, extra))
    if len(set(names)) != len(names):
        raise InvalidParameterError(f"'aggs': output names repeat: {names}")
    return names, out


def value_array(array: pa.Array, name: str, kinds: set[str]) -> tuple[pa.Array, pa.DataType]:
    """A value column as int64 or float64 (what the engine reads), and its type."""
    t = array.type
    if pa.types.is_dictionary(t):
        raise ParameterTypeError(f"column {name!r} is categorical; aggregations need numbers")
    if t == pa.float64() or t == pa.int64():
        return array, t
    if pa.types.is_floating(t):
        return array.cast(pa.float64()), t
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        try:
            return array.cast(pa.int64()), t
        except pa.ArrowInvalid:
            raise ParameterTypeError(
                f"column {name!r} holds unsigned values beyond the int64 range"
            ) from None
    if pa.types.is_timestamp(t) or pa.types.is_duration(t):
        allowed = {*PICKS, "count", "nunique"}
        if not kinds <= allowed:
            raise ParameterTypeError(
                f"column {name!r} is {t}: only {', '.join(sorted(allowed))} apply to it, not "
                f"{', '.join(sorted(kinds - allowed))}"
            )
        return array.view(pa.int64()), t
    raise ParameterTypeError(
        f"column {name!r} has type {t}; aggregations need numeric, boolean or temporal columns"
    )


def key_array(array: pa.Array, on: str) -> pa.Array:
    t = array.type
    if pa.types.is_timestamp(t):
        keys = array.view(pa.int64())
    elif t == pa.int64():
        keys = array
    elif pa.types.is_integer(t):
        keys = array.cast(pa.int64())
    else:
        raise ParameterTypeError(
            f"the 'on' column {on!r} has type {t}; it must be a timestamp or an integer column"
        )
    if len(keys) and keys.null_count == 0 and keys[0].as_py() == np.iinfo(np.int64).min:
        raise UnsortedError(f"the 'on' column {on!r} holds NaT; drop those rows first")
    return keys


def untyped(t: pa.DataType) -> bool:
    return bool(t == pa.null() or (pa.types.is_dictionary(t) and t.value_type == pa.null()))


def same_type(was: pa.DataType, now: pa.DataType) -> bool:
    """Column types that aggregate alike; categoricals may change their
    categories (and the width of their codes) between chunks."""
    if pa.types.is_dictionary(was) and pa.types.is_dictionary(now):
        return bool(was.value_type == now.value_type)
    return bool(was == now)


def batch(table: pa.Table | pa.RecordBatch) -> pa.RecordBatch:
    if isinstance(table, pa.RecordBatch):
        return table
    batches = table.combine_chunks().to_batches()
    if len(batches) == 1:
        return batches[0]
    return pa.RecordBatch.from_arrays(
        [pa.array([], type=f.type) for f in table.schema], schema=table.schema
    )


def prepend(held: pa.ChunkedArray, array: pa.Array) -> pa.Array:
    """The rows that waited in the state (streamed edges) before a chunk's."""
    if untyped(held.type) and not untyped(array.type):
        held = pa.chunked_array([pa.nulls(len(held), array.type)])
    elif untyped(array.type):
        array = pa.nulls(len(array), held.type)
    parts = [*held.chunks, array]
    if pa.types.is_dictionary(array.type):
        # The codes of each part index its own dictionary: unify them first.
        common = pa.dictionary(pa.int32(), array.type.value_type)
        unified = pa.chunked_array([p.cast(common) for p in parts], type=common)
        return unified.unify_dictionaries().combine_chunks()
    return pa.concat_arrays(parts)
