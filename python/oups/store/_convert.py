"""Turning user inputs into what the Rust engine takes."""

from __future__ import annotations

import json
from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from oups.exceptions import InvalidParameterError, ParameterTypeError
from oups.store.cmidx import check_cmidx


def ordered_on_to_json(ordered_on: Hashable | None) -> str:
    """The JSON form of ``ordered_on`` stored in the metadata file."""
    if ordered_on is None or ordered_on == "":
        return "null"
    if isinstance(ordered_on, tuple):
        return json.dumps([str(part) for part in ordered_on])
    if isinstance(ordered_on, str):
        return json.dumps(ordered_on)
    raise ParameterTypeError(
        f"'ordered_on' must be a column name (str, or tuple for a column MultiIndex), "
        f"got {ordered_on!r} of type {type(ordered_on).__name__}."
    )


def ordered_on_from_json(text: str) -> str | tuple[str, ...] | None:
    value = json.loads(text)
    return tuple(value) if isinstance(value, list) else value


def arrow_name(name: Hashable) -> str:
    """The Arrow field name pyarrow gives a pandas column name."""
    if isinstance(name, tuple):
        return str(tuple(str(part) for part in name))
    return str(name)


class Frame:
    """New data as an Arrow table, plus how its column names map to fields."""

    def __init__(
        self,
        table: pa.Table,
        pandas_columns: pd.Index | None,
        index_names: list[Hashable] | None = None,
    ) -> None:
        self.table = table
        self._columns = pandas_columns
        # Names of a kept pandas index: its levels are fields of the table too.
        self._index_names = index_names or []

    @property
    def num_rows(self) -> int:
        return int(self.table.num_rows)

    def field(self, name: Hashable, what: str) -> str:
        if self._columns is None:
            if isinstance(name, str) and name in self.table.column_names:
                return name
        else:
            try:
                pos = self._columns.get_loc(name)
            except (KeyError, TypeError):
                pos = None
            if isinstance(pos, (int, np.integer)):
                return str(self.table.column_names[int(pos)])
            if pos is not None:
                raise InvalidParameterError(
                    f"{what} {name!r} names several columns of 'df'; column names must be unique."
                )
            if name in self._index_names and isinstance(name, str):
                return name
        # Not a column: the engine refuses it, naming the columns it has.
        return arrow_name(name)


def to_frame(df: Any) -> Frame | None:
    """Converts a pandas DataFrame or any Arrow tabular object."""
    if df is None:
        return None
    if isinstance(df, pd.DataFrame):
        if isinstance(df.columns, pd.MultiIndex):
            check_cmidx(df.columns)
        else:
            _check_labels(df.columns)
        if df.columns.has_duplicates:
            raise InvalidParameterError(
                f"'df' has duplicate column names {list(df.columns[df.columns.duplicated()])}; "
                "column names must be unique."
            )
        # An unnamed integer index is positional (what RangeIndex, filtering
        # and concatenation leave): it means nothing once rows are merged, and
        # storing it would make every later frame without it a schema error.
        # Any other index (named, or of timestamps, strings...) is stored as
        # columns and comes back as the index, as with pd.read_parquet.
        keep_index = _meaningful_index(df.index)
        index_names = [n for n in df.index.names if n is not None] if keep_index else []
        try:
            table = None if keep_index else _plain_numeric_table(df)
            if table is None:
                table = pa.Table.from_pandas(df, preserve_index=keep_index)
            if isinstance(df.columns, pd.MultiIndex):
                table = _with_column_levels(table, df)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as err:
            raise ParameterTypeError(f"'df' cannot be converted to Arrow: {err}") from err
        return Frame(table, df.columns, index_names)
    if isinstance(df, pa.RecordBatch):
        return Frame(pa.Table.from_batches([df]), None)
    if isinstance(df, pa.Table):
        return Frame(df, None)
    if hasattr(df, "__arrow_c_stream__") or hasattr(df, "__arrow_c_array__"):
        return Frame(pa.table(df), None)
    raise ParameterTypeError(
        f"'df' must be a pandas DataFrame, an Arrow table or record batch, or any object with "
        f"'__arrow_c_stream__' (polars...), got {type(df).__name__}."
    )


_NAT = np.iinfo(np.int64).min


