"""AsofMerger checks that span calls: keys never go back in time, and chunks
of one frame may hold other categories than earlier ones.

The last key of ``main`` and of every frame is kept in the schema metadata of
the carry windows, so that a carry restored by a ``StatefulLoop`` keeps
guarding against a chunk replayed after a resume.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pyarrow as pa

from oups.exceptions import InvalidParameterError, ParameterTypeError

_LAST_ON = b"oups:last_on"
_LAST_MAIN = b"oups:last_main"


def _physical(array: pa.Array, pos: int) -> int | float | None:
    """The comparable value of ``array[pos]`` (ints for temporal types), or
    None for types without a simple order (strings...)."""
    t = array.type
    if pa.types.is_floating(t):
        return float(array[pos].as_py())
    if pa.types.is_integer(t) or pa.types.is_temporal(t):
        value = array.slice(pos, 1).cast(pa.int64())[0].as_py()
        return None if value is None else int(value)
    return None


def _shown(value: int | float, type_: pa.DataType) -> Any:
    if pa.types.is_temporal(type_):
        return pa.array([int(value)], pa.int64()).cast(type_)[0].as_py()
    return value


def _last(window: pa.Table, key: bytes) -> int | float | None:
    meta = window.schema.metadata or {}
    return json.loads(meta[key]) if key in meta else None


def check_tz(main_type: pa.DataType, on_type: pa.DataType, on: str) -> None:
    """Naive keys against zoned ones (or the reverse) cannot be compared."""
    both = pa.types.is_timestamp(main_type) and pa.types.is_timestamp(on_type)
    if both and (main_type.tz is None) != (on_type.tz is None):
        raise ParameterTypeError(
            f"'main' has type {main_type} but the '{on}' columns have type {on_type}: "
            "naive and timezone-aware timestamps do not compare; localize one of them "
            "(e.g. main.tz_localize('UTC') or df[on].dt.tz_convert(None))."
        )


def _went_back(keys: pa.Array, window: pa.Table, mark: bytes) -> tuple[Any, Any] | None:
    """(first key, last merged key), shown in the keys' type, when ``keys``
    start before the last key recorded in ``window``."""
    if not len(keys):
        return None
    last = _last(window, mark)
    first = _physical(keys, 0)
    if last is None or first is None or first >= last:
        return None
    return _shown(first, keys.type), _shown(last, keys.type)


def check_order(
    main: pa.Array, ons: list[list[pa.Array]], carry: list[list[pa.Table]], on: str
) -> None:
    """Refuses a call whose keys go back before what earlier calls merged:
    the carry would give wrong values, silently."""
    back = _went_back(main, carry[0][0], _LAST_MAIN)
    if back is not None:
        raise InvalidParameterError(
            f"'main' goes back in time: it starts at {back[0]}, before the last key {back[1]} "
            "of the previous call. Calls must follow each other in key order; set 'carry' to "
            "None to start over."
        )
    for g, (on_g, windows) in enumerate(zip(ons, carry, strict=True)):
        for i, (keys, window) in enumerate(zip(on_g, windows, strict=True)):
            back = _went_back(keys, window, _LAST_ON)
            if back is not None:
                raise InvalidParameterError(
                    f"dataframe '{i}' in group '{g}' starts at {on}={back[0]}, before its last "
                    f"row already merged ({back[1]}): a chunk must not be older than the carry. "
                    "Pass each chunk once, in order; set 'carry' to None to start over."
                )


def mark_order(
    new_carry: list[list[pa.Table]],
    old_carry: list[list[pa.Table]],
    main: pa.Array,
    ons: list[list[pa.Array]],
) -> list[list[pa.Table]]:
    """The new carry windows, with the last keys seen stored in their metadata."""
    last_main = _physical(main, len(main) - 1) if len(main) else _last(old_carry[0][0], _LAST_MAIN)
    out = []
    for on_g, windows, olds in zip(ons, new_carry, old_carry, strict=True):
        marked = []
        for keys, window, old in zip(on_g, windows, olds, strict=True):
            last_on = _physical(keys, len(keys) - 1) if len(keys) else _last(old, _LAST_ON)
            meta = dict(window.schema.metadata or {})
            for key, value in ((_LAST_ON, last_on), (_LAST_MAIN, last_main)):
                if value is None:
                    meta.pop(key, None)
                else:
                    meta[key] = json.dumps(value).encode()
            marked.append(window.replace_schema_metadata(meta))
        out.append(marked)
    return out


def same_dtype(a: Any, b: Any) -> bool:
    """Dtype equality, except that categoricals may differ in their categories
    (chunks read from oups files routinely do): they are unified."""
    if isinstance(a, pd.CategoricalDtype) and isinstance(b, pd.CategoricalDtype):
        return bool(a.ordered == b.ordered)
    return bool(a == b)


def unify_categoricals(
    chunks: list[list[pa.Table]], carry: list[list[pa.Table]], dtypes: list[list[tuple[str, Any]]]
) -> tuple[list[list[pa.Table]], list[list[pa.Table]], list[list[tuple[str, Any]]]]:
    """Gives each categorical column one dictionary across carry windows and
    chunks of every group (carry first, so earlier categories keep their
    codes), and the output dtypes the union of the categories."""
    n_groups = len(chunks)
    chunks = [list(t) for t in chunks]
    carry = [list(w) for w in carry]
    dtypes = [list(d) for d in dtypes]
    for i, columns in enumerate(dtypes):
        for c, (name, dtype) in enumerate(columns[:-1]):
            if not isinstance(dtype, pd.CategoricalDtype):
                continue
            value_type = chunks[0][i].schema.field(c).type
            if not pa.types.is_dictionary(value_type):
                continue
            target = pa.dictionary(pa.int32(), value_type.value_type)
            sources = [carry[g][i] for g in range(n_groups)] + [
                chunks[g][i] for g in range(n_groups)
            ]
            pieces = [s.column(c).cast(target).chunks for s in sources]
            flat = pa.chunked_array([p for ps in pieces for p in ps], type=target)
            unified = flat.unify_dictionaries().chunks
            pos = 0
            for k, (source, ps) in enumerate(zip(sources, pieces, strict=True)):
                column = pa.chunked_array(unified[pos : pos + len(ps)], type=target)
                pos += len(ps)
                table = source.set_column(c, source.schema.field(c).with_type(target), column)
                if k < n_groups:
                    carry[k][i] = table
                else:
                    chunks[k - n_groups][i] = table
            categories = unified[0].dictionary.to_pandas() if unified else dtype.categories
            dtypes[i][c] = (name, pd.CategoricalDtype(categories, ordered=dtype.ordered))
    return chunks, carry, dtypes
