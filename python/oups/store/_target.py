"""``row_group_target_size``: a row count, or a pandas frequency."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.tseries.frequencies import to_offset

from oups.exceptions import InvalidParameterError, ParameterTypeError

DAY_NS = 86_400 * 10**9


def _offset(target: Any) -> pd.DateOffset:
    # pandas may warn (deprecated alias) before it fails on a bad string;
    # under "warnings as errors" that warning would escape instead of our
    # error. Warnings are held back and re-emitted only if parsing succeeds.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            offset: pd.DateOffset = to_offset(target)
        except (ValueError, TypeError) as err:
            raise InvalidParameterError(
                f"'row_group_target_size' {target!r} is neither a positive int nor a pandas "
                f"frequency string such as '2h', '1D', 'W' or 'MS': {err}"
            ) from err
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return offset


def _is_utc(tz: str | None) -> bool:
    return tz in ("UTC", "utc", "Etc/UTC", "+00:00", "Z")


def target_kwargs(target: Any, ordered_type: pa.DataType | None, bounds: Any) -> dict[str, Any]:
    """Keyword arguments of ``RawDataset.write`` describing the target.

    ``bounds`` is a callable returning the (min, max) of the ordered values the
    write involves, as pandas Timestamps; only calendar frequencies need it.
    """
    if isinstance(target, (bool, np.bool_)):
        raise ParameterTypeError(
            f"'row_group_target_size' must be an int (rows) or a pandas frequency string, "
            f"got {target!r}."
        )
    if isinstance(target, (int, np.integer)):
        rows = int(target)
        if rows <= 0:
            raise InvalidParameterError(
                f"'row_group_target_size' must be a positive number of rows, got {rows}."
            )
        return {"target_rows": rows}
    if not isinstance(target, (str, pd.DateOffset)):
        raise ParameterTypeError(
            f"'row_group_target_size' must be an int (rows) or a pandas frequency string, "
            f"got {type(target).__name__}."
        )
    offset = _offset(target)
    if ordered_type is None:
        return {"target_rows": 2**63}
    tz = getattr(ordered_type, "tz", None)
    fixed_ok = tz is None or _is_utc(tz)
    # In pandas 2 'Day' is a 'Tick' (a fixed 24 h); in pandas 3 it is a calendar
    # day. Either way days on a zoned column are local days, cut at local
    # midnight across DST changes, so 'Day' is tested before 'Tick'.
    is_day = isinstance(offset, pd.offsets.Day)
    if (is_day and fixed_ok) or (not is_day and isinstance(offset, pd.offsets.Tick)):
        nanos = int(offset.n) * DAY_NS if is_day else int(offset.nanos)
        if nanos <= 0:
            raise InvalidParameterError(
                f"'row_group_target_size' frequency {target!r} must be a positive duration."
            )
        return {"period_ns": nanos}
    if not pa.types.is_timestamp(ordered_type):
        raise ParameterTypeError(
            f"a calendar frequency 'row_group_target_size' ({target!r}) needs a timestamp "
            f"ordered column, not {ordered_type}; use a fixed frequency or a row count."
        )
    lo, hi = bounds()
    if lo is None:
        return {"target_rows": 2**63}
    if isinstance(offset, pd.offsets.Day):
        # Local-calendar days, aligned on the epoch like pandas' floor.
        wall = lo.tz_localize(None)
        days = (wall.value // DAY_NS) // offset.n * offset.n
        start = pd.Timestamp(days * DAY_NS).tz_localize(
            tz, ambiguous=False, nonexistent="shift_backward"
        )
    else:
        start = offset.rollback(lo.normalize())
    anchors = pd.date_range(start=start, end=hi, freq=offset)
    if len(anchors) == 0 or anchors[0] > lo:
        anchors = anchors.insert(0, start)
    unit = ordered_type.unit
    values = np.asarray(anchors.as_unit(unit).asi8, dtype=np.int64)
    return {"anchors": values}
