"""SegmentedAggregator: bins and rolling windows of ordered data, computed
chunk by chunk with exactly the result of one pass over all rows, and a state
that survives a restart."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from oups._oups import segment_aggregate
from oups.exceptions import (
    InvalidParameterError,
    ParameterTypeError,
)
from oups.stateful_ops._arrow_io import frame_kind, to_frame
from oups.stateful_ops._segment_bins import Threshold, parse_bins
from oups.stateful_ops._segment_columns import (
    PICKS,
    STATE_VERSION,
    agg_list,
)
from oups.stateful_ops._segment_rolling import RollingWindow, run_join, run_rolling
from oups.stateful_ops._segment_state import ChunkReader

__all__ = ["SegmentedAggregator", "Threshold"]


class SegmentedAggregator(ChunkReader):
    """Streamed aggregation of ordered data into bins, optionally per group.

    Parameters
    ----------
    on : str
        The ordered column (timestamps, or integers for row-count, threshold
        and edge bins). The output's bin labels take this name.
    by : str, optional
        A column whose values each get their own bins (``groupby(by)``).
        Rows with a null ``by`` value are left out, as pandas does.
    bins : str, int, Threshold or array-like
        - a pandas frequency, fixed (``"5min"``, ``"1h"``) or calendar
          (``"1D"``, ``"W-MON"``, ``"MS"``), bins following ``resample``;
        - an integer ``n``: a bin every ``n`` rows (of each group);
        - ``Threshold(column, value)``: a bin closes at the row that brings
          the running sum of ``column`` to ``value`` or more;
        - sorted edges: the bins between consecutive edges; rows outside
          them belong to no bin;
        - ``"edges"``: the same, with the edges streamed by the calls
          (``agg(chunk, edges=...)``).
    window : str, Timedelta or int
        Instead of ``bins``: a rolling window at every row, a trailing
        duration (``"5min"``) or a row count (``100``), as pandas'
        ``rolling``; one output row per input row, or per query with
        ``agg(chunk, at=queries)``. Aggregations: sum, mean, count, min, max,
        var, std, wmean.
    aggs : dict
        ``{output name: (column, aggregation)}`` with aggregation one of
        ``first, last, min, max, sum, mean, count, nunique, var, std, ohlc,
        wmean``. ``var``/``std`` take ddof as an optional third item
        (default 1); ``wmean`` (alias ``vwap``) takes the weight column as
        third item; ``ohlc`` gives four columns ``<name>_open``, ``_high``,
        ``_low``, ``_close`` (or the four names given as a tuple key).
    closed, label : {"left", "right"}, optional
        As in pandas' ``resample`` (``closed`` also "both" or "neither" for a
        rolling window, default "right", as ``rolling``), with its defaults ("right" for
        end-of-period frequencies such as "ME" and "W", else "left"). For row
        and threshold bins, ``label`` picks the key of the bin's first
        ("left") or last ("right") row.
    origin, offset
        As in pandas' ``resample`` for fixed frequencies, taken from the
        first row of the stream: ``"start_day"`` (default), ``"start"``,
        ``"epoch"`` or a timestamp. ``"end"`` and ``"end_day"`` are refused.
    empty : {"keep", "drop"}
        Empty time bins between two bins of a group: present with a zero
        count and nulls ("keep", pandas' behaviour), or left out.
    min_periods : int, optional
        Rolling windows only: the fewest values for a result (pandas'
        defaults: 1 for a duration, the window for a row count).
    state : dict, optional
        A ``state`` taken from an aggregator built with the same arguments.

    Notes
    -----
    Each ``agg(chunk)`` returns the bins that can no longer change, in the
    order they closed. The open bins are carried in ``state``, a dict of
    plain values and Arrow tables that ``StatefulLoop.bind_object_state(agg,
    state=["state"])`` persists without pickle.

    Examples
    --------
    >>> import pandas as pd
    >>> from oups import SegmentedAggregator
    >>> df = pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=6, freq="2min"),
    ...                    "px": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    >>> bars = SegmentedAggregator("ts", bins="5min", aggs={"px": ("px", "ohlc")})
    >>> bars.agg(df, final=True)
                       ts  px_open  px_high  px_low  px_close
    0 2024-01-01 00:00:00      1.0      3.0     1.0       3.0
    1 2024-01-01 00:05:00      4.0      5.0     4.0       5.0
    2 2024-01-01 00:10:00      6.0      6.0     6.0       6.0
    """

    def __init__(
        self,
        on: str,
        *,
        aggs: Mapping[Any, Any],
        bins: Any = None,
        window: Any = None,
        by: str | None = None,
        closed: str | None = None,
        label: str | None = None,
        origin: Any = "start_day",
        offset: Any = None,
        empty: str = "keep",
        min_periods: int | None = None,
        state: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(on, str):
            raise ParameterTypeError(f"'on' must be a column name, not {on!r}")
        if by is not None and not isinstance(by, str):
            raise ParameterTypeError(f"'by' must be one column name or None, not {by!r}")
        if by == on:
            raise InvalidParameterError("'by' and 'on' must be different columns")
        self.on, self.by = on, by
        if (bins is None) == (window is None):
            raise InvalidParameterError(
                "give either 'bins' (segments: '5min', 1000, Threshold(...), edges) or "
                "'window' (rolling: '5min', 100), not both or neither"
            )
        if empty not in ("keep", "drop"):
            raise InvalidParameterError(f"'empty' must be 'keep' or 'drop', not {empty!r}")
        self._names, self._aggs = agg_list(aggs)
        self._window = None if window is None else RollingWindow(window, min_periods)
        if self._window is not None:
            self._window.check(closed, label, empty, self._aggs, self._names)
            self.closed = closed or "right"
            self.label = "right"
            self._bins: Any = None
        else:
            if min_periods is not None:
                raise InvalidParameterError("'min_periods' applies to rolling windows only")
            self._bins = parse_bins(bins, origin, offset)
            for name, value in (("closed", closed), ("label", label)):
                if value not in (None, "left", "right"):
                    raise InvalidParameterError(
                        f"'{name}' must be 'left' or 'right', not {value!r}"
                    )
            self.closed = closed or self._bins.default_closed
            self.label = label or self._bins.default_label
        self.empty = empty
        #: The aggregations, as given.
        self.aggs = dict(aggs)
        columns: list[str] = []
        for column, _, extra in self._aggs:
            for c in (column, extra if isinstance(extra, str) else None):
                if c is not None and c not in columns:
                    columns.append(c)
        if self._bins is not None and self._bins.kind == "threshold":
            if self._bins.column not in columns:
                columns.append(self._bins.column)
            self._bins.index = columns.index(self._bins.column)
        self._columns = columns
        self._engine_aggs = [
            (
                kind,
                columns.index(column),
                columns.index(extra) if kind == "wmean" else None,
                extra if kind in ("var", "std") else 0,
            )
            for column, kind, extra in self._aggs
        ]
        self.state = state
        # (group values, dictionary, remap to group ids) of the latest chunk.
        self._remap: tuple[pa.Table, pa.Array, list[int] | None] | None = None
        # (pandas CategoricalDtype of ``by``, its categories as Arrow).
        self._pandas_categories: tuple[Any, pa.Array] | None = None
        self._index = pd.Index(self.columns)  # the columns of pandas outputs
        # Engine results: float64 columns whose missing values hold NaN.
        self._engine_floats = frozenset(self._names)
        # (group values, their pandas CategoricalDtype) of the latest output.
        self._categories: tuple[pa.Table, pd.CategoricalDtype] | None = None

    def __repr__(self) -> str:
        by = f", by={self.by!r}" if self.by else ""
        what = self._window.describe() if self._window else self._bins.describe()
        return f"SegmentedAggregator(on={self.on!r}{by}, {what})"

    @property
    def columns(self) -> list[str]:
        """The output's columns: ``by``, ``on``, then the aggregations."""
        return [*([self.by] if self.by else []), self.on, *self._names]

    def flush(self) -> Any:
        """Emits the open bins, as ``agg`` of an empty chunk with ``final=True``
        would, as a pyarrow Table (no chunk tells the frame type), and resets
        the state.

        Examples
        --------
        >>> import pandas as pd
        >>> from oups import SegmentedAggregator
        >>> agg = SegmentedAggregator("t", bins=10, aggs={"n": ("v", "count")})
        >>> agg.agg(pd.DataFrame({"t": [1, 2, 3], "v": [0.5, 1.5, 2.5]}))
        Empty DataFrame
        Columns: [t, n]
        Index: []
        >>> agg.flush().to_pydict()
        {'t': [1], 'n': [3]}
        """
        return self._run(None, "arrow", True)

    def agg(self, df: Any, final: bool = False, *, at: Any = None, edges: Any = None) -> Any:
        """Adds the rows of ``df`` (pandas, pyarrow or polars, sorted on ``on``,
        not before the previous chunk) and returns the bins they complete, in
        the same frame type. ``final=True`` also emits the open bins and
        resets the state, for a new stream.

        ``at`` (rolling windows only) asks for the windows at query keys
        instead of at every row: a frame with the ``on`` column (and ``by``),
        or, without ``by``, the keys alone. The result has one row per query,
        in the order given, each emitted once a row past its key has arrived
        (or with ``final``); queries may come ahead of the data, never after
        it. Pass ``at`` on every call of such a stream, empty for a chunk
        without queries.

        ``edges`` (``bins="edges"`` only) adds the next edges of the bins,
        after the earlier ones. Rows past the last edge wait in the state for
        the edges that close their bin.

        Examples
        --------
        >>> import pandas as pd
        >>> from oups import SegmentedAggregator
        >>> agg = SegmentedAggregator("t", bins=2, aggs={"total": ("v", "sum")})
        >>> agg.agg(pd.DataFrame({"t": [1, 2, 3], "v": [1, 2, 3]}))
           t  total
        0  1      3
        >>> agg.agg(pd.DataFrame({"t": [4, 5], "v": [4, 5]}), final=True)
           t  total
        0  3      7
        1  5      5

        The sum of the last two rows at keys 2 and 5:

        >>> window = SegmentedAggregator("t", window=2, aggs={"total": ("v", "sum")})
        >>> window.agg(pd.DataFrame({"t": [1, 2, 3, 4, 5], "v": [1, 2, 3, 4, 5]}),
        ...            at=[2, 5], final=True)
           t  total
        0  2    3.0
        1  5    9.0
        """
        return self._run(df, frame_kind(df), final, at, edges)

    def _run(self, df: Any, kind: str, final: bool, at: Any = None, edges: Any = None) -> Any:
        if self._window is not None:
            if edges is not None:
                raise InvalidParameterError(
                    "'edges' streams the edges of bins='edges'; a rolling window takes none"
                )
            saved = self._saved()
            joined = saved is not None and saved.get("kind") == "rolling_at"
            if at is not None or joined:
                return run_join(self, df, kind, at, final, self._window)
            return run_rolling(self, df, kind, final, self._window)
        if at is not None:
            raise InvalidParameterError(
                "'at' asks for rolling windows at query keys: build the aggregator with "
                "window=..., not bins=..."
            )
        state = self._saved()
        inputs = self._inputs(df, kind, "bins")
        if inputs is None:
            return self._empty_output(kind)
        types, keys, group_values = inputs.types, inputs.keys, inputs.group_values
        values, group_codes = inputs.values, inputs.group_codes
        n = len(keys)
        saved = state["bins"] if state else None
        if self._bins.kind == "edges":
            resolved = self._bins.extend(types[self.on], saved, edges, final)
        elif edges is not None:
            raise InvalidParameterError(
                "'edges' streams the edges of an aggregator built with bins='edges', not "
                f"{self._bins.describe()}"
            )
        elif n or saved is not None or self._bins.kind in ("rows", "threshold"):
            previous = self._last_key()
            first = keys[0].as_py() if n else previous
            last = keys[-1].as_py() if n else previous
            if first is None:
                resolved = None
            else:
                resolved = self._bins.resolve(types[self.on], first, last, self.closed, saved)
        else:
            resolved = None
        if resolved is None:
            out = self._empty_output(kind)
            if final:
                self._keep(None)
            return out
        bins_out, handed, live, ready, needed = segment_aggregate(
            resolved.spec,
            self.closed,
            self.label,
            self.empty == "keep",
            self._engine_aggs,
            keys,
            group_codes,
            len(group_values) if group_values is not None else 1,
            [v for v, _ in values],
            self._engine_state(),
            final,
            kind == "pandas",
        )
        columns = self._output(kind, bins_out, types, values, group_values, handed)
        if final:
            self._keep(None)
        else:
            meta = {
                "version": STATE_VERSION,
                "kind": "bins",
                "groups_values": group_values,
                "bins": self._bins.prune(resolved.state, needed)
                if self._bins.kind == "edges"
                else resolved.state,
                # Rows past the last streamed edge, waiting for the next edges.
                "held": pa.table({c: a[ready:] for c, a in inputs.arrays.items()})
                if ready < n
                else None,
                # The column types, as an empty table: persisted without pickle.
                "types": inputs.types_table,
            }
            self._keep(meta, live)
        return to_frame(columns, kind, self._index, self._engine_floats)

    def _empty_output(self, kind: str, types: dict[str, pa.DataType] | None = None) -> Any:
        """No row. With the chunk's ``types`` (rolling windows, whose results
        are all floats), the columns have the types rows would have, so that
        concatenating results keeps them."""
        if types is None:
            columns = {c: pa.array([], pa.null()) for c in self.columns}
        else:
            columns = {c: pa.array([], types.get(c, pa.float64())) for c in self.columns}
            if self.by is not None and kind == "pandas" and self._pandas_categories is not None:
                columns[self.by] = pd.Categorical([], dtype=self._pandas_categories[0])
        return to_frame(columns, kind, self._index)

    def _output(
        self,
        kind: str,
        bins_out: pa.RecordBatch,
        types: dict[str, pa.DataType],
        values: list[tuple[pa.Array, pa.DataType]],
        group_values: pa.Table | None,
        handed: list[Any] | None = None,
        typed_picks: bool = True,
    ) -> dict[str, Any]:
        """The output columns, Arrow arrays except a pandas categorical ``by``.
        ``handed``: the results the engine gave as numpy arrays (None for those
        in the batch). ``typed_picks``: first/last/min/max take the type of
        their column (bins; rolling windows give floats, as pandas)."""
        ids, labels = bins_out.column(0), bins_out.column(1)
        columns: dict[str, Any] = {}
        if self.by is not None and group_values is not None:
            known = group_values.column(0).combine_chunks()
            if not pa.types.is_dictionary(types[self.by]):
                columns[self.by] = known.take(ids)
            elif kind == "pandas":
                if self._categories is None or self._categories[0] is not group_values:
                    self._categories = (group_values, pd.CategoricalDtype(known.to_pandas()))
                if ids.null_count:
                    codes = ids.cast(pa.int32()).fill_null(-1).to_numpy()
                else:
                    codes = ids.to_numpy().astype(np.int32)
                columns[self.by] = pd.Categorical.from_codes(
                    codes, dtype=self._categories[1], validate=False
                )
            else:
                # Categorical in, categorical out: no value is copied.
                columns[self.by] = pa.DictionaryArray.from_arrays(ids.cast(pa.int32()), known)
        on_type = types[self.on]
        columns[self.on] = labels.view(on_type) if pa.types.is_timestamp(on_type) else labels
        for j, (name, (column, agg, _)) in enumerate(zip(self._names, self._aggs, strict=True)):
            if handed is not None and handed[j] is not None:
                columns[name] = handed[j]
                continue
            result = bins_out.column(str(j))
            source = values[self._columns.index(column)][1]
            if typed_picks and agg in PICKS and result.type != source:
                temporal = pa.types.is_timestamp(source) or pa.types.is_duration(source)
                result = result.view(source) if temporal else result.cast(source)
            columns[name] = result
        return columns
