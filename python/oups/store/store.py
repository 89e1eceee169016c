"""``Store``: a sorted, dict-like collection of ordered datasets named by keys."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from oups._oups import (
    RawIntersections,
    metadata_path,
)
from oups._pandas_compat import frame_with_raw_columns
from oups._progress import check_progress, progress_bar
from oups.exceptions import (
    InvalidParameterError,
    OrderedOnMismatchError,
    ParameterTypeError,
)
from oups.store._bounds import physical_range
from oups.store._convert import seconds
from oups.store._snapshots import Snapshots, snapshot_name
from oups.store._storage import is_url
from oups.store._storage import storage_options as _storage_options
from oups.store._to_dask import DaskFrames
from oups.store.indexer import check_key_class, is_toplevel, key_class, key_parts, keys_from_columns
from oups.store.ordered_parquet_dataset import (
    OrderedParquetDataset,
    arrow_to_polars,
    chunk_to_pandas,
)

__all__ = ["Store"]


class Store(Snapshots, DaskFrames):
    """A collection of :class:`OrderedParquetDataset`, one per key, under one directory.

    Keys are instances of a ``@toplevel`` class (the *indexer*); a key's
    dataset lives in ``basepath / key.to_path()``. The store reads the disk
    each time it is asked which keys exist, so datasets written by another
    ``Store``, by :func:`oups.write` or by another process are seen at once.
    Looking (``in``, ``len``, iteration, reading unknown keys) never creates
    files or directories.

    Parameters
    ----------
    basepath : str or Path
        The store's directory (created by the first write).
    indexer : @toplevel class (or instance)
        The key class.
    snapshot : str, optional
        Read the named snapshot (see :meth:`snapshot`): the store then holds
        exactly the datasets of the snapshot, each at its recorded version,
        and is read-only.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from oups import Store, toplevel
    >>> @toplevel
    ... class Ticker:
    ...     symbol: str
    ...     year: int
    >>> store = Store(tempfile.mkdtemp(), Ticker)
    >>> store[Ticker("AAPL", 2024)].write(
    ...     ordered_on="ts", df=pd.DataFrame({"ts": [1, 2], "px": [1.0, 2.0]})
    ... )
    >>> list(store), Ticker("AAPL", 2024) in store, len(store)
    ([Ticker(symbol='AAPL', year=2024)], True, 1)
    """

    def __init__(
        self,
        basepath: str | os.PathLike[str],
        indexer: Any,
        *,
        snapshot: str | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        if not is_toplevel(indexer):
            name = getattr(indexer, "__name__", None) or type(indexer).__name__
            raise ParameterTypeError(f"{name} has to be '@toplevel' decorated.")
        if not isinstance(basepath, (str, os.PathLike)):
            raise ParameterTypeError(
                f"'basepath' must be a str or a Path, got {type(basepath).__name__}."
            )
        self._options = _storage_options(storage_options)
        self._basepath: Path | str
        if isinstance(basepath, str) and is_url(basepath):
            self._basepath = basepath.rstrip("/")
        elif self._options:
            raise InvalidParameterError(
                "'storage_options' is for object-storage URLs (s3://, gs://, az://, "
                f"memory://); {str(basepath)!r} is a local path."
            )
        else:
            self._basepath = Path(basepath).expanduser().resolve()
        self._indexer = key_class(indexer)
        self._snapshot: str | None = None
        self._versions: dict[Any, int] | None = None
        if snapshot is not None:
            self._snapshot = snapshot_name(snapshot)
            self._versions = self._snapshot_versions(self._snapshot)

    @property
    def basepath(self) -> Path | str:
        """The store's directory (absolute), or its URL on object storage."""
        return self._basepath

    @property
    def is_remote(self) -> bool:
        """Whether the store lives on object storage (its ``basepath`` is a URL)."""
        return isinstance(self._basepath, str)

    def _local_base(self, feature: str) -> Path:
        """The directory of a local store; ``feature`` is not offered on object
        storage yet, which this says by name."""
        if isinstance(self._basepath, str):
            raise InvalidParameterError(
                f"{feature} is not available yet for stores on object storage "
                f"('{self._basepath}'); it works on local stores."
            )
        return self._basepath

    @property
    def indexer(self) -> Any:
        """The ``@toplevel`` key class."""
        return self._indexer

    @property
    def keys(self) -> list[Any]:
        """The keys of all datasets on disk, sorted (a fresh list on each access)."""
        if self._versions is not None:
            return sorted(self._versions)
        schema = self._indexer._oups_schema
        if isinstance(self._basepath, str):
            columns = schema.discover_url(self._basepath, self._options)
        else:
            columns = schema.discover(str(self._basepath))
        return keys_from_columns(self._indexer, columns)

    def __len__(self) -> int:
        if self._versions is not None:
            return len(self._versions)
        if self.is_remote or any(
            hasattr(level.cls, "__post_init__") for level in self._indexer._oups_levels
        ):
            return len(self.keys)  # the class may refuse some names
        return int(self._indexer._oups_schema.count(str(self._basepath)))

    def __iter__(self) -> Iterator[Any]:
        return iter(self.keys)

    def __contains__(self, key: object) -> bool:
        if type(key) is not self._indexer:
            return False
        if self._versions is not None:
            return key in self._versions
        try:
            where = self._dirpath(key)
        except (ValueError, TypeError):
            return False  # a key the store refuses names no dataset, as in list(store)
        if isinstance(where, str):
            return not OrderedParquetDataset(
                where, storage_options=self._options
            ).is_newly_initialized
        return bool(metadata_path(where).is_file())

    def __repr__(self) -> str:
        return f"Store('{self._basepath}', {self._indexer.__name__}, {len(self)} datasets)"

    def _dirpath(self, key: Any) -> Path | str:
        check_key_class(key, self._indexer)
        # key_parts validates the key even when it was built with check=False.
        parts = key_parts(key)
        if isinstance(self._basepath, str):
            return "/".join([self._basepath, *parts])
        path = self._basepath.joinpath(*parts)
        # A level directory may be a symlink to elsewhere: the dataset must
        # still resolve inside the store, or list(store) would not see it.
        if not path.resolve().is_relative_to(self._basepath):
            raise InvalidParameterError(
                f"key {key!r} resolves to {path.resolve()}, outside the store's directory "
                f"{self._basepath}; remove the link or use another key."
            )
        return path

    def _meta_path(self, key: Any) -> Path:
        return Path(metadata_path(self._local_dir(key)))

    def _local_dir(self, key: Any) -> Path:
        return Path(self._dirpath(key)) if not self.is_remote else self._local_base("this")

    def get(self, key: Any, **kwargs: Any) -> OrderedParquetDataset:
        """The dataset of ``key``; ``kwargs`` go to :class:`OrderedParquetDataset`
        (``ordered_on``, ``lock_timeout``, ``lock_lifetime``).

        A key without a dataset gives an empty dataset that its first write creates.

        Examples
        --------
        >>> import tempfile, pandas as pd
        >>> from oups import Store, toplevel
        >>> @toplevel
        ... class Sensor:
        ...     site: str
        >>> store = Store(tempfile.mkdtemp(), Sensor)
        >>> ds = store.get(Sensor("north"), lock_timeout=5)
        >>> len(ds), Sensor("north") in store  # nothing on disk yet
        (0, False)
        >>> ds.write(ordered_on="ts", df=pd.DataFrame({"ts": [1, 2]}))
        >>> Sensor("north") in store
        True
        """
        if self._versions is not None:
            if key not in self._versions:
                raise KeyError(f"key '{key}' is not in snapshot {self._snapshot!r}.")
            if "version" in kwargs or "as_of" in kwargs:
                raise InvalidParameterError(
                    "a snapshot store reads the snapshot's versions: do not pass 'version' "
                    "or 'as_of'."
                )
            kwargs["version"] = self._versions[key]
        if self._options:
            kwargs.setdefault("storage_options", self._options)
        return OrderedParquetDataset(self._dirpath(key), **kwargs)

    def __getitem__(self, key: Any) -> OrderedParquetDataset:
        return self.get(key)

    def __delitem__(self, key: Any) -> None:
        """Removes the dataset's files, then its empty parent directories (never the base)."""
        self._refuse_snapshot("delete a dataset")
        if key not in self:
            raise KeyError(f"key '{key}' not found in store.")
        where = self._dirpath(key)
        ds = self.get(key)
        ds.remove_from_disk(release_lock=True)
        if isinstance(where, str):
            return  # object storage has no directories to remove
        dirpath = where
        parent = dirpath.parent
        while parent != self._basepath and self._basepath in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def iter_intersections(
        self,
        keys: Iterable[Any],
        start: Any = None,
        n_prev: int | Iterable[int] = 0,
        end_excl: Any = None,
        *,
        lock_timeout: float | None = None,
        progress: bool = False,
        output: str = "pandas",
        snapshot: str | None = None,
    ) -> Iterator[dict[Any, Any]]:
        """Iterate synchronised chunks of several datasets over ``[start, end_excl)``.

        Each chunk is a dict ``{key: DataFrame}`` holding the rows of each
        participating dataset between two consecutive chunk edges; chunk edges
        are where the row groups of any dataset begin (row groups sharing a
        bound value count as one). A dataset participates when its row groups
        intersect the range; it then appears in every chunk, possibly with an
        empty frame. Keys without data in the range are absent.

        Parameters
        ----------
        keys : iterable of keys
            The datasets to read, in the order used for each chunk's dict.
        start, end_excl : optional
            Bounds on the ordered column. For datetime columns they may be
            strings such as ``"2024-01-31 09:30"``.
        n_prev : int or list of int, default 0
            Rows just before ``start`` to prepend to the first chunk of each
            dataset (a list aligns with ``keys``); used only with ``start``.
        lock_timeout : float, optional
            Accepted for compatibility: reads take no lock.
        progress : bool, default False
            Show a progress bar of the chunks (tqdm, when it is installed;
            a warning otherwise).
        output : {"pandas", "arrow", "polars"}, default "pandas"
            The type of each chunk's frames: pandas DataFrames, pyarrow
            RecordBatches (zero-copy) or polars DataFrames.
        snapshot : str, optional
            Read the datasets at the versions recorded by this snapshot (keys
            it does not hold are absent). A store opened with ``snapshot``
            uses its own.

        Notes
        -----
        Nothing is read until the first chunk is requested. The iteration
        reads the version of each dataset that was the latest at that moment
        (or the snapshot's) from start to end, whatever is written meanwhile,
        and takes no lock: writers are never delayed. One group of row groups
        per dataset is in memory at a time; the next one is read ahead on
        another thread.

        Examples
        --------
        >>> import tempfile, pandas as pd
        >>> from oups import Store, toplevel
        >>> @toplevel
        ... class K:
        ...     name: str
        >>> store = Store(tempfile.mkdtemp(), K)
        >>> store[K("a")].write(ordered_on="t", df=pd.DataFrame({"t": [1, 2, 3, 4, 5, 6]}),
        ...                     row_group_target_size=2)
        >>> store[K("b")].write(ordered_on="t", df=pd.DataFrame({"t": [2, 3, 4, 7]}),
        ...                     row_group_target_size=2)
        >>> for chunk in store.iter_intersections([K("a"), K("b")]):
        ...     print({str(k): df["t"].tolist() for k, df in chunk.items()})
        {'a': [1, 2], 'b': [2]}
        {'a': [3], 'b': [3]}
        {'a': [4], 'b': [4]}
        {'a': [5, 6], 'b': [7]}
        """
        key_list = list(keys) if not isinstance(keys, (str, bytes)) else None
        seconds("lock_timeout", lock_timeout)  # checked, but reads take no lock
        show_progress = check_progress(progress)
        convert = _CONVERTERS.get(output) if isinstance(output, str) else None
        if convert is None:
            raise InvalidParameterError(
                f"'output' must be 'pandas', 'arrow' or 'polars', got {output!r}."
            )
        versions = self._versions
        if snapshot is not None:
            if versions is not None:
                raise InvalidParameterError(
                    f"this store reads snapshot {self._snapshot!r}: do not pass 'snapshot'."
                )
            versions = self._snapshot_versions(snapshot_name(snapshot))
        return self._iter_intersections(
            key_list, keys, start, n_prev, end_excl, versions, show_progress, convert
        )

    def _iter_intersections(
        self,
        key_list: list[Any] | None,
        keys_arg: Any,
        start: Any,
        n_prev: Any,
        end_excl: Any,
        versions: dict[Any, int] | None,
        show_progress: bool,
        convert: Callable[[Any], Any],
    ) -> Iterator[dict[Any, Any]]:
        if key_list is None:
            raise ParameterTypeError(
                f"'keys' must be an iterable of keys, got {type(keys_arg).__name__}."
            )
        for key in key_list:
            check_key_class(key, self._indexer, "'keys' item")
        if len(set(key_list)) != len(key_list):
            dup = next(k for i, k in enumerate(key_list) if k in key_list[:i])
            raise InvalidParameterError(f"'keys' holds key '{dup}' more than once.")
        n_prevs = _n_prev_list(n_prev, len(key_list))
        if not key_list:
            return
        datasets: list[OrderedParquetDataset | None] = []
        bar = None
        try:
            for key in key_list:
                if versions is not None:
                    v = versions.get(key)
                    datasets.append(
                        None if v is None else OrderedParquetDataset(self._dirpath(key), version=v)
                    )
                else:
                    datasets.append(
                        OrderedParquetDataset(self._dirpath(key)) if key in self else None
                    )
            arrow_type = _check_ordered_on(key_list, datasets)
            prange = physical_range(start, end_excl, arrow_type)
            if prange.empty:
                return
            raw = RawIntersections(
                [None if ds is None else ds._raw for ds in datasets],
                [str(k) for k in key_list],
                n_prevs if start is not None else [0] * len(key_list),
                prange.start,
                prange.end_excl,
            )
            bar = progress_bar(
                show_progress, total=raw.n_chunks(), desc="iter_intersections", unit="chunk"
            )
            while (chunk := _next_chunk(raw, convert)) is not None:
                yield {key_list[i]: frame for i, frame in chunk}
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
            for ds in datasets:
                if ds is not None:
                    ds.close()


