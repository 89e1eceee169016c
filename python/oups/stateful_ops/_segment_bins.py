"""The ``bins`` argument of SegmentedAggregator: parsing at construction, and
per chunk the engine's description of the bins for the key type of the data.

Frequencies follow pandas' ``resample``. Fixed durations ("5min", "1h", and
"1D" on naive or UTC keys) are arithmetic on the key: ``origin + b * step``.
Calendar frequencies ("W-MON", "MS", and "D" on keys of a zone with
daylight saving) become edges, generated with pandas' own calendar (``date_range``) and
extended as the stream goes on; the edges are kept in the state, so that bin
numbers stay the same from one chunk to the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from oups.exceptions import InvalidParameterError, ParameterTypeError

# pandas' frequencies that are closed and labelled on the right by default, in
# its current spellings and those before 2.2.
_END_TYPES = {
    "ME",
    "YE",
    "QE",
    "BME",
    "BYE",
    "BQE",
    "W",
    "M",
    "A",
    "Y",
    "Q",
    "BM",
    "BA",
    "BY",
    "BQ",
}
_STREAM_ORIGINS = ("epoch", "start", "start_day")
Unit = Literal["s", "ms", "us", "ns"]


class Threshold(NamedTuple):
    """Bins that close at the row bringing the running sum of ``column`` to
    ``value`` or more (volume or dollar bars). That row belongs to the closing
    bin; the next row opens a new bin and the sum starts again from zero.

    Examples
    --------
    >>> import pandas as pd
    >>> from oups import SegmentedAggregator, Threshold
    >>> ticks = pd.DataFrame({"t": range(5), "qty": [4.0, 7.0, 2.0, 9.0, 1.0]})
    >>> bars = SegmentedAggregator("t", bins=Threshold("qty", 10), aggs={"vol": ("qty", "sum")})
    >>> bars.agg(ticks, final=True)
       t   vol
    0  0  11.0
    1  2  11.0
    2  4   1.0
    """

    column: str
    value: float


def _is_end_type(offset: pd.DateOffset) -> bool:
    return offset.rule_code.split("-")[0] in _END_TYPES


def unit_factor(unit: Unit) -> int:
    return {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}[unit]


def _is_day(offset: pd.DateOffset) -> bool:
    return type(offset).__name__ == "Day"


def _is_tick(offset: pd.DateOffset) -> bool:
    """A fixed duration to pandas. "D" is one before pandas 3 (binned on the
    wall clock for keys of a zone with daylight saving); since pandas 3 it is
    a calendar day, a fixed step only for naive keys."""
    return isinstance(offset, pd.offsets.Tick)


@dataclass
class Resolved:
    """What the engine needs for one chunk, and the bins' part of the next state."""

    spec: tuple[Any, ...]
    state: dict[str, Any] | None


