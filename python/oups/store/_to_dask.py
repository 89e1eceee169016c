"""``Store.to_dask``: the store's datasets as dask DataFrames."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import dask.dataframe as dd

    from oups.store.ordered_parquet_dataset import OrderedParquetDataset


class DaskFrames:
    """The mixin of :class:`Store` that builds dask collections."""

    if TYPE_CHECKING:

        @property
        def keys(self) -> list[Any]: ...

        def get(self, key: Any, **kwargs: Any) -> OrderedParquetDataset: ...

    def to_dask(self, keys: Iterable[Any] | None = None, **kwargs: Any) -> dict[Any, dd.DataFrame]:
        """One dask DataFrame per key, built by :func:`oups.dask.read`.

        A dict rather than one concatenated frame: each dataset keeps its own
        known divisions, columns and dtypes, whereas the rows of several keys
        interleave over the same range, so a concatenation would have none.
        ``kwargs`` go to :func:`oups.dask.read` (``columns``, ``start``,
        ``end_excl``, ``partition_size``, ``index``). A snapshot store
        (``Store(..., snapshot=name)``) gives the snapshot's versions. Needs
        ``pip install oups[dask]``.

        Examples
        --------
        >>> import tempfile, pandas as pd
        >>> from oups import Store, toplevel
        >>> @toplevel
        ... class Sensor:
        ...     site: str
        >>> store = Store(tempfile.mkdtemp(), Sensor)
        >>> for site in ("north", "south"):
        ...     store[Sensor(site)].write(ordered_on="ts",
        ...                               df=pd.DataFrame({"ts": [1, 2, 3], "v": [1.0, 2.0, 3.0]}))
        >>> frames = store.to_dask()
        >>> frames[Sensor("south")].divisions
        (1, 3)
        >>> frames[Sensor("north")]["v"].sum().compute()
        np.float64(6.0)
        """
        from oups.dask import read

        chosen = self.keys if keys is None else list(keys)
        return {key: read(self.get(key), **kwargs) for key in chosen}
