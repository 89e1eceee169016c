"""Day targets on zoned timestamps are local days, across DST changes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from oups import OrderedParquetDataset, write


@pytest.mark.parametrize(
    ("freq", "starts"),
    [
        ("1D", ["2024-03-30", "2024-03-31", "2024-04-01"]),
        ("D", ["2024-03-30", "2024-03-31", "2024-04-01"]),
        ("2D", ["2024-03-30", "2024-04-01"]),
    ],
)
@pytest.mark.parametrize("tz", ["Europe/Paris", "America/New_York"])
def test_day_targets_cut_at_local_midnight(tmp_path, freq, starts, tz):
    # Spans the spring-forward night in Europe (31 March); New York is past it.
    ts = pd.date_range("2024-03-30 00:00", "2024-04-01 23:00", freq="h", tz=tz)
    df = pd.DataFrame({"ts": ts, "v": np.arange(len(ts))})
    write(tmp_path / "ds", ordered_on="ts", df=df, row_group_target_size=freq)
    stats = OrderedParquetDataset(tmp_path / "ds").row_group_stats
    assert stats["ordered_on_mins"].tolist() == [pd.Timestamp(s, tz=tz) for s in starts]
    local_days = df["ts"].dt.tz_localize(None).dt.floor("D")
    assert (
        stats["n_rows"].tolist()
        == local_days.groupby(
            (local_days - local_days.iloc[0]).dt.days // int(freq.rstrip("D") or 1)
        )
        .size()
        .tolist()
    )


def test_day_targets_on_utc_and_naive_columns_stay_fixed(tmp_path):
    for tz in [None, "UTC"]:
        ts = pd.date_range("2024-03-30 22:00", periods=6, freq="h", tz=tz)
        path = tmp_path / str(tz)
        write(path, ordered_on="ts", df=pd.DataFrame({"ts": ts}), row_group_target_size="1D")
        assert OrderedParquetDataset(path).row_group_stats["n_rows"].tolist() == [2, 4]
