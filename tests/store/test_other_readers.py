"""Every layout oups writes is plain Parquet: pyarrow, pyarrow.dataset, DuckDB and polars
read the directory on their own, rows in order, with the values oups reads."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from oups import OrderedParquetDataset, write


def frame(start: int, n: int) -> pd.DataFrame:
    idx = np.arange(start, start + n)
    f = np.sin(idx.astype("float64"))
    f[idx % 9 == 0] = np.nan
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(idx * 60, unit="s", utc=True),
            "f": f,
            "i": idx * 2,
            "b": idx % 2 == 0,
            "s": [f"k{v % 5}" for v in idx],
        }
    )


def bulk(path: Path) -> None:
    write(path, ordered_on="ts", df=frame(0, 1000), row_group_target_size=300)


def appended(path: Path) -> None:
    # Coalescing appends: stored pages copied, new rows encoded.
    for start in range(0, 1000, 70):
        write(
            path,
            ordered_on="ts",
            df=frame(start, min(70, 1000 - start)),
            row_group_target_size=300,
            max_n_off_target_rgs=2,
        )


def upserted(path: Path) -> None:
    # A merge in the middle: decoded, merged and re-encoded.
    bulk(path)
    up = frame(400, 200)
    up["i"] = -up["i"]
    write(path, ordered_on="ts", df=up, row_group_target_size=300, duplicates_on="ts")


def categorical(path: Path) -> None:
    for start in range(0, 1000, 250):
        df = frame(start, 250)
        df["s"] = df["s"].astype("category")
        write(path, ordered_on="ts", df=df, row_group_target_size=300, max_n_off_target_rgs=1)


def compressed(path: Path) -> None:
    for start in range(0, 1000, 100):
        write(
            path,
            ordered_on="ts",
            df=frame(start, 100),
            row_group_target_size=300,
            max_n_off_target_rgs=2,
            compression="zstd",
        )


@pytest.mark.parametrize("make", [bulk, appended, upserted, categorical, compressed])
def test_other_readers_see_the_rows_oups_reads(tmp_path, make):
    path = tmp_path / "ds"
    make(path)
    with OrderedParquetDataset(path) as ds:
        ours = ds.to_pandas()
        assert len(ds.row_group_stats) > 1
    files = sorted(str(p) for p in path.glob("*.parquet"))
    expected_i = ours["i"].tolist()
    expected_s = ours["s"].astype(str).tolist()

    per_file = pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")
    assert per_file["i"].to_pylist() == expected_i
    assert per_file.num_rows == sum(pq.ParquetFile(f).metadata.num_rows for f in files)

    table = pads.dataset(str(path), format="parquet").to_table()
    assert table["i"].to_pylist() == expected_i
    assert [str(v) for v in table["s"].to_pylist()] == expected_s

    frame_pl = pl.read_parquet(files)
    assert frame_pl["i"].to_list() == expected_i
    assert frame_pl["b"].to_list() == ours["b"].tolist()

    con = duckdb.connect()
    rows = con.execute(f"select i, s, f from read_parquet({files!r})").fetchall()
    assert [r[0] for r in rows] == expected_i
    assert [str(r[1]) for r in rows] == expected_s
    np.testing.assert_array_equal(
        np.array([np.nan if r[2] is None else r[2] for r in rows]), ours["f"].to_numpy()
    )


def test_nan_from_pandas_is_null_for_other_readers_and_nan_for_oups(tmp_path):
    path = tmp_path / "ds"
    df = pd.DataFrame({"t": [1, 2, 3], "x": [1.0, np.nan, 3.0]})
    write(path, ordered_on="t", df=df)
    with OrderedParquetDataset(path) as ds:
        assert ds.to_pandas()["x"].isna().tolist() == [False, True, False]
    files = [str(p) for p in path.glob("*.parquet")]
    con = duckdb.connect()
    assert con.execute(
        f"select count(*) from read_parquet({files!r}) where x is null"
    ).fetchone() == (1,)
    assert pl.read_parquet(files)["x"].is_null().to_list() == [False, True, False]


def test_nan_from_arrow_stays_nan(tmp_path):
    path = tmp_path / "ds"
    table = pa.table({"t": [1, 2, 3], "x": pa.array([1.0, float("nan"), None])})
    write(path, ordered_on="t", df=table)
    files = [str(p) for p in path.glob("*.parquet")]
    x = pl.read_parquet(files)["x"]
    assert x.is_nan().to_list() == [False, True, None]
    assert x.is_null().to_list() == [False, False, True]
