"""``oups.dask.write``: a sorted dask DataFrame merged into a dataset by the
workers, committed once by the client.

The client takes the dataset's lock for the whole write and plans *units*:
runs of partitions with the stretch of existing row groups each may rewrite
(partitions that overlap one row group share a unit). Each unit is a task: it
merges its partitions' rows into its stretch exactly as ``oups.write`` would,
and writes the new row groups as staged files. The client then checks the
staged files and commits them as one version. Until then no version lists
them: an error or a dead worker leaves the dataset as it was.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Hashable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
from dask.base import compute as dask_compute
from dask.delayed import delayed as dask_delayed

from oups._oups import staged_begin, staged_commit, staged_discard, staged_plan
from oups.exceptions import InvalidParameterError, ParameterTypeError
from oups.store._convert import (
    arrow_name,
    key_value_metadata_to_json,
    ordered_on_to_json,
    seconds,
)
from oups.store._defaults import DEFAULT_COMPRESSION, ROW_GROUP_TARGET_SIZE
from oups.store._storage import is_url
from oups.store._storage import storage_options as _storage_options
from oups.store.ordered_parquet_dataset import OrderedParquetDataset
from oups.store.write import _max_n, stage


def _extent(part: pd.DataFrame, ordered_on: Hashable, on_index: bool) -> tuple[Any, Any, int]:
    """A partition's first and last ordered value, and its row count."""
    if not len(part):
        return None, None, 0
    values = part.index if on_index else part[ordered_on].array
    return values[0], values[-1], len(part)


def _stage_unit(
    parts: list[pd.DataFrame],
    dirpath: str,
    version: int,
    row_groups: tuple[int, int],
    tag: str,
    options: dict[str, Any],
    storage_options: dict[str, str] | None = None,
) -> list[Any] | Exception:
    """On a worker: one unit's partitions merged into its stretch. An error
    is returned, not raised, so that the client waits for every unit before
    it removes what they staged."""
    try:
        frame = parts[0] if len(parts) == 1 else pd.concat(parts)
        ds = (
            OrderedParquetDataset(dirpath, version=version, storage_options=storage_options)
            if version
            else OrderedParquetDataset(dirpath, storage_options=storage_options)
        )
        # Each attempt names its own files: a retried task never meets a dead one's.
        attempt = f"{tag}-{uuid.uuid4().hex[:12]}"
        return stage(ds, frame, row_groups=row_groups, tag=attempt, **options)
    except Exception as err:
        return err


def _run_units(tasks: list[Any]) -> list[Any]:
    """Every unit's result, once all have ended (a unit lost with its worker
    raises, after the others have ended)."""
    try:
        from distributed import get_client, wait
    except ImportError:  # pragma: no cover - distributed ships with the extra
        return list(dask_compute(*tasks))
    try:
        client = get_client()
    except ValueError:  # no distributed client: a local scheduler
        return list(dask_compute(*tasks))
    futures = client.compute(tasks)
    try:
        return list(client.gather(futures))
    finally:
        wait(futures)


def _bounds(
    ddf: dd.DataFrame, ordered_on: Hashable
) -> tuple[list[int], list[Any], list[Any], bool]:
    """The partitions to write, with their lowest and highest ordered value,
    and whether the highs are excluded (dask divisions) or included."""
    on_index = ddf.index.name == ordered_on and ordered_on not in ddf.columns
    if on_index and ddf.known_divisions:
        divisions = list(ddf.divisions)
        return list(range(ddf.npartitions)), divisions[:-1], divisions[1:], True
    if not on_index and ordered_on not in ddf.columns:
        raise ParameterTypeError(
            f"'ordered_on' {ordered_on!r} is neither a column nor the index of the frame."
        )
    extent = dask_delayed(_extent, pure=True)
    extents = dask_compute(*[extent(part, ordered_on, on_index) for part in ddf.to_delayed()])
    kept = [i for i, e in enumerate(extents) if e[2]]
    return kept, [extents[i][0] for i in kept], [extents[i][1] for i in kept], False


