"""What SegmentedAggregator does around each engine call: its state (the
engine's part kept live between calls, the dict built when read) and the
reading of a chunk's columns, checked against that state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa

from oups._pandas_compat import column_values
from oups.exceptions import ColumnNotFoundError, InvalidParameterError, SchemaMismatchError
from oups.stateful_ops._arrow_io import frame_column, frame_columns
from oups.stateful_ops._segment_columns import (
    ENGINE_KEYS,
    NO_GROUP,
    STATE_VERSION,
    batch,
    key_array,
    prepend,
    same_type,
    untyped,
    value_array,
)


@dataclass
class Inputs:
    arrays: dict[str, pa.Array]
    types: dict[str, pa.DataType]
    types_table: pa.Table
    keys: pa.Array
    group_codes: Any
    group_values: pa.Table | None
    values: list[tuple[pa.Array, pa.DataType]]


class LiveState:
    """The state of an aggregator: ``state`` as set or read, or after a call
    the engine's live part and the Python part that goes with it."""

    # The state: as set (or built from the engine's), the engine's live part
    # after a call, and the Python part that goes with it.
    _state: dict[str, Any] | None
    _live: Any
    _meta: dict[str, Any] | None

    @property
    def state(self) -> dict[str, Any] | None:
        """What the next call continues from: None before the first row, else
        a dict of plain values, numpy arrays and pyarrow Tables, which
        persists without pickle. Between calls the engine keeps its part live;
        reading ``state`` builds the dict (once per call)."""
        if self._live is not None and self._state is None:
            meta = self._meta or {}
            engine = dict(zip(ENGINE_KEYS[meta["kind"]], self._live.export(), strict=True))
            self._state = {**meta, **engine}
        return self._state

    @state.setter
    def state(self, value: dict[str, Any] | None) -> None:
        self._state = value
        self._live = None
        self._meta = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickling (or copying) an aggregator takes its state in Arrow form:
        the live part is the engine's and does not pickle."""
        fields = dict(self.__dict__)
        fields.update(_state=self.state, _live=None, _meta=None)
        return fields

    def _keep(self, meta: dict[str, Any] | None, live: Any = None) -> None:
        """The state after a call: ``meta`` (the Python part, None to reset)
        and the engine's live part."""
        self._state = None
        self._meta = meta
        self._live = live if meta is not None else None

    def _saved(self) -> dict[str, Any] | None:
        """The Python part of the state, without building the engine's."""
        return self._meta if self._live is not None else self._state

    def _engine_state(self) -> Any:
        """The engine's part: live, or from a dict that was set."""
        if self._live is not None or self._state is None:
            return self._live
        state = self._state
        keys = ENGINE_KEYS[state.get("kind", "bins")]
        return tuple(
            batch(state[k]) if isinstance(state[k], (pa.Table, pa.RecordBatch)) else state[k]
            for k in keys
        )

    def _last_key(self) -> int | None:
        if self._live is not None:
            last: int | None = self._live.last_key
            return last
        if self._state is None:
            return None
        saved: int | None = self._state["last_key"]
        return saved