class FrequencyBins:
    kind = "frequency"
    time_like = True

    def __init__(self, freq: Any, origin: Any, offset: Any) -> None:
        try:
            self.offset = pd.tseries.frequencies.to_offset(freq)
        except (TypeError, ValueError) as error:
            raise InvalidParameterError(
                f"'bins': {freq!r} is not a frequency pandas knows ({error}); use for example "
                "'5min', '1h', '1D', 'W-MON' or 'MS'"
            ) from None
        if self.offset.n <= 0:
            raise InvalidParameterError(f"'bins': the frequency must be positive, not {freq!r}")
        if isinstance(origin, str) and origin not in _STREAM_ORIGINS:
            if origin in ("end", "end_day"):
                raise InvalidParameterError(
                    f"'origin'={origin!r} depends on the last row of the data, which a stream "
                    f"does not know; use one of {_STREAM_ORIGINS} or a timestamp"
                )
            try:
                origin = pd.Timestamp(origin)
            except ValueError:
                raise InvalidParameterError(
                    f"'origin' must be one of {_STREAM_ORIGINS} or a timestamp, not {origin!r}"
                ) from None
        elif not isinstance(origin, str):
            origin = pd.Timestamp(origin)
        self.origin = origin
        self.shift = pd.Timedelta(offset) if offset is not None else pd.Timedelta(0)
        end = _is_end_type(self.offset)
        self.default_closed = "right" if end else "left"
        self.default_label = "right" if end else "left"

    def describe(self) -> str:
        return f"bins={self.offset.freqstr!r}"

    def resolve(
        self,
        key_type: pa.DataType,
        first: int,
        last: int,
        closed: str,
        saved: dict[str, Any] | None,
    ) -> Resolved:
        if not pa.types.is_timestamp(key_type):
            raise ParameterTypeError(
                f"'bins'={self.offset.freqstr!r} needs a timestamp 'on' column, not {key_type}; "
                "use a row count, a Threshold or edges for other keys"
            )
        unit, tz = cast(Unit, key_type.unit), key_type.tz
        if _is_day(self.offset) and not _is_tick(self.offset):
            # pandas 3: a fixed step (with origin) on naive keys, calendar days on zoned ones.
            if tz is None:
                return self._fixed(unit, tz, first, saved)
            return self._calendar(unit, tz, first, last, closed, saved)
        if _is_tick(self.offset):
            if _is_day(self.offset) and tz is not None and tz.upper() not in ("UTC", "Z"):
                return self._days(unit, tz, first, last, closed, saved)
            return self._fixed(unit, tz, first, saved)
        return self._calendar(unit, tz, first, last, closed, saved)

    def _step(self, unit: Unit) -> int:
        nanos = pd.Timedelta(self.offset).value
        step, rest = divmod(int(nanos), unit_factor(unit))
        if rest or step == 0:
            raise InvalidParameterError(
                f"'bins'={self.offset.freqstr!r} is finer than the '{unit}' resolution of the "
                "'on' column"
            )
        return step

    def _origin(self, first: pd.Timestamp, unit: Unit) -> pd.Timestamp:
        """pandas' ``origin``/``offset`` rules, on the stream's first key."""
        if self.origin == "epoch":
            # pandas' "epoch" is midnight of 1970-01-01 on the keys' clock.
            origin = pd.Timestamp("1970-01-01", tz=first.tz)
        elif self.origin == "start_day":
            origin = first.normalize()
        elif self.origin == "start":
            origin = first
        else:
            origin = self.origin
            if (origin.tz is None) != (first.tz is None):
                raise InvalidParameterError(
                    "'origin' and the 'on' column must both have a time zone or both have none"
                )
        shifted: pd.Timestamp = (origin + self.shift).as_unit(unit)
        return shifted

    def _fixed(
        self, unit: Unit, tz: str | None, first: int, saved: dict[str, Any] | None
    ) -> Resolved:
        step = self._step(unit)
        if saved is None:
            saved = {"origin": _i8(self._origin(_timestamp(first, unit, tz), unit), unit)}
        return Resolved(("fixed", saved["origin"], step), saved)

    def _days(
        self, unit: Unit, tz: str, first: int, last: int, closed: str, saved: dict[str, Any] | None
    ) -> Resolved:
        """Days of the wall clock (23 or 25 hours across daylight saving), as pandas bins them."""
        step = self._step(unit)
        if saved is None:
            naive = _timestamp(first, unit, tz).tz_localize(None)
            origin = _i8(self._origin(naive, unit), unit)
            start = (_i8(naive, unit) - origin - (closed == "right")) // step
            saved = {"origin": origin, "start": start, "n": 0}
        need = _i8(_timestamp(last, unit, tz).tz_localize(None), unit)
        n = max(saved["n"], (need - saved["origin"]) // step - saved["start"] + 3)
        if n != saved["n"] or "edges" not in saved:
            k = saved["start"] + np.arange(n, dtype=np.int64)
            naive = pd.DatetimeIndex((saved["origin"] + k * step).astype(f"datetime64[{unit}]"))
            local = naive.tz_localize(tz, ambiguous=True, nonexistent="shift_forward")
            edges = local.as_unit(unit).asi8.copy()
            saved = {**saved, "n": n, "edges": edges, "labels": edges}
        return _edges_spec(saved)

    def _calendar(
        self,
        unit: Unit,
        tz: str | None,
        first: int,
        last: int,
        closed: str,
        saved: dict[str, Any] | None,
    ) -> Resolved:
        if saved is None:
            start = _timestamp(first, unit, tz).normalize()
            start = self.offset.rollback(start) if closed == "left" else start - self.offset
            saved = {"start": _i8(pd.Timestamp(start), unit)}
        edges = saved.get("edges")
        covered = edges is not None and (
            last < edges[-1] if closed == "left" else last <= edges[-1]
        )
        if not covered:
            # As pandas' resample calls it (ambiguous and nonexistent wall times).
            calendar: dict[str, Any] = {
                "start": _timestamp(saved["start"], unit, tz),
                "end": _timestamp(last, unit, tz) + 2 * self.offset,
                "freq": self.offset,
                "ambiguous": True,
                "nonexistent": "shift_forward",
            }
            labels = pd.date_range(**calendar).as_unit(unit)
            if closed == "right" and _is_end_type(self.offset):
                # pandas closes end-of-period bins at the last instant of the
                # labelled day, so that intraday rows of that day belong to it.
                naive = labels.tz_localize(None)
                shifted = naive + pd.Timedelta(days=1) - pd.Timedelta(np.timedelta64(1, unit))
                edges_i8 = shifted.tz_localize(tz).as_unit(unit).asi8.copy()
            else:
                edges_i8 = labels.asi8.copy()
            saved = {**saved, "edges": edges_i8, "labels": labels.asi8.copy()}
        return _edges_spec(saved)


def _edges_spec(saved: dict[str, Any]) -> Resolved:
    spec = ("edges", pa.array(saved["edges"]), pa.array(saved["labels"]), False, 0, False)
    return Resolved(spec, saved)


def _timestamp(value: int, unit: Unit, tz: str | None) -> pd.Timestamp:
    ts: pd.Timestamp = pd.Timestamp(np.datetime64(value, unit))
    if tz is None:
        return ts
    zoned: pd.Timestamp = ts.tz_localize("UTC").tz_convert(tz)
    return zoned


def _i8(ts: pd.Timestamp, unit: Unit) -> int:
    """The key value of ``ts`` in ``unit`` (UTC for a zoned timestamp)."""
    return int(ts.as_unit(unit).asm8.astype(np.int64))


class EdgeBins:
    """Bins between consecutive values of a sorted array, given at once or,
    with ``bins="edges"``, streamed with the chunks (``agg(chunk, edges=...)``)."""

    kind = "edges"
    time_like = True
    default_closed = "left"
    default_label = "left"

    def __init__(self, edges: Any) -> None:
        self.streamed = edges is None
        self.edges = edges
        if not self.streamed and len(edges) < 2:
            raise InvalidParameterError("'bins': give at least two edges")

    def describe(self) -> str:
        return "bins='edges'" if self.streamed else f"bins=<{len(self.edges)} edges>"

    def extend(
        self, key_type: pa.DataType, saved: dict[str, Any] | None, new: Any, final: bool
    ) -> Resolved:
        """The edges of this call: those still needed, then ``new``."""
        if new is not None and not self.streamed:
            raise InvalidParameterError(
                "'edges' streams the edges of an aggregator built with bins='edges'; this one "
                "has its edges from 'bins'"
            )
        if saved is None:
            known = np.empty(0, np.int64)
            if not self.streamed:
                known = key_values(self.edges, key_type, "bins")
            saved = {"edges": known, "base": 0}
        edges = saved["edges"]
        if new is not None:
            more = key_values(new, key_type, "edges", strict=False)
            edges = np.concatenate([edges, more]) if len(more) else edges
        saved = {"edges": edges, "base": saved["base"]}
        spec = (
            "edges",
            pa.array(edges),
            pa.array(edges),
            True,
            saved["base"],
            self.streamed and not final,
        )
        return Resolved(spec, saved)

    @staticmethod
    def prune(saved: dict[str, Any], needed: int | None) -> dict[str, Any]:
        """Drops the edges of bins that no later row can reach; the last edge
        stays, the start of the bin that the next edges close."""
        edges, base = saved["edges"], saved["base"]
        if needed is None or len(edges) == 0:
            return saved
        drop = min(max(needed - base, 0), len(edges) - 1)
        if drop == 0:
            return saved
        return {"edges": edges[drop:].copy(), "base": base + drop}


class RowBins:
    kind = "rows"
    time_like = False
    default_closed = "left"
    default_label = "left"

    def __init__(self, n: int) -> None:
        if n < 1:
            raise InvalidParameterError(f"'bins': a row count must be at least 1, not {n}")
        self.n = int(n)

    def describe(self) -> str:
        return f"bins={self.n}"

    def resolve(self, *_: Any) -> Resolved:
        return Resolved(("rows", self.n), None)


class ThresholdBins:
    kind = "threshold"
    time_like = False
    default_closed = "left"
    default_label = "left"

    def __init__(self, spec: Threshold) -> None:
        value = float(spec.value)
        if not (np.isfinite(value) and value > 0):
            raise InvalidParameterError(
                f"'bins': the threshold must be a positive number, not {spec.value!r}"
            )
        self.column, self.value = spec.column, value
        self.index: int | None = None  # set by the aggregator: position among value columns

    def describe(self) -> str:
        return f"bins=Threshold({self.column!r}, {self.value!r})"

    def resolve(self, *_: Any) -> Resolved:
        return Resolved(("threshold", self.index, self.value), None)


def key_values(values: Any, key_type: pa.DataType, what: str, strict: bool = True) -> np.ndarray:
    """Values (edges, query keys) as int64 in the key's unit; edges
    (``strict``) must increase, query keys are checked by the engine."""
    if pa.types.is_timestamp(key_type):
        try:
            index = pd.DatetimeIndex(values)
        except (TypeError, ValueError) as error:
            raise ParameterTypeError(
                f"'{what}' must hold timestamps like the 'on' column ({error})"
            ) from None
        if (index.tz is None) != (key_type.tz is None):
            raise ParameterTypeError(
                f"'{what}' and the 'on' column must both have a time zone or both have none"
            )
        if index.hasnans:
            raise InvalidParameterError(f"'{what}' holds NaT")
        out = index.as_unit(key_type.unit).asi8.copy()
    else:
        out = np.asarray(values)
        if out.dtype.kind not in "iu":
            raise ParameterTypeError(
                f"'{what}' must hold integers like the 'on' column, not {out.dtype}"
            )
        out = out.astype(np.int64)
    out = cast(np.ndarray, out)
    if strict and len(out) > 1 and not (np.diff(out) > 0).all():
        raise InvalidParameterError(f"'{what}' must be strictly increasing")
    return out


def parse_bins(bins: Any, origin: Any, offset: Any) -> Any:
    if isinstance(bins, Threshold):
        return ThresholdBins(bins)
    if isinstance(bins, (bool, np.bool_)):
        raise ParameterTypeError("'bins' must be a frequency, a row count, a Threshold or edges")
    if isinstance(bins, (int, np.integer)):
        return RowBins(int(bins))
    if isinstance(bins, str) and bins == "edges":
        return EdgeBins(None)
    if isinstance(bins, (str, pd.DateOffset, pd.Timedelta)) or hasattr(bins, "total_seconds"):
        return FrequencyBins(bins, origin, offset)
    if isinstance(bins, (list, tuple, np.ndarray, pd.Index, pd.Series, pa.Array, pa.ChunkedArray)):
        return EdgeBins(bins)
    raise ParameterTypeError(
        f"'bins' must be a frequency string ('5min'), a row count, a Threshold or an array of "
        f"edges, not {type(bins).__name__!r}"
    )
