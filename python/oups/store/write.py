"""``write``: merge new ordered data into a dataset."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from oups._progress import check_progress, progress_bar
from oups._writer import current_writer
from oups.exceptions import (
    InvalidParameterError,
    ParameterTypeError,
    ReadOnlyError,
)
from oups.store._convert import (
    Frame,
    arrow_name,
    key_value_metadata_to_json,
    ordered_on_to_json,
    seconds,
    to_frame,
)
from oups.store._defaults import DEFAULT_COMPRESSION, ROW_GROUP_TARGET_SIZE
from oups.store._target import target_kwargs

if TYPE_CHECKING:
    from oups.store.ordered_parquet_dataset import OrderedParquetDataset


def _duplicates_subset(
    duplicates_on: Any, ordered_on: Hashable, frame: Frame | None
) -> list[str] | None:
    """Field names defining duplicates; ``[]`` means all columns. Never mutates input."""
    if duplicates_on is None:
        return None
    if isinstance(duplicates_on, list):
        names = list(duplicates_on)
        if names and ordered_on not in names:
            names.append(ordered_on)
    elif isinstance(duplicates_on, (str, tuple)):
        names = [duplicates_on] if duplicates_on == ordered_on else [duplicates_on, ordered_on]
    else:
        raise ParameterTypeError(
            f"'duplicates_on' must be None, a column name or a list of column names, "
            f"got {type(duplicates_on).__name__}."
        )
    if frame is None:
        return [arrow_name(n) for n in names]
    return [frame.field(n, "'duplicates_on' column") for n in names]


def _max_n(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ParameterTypeError(f"'max_n_off_target_rgs' must be None or an int, got {value!r}.")
    if value < 0:
        raise InvalidParameterError(
            f"'max_n_off_target_rgs' must be None or an int >= 0, got {value}."
        )
    return int(value)


def _bounds(frame: Frame | None, field: str, stats: pa.Table | None) -> Any:
    def compute() -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        values: list[pd.Timestamp] = []
        if frame is not None and frame.num_rows and field in frame.table.column_names:
            col = frame.table.column(field)
            values += [pd.Timestamp(col[0].as_py()), pd.Timestamp(col[-1].as_py())]
        if stats is not None and stats.num_rows:
            values += [
                pd.Timestamp(stats.column("ordered_on_mins")[0].as_py()),
                pd.Timestamp(stats.column("ordered_on_maxs")[-1].as_py()),
            ]
        if not values:
            return None, None
        return min(values), max(values)

    return compute


def write(
    dirpath: str | Path | OrderedParquetDataset,
    *,
    ordered_on: Hashable,
    df: Any = None,
    row_group_target_size: int | str = ROW_GROUP_TARGET_SIZE,
    duplicates_on: Hashable | list[Hashable] | None = None,
    max_n_off_target_rgs: int | None = None,
    key_value_metadata: dict[str, Any] | None = None,
    compression: str = DEFAULT_COMPRESSION,
    lock_timeout: float | None = None,
    progress: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> None:
    """Merge ordered data into a dataset, creating it if needed.

    Only the row groups that the new rows fall into (and, with
    ``max_n_off_target_rgs``, small neighbouring ones) are read and rewritten.
    The write is atomic: a crash at any instant leaves the dataset as before or
    as after it.

    Parameters
    ----------
    dirpath : str, Path or OrderedParquetDataset
        The dataset directory, an object-storage URL (``s3://bucket/prefix/ds``),
        or an open dataset (its lock is reused).
    ordered_on : str or tuple of str
        The column the data is sorted on (a tuple for a column MultiIndex).
    df : pandas.DataFrame, pyarrow.Table, polars.DataFrame or None
        New rows, sorted ascending on ``ordered_on``. ``None`` writes no data
        (key-value metadata updates and coalescing still apply).
    row_group_target_size : int or str
        Rows per row group, or a pandas frequency (``"2h"``, ``"1D"``, ``"MS"``)
        for one row group per period.
    duplicates_on : str, tuple, list or None
        Drop duplicate rows (keeping the last, new rows win over stored ones)
        on these columns plus ``ordered_on``; ``[]`` means all columns.
    max_n_off_target_rgs : int or None
        Coalesce runs of undersized row groups next to the new data when they
        number more than this (0 and 1 behave the same), or when they would
        fill a whole target.
    key_value_metadata : dict or None
        Entries to add or update; a ``None`` value removes the key. Values
        must be JSON-compatible.
    compression : str
        Parquet compression of new data files: ``"none"``, ``"snappy"``,
        ``"lz4"``, ``"zstd"``, ``"zstd(<level>)"`` or ``"gzip"``.
    lock_timeout : float or None
        Seconds to wait for the dataset lock (for a dataset object that does
        not hold it: instead of the timeout it was opened with).
    progress : bool
        Show a progress bar of the rows written to new data files (tqdm, when
        it is installed; nothing otherwise). Useful for large frames.
    storage_options : dict or None
        Client settings for an object-storage URL (see
        :class:`~oups.store.OrderedParquetDataset`).

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from oups import write, OrderedParquetDataset
    >>> path = tempfile.mkdtemp() + "/prices"
    >>> write(path, ordered_on="ts", df=pd.DataFrame({"ts": [1, 2, 3], "v": [1.0, 2.0, 3.0]}),
    ...       row_group_target_size=2)
    >>> len(OrderedParquetDataset(path))
    2
    """
    from oups.store.ordered_parquet_dataset import (
        OrderedParquetDataset,
        ReadOnlyOrderedParquetDataset,
    )

    ordered_on_json = ordered_on_to_json(ordered_on)
    if ordered_on_json == "null":
        raise InvalidParameterError("'ordered_on' parameter is required.")
    if isinstance(dirpath, ReadOnlyOrderedParquetDataset):
        raise ReadOnlyError("cannot call 'write' on a read-only dataset.")
    if not isinstance(compression, str):
        raise ParameterTypeError(f"'compression' must be a str, got {type(compression).__name__}.")
    frame = to_frame(df)
    field = frame.field(ordered_on, "'ordered_on'") if frame is not None else None
    subset = _duplicates_subset(duplicates_on, ordered_on, frame)
    max_n = _max_n(max_n_off_target_rgs)
    kvm_json = key_value_metadata_to_json(key_value_metadata)
    show_progress = check_progress(progress)
    timeout = seconds("lock_timeout", lock_timeout)
    dataset: contextlib.AbstractContextManager[OrderedParquetDataset]
    if isinstance(dirpath, OrderedParquetDataset):
        # The caller's dataset keeps its lock after the write.
        dataset = contextlib.nullcontext(dirpath)
    elif isinstance(dirpath, (str, Path)):
        dataset = OrderedParquetDataset(
            dirpath, ordered_on=ordered_on, lock_timeout=timeout, storage_options=storage_options
        )
    else:
        raise ParameterTypeError(
            f"'dirpath' must be a str, a Path or an OrderedParquetDataset, "
            f"got {type(dirpath).__name__}."
        )
    with dataset as ds:
        _write(
            ds,
            frame,
            field,
            ordered_on,
            ordered_on_json,
            row_group_target_size,
            subset,
            max_n,
            kvm_json,
            compression,
            show_progress,
            timeout,
            # A dataset opened here reads the latest version already.
            refresh=ds is dirpath,
        )


def _write(
    ds: OrderedParquetDataset,
    frame: Frame | None,
    field: str | None,
    ordered_on: Hashable,
    ordered_on_json: str,
    target: Any,
    subset: list[str] | None,
    max_n: int | None,
    kvm_json: str,
    compression: str,
    show_progress: bool,
    lock_timeout: float | None,
    refresh: bool = True,
) -> None:
    raw = ds._engine()
    # Planned against the latest version (the engine plans again under the
    # lock, or on object storage when its commit finds a newer one).
    if refresh:
        raw.refresh()
    stats = raw.stats()
    if field is None:
        field = raw.info().ordered_field or arrow_name(ordered_on)
    # Period anchors are in the stored unit, to which new data is cast.
    if stats.num_rows:
        ordered_type = stats.schema.field("ordered_on_mins").type
    elif frame is not None and field in frame.table.column_names:
        ordered_type = frame.table.schema.field(field).type
    else:
        ordered_type = None
    target_kw = target_kwargs(target, ordered_type, _bounds(frame, field, stats))
    name = ds.dirpath.name if isinstance(ds.dirpath, Path) else ds.dirpath.rsplit("/", 1)[-1]
    bar = progress_bar(show_progress, total=None, desc=f"write {name}", unit="row", unit_scale=True)
    writer = current_writer()
    tag = writer.starting(ds) if writer is not None and writer.covers(ds.dirpath) else None
    try:
        raw.write(
            frame.table if frame is not None else None,
            ordered_on_json,
            field,
            duplicates_on=subset,
            max_n_off_target_rgs=max_n,
            key_value_metadata_json=kvm_json,
            compression=compression,
            progress=None if bar is None else _advance(bar),
            lock_timeout=lock_timeout,
            writer=tag,
            **target_kw,
        )
        if writer is not None and tag is not None:
            writer.written[ds.dirpath] = int(raw.info().version)
    finally:
        if bar is not None:
            bar.close()


def _advance(bar: Any) -> Callable[[int, int], None]:
    """The engine's progress callback (rows written, rows to write) for a tqdm bar."""

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        # Writer threads report in any order: never move the bar back.
        if done > bar.n:
            bar.update(done - bar.n)

    return update


def stage(
    ds: OrderedParquetDataset,
    df: Any,
    *,
    ordered_on: Hashable,
    row_group_target_size: int | str,
    duplicates_on: Hashable | list[Hashable] | None,
    max_n_off_target_rgs: int | None,
    compression: str,
    row_groups: tuple[int, int],
    tag: str,
) -> list[Any]:
    """One unit of a staged (distributed) write: ``df`` merged into the
    stretch ``row_groups`` of ``ds``'s version, as :func:`write` would merge
    it, written to staged files; committed later by the lock holder."""
    from oups._oups import staged_write

    frame = to_frame(df)
    assert frame is not None  # the caller passes a frame
    field = frame.field(ordered_on, "'ordered_on'")
    subset = _duplicates_subset(duplicates_on, ordered_on, frame)
    raw = ds._engine()
    stats = raw.stats().slice(row_groups[0], row_groups[1] - row_groups[0])
    if stats.num_rows:
        ordered_type = stats.schema.field("ordered_on_mins").type
    else:
        ordered_type = frame.table.schema.field(field).type
    target_kw = target_kwargs(row_group_target_size, ordered_type, _bounds(frame, field, stats))
    return staged_write(
        raw,
        frame.table,
        ordered_on_to_json(ordered_on),
        field,
        row_groups[0],
        row_groups[1],
        tag,
        duplicates_on=subset,
        max_n_off_target_rgs=_max_n(max_n_off_target_rgs),
        compression=compression,
        **target_kw,
    )