def _plain_numeric_table(df: pd.DataFrame) -> pa.Table | None:
    """``pa.Table.from_pandas(df, preserve_index=False)`` without a copy, for a
    frame of numeric and datetime columns without NaN or NaT; None otherwise.

    pyarrow builds a validity bitmap for every float column of a frame (a NaN
    from pandas is a null), a pass as long as the write itself. The values are
    handed over as they are when none is missing; the schema and its pandas
    metadata are those pyarrow gives the frame's first zero rows, which depend
    on the dtypes alone.
    """
    if isinstance(df.columns, pd.MultiIndex):
        return None
    arrays = []
    for i in range(df.shape[1]):
        values = _plain_values(df.iloc[:, i])
        if values is None:
            return None
        arrays.append(values)
    schema = pa.Table.from_pandas(df.iloc[:0], preserve_index=False).schema
    columns = [
        pa.Array.from_buffers(field.type, len(df), [None, pa.py_buffer(values)])
        for field, values in zip(schema, arrays, strict=True)
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _plain_values(column: pd.Series) -> np.ndarray | None:
    """The column's values as Arrow would hold them, when they need no mask."""
    dtype = column.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        values = np.asarray(column.array._ndarray)
    elif isinstance(dtype, np.dtype) and dtype.kind in "iufMm" and dtype.itemsize > 1:
        values = column.to_numpy(copy=False)
    else:
        return None
    if values.ndim != 1 or not values.flags.c_contiguous or values.dtype.byteorder == ">":
        return None
    if values.dtype.kind == "f":
        # A sum is NaN when a value is (or when +inf meets -inf: the slow path,
        # which is exact too); it reads the values once without allocating.
        with np.errstate(invalid="ignore", over="ignore"):
            total = values.sum()
        if np.isnan(total):
            return None
    elif values.dtype.kind in "Mm" and (values.view(np.int64) == _NAT).any():
        return None
    return values


def _meaningful_index(index: pd.Index) -> bool:
    if any(name is not None for name in index.names):
        return True
    return not (isinstance(index, pd.RangeIndex) or pd.api.types.is_integer_dtype(index.dtype))


def _check_labels(columns: pd.Index) -> None:
    """Column labels become Parquet field names, which are strings: any other
    label would come back as a string, so it is refused."""
    for label in columns:
        if not isinstance(label, str):
            raise ParameterTypeError(
                f"column label {label!r} of 'df' is a {type(label).__name__}; column labels "
                "must be str (Parquet field names), for example "
                "df.columns = df.columns.map(str)."
            )


def _with_column_levels(table: pa.Table, df: pd.DataFrame) -> pa.Table:
    """Records the column MultiIndex levels, which ``preserve_index=False`` drops."""
    probe = pa.Table.from_pandas(df.iloc[:0].reset_index(drop=True), preserve_index=None)
    levels = json.loads(probe.schema.metadata[b"pandas"])["column_indexes"]
    meta = dict(table.schema.metadata or {})
    pandas_meta = json.loads(meta[b"pandas"])
    pandas_meta["column_indexes"] = levels
    meta[b"pandas"] = json.dumps(pandas_meta).encode()
    return table.replace_schema_metadata(meta)


def key_value_metadata_to_json(kvm: Any) -> str:
    if kvm is None:
        return "{}"
    if not isinstance(kvm, dict):
        raise ParameterTypeError(f"'key_value_metadata' must be a dict, got {type(kvm).__name__}.")
    for key, value in kvm.items():
        if not isinstance(key, str):
            raise ParameterTypeError(
                f"'key_value_metadata' keys must be str, got {key!r} ({type(key).__name__})."
            )
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise ParameterTypeError(
                f"'key_value_metadata' value for {key!r} must be JSON-compatible (str, int, "
                f"float, bool, None, list, dict): {err}."
            ) from err
    return json.dumps(kvm, allow_nan=False)


def seconds(name: str, value: Any) -> float | None:
    """A number of seconds as a float (the engine checks its value)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ParameterTypeError(
            f"'{name}' must be a number of seconds or None, got {type(value).__name__}."
        )
    return float(value)


def version_number(name: str, value: Any) -> int | None:
    """A version number or count as an int (the engine checks its range)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ParameterTypeError(f"'{name}' must be an int or None, got {type(value).__name__}.")
    if value < 0:
        raise InvalidParameterError(f"'{name}' must be >= 0, got {value}.")
    return int(value)


def utc_nanoseconds(name: str, value: Any) -> int | None:
    """A point in time as nanoseconds since the epoch, UTC (naive times are UTC)."""
    if value is None:
        return None
    if isinstance(value, (bool, int, float, np.number)):
        raise ParameterTypeError(
            f"'{name}' must be a datetime, pandas.Timestamp, numpy.datetime64 or string, "
            f"got {type(value).__name__}."
        )
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as err:
        raise InvalidParameterError(f"'{name}' is not a point in time: {value!r} ({err}).") from err
    if ts is pd.NaT:
        raise InvalidParameterError(f"'{name}' must be a point in time, got NaT.")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value)


def duration_seconds(name: str, value: Any) -> float | None:
    """A duration as seconds: a timedelta, a pandas offset string such as "1h", or seconds."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ParameterTypeError(f"'{name}' must be a duration, got bool.")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    try:
        td = pd.Timedelta(value)
    except (TypeError, ValueError) as err:
        raise InvalidParameterError(
            f"'{name}' must be a duration such as '1h' or a timedelta, got {value!r}."
        ) from err
    if td is pd.NaT:
        raise InvalidParameterError(f"'{name}' must be a duration, got NaT.")
    return float(td.total_seconds())
