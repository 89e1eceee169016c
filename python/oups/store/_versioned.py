"""The versions of a dataset: refresh, time travel, restore, retention, the lock.

A mixin of :class:`~oups.store.ordered_parquet_dataset.OrderedParquetDataset`,
kept apart from reading and writing rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from oups._oups import RawDataset, RawObjectDataset
from oups.exceptions import InvalidParameterError, ParameterTypeError
from oups.store._convert import duration_seconds, seconds, version_number

_V = TypeVar("_V", bound="Versioned")


class Versioned:
    """Versions of one dataset (see docs/dataset.md)."""

    _raw: RawDataset | RawObjectDataset
    _lock_depth: int

    def _local_raw(self, feature: str) -> RawDataset:
        """The engine object of a local dataset; ``feature`` is not offered on
        object storage yet, which this says by name."""
        if isinstance(self._raw, RawObjectDataset):
            raise InvalidParameterError(
                f"{feature} is not available yet for datasets on object storage "
                f"('{self._raw.dirpath}'); it works on local datasets."
            )
        return self._raw

    def _local_dir(self, feature: str) -> Path:
        """The directory of a local dataset (see :meth:`_local_raw`)."""
        return Path(self._local_raw(feature).dirpath)

    @property
    def version(self) -> int | None:
        """The version this object reads, None before the first write."""
        info = self._raw.info()
        return None if info.is_newly_initialized else int(info.version)

    @property
    def read_only(self) -> bool:
        """True for objects opened with ``version`` or ``as_of``, and for views."""
        return bool(self._raw.info().read_only)

    # -- versions ----------------------------------------------------------
    def refresh(self: _V) -> _V:
        """Move to the latest committed version (and return self).

        An object opened with ``version`` or ``as_of`` stays on its version.

        Examples
        --------
        >>> import tempfile, pandas as pd
        >>> from oups import OrderedParquetDataset, write
        >>> path = tempfile.mkdtemp() + "/ds"
        >>> write(path, ordered_on="t", df=pd.DataFrame({"t": [1, 2]}))
        >>> reader = OrderedParquetDataset(path)
        >>> write(path, ordered_on="t", df=pd.DataFrame({"t": [3]}))
        >>> reader.n_rows, reader.refresh().n_rows
        (2, 3)
        """
        self._raw.refresh()
        return self

    def versions(self) -> pd.DataFrame:
        """The kept versions, oldest first: ``version``, ``committed_at`` (UTC),
        ``operation``, ``n_rows``, ``n_row_groups``.

        Examples
        --------
        >>> import tempfile, pandas as pd
        >>> from oups import OrderedParquetDataset
        >>> ds = OrderedParquetDataset(tempfile.mkdtemp() + "/ds", ordered_on="t")
        >>> ds.write(df=pd.DataFrame({"t": [1, 2]}))
        >>> ds.write(df=pd.DataFrame({"t": [3]}))
        >>> ds.versions()[["version", "operation", "n_rows"]].to_dict("list")
        {'version': [1, 2], 'operation': ['write', 'write'], 'n_rows': [2, 3]}
        """
        df: pd.DataFrame = self._raw.versions().to_pandas()
        return df

    def restore(self, version: int) -> None:
        """Commit a new version equal to ``version`` (rows and key-value metadata).

        Examples
        --------
        >>> import tempfile, pandas as pd
        >>> from oups import OrderedParquetDataset
        >>> ds = OrderedParquetDataset(tempfile.mkdtemp() + "/ds", ordered_on="t")
        >>> ds.write(df=pd.DataFrame({"t": [1, 2]}))
        >>> ds.write(df=pd.DataFrame({"t": [3]}))  # a bad write, say
        >>> ds.restore(1)
        >>> ds.version, ds.to_pandas()["t"].tolist()
        (3, [1, 2])
        """
        self._restore(version)

    def _restore(self, version: int, writer: str | None = None) -> None:
        v = version_number("version", version)
        if v is None:
            raise ParameterTypeError("'version' must be an int, got None.")
        self._raw.restore(v, writer)

    def _engine(self) -> RawDataset | RawObjectDataset:
        """The native dataset, for the engine functions that take one
        (distributed writes)."""
        return self._raw

    def _file_sizes(self) -> list[int]:
        """Per row group, the bytes of its data file."""
        return list(self._raw.file_sizes())

    # Pins keep versions from vacuums (snapshots, exactly-once loops).
    def _pin(self, name: str, version: int | None = None) -> int | None:
        pinned: int | None = self._raw.pin(name, version)
        return pinned

    def _unpin(self, name: str) -> bool:
        return bool(self._raw.unpin(name))

    def _pins(self) -> dict[str, int]:
        return dict(self._raw.pins())

    def vacuum(self, keep_versions: int | None = None, older_than: Any = None) -> dict[str, Any]:
        """Delete old versions and the files only they need.

        Parameters
        ----------
        keep_versions : int, optional
            Keep this many of the most recent versions (at least 1: the
            latest is always kept).
        older_than : timedelta-like, optional
            Keep every version superseded less than this long ago (a
            ``timedelta``, ``pandas.Timedelta``, string such as ``"1h"``, or
            seconds). With neither argument, the dataset's retention applies
            (see :meth:`set_retention`; by default the 10 most recent versions).

        Returns
        -------
        dict
            ``{"versions_removed": [...], "files_removed": n}``.

        Examples
        --------
        >>> import tempfile, pandas as pd
        >>> from oups import OrderedParquetDataset
        >>> ds = OrderedParquetDataset(tempfile.mkdtemp() + "/ds", ordered_on="t")
        >>> for t in range(3):
        ...     ds.write(df=pd.DataFrame({"t": [t]}), max_n_off_target_rgs=1)
        >>> ds.vacuum(keep_versions=1)["versions_removed"]
        [1, 2]
        >>> ds.versions()["version"].tolist()
        [3]
        """
        keep = version_number("keep_versions", keep_versions)
        seconds_kept = duration_seconds("older_than", older_than)
        removed, files = self._raw.vacuum(keep, seconds_kept)
        return {"versions_removed": list(removed), "files_removed": int(files)}

    @property
    def retention(self) -> dict[str, Any]:
        """What vacuums keep besides snapshots and leased versions:
        ``{"keep_versions": n, "older_than": seconds}`` (None: no such limit;
        both None: every version)."""
        keep, secs = self._raw.retention()
        return {"keep_versions": keep, "older_than": secs}

    def set_retention(self, keep_versions: int | None = 10, older_than: Any = None) -> None:
        """Set which versions the vacuums after each commit keep (and vacuum now).

        Parameters
        ----------
        keep_versions : int or None, default 10
            Keep this many of the most recent versions (at least 1).
        older_than : timedelta-like, optional
            Also keep the versions superseded less than this long ago.

        With ``keep_versions=None`` and no ``older_than`` every version is
        kept (until :meth:`vacuum` is called with limits). The setting is
        recorded by a new version and applies to every later commit.

        Examples
        --------
        >>> import tempfile, pandas as pd
        >>> from oups import OrderedParquetDataset
        >>> ds = OrderedParquetDataset(tempfile.mkdtemp() + "/ds", ordered_on="t")
        >>> ds.write(df=pd.DataFrame({"t": [0]}))
        >>> ds.set_retention(keep_versions=None)  # keep everything
        >>> for t in range(1, 15):
        ...     ds.write(df=pd.DataFrame({"t": [t]}))
        >>> len(ds.versions()), ds.retention
        (16, {'keep_versions': None, 'older_than': None})
        """
        keep = version_number("keep_versions", keep_versions)
        self._raw.set_retention(keep, duration_seconds("older_than", older_than))

    @contextmanager
    def lock(self: _V, timeout: float | None = None) -> Iterator[_V]:
        """Hold the dataset's lock for a ``with`` block (read-modify-write).

        No other process commits while the block runs, so reads inside it see
        the latest version and writes apply to what was read. ``timeout``
        bounds the wait (the dataset's ``lock_timeout`` when None).

        Examples
        --------
        >>> import tempfile, pandas as pd
        >>> from oups import OrderedParquetDataset
        >>> ds = OrderedParquetDataset(tempfile.mkdtemp() + "/ds", ordered_on="t")
        >>> ds.write(df=pd.DataFrame({"t": [1], "n": [1]}))
        >>> with ds.lock(timeout=5):
        ...     last = ds.to_pandas()["n"].iloc[-1]
        ...     ds.write(df=pd.DataFrame({"t": [2], "n": [last + 1]}))
        >>> ds.to_pandas()["n"].tolist()
        [1, 2]
        """
        depth = self._lock_depth
        if depth == 0:
            self._raw.hold_lock(seconds("timeout", timeout))
        object.__setattr__(self, "_lock_depth", depth + 1)
        try:
            yield self
        finally:
            object.__setattr__(self, "_lock_depth", depth)
            if depth == 0:
                self._raw.release()
