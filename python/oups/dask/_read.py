"""``oups.dask.read``: a dataset as a dask DataFrame with known divisions.

The divisions come from the row-group bounds the metadata records, so
building the graph opens no Parquet footer. Every task reads the version the
graph was built from, and the client holds a lease on that version for as
long as the collection's function lives, so vacuums keep it meanwhile.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
from dask.dataframe.utils import clear_known_categories

from oups.exceptions import DatasetFileNotFoundError, InvalidParameterError, ParameterTypeError
from oups.store._bounds import PhysicalRange, physical_range
from oups.store._storage import is_url
from oups.store._storage import storage_options as _storage_options
from oups.store.ordered_parquet_dataset import (
    OrderedParquetDataset,
    ReadOnlyOrderedParquetDataset,
)

_BYTE_UNITS = {
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
}


def _partition_size(value: Any) -> tuple[str, int] | None:
    """``None``, a row count, or a byte size such as ``"128MB"``."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if value < 1:
            raise InvalidParameterError(f"'partition_size' must be >= 1 row, got {value}.")
        return "rows", int(value)
    if isinstance(value, str):
        text = value.strip().upper().replace(" ", "")
        for unit in sorted(_BYTE_UNITS, key=len, reverse=True):
            number = text.removesuffix(unit)
            if number != text:
                try:
                    size = float(number) * _BYTE_UNITS[unit]
                except ValueError:
                    break
                if size >= 1:
                    return "bytes", int(size)
                break
        raise InvalidParameterError(
            f"'partition_size' must be a row count or a size such as '128MB', got {value!r}."
        )
    raise ParameterTypeError(
        f"'partition_size' must be an int (rows) or a str such as '128MB', got {value!r}."
    )


def _dataset(source: Any, version: int | None, options: dict[str, str]) -> OrderedParquetDataset:
    """The dataset to read, at a fixed version (its own, or ``version``)."""
    if isinstance(source, ReadOnlyOrderedParquetDataset):
        raise ParameterTypeError(
            "oups.dask.read takes a dataset or its path, not a view of some of its row "
            "groups; select rows with 'start' and 'end_excl'."
        )
    if isinstance(source, OrderedParquetDataset):
        if options:
            raise InvalidParameterError(
                "'storage_options' is for a URL; this dataset object has its own."
            )
        own = source._options or None
        if version is not None and source.version != version:
            if source.read_only:
                raise InvalidParameterError(
                    f"this dataset object reads version {source.version}; do not also pass "
                    f"version={version}."
                )
            return OrderedParquetDataset(source.dirpath, version=version, storage_options=own)
        fixed = source.version if version is None else version
        if fixed is None:
            raise DatasetFileNotFoundError(
                f"dataset {source.dirpath} has no version to read; write to it first."
            )
        if source.read_only:
            return source
        return OrderedParquetDataset(source.dirpath, version=fixed, storage_options=own)
    if isinstance(source, (str, os.PathLike)):
        where: str | Path = source if isinstance(source, str) and is_url(source) else Path(source)
        probe = OrderedParquetDataset(where, version=version, storage_options=options or None)
        if probe.version is None:
            raise DatasetFileNotFoundError(
                f"no dataset at {where}: 'path_or_dataset' must name a dataset."
            )
        if version is not None:
            return probe
        return OrderedParquetDataset(where, version=probe.version, storage_options=options or None)
    raise ParameterTypeError(
        "'path_or_dataset' must be a path, a URL or an OrderedParquetDataset, got "
        f"{type(source).__name__}."
    )


def _overlapping(mins: np.ndarray, maxs: np.ndarray, prange: PhysicalRange) -> np.ndarray:
    """Positions of the row groups with rows that may lie in ``prange``."""
    if prange.empty:
        return np.arange(0)
    keep = np.ones(len(mins), dtype=bool)
    if prange.start is not None:
        keep &= maxs >= prange.start
    if prange.end_excl is not None:
        keep &= mins < prange.end_excl
    return np.flatnonzero(keep)


