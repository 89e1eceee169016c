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
        return df.copy()
    for block in blocks:
        values = getattr(block.values, "_ndarray", block.values)
        if isinstance(values, np.ndarray) and not values.flags.writeable:
            return df.copy()
    return df
