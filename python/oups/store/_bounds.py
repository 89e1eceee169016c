"""Range bounds (``start``, ``end_excl``) turned into the ordered column's
physical values, as the engine compares them.

Bounds are rounded up to the column's resolution (``start=2.5`` on an int
column means ``>= 3``; ``end_excl=4.5`` means ``< 5``), which keeps the
half-open interval exact. Bounds beyond the column's range are clamped.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from oups.exceptions import InvalidParameterError, ParameterTypeError

_UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_DAY_NS = 86_400 * 1_000_000_000


@dataclass(frozen=True)
class PhysicalRange:
    start: int | float | None
    end_excl: int | float | None
    # True when no value of the column can lie in the range.
    empty: bool = False


def _ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
        v, (bool, np.bool_)
    )


def _parse_temporal(name: str, value: Any, parse: Any, what: str, examples: str) -> Any:
    """``parse(value)`` (pd.Timestamp or pd.Timedelta), refusing bare numbers and NaT."""
    if _is_number(value) or isinstance(value, (bool, np.bool_)):
        raise ParameterTypeError(
            f"'{name}' must be a {what} ({examples}) for a {what} column, got {value!r}."
        )
    try:
        parsed = parse(value)
    except (ValueError, TypeError) as err:
        raise InvalidParameterError(f"'{name}' {value!r} is not a {what}: {err}") from err
    if parsed is pd.NaT:
        raise InvalidParameterError(f"'{name}' must not be NaT.")
    return parsed


def _timestamp(name: str, value: Any, tz: str | None) -> int:
    ts = _parse_temporal(
        name,
        value,
        pd.Timestamp,
        "timestamp",
        "pandas Timestamp, datetime, numpy datetime64 or a string such as '2024-01-31 09:30'",
    )
    if tz is None and ts.tz is not None:
        raise ParameterTypeError(
            f"'{name}' {value!r} is timezone-aware but the ordered column is naive; "
            "pass a naive timestamp."
        )
    if tz is not None and ts.tz is None:
        raise ParameterTypeError(
            f"'{name}' {value!r} is naive but the ordered column is in timezone {tz!r}; "
            f"pass a timezone-aware timestamp, e.g. pd.Timestamp(..., tz={tz!r})."
        )
    try:
        return int(ts.as_unit("ns").value)
    except (OverflowError, ValueError) as err:
        raise InvalidParameterError(
            f"'{name}' {value!r} is outside the range of nanosecond timestamps."
        ) from err


def _physical(name: str, value: Any, arrow_type: pa.DataType) -> int | float:
    t = arrow_type
    if pa.types.is_integer(t):
        if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            return int(value)
        if isinstance(value, (float, np.floating)):
            f = float(value)
            if math.isnan(f):
                raise InvalidParameterError(f"'{name}' must not be NaN.")
            return f if math.isinf(f) else math.ceil(f)
        raise ParameterTypeError(
            f"'{name}' must be a number for integer ordered column, got {value!r} "
            f"({type(value).__name__})."
        )
    if pa.types.is_floating(t):
        if not _is_number(value):
            raise ParameterTypeError(
                f"'{name}' must be a number for a float ordered column, got {value!r} "
                f"({type(value).__name__})."
            )
        f = float(value)
        if math.isnan(f):
            raise InvalidParameterError(f"'{name}' must not be NaN.")
        return f
    if pa.types.is_timestamp(t):
        return _ceil_div(_timestamp(name, value, t.tz), _UNIT_NS[t.unit])
    if pa.types.is_date(t):
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = pd.Timestamp(value)
        ns = _timestamp(name, value, None)
        return _ceil_div(ns, _DAY_NS) if pa.types.is_date32(t) else _ceil_div(ns, 1_000_000)
    if pa.types.is_duration(t):
        td = _parse_temporal(
            name,
            value,
            pd.Timedelta,
            "duration",
            "pandas Timedelta, timedelta, numpy timedelta64 or a string such as '5min'",
        )
        return _ceil_div(int(td.value), _UNIT_NS[t.unit])
    raise ParameterTypeError(f"range bounds are not supported on ordered columns of type {t}.")


def _limits(t: pa.DataType) -> tuple[int, int] | None:
    if pa.types.is_unsigned_integer(t):
        return 0, 2**64 - 1
    if pa.types.is_floating(t):
        return None
    return -(2**63), 2**63 - 1


def physical_range(start: Any, end_excl: Any, arrow_type: pa.DataType | None) -> PhysicalRange:
    """Converts ``start``/``end_excl`` for a column of ``arrow_type`` (None: no data)."""
    if arrow_type is None or pa.types.is_null(arrow_type):
        return PhysicalRange(None, None)
    lo_val = None if start is None else _physical("start", start, arrow_type)
    hi_val = None if end_excl is None else _physical("end_excl", end_excl, arrow_type)
    limits = _limits(arrow_type)
    if limits is None:
        return PhysicalRange(lo_val, hi_val)
    lo, hi = limits
    empty = False
    if lo_val is not None:
        if lo_val <= lo:
            lo_val = None
        elif lo_val > hi:
            empty, lo_val = True, None
    if hi_val is not None:
        if hi_val > hi:
            hi_val = None
        elif hi_val <= lo:
            empty, hi_val = True, None
    return PhysicalRange(
        None if lo_val is None else int(lo_val), None if hi_val is None else int(hi_val), empty
    )


def physical_values(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Values of an ordered column as the numbers :func:`physical_range`
    gives bounds in: temporal types by their integer count of units."""
    t = values.type
    if pa.types.is_timestamp(t) or pa.types.is_duration(t) or pa.types.is_date64(t):
        values = values.cast(pa.int64())
    elif pa.types.is_date32(t):
        values = values.cast(pa.int32()).cast(pa.int64())
    return np.asarray(values.to_numpy(zero_copy_only=False))