def _groups(
    positions: np.ndarray,
    mins: np.ndarray,
    maxs: np.ndarray,
    sizes: np.ndarray,
    limit: int | None,
    divided: bool,
) -> list[list[int]]:
    """Consecutive row groups by partition. With ``divided`` (known
    divisions), a boundary is only placed where the previous group's maximum
    is below the next one's minimum: divisions promise that each partition
    holds the values from its division up to (excluding) the next. With
    ``limit``, row groups are gathered until their ``sizes`` reach it."""
    out: list[list[int]] = []
    filled = 0
    for p in positions:
        strict = bool(out) and (not divided or maxs[out[-1][-1]] < mins[p])
        if out and not (strict and (limit is None or filled >= limit)):
            out[-1].append(int(p))
            filled += int(sizes[p])
        else:
            out.append([int(p)])
            filled = int(sizes[p])
    return out


class _ReadPartition:
    """Reads the row groups of one partition, at the graph's version.

    dask passes ``columns`` when it projects; the client-side ``lease``
    (the dataset object the graph was built from) is not sent to workers.
    """

    def __init__(
        self,
        dirpath: str,
        version: int,
        ordered_on: Hashable,
        index: bool,
        start: Any,
        end_excl: Any,
        meta: pd.DataFrame,
        options: dict[str, str] | None = None,
        lease: OrderedParquetDataset | None = None,
    ) -> None:
        self.dirpath = dirpath
        self.options = options
        self.version = version
        self.ordered_on = ordered_on
        self.index = index
        self.start = start
        self.end_excl = end_excl
        self.meta = meta
        self.lease = lease

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            type(self),
            (
                self.dirpath,
                self.version,
                self.ordered_on,
                self.index,
                self.start,
                self.end_excl,
                self.meta,
                self.options,
            ),
        )

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        return ("oups-read", self.dirpath, self.version, self.index, self.start, self.end_excl)

    def __call__(self, positions: Sequence[int], columns: list[Hashable] | None = None) -> Any:
        names = None if columns is None else list(columns)
        if names is not None and self.index and self.ordered_on not in names:
            names.append(self.ordered_on)
        ds = OrderedParquetDataset(self.dirpath, version=self.version, storage_options=self.options)
        frame = ds[list(positions)].to_pandas(self.start, self.end_excl, names)
        expected = self.meta if columns is None else self.meta[list(columns)]
        if frame is None:
            return expected
        if self.index:
            frame = frame.set_index(self.ordered_on)
        if columns is not None:
            frame = frame[list(columns)]
        return frame


