"""``OrderedParquetDataset``: one dataset ordered on a column, stored as Parquet files."""

from __future__ import annotations

import copy
import json
from collections.abc import Hashable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from oups._oups import RawDataset, RawObjectDataset
from oups._pandas_compat import frame_from_arrow, frame_with_raw_columns, writable
from oups.exceptions import (
    InvalidParameterError,
    ParameterTypeError,
    ReadOnlyError,
)
from oups.store._bounds import physical_range, physical_values
from oups.store._convert import (
    arrow_name,
    ordered_on_from_json,
    ordered_on_to_json,
    seconds,
    utc_nanoseconds,
    version_number,
)
from oups.store._defaults import DEFAULT_COMPRESSION, ROW_GROUP_TARGET_SIZE
from oups.store._storage import is_url
from oups.store._storage import storage_options as _storage_options
from oups.store._versioned import Versioned

_STATS_COLUMNS = ["file_ids", "n_rows", "ordered_on_mins", "ordered_on_maxs"]


def _table_to_pandas(table: pa.Table) -> pd.DataFrame:
    # Frames must be the user's to modify: fixed-width columns are copied into
    # their own writable blocks, the others converted by pyarrow.
    return frame_from_arrow(table)


def chunk_to_pandas(batch: pa.RecordBatch) -> pd.DataFrame:
    """A slice of a group read by the engine, as a writable DataFrame."""
    return frame_from_arrow(batch)


def arrow_to_polars(table: pa.Table | pa.RecordBatch) -> Any:
    try:
        import polars as pl
    except ImportError as err:
        raise ImportError(
            "to_polars() and output='polars' need polars (pip install polars)"
        ) from err
    return pl.from_arrow(table)


def _column_names(columns: Any) -> list[str] | None:
    if columns is None:
        return None
    if isinstance(columns, str) or not isinstance(columns, (list, tuple, pd.Index)):
        raise ParameterTypeError(
            f"'columns' must be a list of column names, got {columns!r}; "
            "for one column write columns=[name]."
        )
    return [arrow_name(c) for c in columns]


def _stats_frame(table: pa.Table) -> pd.DataFrame:
    if table.num_rows == 0 and pa.types.is_null(table.schema.field("ordered_on_mins").type):
        empty: pd.DataFrame = pd.DataFrame(
            {
                "file_ids": pd.Series([], dtype="uint64"),
                "n_rows": pd.Series([], dtype="uint64"),
                "ordered_on_mins": pd.Series([], dtype=object),
                "ordered_on_maxs": pd.Series([], dtype=object),
            }
        )
        return empty
    df: pd.DataFrame = table.to_pandas()
    return df