def write(
    ddf: dd.DataFrame,
    path: str | os.PathLike[str],
    *,
    ordered_on: Hashable,
    row_group_target_size: int | str = ROW_GROUP_TARGET_SIZE,
    duplicates_on: Hashable | list[Hashable] | None = None,
    max_n_off_target_rgs: int | None = None,
    key_value_metadata: dict[str, Any] | None = None,
    compression: str = DEFAULT_COMPRESSION,
    lock_timeout: float | None = None,
    storage_options: dict[str, Any] | None = None,
) -> None:
    """Merge a sorted dask DataFrame into a dataset (new or existing).

    The workers merge their partitions with the existing row groups that
    the partitions' ranges overlap, and write the new row groups in
    parallel; the client then commits them **once**, atomically, under the
    dataset's lock (held for the whole write). The rows, and the duplicate
    rules, are those of :func:`oups.write` of the whole frame computed on one
    machine; so is the layout, except where two units of work meet: each
    unit (a partition, or the partitions that overlap one existing row group)
    is planned apart, so its last row group may be short and off-target row
    groups are only coalesced within it.

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        Sorted on ``ordered_on``: the index with known divisions (as
        :func:`oups.dask.read` and ``set_index`` give), or a column (each
        partition's extent is then computed first, a pass over the data).
        Partitions must not overlap.
    path : str or Path
        The dataset directory, or its URL on object storage
        (``s3://bucket/prefix/ds``). There is no lock there: the client's
        commit is a conditional create of the next version, and if another
        writer commits to the dataset while the workers run, nothing is
        committed and :class:`~oups.exceptions.CommitConflictError` is raised
        (the workers' files are deleted).
    ordered_on, row_group_target_size, duplicates_on, max_n_off_target_rgs, \
key_value_metadata, compression, lock_timeout, storage_options
        As for :func:`oups.write`.

    Raises
    ------
    oups.exceptions.UnsortedError
        A partition is not sorted, or two partitions overlap; nothing is
        committed.

    Examples
    --------
    >>> import tempfile, pandas as pd, dask.dataframe as dd
    >>> import oups.dask
    >>> from oups import OrderedParquetDataset
    >>> df = pd.DataFrame({"ts": range(10), "v": range(10)}).set_index("ts")
    >>> path = tempfile.mkdtemp() + "/ds"
    >>> oups.dask.write(dd.from_pandas(df, npartitions=2), path, ordered_on="ts",
    ...                 row_group_target_size=5)
    >>> OrderedParquetDataset(path).row_group_stats["n_rows"].tolist()
    [5, 5]
    """
    if not isinstance(ddf, dd.DataFrame):
        raise ParameterTypeError(f"'ddf' must be a dask DataFrame, got {type(ddf).__name__}.")
    if not isinstance(path, (str, os.PathLike)):
        raise ParameterTypeError(f"'path' must be a str or a Path, got {type(path).__name__}.")
    # A URL stays a str: as a Path it would name a local directory "s3:".
    where: str | Path = path if isinstance(path, str) and is_url(path) else Path(path)
    remote = isinstance(where, str)
    client_options = _storage_options(storage_options)
    if client_options and not remote:
        raise InvalidParameterError(
            "'storage_options' is for object-storage URLs (s3://, gs://, az://, memory://); "
            f"{str(path)!r} is a local path."
        )
    ordered_on_json = ordered_on_to_json(ordered_on)
    if not isinstance(compression, str):
        raise ParameterTypeError(f"'compression' must be a str, got {type(compression).__name__}.")
    kvm_json = key_value_metadata_to_json(key_value_metadata)
    options: dict[str, Any] = {
        "ordered_on": ordered_on,
        "row_group_target_size": row_group_target_size,
        "duplicates_on": duplicates_on,
        "max_n_off_target_rgs": _max_n(max_n_off_target_rgs),
        "compression": compression,
    }
    timeout = seconds("lock_timeout", lock_timeout)
    parts, lows, highs, exclusive = _bounds(ddf, ordered_on)
    if not parts:
        # No rows: what remains (metadata, coalescing) is a plain write.
        from oups.store.write import write as plain_write

        plain_write(
            where,
            df=None,
            key_value_metadata=key_value_metadata,
            lock_timeout=timeout,
            storage_options=client_options or None,
            **options,
        )
        return
    ds = OrderedParquetDataset(
        where, ordered_on=ordered_on, lock_timeout=timeout, storage_options=client_options or None
    )
    tag = uuid.uuid4().hex[:16]
    # Object storage has no lock: its commit is conditional instead.
    with nullcontext() if remote else ds.lock(timeout):
        raw = ds._engine()
        version = staged_begin(raw)
        try:
            units = staged_plan(raw, pa.array(lows), pa.array(highs), exclusive)
            delayed = ddf.to_delayed()
            tasks = [
                dask_delayed(_stage_unit)(
                    [delayed[parts[p]] for p in range(p0, p1)],
                    str(ds.dirpath),
                    version,
                    (r0, r1),
                    tag,
                    options,
                    client_options or None,
                )
                for p0, p1, r0, r1 in units
            ]
            staged = _run_units(tasks)
            errors = [r for r in staged if isinstance(r, Exception)]
            if errors:
                raise errors[0]
            commit_units = [(u[2], u[3], rgs) for u, rgs in zip(units, staged, strict=True)]
            staged_commit(
                raw,
                version,
                commit_units,
                ordered_on_json,
                arrow_name(ordered_on),
                kvm_json,
                tag,
            )
        except BaseException:
            staged_discard(raw, tag)
            raise