def read(
    path_or_dataset: str | os.PathLike[str] | OrderedParquetDataset,
    columns: Sequence[Hashable] | None = None,
    start: Any = None,
    end_excl: Any = None,
    partition_size: int | str | None = None,
    index: bool = True,
    version: int | None = None,
    storage_options: dict[str, Any] | None = None,
) -> dd.DataFrame:
    """A dataset as a dask DataFrame, one partition per row group.

    The ordered column becomes the index (``index=True``) with **known
    divisions** read from the dataset's metadata: no Parquet footer is
    opened to build the graph, and ``ddf.loc[a:b]`` only reads the
    partitions that overlap the range. Every task reads the version the
    graph was built from, whatever is written meanwhile; vacuums keep that
    version while the collection exists in the client.

    Parameters
    ----------
    path_or_dataset : str, Path or OrderedParquetDataset
        The dataset. A dataset object opened at a version (``version=``,
        ``as_of=`` or a snapshot store) is read at that version.
    columns : list, optional
        Columns to read (all by default); the ordered column is the index.
    start, end_excl : optional
        Keep rows with ``start <= ordered_on < end_excl``, as in
        :meth:`OrderedParquetDataset.to_pandas`; only the row groups that
        overlap the range become partitions.
    partition_size : int or str, optional
        Gather consecutive row groups into partitions of at least this many
        rows (an int) or bytes on disk (a str such as ``"128MB"``). A
        partition boundary never falls between two row groups that share a
        value of the ordered column, since divisions must separate them.
    index : bool, default True
        Make the ordered column the index, with known divisions. With
        ``False`` it stays a column, each partition has a default index and
        the divisions are unknown.
    version : int, optional
        Read this version instead of the latest.
    storage_options : dict, optional
        Client options for a URL (``s3://...``), as for
        :class:`~oups.store.ordered_parquet_dataset.OrderedParquetDataset`;
        the tasks open the dataset with them (they travel in the graph).
        A dataset object passes its own.

    Returns
    -------
    dask.dataframe.DataFrame
        With the dtypes of :meth:`OrderedParquetDataset.to_pandas`.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> import oups.dask
    >>> from oups import OrderedParquetDataset
    >>> ds = OrderedParquetDataset(tempfile.mkdtemp() + "/ticks", ordered_on="ts")
    >>> ds.write(df=pd.DataFrame({"ts": range(10), "px": range(10, 20)}),
    ...          row_group_target_size=4)
    >>> ddf = oups.dask.read(ds)
    >>> ddf.divisions
    (0, 4, 8, 9)
    >>> ddf.loc[5:6].compute()["px"].tolist()
    [15, 16]
    """
    ds = _dataset(path_or_dataset, version, _storage_options(storage_options))
    if columns is not None and (isinstance(columns, str) or not isinstance(columns, Sequence)):
        raise ParameterTypeError(
            f"'columns' must be a list of column names, got {columns!r}; "
            "for one column write columns=[name]."
        )
    if not isinstance(index, bool):
        raise ParameterTypeError(f"'index' must be True or False, got {index!r}.")
    size = _partition_size(partition_size)
    ordered_on = ds.ordered_on
    stats = ds.row_group_stats
    if not len(stats):
        raise DatasetFileNotFoundError(f"dataset {ds.dirpath} has no rows to read.")
    if columns is not None and index and ordered_on in columns:
        raise InvalidParameterError(
            f"'columns' names the ordered column {ordered_on!r}, which is the index with "
            "index=True; leave it out, or pass index=False."
        )
    mins, maxs = ds._physical_bounds()
    positions = _overlapping(mins, maxs, physical_range(start, end_excl, ds.ordered_type))
    if size is None:
        sizes, limit = np.ones(len(stats), dtype=np.int64), None
    elif size[0] == "rows":
        sizes, limit = stats["n_rows"].to_numpy(np.int64), size[1]
    else:
        sizes, limit = np.array(ds._file_sizes(), dtype=np.int64), size[1]
    groups = _groups(positions, mins, maxs, sizes, limit, index) or [[0]]
    names = None if columns is None else list(columns)
    read_names = names if names is None or not index else [*names, ordered_on]
    sample = ds[[groups[0][0]]].to_pandas(columns=read_names)
    assert sample is not None  # one row group was named
    sample = sample.iloc[:0]
    if index:
        sample = sample.set_index(ordered_on)
    meta = clear_known_categories(sample, cols=None, index=False)
    version = ds.version
    assert version is not None  # _dataset opened a version
    func = _ReadPartition(
        str(ds.dirpath), version, ordered_on, index, start, end_excl, meta, ds._options or None, ds
    )
    if index:
        lows = stats["ordered_on_mins"].iloc[[g[0] for g in groups]].tolist()
        high = stats["ordered_on_maxs"].iloc[[groups[-1][-1]]].tolist()
        divisions: tuple[Any, ...] | None = (*lows, *high)
    else:
        divisions = None
    if not positions.size:
        # Nothing overlaps the range: one empty partition keeps dtypes.
        divisions = None if divisions is None else (divisions[0], divisions[0])
    with dask.config.set({"dataframe.convert-string": False}):
        frames: dd.DataFrame = dd.from_map(
            func,
            groups,
            meta=meta,
            divisions=divisions,
            label=f"oups-read-{str(ds.dirpath).rstrip('/').rsplit('/', 1)[-1]}",
            enforce_metadata=False,
            columns=names,
        )
    return frames
