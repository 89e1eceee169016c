"""``AsofMerger``: a streaming as-of join of groups of frames onto ``main``."""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from oups._oups import asof_merge
from oups.exceptions import InvalidParameterError, ParameterTypeError, SchemaMismatchError
from oups.stateful_ops._arrow_io import column_to_arrow, numpy_to_arrow
from oups.stateful_ops._asof_checks import (
    check_order,
    check_tz,
    mark_order,
    same_dtype,
    unify_categoricals,
)
from oups.stateful_ops._asof_output import assemble, output_blocks, with_missing

__all__ = ["AsofMerger"]


def _arrays(table: pa.Table) -> list[pa.Array]:
    """A table's columns as single arrays (no copy when a column has one chunk)."""
    return [c.chunk(0) if c.num_chunks == 1 else c.combine_chunks() for c in table.columns]


def _zeros(dtype: pa.DataType, n: int) -> pa.Array:
    """The default fill window: zero of the type, or missing where there is none."""
    t = pa.types
    if t.is_integer(dtype) or t.is_floating(dtype):
        return pa.array(np.zeros(n, dtype=dtype.to_pandas_dtype()), type=dtype)
    if t.is_boolean(dtype):
        return pa.array(np.zeros(n, dtype=bool))
    if t.is_timestamp(dtype) or t.is_duration(dtype) or t.is_date64(dtype) or t.is_time64(dtype):
        return pa.array(np.zeros(n, dtype=np.int64)).cast(dtype)
    if t.is_date32(dtype) or t.is_time32(dtype):
        return pa.array(np.zeros(n, dtype=np.int32)).cast(dtype)
    if t.is_decimal(dtype):
        return pa.array([decimal.Decimal(0)] * n, type=dtype)
    return pa.nulls(n, type=dtype)


def _is_frame_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(v, pd.DataFrame) for v in value)