class OrderedParquetDataset(Versioned):
    """A dataset of rows ordered on one column, one Parquet file per row group.

    Every write commits a new numbered version. An object reads the version
    that was the latest when it was opened, without taking any lock, and keeps
    reading it until :meth:`refresh` (or one of its own writes) moves it to the
    latest: a writer in another process never waits for it, and it never sees
    half of a write. A write takes the dataset's lock (an OS file lock) only
    for its own duration and always applies to the latest version;
    :meth:`lock` holds the lock across several calls. A dataset that does not
    exist yet is created by its first :meth:`write`; merely opening or reading
    it creates nothing on disk.

    Parameters
    ----------
    dirpath : str or Path
        The dataset directory. Its metadata file is ``<dirpath>_opdmd`` and
        its lock file ``<dirpath>.lock``, beside it.
    ordered_on : str or tuple of str, optional
        Checked against the stored ordered column when given.
    lock_timeout : float, optional
        Seconds a write waits for the lock; ``None`` waits as long as needed.
        Raises :class:`oups.exceptions.LockTimeoutError` (a ``TimeoutError``).
    lock_lifetime : float, optional
        Accepted for compatibility and ignored: OS locks need no expiry,
        since the operating system releases them when their holder dies.
    version : int, optional
        Read this version (see :meth:`versions`) instead of the latest. The
        object is read-only.
    as_of : datetime-like, optional
        Read the last version committed at or before this time (a
        ``datetime``, ``pandas.Timestamp``, ``numpy.datetime64`` or string;
        naive times are UTC). The object is read-only.
    storage_options : dict, optional
        For a ``dirpath`` that is an object-storage URL (``s3://bucket/prefix/ds``,
        ``gs://``, ``az://``, ``memory://``): client settings, named as delta-rs
        and obstore name them (``aws_access_key_id``, ``aws_secret_access_key``,
        ``aws_region``, ``aws_endpoint_url``, ...). They override the usual
        environment variables (``AWS_*``, ``GOOGLE_*``, ``AZURE_*``). See
        docs/storage.md.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from oups import OrderedParquetDataset
    >>> ds = OrderedParquetDataset(tempfile.mkdtemp() + "/ticks", ordered_on="ts")
    >>> ds.write(df=pd.DataFrame({"ts": [1, 2, 3], "px": [10.0, 10.5, 10.2]}))
    >>> ds.to_pandas()["px"].tolist()
    [10.0, 10.5, 10.2]
    >>> stats = ds.row_group_stats
    >>> stats["n_rows"].tolist(), stats["ordered_on_mins"].tolist()
    ([3], [1])
    """

    #: The client options of a URL, to open the dataset again elsewhere.
    _options: dict[str, str]

    def __init__(
        self,
        dirpath: str | Path,
        ordered_on: Hashable | None = None,
        lock_timeout: float | None = None,
        lock_lifetime: float | None = None,
        *,
        version: int | None = None,
        as_of: Any = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(dirpath, (str, Path)):
            raise ParameterTypeError(
                f"'dirpath' must be a str or a Path, got {type(dirpath).__name__}."
            )
        options = _storage_options(storage_options)
        timeout = seconds("lock_timeout", lock_timeout)
        lifetime = seconds("lock_lifetime", lock_lifetime)
        # Ignored, so never seen by the engine: its one check is here.
        if lifetime is not None and not lifetime >= 0:
            raise InvalidParameterError(f"'lock_lifetime' must be >= 0 seconds, got {lifetime}.")
        pinned = (version_number("version", version), utc_nanoseconds("as_of", as_of))
        if isinstance(dirpath, str) and is_url(dirpath):
            raw: RawDataset | RawObjectDataset = RawObjectDataset(
                dirpath, ordered_on_to_json(ordered_on), options, *pinned
            )
            object.__setattr__(self, "_dirpath", raw.dirpath)
            object.__setattr__(self, "_raw", raw)
        else:
            if options:
                raise InvalidParameterError(
                    "'storage_options' is for object-storage URLs (s3://, gs://, az://, "
                    f"memory://); {str(dirpath)!r} is a local path."
                )
            resolved = Path(dirpath).expanduser().resolve()
            object.__setattr__(self, "_dirpath", resolved)
            object.__setattr__(
                self,
                "_raw",
                RawDataset(str(resolved), ordered_on_to_json(ordered_on), timeout, *pinned),
            )
        object.__setattr__(self, "_lock_depth", 0)
        # Kept to open the dataset again elsewhere (dask workers).
        object.__setattr__(self, "_options", options)

    # -- state -------------------------------------------------------------
    @property
    def dirpath(self) -> Path | str:
        """The dataset directory (absolute), or its URL on object storage."""
        return self._dirpath  # type: ignore[attr-defined,no-any-return]

    @property
    def is_remote(self) -> bool:
        """Whether the dataset lives on object storage (its ``dirpath`` is a URL)."""
        return isinstance(self._dirpath, str)  # type: ignore[attr-defined]

    @property
    def ordered_on(self) -> str | tuple[str, ...] | None:
        """The ordered column (a tuple for a column MultiIndex), or None if not set yet."""
        return ordered_on_from_json(self._raw.info().ordered_on_json)

    @property
    def key_value_metadata(self) -> dict[str, Any]:
        """User metadata (a copy: change it through ``write(key_value_metadata=...)``)."""
        return dict(json.loads(self._raw.info().key_value_metadata_json))

    @property
    def row_group_stats(self) -> pd.DataFrame:
        """One row per row group: ``file_ids``, ``n_rows``, ``ordered_on_mins``/``_maxs``."""
        return _stats_frame(self._raw.stats())

    @property
    def max_file_id(self) -> int:
        """The largest file id, -1 when there is no row group."""
        return int(self._raw.info().max_file_id)

    @property
    def is_newly_initialized(self) -> bool:
        """True while no metadata file exists for this dataset."""
        return bool(self._raw.info().is_newly_initialized)

    def __len__(self) -> int:
        return int(self._raw.info().n_row_groups)

    @property
    def n_rows(self) -> int:
        """The number of rows (of this view's row groups, for a view).

        Examples
        --------
        >>> import tempfile, pandas as pd
        >>> from oups import OrderedParquetDataset
        >>> ds = OrderedParquetDataset(tempfile.mkdtemp() + "/ds", ordered_on="t")
        >>> ds.write(df=pd.DataFrame({"t": range(5)}), row_group_target_size=2)
        >>> ds.n_rows, ds[1:].n_rows
        (5, 3)
        """
        return int(self.row_group_stats["n_rows"].sum())

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}('{self.dirpath}', ordered_on={self.ordered_on!r}, "
            f"row_groups={len(self)})"
        )

    @property
    def ordered_type(self) -> pa.DataType | None:
        """The Arrow type of the ordered column, or None before the first row group."""
        t = self._raw.stats().schema.field("ordered_on_mins").type
        return None if pa.types.is_null(t) else t

    def _physical_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Each row group's min and max of the ordered column, as the numbers
        range bounds are compared with (see :func:`physical_range`)."""
        stats = self._raw.stats()
        return (
            physical_values(stats.column("ordered_on_mins")),
            physical_values(stats.column("ordered_on_maxs")),
        )

    # -- reading -----------------------------------------------------------
    def _file_ids(self) -> list[int] | None:
        return None

    def to_arrow(
        self, start: Any = None, end_excl: Any = None, columns: list[Any] | None = None
    ) -> pa.Table | None:
        """Rows as a pyarrow Table, or None when there is no row group.

        Parameters
        ----------
        start, end_excl : optional
            Keep rows with ``start <= ordered_on < end_excl``; only the row
            groups intersecting the range are opened. For datetime columns
            the bounds may be strings such as ``"2024-01-31"``.
        columns : list, optional
            Columns to read, in this order (all by default).

        Examples
        --------
        >>> import tempfile, pandas as pd
        >>> from oups import OrderedParquetDataset
        >>> ds = OrderedParquetDataset(tempfile.mkdtemp() + "/ds", ordered_on="ts")
        >>> ds.write(df=pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=4, freq="D"),
        ...                           "v": [1, 2, 3, 4]}))
        >>> ds.to_arrow(start="2024-01-02", end_excl="2024-01-04", columns=["v"])["v"].to_pylist()
        [2, 3]
        """
        ids = self._file_ids()
        if ids is not None and not ids:
            return None
        names = _column_names(columns)
        if start is None and end_excl is None and names is None:
            table: pa.Table | None = self._raw.read(ids)
            return table
        prange = physical_range(start, end_excl, self.ordered_type)
        table = self._raw.read_range(ids, prange.start, prange.end_excl, names)
        if table is None:
            return None
        if prange.empty:
            table = table.slice(0, 0)
        if names is not None:
            table = table.select(names)
        return table

    def to_pandas(
        self, start: Any = None, end_excl: Any = None, columns: list[Any] | None = None
    ) -> pd.DataFrame | None:
        """Rows as a DataFrame (default index), or None when there is no row group.

        ``start``, ``end_excl`` and ``columns`` select as in :meth:`to_arrow`.

        Examples
        --------
        >>> import tempfile, pandas as pd
        >>> from oups import OrderedParquetDataset
        >>> ds = OrderedParquetDataset(tempfile.mkdtemp() + "/ds", ordered_on="t")
        >>> ds.write(df=pd.DataFrame({"t": range(10), "v": range(10, 20)}),
        ...          row_group_target_size=4)
        >>> ds.to_pandas(start=3, end_excl=6, columns=["v"])["v"].tolist()
        [13, 14, 15]
        """
        if start is None and end_excl is None and columns is None:
            ids = self._file_ids()
            if ids is not None and not ids:
                return None
            parts = self._raw.read_private(ids)
            return None if parts is None else writable(frame_with_raw_columns(*parts))
        table = self.to_arrow(start, end_excl, columns)
        return None if table is None else _table_to_pandas(table)

    def to_polars(
        self, start: Any = None, end_excl: Any = None, columns: list[Any] | None = None
    ) -> Any:
        """Rows as a polars DataFrame, or None when there is no row group.

        ``start``, ``end_excl`` and ``columns`` select as in :meth:`to_arrow`;
        polars must be installed.

        Examples
        --------
        >>> import tempfile, pandas as pd
        >>> from oups import OrderedParquetDataset
        >>> ds = OrderedParquetDataset(tempfile.mkdtemp() + "/ds", ordered_on="t")
        >>> ds.write(df=pd.DataFrame({"t": [1, 2, 3], "v": [1.5, 2.5, 3.5]}))
        >>> ds.to_polars(start=2)["v"].to_list()
        [2.5, 3.5]
        """
        table = self.to_arrow(start, end_excl, columns)
        return None if table is None else arrow_to_polars(table)

    def __getitem__(self, item: int | slice | list[int]) -> ReadOnlyOrderedParquetDataset:
        """A read-only view of some row groups, by position (like a sequence)."""
        stats = self.row_group_stats
        return ReadOnlyOrderedParquetDataset._from_parent(self, stats, item)

    # -- writing -----------------------------------------------------------
    def write(
        self,
        *,
        df: Any = None,
        ordered_on: Hashable | None = None,
        row_group_target_size: int | str = ROW_GROUP_TARGET_SIZE,
        duplicates_on: Hashable | list[Hashable] | None = None,
        max_n_off_target_rgs: int | None = None,
        key_value_metadata: dict[str, Any] | None = None,
        compression: str = DEFAULT_COMPRESSION,
        lock_timeout: float | None = None,
        progress: bool = False,
    ) -> None:
        """Merge data into this dataset; see :func:`oups.write` for the parameters.

        ``ordered_on`` may be omitted once the dataset has one; when given it
        must match it. ``lock_timeout``, when given, bounds this write's wait for
        the lock (if this object does not hold it) instead of the timeout the
        dataset was opened with.

        Examples
        --------
        >>> import tempfile, pandas as pd
        >>> from oups import OrderedParquetDataset
        >>> ds = OrderedParquetDataset(tempfile.mkdtemp() + "/ds")
        >>> ds.write(ordered_on="t", df=pd.DataFrame({"t": [1, 3], "v": [1.0, 3.0]}))
        >>> ds.write(df=pd.DataFrame({"t": [2, 3], "v": [2.0, 9.0]}), duplicates_on="t")
        >>> ds.to_pandas()["v"].tolist()  # 2 inserted in order, 3 replaced
        [1.0, 2.0, 9.0]
        """
        from oups.store.write import write

        write(
            self,
            ordered_on=self.ordered_on if ordered_on is None else ordered_on,
            df=df,
            row_group_target_size=row_group_target_size,
            duplicates_on=duplicates_on,
            max_n_off_target_rgs=max_n_off_target_rgs,
            key_value_metadata=key_value_metadata,
            compression=compression,
            lock_timeout=lock_timeout,
            progress=progress,
        )

    def remove_from_disk(self, preserve_metadata: bool = False, release_lock: bool = True) -> None:
        """Delete the dataset and every version of it (the latest record first,
        so a crash cannot half-delete it).

        With ``preserve_metadata`` the key-value metadata is kept in memory and
        written back by the next :meth:`write`. With ``release_lock=False`` the
        object keeps holding the lock afterwards (until :meth:`close`), so no
        other process recreates the dataset meanwhile.

        Examples
        --------
        >>> import os, tempfile, pandas as pd
        >>> from oups import OrderedParquetDataset
        >>> path = tempfile.mkdtemp() + "/ds"
        >>> ds = OrderedParquetDataset(path, ordered_on="t")
        >>> ds.write(df=pd.DataFrame({"t": [1, 2]}))
        >>> ds.remove_from_disk()
        >>> os.path.exists(path), os.path.exists(path + "_opdmd"), len(ds)
        (False, False, 0)
        """
        if not release_lock and not self.is_remote:
            self._raw.hold_lock(None)
        self._raw.remove_from_disk(bool(preserve_metadata))
        if release_lock:
            self._raw.release()

    def close(self) -> None:
        """Release the lock if this object holds it (see :meth:`lock`).

        ``with OrderedParquetDataset(path) as ds:`` calls it on exit. Reading
        needs no lock, so a closed object can still be read.

        Examples
        --------
        >>> import tempfile, pandas as pd
        >>> from oups import OrderedParquetDataset, write
        >>> path = tempfile.mkdtemp() + "/ds"
        >>> write(path, ordered_on="t", df=pd.DataFrame({"t": [1, 2]}))
        >>> with OrderedParquetDataset(path) as ds:
        ...     len(ds)
        1
        """
        self._raw.release()

    def __enter__(self) -> OrderedParquetDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ReadOnlyOrderedParquetDataset(OrderedParquetDataset):
    """A snapshot of some row groups of a dataset; it cannot write.

    It shares its parent's lock and keeps it alive while the view exists.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from oups import OrderedParquetDataset
    >>> ds = OrderedParquetDataset(tempfile.mkdtemp() + "/ds", ordered_on="t")
    >>> ds.write(df=pd.DataFrame({"t": range(6)}), row_group_target_size=2)
    >>> view = ds[1:]
    >>> len(view), view.to_pandas()["t"].tolist()
    (2, [2, 3, 4, 5])
    >>> view.write(df=pd.DataFrame({"t": [9]}))
    Traceback (most recent call last):
    ...
    oups.exceptions.ReadOnlyError: cannot call 'write' on a read-only dataset.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ReadOnlyError("views are made by indexing a dataset: ds[i], ds[a:b], ds[[i, j]].")

    @classmethod
    def _from_parent(
        cls, parent: OrderedParquetDataset, stats: pd.DataFrame, item: Any
    ) -> ReadOnlyOrderedParquetDataset:
        n = len(stats)
        if isinstance(item, (bool, np.bool_)):
            raise ParameterTypeError("a dataset index must be an int, a slice or a list of ints.")
        if isinstance(item, (int, np.integer)):
            pos = int(item)
            if not -n <= pos < n:
                raise IndexError(f"row group index {pos} is out of range for {n} row groups.")
            selected = stats.iloc[[pos % n]]
        elif isinstance(item, slice):
            selected = stats.iloc[item]
        elif isinstance(item, list) and all(
            isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in item
        ):
            try:
                selected = stats.iloc[[int(i) for i in item]]
            except IndexError as err:
                raise IndexError(f"row group index out of range for {n} row groups.") from err
        else:
            raise ParameterTypeError(
                f"a dataset index must be an int, a slice or a list of ints, "
                f"got {type(item).__name__}."
            )
        view = object.__new__(cls)
        object.__setattr__(view, "_dirpath", parent.dirpath)
        object.__setattr__(view, "_raw", parent._raw)
        object.__setattr__(view, "_options", parent._options)
        object.__setattr__(view, "_parent", parent)
        object.__setattr__(view, "_stats", selected)
        object.__setattr__(view, "_kvm", copy.deepcopy(parent.key_value_metadata))
        object.__setattr__(view, "_ordered_on", parent.ordered_on)
        object.__setattr__(view, "_new", parent.is_newly_initialized)
        return view

    def __setattr__(self, name: str, value: Any) -> None:
        raise ReadOnlyError(f"cannot set attribute '{name}' on a read-only dataset.")

    @property
    def ordered_on(self) -> str | tuple[str, ...] | None:
        return self._ordered_on  # type: ignore[attr-defined,no-any-return]

    @property
    def key_value_metadata(self) -> dict[str, Any]:
        return copy.deepcopy(self._kvm)  # type: ignore[attr-defined]

    @property
    def row_group_stats(self) -> pd.DataFrame:
        return self._stats.copy()  # type: ignore[attr-defined,no-any-return]

    @property
    def max_file_id(self) -> int:
        ids = self._stats["file_ids"]  # type: ignore[attr-defined]
        return int(ids.max()) if len(ids) else -1

    @property
    def is_newly_initialized(self) -> bool:
        return bool(self._new)  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self._stats)  # type: ignore[attr-defined]

    def __getitem__(self, item: int | slice | list[int]) -> ReadOnlyOrderedParquetDataset:
        return ReadOnlyOrderedParquetDataset._from_parent(self, self._stats, item)  # type: ignore[attr-defined]

    def _file_ids(self) -> list[int] | None:
        return [int(i) for i in self._stats["file_ids"]]  # type: ignore[attr-defined]

    @property
    def version(self) -> int | None:
        return self._parent.version  # type: ignore[attr-defined,no-any-return]

    @property
    def read_only(self) -> bool:
        return True

    def refresh(self) -> ReadOnlyOrderedParquetDataset:
        raise ReadOnlyError("a view cannot refresh: take a new view of the refreshed dataset.")

    def restore(self, version: int) -> None:
        raise ReadOnlyError("cannot call 'restore' on a read-only dataset.")

    def vacuum(self, keep_versions: int | None = None, older_than: Any = None) -> dict[str, Any]:
        raise ReadOnlyError("cannot call 'vacuum' on a read-only dataset.")

    def set_retention(self, keep_versions: int | None = 10, older_than: Any = None) -> None:
        raise ReadOnlyError("cannot call 'set_retention' on a read-only dataset.")

    @contextmanager
    def lock(self, timeout: float | None = None) -> Iterator[ReadOnlyOrderedParquetDataset]:
        raise ReadOnlyError("cannot call 'lock' on a read-only dataset.")
        yield self  # unreachable: makes this a generator like the method it overrides

    def write(self, **kwargs: Any) -> None:
        raise ReadOnlyError("cannot call 'write' on a read-only dataset.")

    def remove_from_disk(self, preserve_metadata: bool = False, release_lock: bool = True) -> None:
        raise ReadOnlyError("cannot call 'remove_from_disk' on a read-only dataset.")

    def close(self) -> None:
        """Views hold no lock of their own; closing one does nothing."""