def _next_chunk(raw: RawIntersections, convert: Callable[[Any], Any]) -> list[Any] | None:
    """The next chunk as (dataset position, converted rows) pairs. pandas frames
    take over the chunk's private column memory instead of copying it."""
    if convert is chunk_to_pandas:
        parts = raw.next_chunk(True)
        if parts is None:
            return None
        return [(i, frame_with_raw_columns(rest, schema, cols)) for i, rest, schema, cols in parts]
    chunk = raw.next_chunk()
    return None if chunk is None else [(i, convert(batch)) for i, batch in chunk]


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "pandas": chunk_to_pandas,
    "arrow": lambda batch: batch,
    "polars": arrow_to_polars,
}


def _n_prev_list(n_prev: Any, n_keys: int) -> list[int]:
    def one(v: Any) -> int:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise ParameterTypeError(
                f"'n_prev' must be an int or a list of ints, got {v!r} ({type(v).__name__})."
            )
        if v < 0:
            raise InvalidParameterError("'n_prev' values must be greater than or equal to 0.")
        return int(v)

    if isinstance(n_prev, (list, tuple, np.ndarray)):
        values = [one(v) for v in n_prev]
        if len(values) != n_keys:
            raise InvalidParameterError(
                f"'n_prev' has {len(values)} values but 'keys' has {n_keys}; give one value "
                "per key, or a single int for all."
            )
        return values
    return [one(n_prev)] * n_keys


def _check_ordered_on(keys: list[Any], datasets: list[OrderedParquetDataset | None]) -> Any:
    """Checks that datasets share their ordered column; returns its Arrow type."""
    first: tuple[Any, Any] | None = None
    arrow_type = None
    for key, ds in zip(keys, datasets, strict=True):
        if ds is None or ds.is_newly_initialized:
            continue
        ordered_on = ds.ordered_on
        if first is None:
            first = (key, ordered_on)
        elif ordered_on != first[1]:
            raise OrderedOnMismatchError(
                f"inconsistent 'ordered_on' columns. '{first[0]}' has '{first[1]}', but "
                f"'{key}' has '{ordered_on}'."
            )
        if arrow_type is None:
            arrow_type = ds.ordered_type
    return arrow_type
