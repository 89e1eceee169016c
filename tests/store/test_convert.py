"""pandas frames of numeric and datetime columns reach the engine without pyarrow's
validity pass; the table must be exactly the one pyarrow would make."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from oups import OrderedParquetDataset, write
from oups.store._convert import _plain_numeric_table, _plain_values

N = 1000
RNG = np.random.default_rng(0)

PLAIN = {
    "naive": pd.DataFrame(
        {
            "ts": pd.date_range("2024", periods=N, freq="s"),
            "a": RNG.standard_normal(N),
            "n": RNG.integers(0, 9, N),
        }
    ),
    "tz_and_durations": pd.DataFrame(
        {
            "ts": pd.date_range("2024", periods=N, freq="s", tz="Europe/Paris"),
            "f32": RNG.standard_normal(N).astype("f4"),
            "u": np.arange(N, dtype="u4"),
            "td": pd.to_timedelta(np.arange(N), unit="ms"),
        }
    ),
    "microseconds": pd.DataFrame(
        {
            "ts": pd.date_range("2024", periods=N, freq="s").astype("M8[us]"),
            "i16": np.arange(N, dtype="i2"),
        }
    ),
    "row_slice": pd.DataFrame(
        {"ts": pd.date_range("2024", periods=10, freq="s"), "b": RNG.standard_normal(10)}
    ).iloc[2:7],
    "infinity": pd.DataFrame(
        {"ts": pd.date_range("2024", periods=3, freq="s"), "x": [np.inf, 1.0, 1e308]}
    ),
}

OTHER = {
    "nan": pd.DataFrame({"ts": pd.date_range("2024", periods=2), "a": [1.0, np.nan]}),
    "nat": pd.DataFrame(
        {"ts": pd.date_range("2024", periods=2), "t": pd.to_datetime(["2024", None])}
    ),
    "strings": pd.DataFrame({"ts": pd.date_range("2024", periods=2), "s": ["a", "b"]}),
    "booleans": pd.DataFrame({"ts": pd.date_range("2024", periods=2), "b": [True, False]}),
    "nullable": pd.DataFrame(
        {"ts": pd.date_range("2024", periods=2), "i": pd.array([1, None], dtype="Int64")}
    ),
    # Their sum is NaN, as if a value were: the exact, slower route.
    "opposite_infinities": pd.DataFrame(
        {"ts": pd.date_range("2024", periods=2), "x": [np.inf, -np.inf]}
    ),
}


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_plain_frames_convert_as_pyarrow_does(name):
    df = PLAIN[name]
    table = _plain_numeric_table(df)
    assert table is not None
    assert table.equals(pa.Table.from_pandas(df, preserve_index=False), check_metadata=True)


@pytest.mark.parametrize("name", sorted(OTHER))
def test_other_frames_take_pyarrows_route(name):
    assert _plain_numeric_table(OTHER[name]) is None


@pytest.mark.parametrize("name", sorted(PLAIN) + ["nan", "nat", "nullable", "opposite_infinities"])
def test_frames_come_back_as_written(tmp_path, name):
    df = (PLAIN | OTHER)[name].reset_index(drop=True)
    write(tmp_path / "ds", ordered_on="ts", df=df, row_group_target_size=300)
    with OrderedParquetDataset(tmp_path / "ds") as ds:
        pd.testing.assert_frame_equal(ds.to_pandas(), df)


def test_strided_values_take_pyarrows_route():
    # A view of every other value: handing its buffer over would be wrong.
    strided = pd.Series(np.arange(8.0)[::2], copy=False)
    assert not strided.to_numpy(copy=False).flags.c_contiguous
    assert _plain_values(strided) is None
    assert _plain_values(pd.Series(np.arange(4.0))) is not None
