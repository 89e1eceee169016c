"""Named snapshots of a store, and store-wide vacuums.

A mixin of :class:`~oups.store.store.Store`: a snapshot records the version of
every dataset (the engine pins them, then writes the manifest), and a store
opened with ``snapshot=`` reads exactly those versions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from oups._oups import create_snapshot, delete_snapshot, list_snapshots, read_snapshot
from oups.exceptions import CorruptDatasetError, ParameterTypeError, ReadOnlyError

if TYPE_CHECKING:
    from oups.store.ordered_parquet_dataset import OrderedParquetDataset


def snapshot_name(name: Any) -> str:
    if not isinstance(name, str):
        raise ParameterTypeError(f"'snapshot' must be a str, got {type(name).__name__}.")
    return name


class Snapshots:
    """Snapshots and vacuums of the datasets of a store."""

    _basepath: Path | str
    _indexer: Any
    _snapshot: str | None

    _options: dict[str, str] | None

    @property
    def keys(self) -> list[Any]:
        raise NotImplementedError

    def _dirpath(self, key: Any) -> Path | str:
        raise NotImplementedError

    def get(self, key: Any, **kwargs: Any) -> OrderedParquetDataset:
        raise NotImplementedError

    def _snapshot_versions(self, name: str) -> dict[Any, int]:
        """The version of each key recorded by snapshot ``name``."""
        _, entries = read_snapshot(str(self._basepath), name, self._options)
        versions = {}
        for rel, version in entries:
            key = self._indexer.from_path(rel)
            if key is None:
                raise CorruptDatasetError(
                    f"snapshot {name!r} of {self._basepath} names {rel!r}, which is not a key of "
                    f"{self._indexer.__name__}."
                )
            versions[key] = version
        return versions

    @property
    def snapshot_name(self) -> str | None:
        """The snapshot this store reads, or None for the live store."""
        return self._snapshot

    def _refuse_snapshot(self, what: str) -> None:
        if self._snapshot is not None:
            raise ReadOnlyError(f"cannot {what}: this store reads snapshot {self._snapshot!r}.")

    def snapshot(self, name: str) -> dict[Any, int]:
        """Record the latest version of every dataset under ``name``.

        ``Store(basepath, indexer, snapshot=name)`` and
        ``iter_intersections(..., snapshot=name)`` then read exactly these
        versions, and vacuums keep them until :meth:`delete_snapshot`.
        Returns ``{key: version}``.

        Examples
        --------
        >>> import tempfile, pandas as pd
        >>> from oups import Store, toplevel
        >>> @toplevel
        ... class K:
        ...     name: str
        >>> store = Store(tempfile.mkdtemp(), K)
        >>> store[K("a")].write(ordered_on="t", df=pd.DataFrame({"t": [1, 2]}))
        >>> store.snapshot("train-2024")
        {K(name='a'): 1}
        >>> store[K("a")].write(ordered_on="t", df=pd.DataFrame({"t": [3]}))
        >>> frozen = Store(store.basepath, K, snapshot="train-2024")
        >>> frozen[K("a")].to_pandas()["t"].tolist(), store[K("a")].n_rows
        ([1, 2], 3)
        """
        self._refuse_snapshot("take a snapshot")
        name = snapshot_name(name)
        keys = self.keys
        datasets = [str(self._dirpath(k)) for k in keys]
        entries = create_snapshot(str(self._basepath), name, datasets, self._options)
        by_path = {str(k.to_path().as_posix()): k for k in keys}
        return {by_path[rel]: version for rel, version in entries}

    def snapshots(self) -> list[str]:
        """The names of the store's snapshots, sorted.

        Examples
        --------
        >>> import tempfile, pandas as pd
        >>> from oups import Store, toplevel
        >>> @toplevel
        ... class K:
        ...     name: str
        >>> store = Store(tempfile.mkdtemp(), K)
        >>> store[K("a")].write(ordered_on="t", df=pd.DataFrame({"t": [1]}))
        >>> _ = store.snapshot("v1"), store.snapshot("v2")
        >>> store.snapshots()
        ['v1', 'v2']
        """
        return list(list_snapshots(str(self._basepath), self._options))

    def delete_snapshot(self, name: str) -> None:
        """Delete snapshot ``name``; the next vacuums may remove its versions.

        Examples
        --------
        >>> import tempfile, pandas as pd
        >>> from oups import Store, toplevel
        >>> @toplevel
        ... class K:
        ...     name: str
        >>> store = Store(tempfile.mkdtemp(), K)
        >>> store[K("a")].write(ordered_on="t", df=pd.DataFrame({"t": [1]}))
        >>> _ = store.snapshot("v1")
        >>> store.delete_snapshot("v1")
        >>> store.snapshots()
        []
        """
        self._refuse_snapshot("delete a snapshot")
        name = snapshot_name(name)
        paths = [str(self._dirpath(k)) for k in self.keys]
        if not delete_snapshot(str(self._basepath), name, paths, self._options):
            raise KeyError(f"store {self._basepath} has no snapshot {name!r}.")

    def vacuum(self, keep_versions: int | None = None, older_than: Any = None) -> dict[Any, Any]:
        """Vacuum every dataset (see :meth:`OrderedParquetDataset.vacuum`);
        returns ``{key: report}`` for the datasets where something was removed.

        Examples
        --------
        >>> import tempfile, pandas as pd
        >>> from oups import Store, toplevel
        >>> @toplevel
        ... class K:
        ...     name: str
        >>> store = Store(tempfile.mkdtemp(), K)
        >>> for t in range(3):
        ...     store[K("a")].write(ordered_on="t", df=pd.DataFrame({"t": [t]}))
        >>> store.vacuum(keep_versions=1)
        {K(name='a'): {'versions_removed': [1, 2], 'files_removed': 0}}
        """
        self._refuse_snapshot("vacuum")
        reports = {}
        for key in self.keys:
            report = self.get(key).vacuum(keep_versions=keep_versions, older_than=older_than)
            if report["versions_removed"]:
                reports[key] = report
        return reports
