"""Dask collections over oups datasets: reads with known divisions.

Needs dask's dataframe support: ``pip install oups[dask]``.
"""

from __future__ import annotations

try:
    import dask.dataframe  # noqa: F401
except ImportError as err:  # pragma: no cover - the extra is missing
    raise ImportError("oups.dask needs dask's dataframe support: pip install 'oups[dask]'") from err

from oups.dask._intersections import map_intersections
from oups.dask._read import read
from oups.dask._write import write

__all__ = ["map_intersections", "read", "write"]
