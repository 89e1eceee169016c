"""``oups.dask.map_intersections``: ``Store.iter_intersections`` cut into
ranges of the ordered column, one dask task per range.

Each task iterates the synchronised chunks of its range, the first chunk of
each dataset starting with the ``n_prev`` rows before the range (the warm-up
that seeds the state a sequential pass would carry in), and gives them to the
user's function. Every task reads the versions the graph was built from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import dask.dataframe as dd
import pandas as pd
from dask.delayed import delayed as dask_delayed

from oups.exceptions import InvalidParameterError, ParameterTypeError
from oups.store.ordered_parquet_dataset import OrderedParquetDataset, chunk_to_pandas
from oups.store.store import Store


class _RangeTask:
    """One range's pass, at fixed versions. The client-side ``leases`` (the
    datasets at those versions) keep vacuums away while the graph lives and
    are not sent to the workers."""

    def __init__(
        self,
        store: Store,
        keys: list[Any],
        versions: dict[Any, int],
        n_prev: int | list[int],
        func: Callable[..., Any],
        leases: list[OrderedParquetDataset] | None = None,
    ) -> None:
        self.store = store
        self.keys = keys
        self.versions = versions
        self.n_prev = n_prev
        self.func = func
        self.leases = leases

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.store, self.keys, self.versions, self.n_prev, self.func))

    def __call__(self, start: Any, end_excl: Any) -> Any:
        chunks: Iterator[dict[Any, pd.DataFrame]] = self.store._iter_intersections(
            self.keys,
            self.keys,
            start,
            self.n_prev,
            end_excl,
            self.versions,
            False,
            chunk_to_pandas,
        )
        return self.func(chunks, start, end_excl)


def map_intersections(
    store: Store,
    keys: Iterable[Any],
    func: Callable[[Iterator[dict[Any, pd.DataFrame]], Any, Any], Any],
    bounds: Sequence[Any],
    n_prev: int | list[int] = 0,
    meta: Any = None,
) -> Any:
    """Run ``func`` over the synchronised chunks of ``keys``, one dask task
    per range of the ordered column.

    ``bounds`` ``[b0, b1, ..., bn]`` cut the data into the ranges
    ``[b0, b1)``, ..., ``[bn-1, bn)`` (``None`` first or last for an open
    end). For each range a task calls ``func(chunks, start, end_excl)`` where
    ``chunks`` iterates, as :meth:`Store.iter_intersections` does, the dicts
    ``{key: DataFrame}`` of the range, the first chunk of each dataset
    beginning with its ``n_prev`` rows before ``start``. Those warm-up rows
    seed what a sequential pass would carry into the range (previous values,
    trailing windows): ``func`` builds its state from them and returns only
    what concerns rows at or after ``start``. Then the ranges' results,
    concatenated, equal one sequential pass over all rows, whenever that pass
    needs no more than ``n_prev`` rows of history.

    Every task reads the versions of the datasets that were the latest when
    the graph was built (or those of a snapshot store), and vacuums keep them
    while the result object lives in this process.

    Parameters
    ----------
    store : Store
        The store (a snapshot store reads the snapshot's versions).
    keys : iterable of keys
        The datasets, in the order of each chunk's dict; keys without a
        dataset are absent from the chunks.
    func : callable
        ``func(chunks, start, end_excl)``, run on a worker per range.
    bounds : sequence
        The range bounds, sorted; at least two.
    n_prev : int or list of int, default 0
        Warm-up rows per dataset (a list aligns with ``keys``).
    meta : optional
        With ``meta`` (an empty DataFrame like ``func``'s results), the
        result is a dask DataFrame of one partition per range; without, a
        list of ``dask.delayed`` objects, one per range.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> import oups.dask
    >>> from oups import Store, toplevel
    >>> @toplevel
    ... class K:
    ...     name: str
    >>> store = Store(tempfile.mkdtemp(), K)
    >>> store[K("a")].write(ordered_on="t", df=pd.DataFrame({"t": range(8), "v": range(8)}),
    ...                     row_group_target_size=3)
    >>> def diffs(chunks, start, end_excl):
    ...     rows = pd.concat([chunk[K("a")] for chunk in chunks])
    ...     rows["d"] = rows["v"].diff()  # the warm-up row gives the first diff
    ...     return rows[rows["t"] >= start] if start is not None else rows
    >>> meta = pd.DataFrame({"t": pd.Series([], dtype="int64"), "v": pd.Series([], dtype="int64"),
    ...                      "d": pd.Series([], dtype="float64")})
    >>> parts = oups.dask.map_intersections(store, [K("a")], diffs, [None, 4, None],
    ...                                     n_prev=1, meta=meta)
    >>> parts.compute()["d"].tolist()
    [nan, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    """
    if not isinstance(store, Store):
        raise ParameterTypeError(f"'store' must be a Store, got {type(store).__name__}.")
    if not callable(func):
        raise ParameterTypeError(f"'func' must be callable, got {type(func).__name__}.")
    if isinstance(bounds, (str, bytes)) or not isinstance(bounds, Sequence) or len(bounds) < 2:
        raise InvalidParameterError(
            f"'bounds' must be a sequence of at least two range bounds, got {bounds!r}."
        )
    if any(b is None for b in bounds[1:-1]):
        raise InvalidParameterError("'bounds' may be None only first or last (an open end).")
    key_list = list(keys)
    versions: dict[Any, int] = {}
    leases = []
    for key in key_list:
        if key in store:
            ds = store[key]
            if ds.version is not None:
                versions[key] = ds.version
                leases.append(OrderedParquetDataset(ds.dirpath, version=ds.version))
    task = _RangeTask(store, key_list, versions, n_prev, func, leases)
    pieces = [
        dask_delayed(task, pure=True)(start, end)
        for start, end in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    if meta is None:
        return pieces
    frames: dd.DataFrame = dd.from_delayed(pieces, meta=meta, verify_meta=False)
    return frames
