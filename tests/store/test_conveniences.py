"""What a user reaches for in the first week: row counts, polars and Arrow
outputs, time units, progress without tqdm, messages and reprs."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from oups import OrderedParquetDataset, Store, toplevel, write
from oups.exceptions import SchemaMismatchError, UnsortedError


@toplevel
class K:
    name: str


def _write(tmp_path):
    store = Store(tmp_path, K)
    df = pd.DataFrame({"ts": np.arange(10), "v": np.arange(10.0)})
    store[K("a")].write(ordered_on="ts", df=df, row_group_target_size=4)
    return store, df


def test_n_rows_and_to_polars_on_datasets_and_views(tmp_path):
    store, df = _write(tmp_path)
    ds = store[K("a")]
    assert ds.n_rows == 10 and ds[1:].n_rows == 6 and ds[0].n_rows == 4
    out = ds.to_polars()
    assert isinstance(out, pl.DataFrame) and out["v"].to_list() == df["v"].tolist()
    assert ds[2].to_polars()["ts"].to_list() == [8, 9]
    assert ds.to_polars(start=3, end_excl=5, columns=["v"]).to_dict(as_series=False) == {
        "v": [3.0, 4.0]
    }
    assert OrderedParquetDataset(tmp_path / "empty").to_polars() is None
    assert OrderedParquetDataset(tmp_path / "empty").n_rows == 0


@pytest.mark.parametrize(
    ("output", "kind"),
    [("pandas", pd.DataFrame), ("arrow", pa.RecordBatch), ("polars", pl.DataFrame)],
)
def test_iter_intersections_output(tmp_path, output, kind):
    store, df = _write(tmp_path)
    chunks = list(store.iter_intersections([K("a")], output=output))
    assert all(isinstance(c[K("a")], kind) for c in chunks)
    ts = (
        [v for c in chunks for v in pl.from_pandas(c[K("a")]).to_series(0).to_list()]
        if (output == "pandas")
        else [v for c in chunks for v in pl.DataFrame(c[K("a")])["ts"].to_list()]
    )
    assert ts == df["ts"].tolist()
    with pytest.raises(ValueError, match="'output' must be"):
        store.iter_intersections([K("a")], output="numpy")


def test_a_lossless_time_unit_is_cast_and_a_lossy_one_is_refused(tmp_path):
    path = tmp_path / "ds"
    ns = pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=4, freq="h").as_unit("ns")})
    write(path, ordered_on="ts", df=ns.assign(v=1.0), row_group_target_size="2h")
    us = pl.DataFrame({"ts": [pd.Timestamp("2024-01-01 04:00")], "v": [2.0]}).with_columns(
        pl.col("ts").cast(pl.Datetime("us"))
    )
    write(path, ordered_on="ts", df=us, row_group_target_size="2h")
    out = OrderedParquetDataset(path).to_pandas()
    assert out["ts"].dtype == "datetime64[ns]"
    assert out["ts"].iloc[-1] == pd.Timestamp("2024-01-01 04:00")
    assert OrderedParquetDataset(path).row_group_stats["n_rows"].tolist() == [2, 2, 1]
    # Microseconds stored, nanoseconds that do not fit: refused, naming both.
    path2 = tmp_path / "us"
    write(path2, ordered_on="ts", df=us)
    fine = pd.DataFrame({"ts": [pd.Timestamp("2024-01-02 00:00:00.000000001")], "v": [3.0]})
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(
        SchemaMismatchError, match=r"Timestamp\(ns\) but the dataset stores Timestamp\(µs\)"
    ):
        write(path2, ordered_on="ts", df=fine)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_unsorted_error_shows_timestamps(tmp_path):
    df = pd.DataFrame({"ts": pd.to_datetime(["2024-01-02", "2024-01-01"])})
    with pytest.raises(UnsortedError, match="2024-01-01"):
        write(tmp_path / "ds", ordered_on="ts", df=df)


def test_reprs_and_messages(tmp_path):
    store, _ = _write(tmp_path)
    ds = store[K("a")]
    assert repr(ds).endswith("row_groups=3)") and repr(ds[1:]).endswith("row_groups=2)")
    assert repr(store) == f"Store('{store.basepath}', K, 1 datasets)"
    with pytest.raises(Exception) as err:
        ds.write(ordered_on="other", df=pd.DataFrame({"other": [1]}))
    assert "record dataset" not in str(err.value)


def test_a_zero_row_write_on_an_empty_dataset_is_a_no_op(tmp_path):
    store = Store(tmp_path, K)
    store[K("z")].write(ordered_on="ts", df=pd.DataFrame({"ts": pd.Series([], dtype="int64")}))
    write(tmp_path / "w", ordered_on="ts", df=None)
    assert list(store) == [] and os.listdir(tmp_path) == []
    # With metadata it does create the dataset.
    store[K("m")].write(ordered_on="ts", df=None, key_value_metadata={"k": 1})
    assert list(store) == [K("m")]