class AsofMerger:
    """As-of join of groups of frames onto sorted ``main`` keys, chunk by chunk.

    For each output row and each join position, ``combinations`` picks a group
    of ``n_dfs_per_group`` frames; for each frame the row read is the last
    one whose ``on`` value is before (``allow_exact_matches=False``, the
    default) or at (``True``) the row's ``main`` value, with the ``n_prev``
    rows before it. Rows before the first row of a chunk come from the
    ``carry`` windows kept from the previous call, so successive calls on
    consecutive chunks give the result of one call on all the data.

    Parameters
    ----------
    on : str
        Name of the ordered column of every frame.
    n_dfs_per_group : int
        Number of frames in each group (``D``).
    prefixes : list[str] or list[list[str]], optional
        Output column prefixes per join position and frame. A flat list of
        ``D`` strings means a single join position.
    allow_exact_matches : list[bool], optional
        Per frame, whether a row at the ``main`` value itself matches.
        Defaults to strict (``False``), unlike ``pandas.merge_asof``.
    n_prev : list[int], optional
        Per frame, how many previous rows to output next to the current one.
    n_prev_suffix_start : int, default 0
        Suffix of the current value's column when ``n_prev > 0``.
    fill_values_init : list[list[DataFrame]] or "missing", optional
        Per group and frame, ``n_prev + 1`` rows that stand before the first
        chunk. **By default zeros** of each column's type (missing for types
        without a zero, such as strings or categoricals), as in the
        pure-Python oups: rows before the first match read 0, not NaN.
        ``"missing"`` gives missing values instead, as ``pandas.merge_asof``
        does: NaN, NaT or null per dtype; integer columns then come out as
        float64 and booleans as object, in every call.

    Attributes
    ----------
    carry : list[list[pyarrow.Table]] or None
        ``carry[g][d]``: the last ``n_prev[d] + 1`` rows seen of frame ``d``
        of group ``g``; None before the first call. Set it to None to start
        over.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from oups import AsofMerger
    >>> quotes = pd.DataFrame({"ts": [10, 20, 30], "bid": [1.0, 2.0, 3.0]})
    >>> merger = AsofMerger("ts", n_dfs_per_group=1, n_prev=[1], allow_exact_matches=[True])
    >>> merger.merge(np.array([15, 30]), df_groups=[quotes])
       ts  bid_1  bid_0
    0  15    0.0    1.0
    1  30    2.0    3.0

    The next call continues from the carried rows:

    >>> later = pd.DataFrame({"ts": [40], "bid": [4.0]})
    >>> merger.merge(np.array([45]), df_groups=[later])
       ts  bid_1  bid_0
    0  45    3.0    4.0
    """

    def __init__(
        self,
        on: str,
        *,
        n_dfs_per_group: int,
        prefixes: list[Any] | None = None,
        allow_exact_matches: list[bool] | None = None,
        n_prev: list[int] | None = None,
        n_prev_suffix_start: int = 0,
        fill_values_init: Sequence[Sequence[pd.DataFrame]] | Literal["missing"] | None = None,
    ):
        if not isinstance(on, str):
            raise ParameterTypeError(f"'on' must be a column name (str), got {type(on).__name__}")
        if isinstance(n_dfs_per_group, bool) or not isinstance(n_dfs_per_group, int):
            raise ParameterTypeError(
                f"'n_dfs_per_group' must be an int, got {type(n_dfs_per_group).__name__}"
            )
        if n_dfs_per_group < 1:
            raise InvalidParameterError(f"'n_dfs_per_group' must be >= 1, got {n_dfs_per_group}")
        d = n_dfs_per_group
        if prefixes is not None:
            if not isinstance(prefixes, (list, tuple)) or not prefixes:
                raise InvalidParameterError(
                    "'prefixes' must be a non-empty list of prefixes (one per frame) or of "
                    "such lists (one per join position)"
                )
            if isinstance(prefixes[0], str):
                prefixes = [prefixes]
            prefixes = [list(p) for p in prefixes]
            if any(len(p) != d for p in prefixes):
                raise InvalidParameterError(
                    "each group must be of length 'n_dfs_per_group' in 'prefixes'."
                )
            if not all(isinstance(x, str) for p in prefixes for x in p):
                raise ParameterTypeError("'prefixes' must hold strings")
        if allow_exact_matches is None:
            allow_exact_matches = [False] * d
        allow_exact_matches = list(allow_exact_matches)
        if len(allow_exact_matches) != d:
            raise InvalidParameterError(
                "'allow_exact_matches' length must match 'n_dfs_per_group'."
            )
        if n_prev is None:
            n_prev = [0] * d
        n_prev = list(n_prev)
        if len(n_prev) != d:
            raise InvalidParameterError(
                f"'n_prev' must have length '{d}' (number of dataframes per group), got "
                f"'{len(n_prev)}'."
            )
        if not all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in n_prev):
            raise ParameterTypeError("'n_prev' must hold integers")
        if any(k < 0 for k in n_prev):
            raise InvalidParameterError("all values in 'n_prev' must be >= 0.")
        if isinstance(n_prev_suffix_start, bool) or not isinstance(n_prev_suffix_start, int):
            raise ParameterTypeError("'n_prev_suffix_start' must be an int")
        if isinstance(fill_values_init, str) and fill_values_init != "missing":
            raise InvalidParameterError(
                f"'fill_values_init' must be None (zeros), \"missing\" or per-group lists of "
                f"DataFrames, got {fill_values_init!r}."
            )
        self.on = on
        self.n_dfs_per_group = d
        self.prefixes = prefixes
        self.allow_exact_matches = [bool(x) for x in allow_exact_matches]
        self.n_prev = [int(k) for k in n_prev]
        self.n_prev_suffix_start = n_prev_suffix_start
        self.fill_values_init = fill_values_init
        #: Carry windows, ``carry[g][d]`` a pyarrow Table of ``n_prev[d] + 1``
        #: rows (the last rows seen of that frame). None before the first merge.
        #: Arrow only, so ``StatefulLoop.bind_object_state(merger, state=["carry"])``
        #: persists it without pickle.
        self.carry: list[list[pa.Table]] | None = None
        # Per frame position: (column, dtype) pairs, `on` last; empty before
        # the first merge.
        self._dtypes: list[list[tuple[str, Any]]] = []
        self._names: list[str] | None = None
        self._n_positions = 0

    def __repr__(self) -> str:
        return (
            f"AsofMerger(on={self.on!r}, n_dfs_per_group={self.n_dfs_per_group}, "
            f"prefixes={self.prefixes!r}, allow_exact_matches={self.allow_exact_matches!r}, "
            f"n_prev={self.n_prev!r}, n_prev_suffix_start={self.n_prev_suffix_start})"
        )

    # -- validation -----------------------------------------------------------

    def _groups(self, df_groups: Any, combinations: Any) -> list[list[pd.DataFrame]]:
        d = self.n_dfs_per_group
        if combinations is None:
            if not _is_frame_list(df_groups) or not df_groups:
                raise InvalidParameterError(
                    "when 'combinations' is None, 'df_groups' must be a flat list of DataFrames."
                )
            groups = [list(df_groups)]
        else:
            if not isinstance(df_groups, (list, tuple)) or not df_groups:
                raise InvalidParameterError(
                    "'df_groups' must be a non-empty list of groups, each a list of DataFrames"
                )
            if _is_frame_list(df_groups):
                raise InvalidParameterError(
                    "when 'combinations' is given, 'df_groups' must be a list of groups "
                    "(lists of DataFrames), not a flat list of DataFrames."
                )
            groups = []
            for g, group in enumerate(df_groups):
                if not _is_frame_list(group):
                    raise ParameterTypeError(
                        f"group '{g}' of 'df_groups' must be a list of DataFrames"
                    )
                groups.append(list(group))
        for g, group in enumerate(groups):
            if len(group) != d:
                raise InvalidParameterError(
                    f"group '{g}' must have the same number of dataframes as "
                    f"'n_dfs_per_group' ({d})."
                )
            for i, df in enumerate(group):
                if self.on not in df.columns:
                    raise InvalidParameterError(
                        f"dataframe '{i}' in group '{g}' has no column '{self.on}' (the 'on' "
                        "column must be a column, not the index)."
                    )
        return groups

    def _check_structure(self, groups: list[list[pd.DataFrame]]) -> None:
        """Same columns (in order) and dtypes in every group, and as in earlier calls."""
        reference = self._dtypes
        first = not reference
        if first:
            reference = [
                [(c, df[c].dtype) for c in df.columns if c != self.on]
                + [(self.on, df[self.on].dtype)]
                for df in groups[0]
            ]
        for g, group in enumerate(groups):
            for i, df in enumerate(group):
                got = [(c, df[c].dtype) for c in df.columns if c != self.on] + [
                    (self.on, df[self.on].dtype)
                ]
                where = (
                    "the corresponding dataframe in the first group"
                    if first
                    else ("the same dataframe in the first call")
                )
                if [c for c, _ in got] != [c for c, _ in reference[i]]:
                    raise SchemaMismatchError(
                        f"dataframe '{i}' in group '{g}' must have the same columns as {where}."
                        f" Got {[c for c, _ in got]}, expected {[c for c, _ in reference[i]]}."
                    )
                differ = [
                    (c, t, r)
                    for (c, t), (_, r) in zip(got, reference[i], strict=True)
                    if not same_dtype(t, r)
                ]
                if differ:
                    shown = "; ".join(f"'{c}' is {t!r}, expected {r!r}" for c, t, r in differ)
                    raise SchemaMismatchError(
                        f"dataframe '{i}' in group '{g}' must have the same dtypes as {where}: "
                        f"{shown}."
                    )
        for i, columns in enumerate(reference):
            bad = [c for c, _ in columns if not isinstance(c, str)]
            if bad:
                raise ParameterTypeError(
                    f"dataframe '{i}': column names must be str to name output columns, got {bad!r}"
                )
        if self.carry is not None and len(groups) != len(self.carry):
            raise InvalidParameterError(
                f"'df_groups' has {len(groups)} groups but this merger holds carry windows for "
                f"{len(self.carry)}; the number of groups cannot change between calls."
            )
        self._dtypes = reference

    def _positions(self, combinations: Any, n: int, n_groups: int) -> list[np.ndarray]:
        if combinations is None:
            return [np.zeros(n, dtype=np.uint32)]
        comb = np.asarray(combinations)
        if comb.ndim != 2:
            raise InvalidParameterError(
                "'combinations' must be a 2-D array of shape (len(main), number of join "
                f"positions), got {comb.ndim} dimension(s)."
            )
        if comb.size and comb.dtype.kind not in "iu":
            raise ParameterTypeError(
                f"'combinations' must hold integer group indices, got dtype {comb.dtype}"
            )
        if len(comb) != n:
            raise InvalidParameterError("'main' and 'combinations' must have the same length.")
        if comb.size:
            low = np.unravel_index(np.argmin(comb), comb.shape)
            if comb[low] < 0:
                raise InvalidParameterError(
                    f"negative value '{comb[low]}' at position '({low[0]}, {low[1]})' in "
                    "'combinations': group indices must be >= 0."
                )
            high = np.unravel_index(np.argmax(comb), comb.shape)
            if comb[high] >= n_groups:
                raise InvalidParameterError(
                    f"max value '{comb[high]}' at position '({high[0]}, {high[1]})' in "
                    f"'combinations' must be less than 'df_groups' length ({n_groups})."
                )
        return [np.ascontiguousarray(comb[:, j], dtype=np.uint32) for j in range(comb.shape[1])]

    def _output_names(self, n_positions: int) -> list[str]:
        if self._names is not None and self._n_positions == n_positions:
            return self._names
        prefixes = self.prefixes
        if prefixes is None:
            prefixes = [[""] * self.n_dfs_per_group] * n_positions
        elif len(prefixes) != n_positions:
            raise InvalidParameterError(
                f"'prefixes' has {len(prefixes)} lists but 'combinations' has {n_positions} "
                "join positions; give one list of prefixes per position."
            )
        names = [self.on]
        for j in range(n_positions):
            for i, columns in enumerate(self._dtypes):
                k_max = self.n_prev[i]
                for c, _ in columns[:-1]:
                    base = prefixes[j][i] + c
                    if k_max == 0:
                        names.append(base)
                    else:
                        names.extend(
                            f"{base}_{self.n_prev_suffix_start + k}" for k in range(k_max, -1, -1)
                        )
        seen: set[str] = set()
        dup = sorted({x for x in names if x in seen or _add(seen, x)})
        if dup:
            raise InvalidParameterError(
                f"output column names would collide: {', '.join(dup)}. Give 'prefixes' (one "
                "list per join position) so that every frame column gets its own name."
            )
        self._names, self._n_positions = names, n_positions
        return names

    # -- carry ----------------------------------------------------------------

    def _initial_carry(self, chunks: list[list[pa.Table]]) -> list[list[pa.Table]]:
        fill = self.fill_values_init
        n_groups = len(chunks)
        if isinstance(fill, str):  # "missing", checked at construction
            return [
                [
                    pa.Table.from_arrays(
                        [pa.nulls(self.n_prev[i] + 1, type=f.type) for f in t.schema],
                        schema=t.schema,
                    )
                    for i, t in enumerate(group)
                ]
                for group in chunks
            ]
        if fill is not None and (not isinstance(fill, (list, tuple)) or len(fill) != n_groups):
            raise InvalidParameterError(
                "'fill_values_init' must have the same number of groups as 'df_groups'."
            )
        carry = []
        for g, group in enumerate(chunks):
            if fill is not None and (
                not isinstance(fill[g], (list, tuple)) or len(fill[g]) != self.n_dfs_per_group
            ):
                raise InvalidParameterError(
                    f"'fill_values_init' of group '{g}' must have the same number of dataframes "
                    f"as specified in 'n_prev' ({self.n_dfs_per_group})."
                )
            windows = []
            for i, table in enumerate(group):
                rows = self.n_prev[i] + 1
                schema = table.schema
                if fill is None:
                    arrays = [_zeros(field.type, rows) for field in schema]
                else:
                    arrays = self._fill_arrays(fill[g][i], g, i, schema, rows)
                windows.append(pa.Table.from_arrays(arrays, schema=schema))
            carry.append(windows)
        return carry

    def _fill_arrays(
        self, frame: Any, g: int, i: int, schema: pa.Schema, rows: int
    ) -> list[pa.Array]:
        if not isinstance(frame, pd.DataFrame):
            raise ParameterTypeError(
                f"df '{i}' in group '{g}' of 'fill_values_init' must be a DataFrame, got "
                f"{type(frame).__name__}"
            )
        columns = [c for c in frame.columns if c != self.on]
        if columns != schema.names:
            raise InvalidParameterError(
                f"df '{i}' in group '{g}' of 'fill_values_init' must have the same columns as "
                "corresponding df in 'df_groups'."
            )
        if len(frame) != rows:
            raise InvalidParameterError(
                f"df '{i}' in group '{g}' of 'fill_values_init' must have {rows} rows (n_prev + 1)."
            )
        arrays = []
        for field in schema:
            column = column_to_arrow(frame[field.name])
            try:
                arrays.append(column.cast(field.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaMismatchError(
                    f"df '{i}' in group '{g}' of 'fill_values_init': column '{field.name}' "
                    f"cannot be converted to the column's type {field.type} ({exc})"
                ) from exc
        return arrays

    def _checked_carry(self, chunks: list[list[pa.Table]]) -> list[list[pa.Table]]:
        carry = self.carry
        if not isinstance(carry, list) or len(carry) != len(chunks):
            raise InvalidParameterError(
                "'carry' does not match 'df_groups': it must be a list with one list of "
                f"windows per group ({len(chunks)} groups); reset it to None to start over."
            )
        for g, (windows, group) in enumerate(zip(carry, chunks, strict=True)):
            if not isinstance(windows, list) or len(windows) != self.n_dfs_per_group:
                raise InvalidParameterError(f"'carry' of group '{g}' must hold one table per frame")
            for i, (window, table) in enumerate(zip(windows, group, strict=True)):
                if not isinstance(window, pa.Table) or window.num_rows != self.n_prev[i] + 1:
                    raise InvalidParameterError(
                        f"'carry' of frame '{i}' in group '{g}' must be a pyarrow Table of "
                        f"{self.n_prev[i] + 1} rows (n_prev + 1)"
                    )
                if window.schema.names != table.schema.names:
                    raise SchemaMismatchError(
                        f"dataframe '{i}' in group '{g}' has columns {table.schema.names} but its "
                        f"carry window holds {window.schema.names}"
                    )
        return carry

    # -- merge ----------------------------------------------------------------

    def merge(
        self,
        main: Any,
        *,
        df_groups: Sequence[Any],
        combinations: Any = None,
        copy: bool = True,
        check_sorted: bool = False,
    ) -> pd.DataFrame:
        """As-of join ``df_groups`` onto ``main``; returns a new DataFrame.

        ``main`` holds sorted keys (numpy array, Series, Index or list).
        ``df_groups`` is a flat list of ``n_dfs_per_group`` frames when
        ``combinations`` is None, else a list of such groups, and
        ``combinations`` a ``(len(main), n_positions)`` integer array of group
        indices. ``main`` and every ``on`` column are always checked to be
        sorted (``check_sorted`` is accepted for compatibility), and the
        result is always a new frame (``copy`` likewise).

        Returns
        -------
        DataFrame
            Column ``on`` holding ``main``, then per join position, frame,
            column and ``k = n_prev..0`` the value columns, named
            ``<prefix><column>`` or ``<prefix><column>_<k>``.

        Examples
        --------
        Two instruments, each row of ``main`` reading its own instrument's
        quotes through ``combinations``:

        >>> import numpy as np, pandas as pd
        >>> from oups import AsofMerger
        >>> a = pd.DataFrame({"ts": [1, 5], "px": [10.0, 11.0]})
        >>> b = pd.DataFrame({"ts": [2, 6], "px": [20.0, 21.0]})
        >>> merger = AsofMerger("ts", n_dfs_per_group=1, allow_exact_matches=[True])
        >>> merger.merge(np.array([5, 5, 7]), df_groups=[[a], [b]],
        ...              combinations=np.array([[0], [1], [1]]))
           ts    px
        0   5  11.0
        1   5  20.0
        2   7  21.0
        """
        groups = self._groups(df_groups, combinations)
        self._check_structure(groups)
        main_values = main.to_numpy() if isinstance(main, (pd.Series, pd.Index)) else main
        if not isinstance(main_values, np.ndarray):
            main_values = np.asarray(main_values)
        if main_values.ndim != 1:
            raise InvalidParameterError(f"'main' must be 1-D, got {main_values.ndim} dimensions")
        n = len(main_values)
        positions = self._positions(combinations, n, len(groups))
        names = self._output_names(len(positions))

        chunks: list[list[pa.Table]] = []
        ons: list[list[pa.Array]] = []
        for group in groups:
            tables, on_arrays = [], []
            for df, columns in zip(group, self._dtypes, strict=True):
                arrays = [column_to_arrow(df[c]) for c, _ in columns[:-1]]
                value_names = [c for c, _ in columns[:-1]]
                tables.append(pa.Table.from_arrays(arrays, names=value_names))
                on_arrays.append(column_to_arrow(df[self.on]))
            chunks.append(tables)
            ons.append(on_arrays)
        fresh = self.carry is None
        carry = self._initial_carry(chunks) if fresh else self._checked_carry(chunks)
        previous = carry  # with the last keys in its metadata
        chunks, carry, self._dtypes = unify_categoricals(chunks, carry, self._dtypes)
        for g, (tables, windows) in enumerate(zip(chunks, carry, strict=True)):
            for i, (table, window) in enumerate(zip(tables, windows, strict=True)):
                if table.schema.types != window.schema.types:
                    try:
                        tables[i] = table.cast(window.schema)
                    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                        raise SchemaMismatchError(
                            f"dataframe '{i}' in group '{g}' has column types "
                            f"{table.schema.types} but earlier calls had {window.schema.types}"
                        ) from exc
        on_type = ons[0][0].type
        if isinstance(main, (pd.Series, pd.Index)):
            main_arrow = column_to_arrow(pd.Series(main.array))
        elif main_values.dtype.kind in "iufmM":
            main_arrow = numpy_to_arrow(main_values)
        else:
            main_arrow = pa.array(main_values)
        check_tz(main_arrow.type, on_type, self.on)
        if main_arrow.type != on_type:
            try:
                main_arrow = main_arrow.cast(on_type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ParameterTypeError(
                    f"'main' has type {main_arrow.type} which does not compare with the "
                    f"'{self.on}' columns ({on_type}): {exc}"
                ) from exc
        if not isinstance(main, (pd.Series, pd.Index)):
            main = main_values
        if not fresh:
            check_order(main_arrow, ons, previous, self.on)
        dtypes = self._output_dtypes()
        blocks, slots = output_blocks(
            dtypes, self._output_dtypes(raw=True), chunks, carry, self.n_prev, n
        )
        out_columns, new_carry = asof_merge(
            main_arrow,
            [pa.array(p) for p in positions],
            [
                [(on, _arrays(table)) for on, table in zip(on_g, tables, strict=True)]
                for on_g, tables in zip(ons, chunks, strict=True)
            ],
            [[_arrays(window) for window in windows] for windows in carry],
            self.n_prev,
            self.allow_exact_matches,
            slots,
        )
        windows_out = [
            [
                pa.Table.from_arrays(arrays, schema=window.schema)
                for arrays, window in zip(per_group, windows, strict=True)
            ]
            for per_group, windows in zip(new_carry, carry, strict=True)
        ]
        self.carry = mark_order(windows_out, previous, main_arrow, ons)
        return assemble(main, names, dtypes, out_columns, blocks)

    def _output_dtypes(self, raw: bool = False) -> list[Any]:
        """The pandas dtype of every output value column, in output order
        (``raw``: the frames' own dtypes, before "missing" widens them)."""
        missing = self.fill_values_init == "missing" and not raw
        return [
            with_missing(dtype) if missing else dtype
            for _ in range(self._n_positions)
            for i, cols in enumerate(self._dtypes)
            for _, dtype in cols[:-1]
            for _ in range(self.n_prev[i] + 1)
        ]


def _add(seen: set[str], name: str) -> bool:
    """Adds ``name`` to ``seen``; False, so that it reads in a comprehension."""
    seen.add(name)
    return False
