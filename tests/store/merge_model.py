"""The documented merge rule of ``write()``, in pandas, for the model tests."""

from __future__ import annotations

import pandas as pd


def merge_rows(
    stored: pd.DataFrame, new: pd.DataFrame, ordered_on: str, subset: list[str] | None
) -> pd.DataFrame:
    """Stored rows then new rows, stably sorted on ``ordered_on``.

    With ``subset``: among the new rows the last of equal values wins, and a
    stored row goes only when a new row has its values. Stored rows sharing
    values among themselves are all kept, whatever the row-group layout.
    """
    if subset is not None:
        new = new.drop_duplicates(subset=subset, keep="last")
        replaced = pd.MultiIndex.from_frame(stored[subset]).isin(
            pd.MultiIndex.from_frame(new[subset])
        )
        stored = stored[~replaced]
    merged = pd.concat([stored, new], ignore_index=True)
    return merged.sort_values(ordered_on, kind="stable").reset_index(drop=True)
