"""Range and column reads: ds.to_pandas(start=..., end_excl=..., columns=[...])."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oups import OrderedParquetDataset
from oups.exceptions import ColumnNotFoundError


@pytest.fixture
def ds(location):
    d = OrderedParquetDataset(location, ordered_on="t")
    d.write(
        df=pd.DataFrame(
            {"t": range(100), "v": np.arange(100) * 1.5, "s": [f"r{i}" for i in range(100)]}
        ),
        row_group_target_size=30,
    )
    return d


def test_range_and_columns(ds):
    df = ds.to_pandas(start=25, end_excl=65)
    assert df["t"].tolist() == list(range(25, 65))
    assert df.index.tolist() == list(range(40))
    assert list(df.columns) == ["t", "v", "s"]
    df = ds.to_pandas(start=25, end_excl=65, columns=["s", "v"])
    assert list(df.columns) == ["s", "v"]
    assert df["s"].tolist() == [f"r{i}" for i in range(25, 65)]
    assert ds.to_pandas(columns=["v"])["v"].tolist() == (np.arange(100) * 1.5).tolist()
    assert ds.to_pandas(start=95)["t"].tolist() == list(range(95, 100))
    assert ds.to_pandas(end_excl=3)["t"].tolist() == [0, 1, 2]
    assert ds.to_pandas(start=10.5, end_excl=12.5)["t"].tolist() == [11, 12]


def test_empty_ranges_keep_columns_and_dtypes(ds):
    for kwargs in [
        {"start": 200},
        {"end_excl": 0},
        {"start": 50, "end_excl": 50},
        {"start": 2**70},
        {"end_excl": -(2**70)},
    ]:
        df = ds.to_pandas(**kwargs)
        assert len(df) == 0
        assert df.dtypes.tolist() == ds.to_pandas().dtypes.tolist()


def test_errors(ds):
    with pytest.raises(ColumnNotFoundError, match="nope"):
        ds.to_pandas(columns=["nope"])
    with pytest.raises(KeyError):
        ds.to_pandas(columns=["nope"])
    with pytest.raises(TypeError, match="list of column names"):
        ds.to_pandas(columns="v")
    with pytest.raises(TypeError):
        ds.to_pandas(start="a")
    with pytest.raises(ValueError):
        ds.to_pandas(start=float("nan"))


def test_empty_dataset(tmp_path):
    assert OrderedParquetDataset(tmp_path / "x").to_pandas(start=1, columns=["a"]) is None


def test_views_restrict_to_their_row_groups(ds):
    view = ds[1:3]
    assert view.to_pandas(start=20, end_excl=70)["t"].tolist() == list(range(30, 70))
    assert view.to_pandas(columns=["v"])["v"].tolist() == (np.arange(30, 90) * 1.5).tolist()


def test_datetime_range_with_strings_and_tz(location):
    idx = pd.date_range("2024-01-01", periods=48, freq="h", tz="Europe/Paris")
    ds = OrderedParquetDataset(location, ordered_on="ts")
    ds.write(df=pd.DataFrame({"ts": idx, "x": range(48)}), row_group_target_size="1D")
    got = ds.to_pandas(
        start=pd.Timestamp("2024-01-01 22:00", tz="Europe/Paris"),
        end_excl=pd.Timestamp("2024-01-02 02:00", tz="Europe/Paris"),
    )
    assert got["x"].tolist() == [22, 23, 24, 25]
    assert str(got["ts"].dt.tz) == "Europe/Paris"
    with pytest.raises(TypeError, match="naive"):
        ds.to_pandas(start="2024-01-01 22:00")


def test_datetime_microsecond_column_rounds_bounds_up(location):
    t = pd.to_datetime(["2024-01-01 00:00:00.000001", "2024-01-01 00:00:00.000002"]).as_unit("us")
    ds = OrderedParquetDataset(location, ordered_on="ts")
    ds.write(df=pd.DataFrame({"ts": t}))
    got = ds.to_pandas(start=pd.Timestamp("2024-01-01 00:00:00.000001001"))
    assert len(got) == 1


def test_large_row_group_partial_read(location):
    n = 300_000
    ds = OrderedParquetDataset(location, ordered_on="t")
    ds.write(df=pd.DataFrame({"t": np.arange(n), "a": np.arange(n) * 2.0}), row_group_target_size=n)
    got = ds.to_pandas(start=123_456, end_excl=133_456)
    assert got["t"].tolist() == list(range(123_456, 133_456))
    assert got["a"].iloc[-1] == 133_455 * 2.0


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(-50, 50), min_size=1, max_size=60),
    target=st.integers(1, 15),
    lo=st.none() | st.integers(-60, 60),
    hi=st.none() | st.integers(-60, 60),
)
def test_matches_pandas_filter(tmp_path_factory, values, target, lo, hi):
    path = tmp_path_factory.mktemp("r") / "ds"
    df = pd.DataFrame({"t": sorted(values), "i": range(len(values))})
    ds = OrderedParquetDataset(path, ordered_on="t")
    ds.write(df=df, row_group_target_size=target)
    got = ds.to_pandas(start=lo, end_excl=hi)
    mask = pd.Series(True, index=df.index)
    if lo is not None:
        mask &= df["t"] >= lo
    if hi is not None:
        mask &= df["t"] < hi
    assert got["i"].tolist() == df[mask]["i"].tolist()
    ds.close()