class ChunkReader(LiveState):
    """A chunk's columns as the engine reads them, with the caches that spare
    a stream the same conversions on every chunk."""

    on: str
    by: str | None
    _columns: list[str]
    _aggs: list[tuple[str, str, Any]]
    # (group values, dictionary, remap to group ids) of the latest chunk.
    _remap: tuple[pa.Table, pa.Array, list[int] | None] | None
    # (pandas CategoricalDtype of ``by``, its categories as Arrow).
    _pandas_categories: tuple[Any, pa.Array] | None

    def _inputs(self, df: Any, kind: str, expected: str) -> Inputs | None:
        """The chunk's columns as the engine reads them, checked against the
        state; None for a flush with nothing seen."""
        state = self._saved()
        typed_now = False
        if state is not None and state.get("version") != STATE_VERSION:
            raise InvalidParameterError(
                "'state' is not the state of a SegmentedAggregator of this oups version; "
                "pass None to start over"
            )
        if state is not None and state.get("kind", "bins") != expected:
            raise InvalidParameterError(
                f"'state' is the state of a {state.get('kind', 'bins')} aggregator, not of this "
                f"{expected} one; pass None to start over"
            )
        if df is None:
            if state is None:
                return None
            arrays = {f.name: pa.array([], type=f.type) for f in state["types"].schema}
        else:
            arrays = self._arrays(df, kind)
        if state is not None:
            known = state["types"].schema
            typed_now = False
            for c, a in arrays.items():
                was = known.field(c).type
                if a.null_count == len(a) and untyped(a.type):
                    # pandas gives no type to an object column without values.
                    arrays[c] = a = pa.nulls(len(a), type=was)
                if untyped(was) and not untyped(a.type):
                    # The earlier chunks held no value, so this one sets the type.
                    typed_now = True
                    continue
                if not same_type(was, a.type):
                    raise SchemaMismatchError(
                        f"column {c!r} was {known.field(c).type} in earlier chunks and is "
                        f"{a.type} now; keep each column's dtype across chunks"
                    )
        held = state.get("held") if state is not None else None
        if held is not None:
            arrays = {c: prepend(held.column(c), a) for c, a in arrays.items()}
        types = {c: a.type for c, a in arrays.items()}
        keys = key_array(arrays[self.on], self.on)
        group_values = state["groups_values"] if state else None
        by = None
        if self.by is not None:
            by = arrays[self.by]
            by = by if pa.types.is_dictionary(by.type) else by.dictionary_encode()
        group_codes, group_values = self._group_codes(by, group_values)
        kinds: dict[str, set[str]] = {c: set() for c in self._columns}
        for column, k, extra in self._aggs:
            kinds[column].add(k)
            if isinstance(extra, str):
                kinds[extra].add("wmean")
        values = [value_array(arrays[c], c, kinds[c]) for c in self._columns]
        if state is not None and not typed_now:
            types_table = state["types"]
        else:
            types_table = pa.table({c: pa.array([], type=t) for c, t in types.items()})
        return Inputs(arrays, types, types_table, keys, group_codes, group_values, values)

    def _arrays(self, df: Any, kind: str) -> dict[str, pa.Array]:
        present = frame_columns(df, kind)
        wanted = [self.on, *([self.by] if self.by else []), *self._columns]
        missing = [c for c in dict.fromkeys(wanted) if c not in present]
        if missing:
            raise ColumnNotFoundError(
                f"column(s) {missing} named by this aggregator are not in the chunk; it has "
                f"{present}"
            )
        arrays = {c: frame_column(df, kind, c) for c in dict.fromkeys(wanted) if c != self.by}
        if self.by is not None:
            arrays[self.by] = self._by_array(df, kind, self.by)
        return arrays

    def _by_array(self, df: Any, kind: str, by: str) -> pa.Array:
        """The ``by`` column as Arrow. A pandas categorical keeps its codes,
        with its categories converted once: pyarrow's conversion of a
        categorical costs 2 us per thousand rows, which a stream pays per chunk."""
        if kind == "pandas":
            column = column_values(df, by)
            if isinstance(column.dtype, pd.CategoricalDtype):
                cached = self._pandas_categories
                if cached is None or cached[0] is not column.dtype:
                    values = pa.array(column.dtype.categories.to_numpy(), from_pandas=True)
                    self._pandas_categories = cached = (column.dtype, values)
                codes = column.codes
                missing = codes < 0
                # Codes of a pandas categorical are valid by construction (-1,
                # missing, is masked): pyarrow's check would cost 60 us a chunk.
                indices = pa.array(codes, mask=missing) if missing.any() else pa.array(codes)
                return pa.DictionaryArray.from_arrays(indices, cached[1], safe=False)
        return frame_column(df, kind, by)

    def _group_codes(
        self, encoded: pa.DictionaryArray | None, known: pa.Table | None
    ) -> tuple[Any, pa.Table | None]:
        """``(codes, remap)`` for the engine (remap None when codes are group
        ids) and the table of group values in id order. Ids are given in order
        of first appearance of a dictionary value, and kept across calls."""
        if encoded is None:
            return None, None
        dictionary = encoded.dictionary
        cached = self._remap
        if (
            cached is not None
            and cached[0] is known
            and (cached[1] is dictionary or cached[1].equals(dictionary))
        ):
            return (encoded.indices, cached[2]), known
        old = known.column(0).combine_chunks() if known is not None else None
        index = {v: i for i, v in enumerate(old.to_pylist())} if old is not None else {}
        n_old = len(index)
        remap: list[int] = []
        new_values = []
        for v in dictionary.to_pylist():
            if v is None:
                remap.append(int(NO_GROUP))
                continue
            g = index.get(v)
            if g is None:
                g = index[v] = len(index)
                new_values.append(v)
            remap.append(g)
        if known is None or len(index) != n_old:
            value_type = dictionary.type
            added = pa.array(new_values, type=value_type)
            column = added if old is None else pa.concat_arrays([old.cast(value_type), added])
            known = pa.table({"value": column})
        identity = remap == list(range(len(remap)))
        self._remap = (known, dictionary, None if identity else remap)
        return (encoded.indices, self._remap[2]), known
