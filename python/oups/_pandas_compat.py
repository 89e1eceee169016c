"""Uses of pandas internals, gathered here and tested on pandas 2 and 3."""

from __future__ import annotations

from typing import Any

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


def frame_from_blocks(parts: list[tuple[Any, Any]], names: list[str], n: int) -> pd.DataFrame:
    """A frame from 2-D blocks and their column placements, without consolidating."""
    index, columns = pd.RangeIndex(n), pd.Index(names)
    try:
        from pandas.api.internals import (  # type: ignore[import-not-found,unused-ignore]
            create_dataframe_from_blocks,
        )
    except ImportError:  # pandas 2: the route pyarrow's to_pandas takes
        from pandas.core.internals import (  # type: ignore[import-not-found,unused-ignore]
            BlockManager,
        )
        from pandas.core.internals.api import (  # type: ignore[import-not-found,unused-ignore]
            make_block,
        )

        blocks = [make_block(values, placement=placement, ndim=2) for values, placement in parts]
        manager = BlockManager(blocks, [columns, index])
        frame: pd.DataFrame = pd.DataFrame._from_mgr(  # type: ignore[attr-defined]
            manager, axes=manager.axes
        )
        return frame
    built: pd.DataFrame = create_dataframe_from_blocks(parts, index=index, columns=columns)
    return built
