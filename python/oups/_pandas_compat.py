"""Uses of pandas internals, gathered here and tested on pandas 2 and 3."""

from __future__ import annotations

import numpy as np
import pandas as pd


def writable(df: pd.DataFrame) -> pd.DataFrame:
    """``df``, or a copy of it when some of its blocks are read-only views.

    pyarrow hands zero-copy columns to pandas as read-only arrays, so that
    ``df.loc[0, "v"] = 9`` would fail with "assignment destination is
    read-only". Frames returned by reads must be the user's to modify, as
    those of ``pd.read_parquet`` are.
    """
    try:
        blocks = df._mgr.blocks
    except AttributeError:  # pragma: no cover - a pandas without block managers
        blocks = None
    read_only = blocks is None or any(
        isinstance(v := getattr(b.values, "_ndarray", b.values), np.ndarray)
        and not v.flags.writeable
        for b in blocks
    )
    if not read_only:
        return df
    copied: pd.DataFrame = df.copy()
    return copied
