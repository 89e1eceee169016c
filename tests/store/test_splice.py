"""Appends that coalesce the tail copy the stored files' pages instead of re-encoding them.

What a user must see is unchanged: the same rows and dtypes, the same row-group layout as
a decoding merge, and files that other readers read on their own. A dataset with a
categorical column always takes the decoding path, so it serves as the reference layout.
"""

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
from oups.exceptions import CorruptDatasetError
from tests.conftest import dir_digest


def frame(start: int, n: int, seed: int = 0) -> pd.DataFrame:
    """Realistic columns: tz-aware time, floats with NaN, nullable ints, bools, strings."""
    rng = np.random.default_rng(seed + start)
    idx = np.arange(start, start + n)
    f = rng.standard_normal(n)
    f[idx % 7 == 0] = np.nan
    nullable = pd.array(idx, dtype="Int64")
    nullable[idx % 5 == 0] = pd.NA
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(idx, unit="s", utc=True).tz_convert("Europe/Paris"),
            "f": f,
            "i": idx.astype("int64") * 3,
            "i32": idx.astype("int32"),
            "b": idx % 3 == 0,
            "n": nullable,
            "s": [f"s{v % 11}" for v in idx],
        }
    )


def append_all(path: Path, sizes: list[int], extra: dict | None = None, **kw) -> pd.DataFrame:
    written, start = [], 0
    for size in sizes:
        df = frame(start, size)
        for name, make in (extra or {}).items():
            df[name] = make(df)
        write(path, ordered_on="ts", df=df, **kw)
        written.append(df)
        start += size
    return pd.concat(written, ignore_index=True)


def layout(path: Path) -> list[tuple]:
    with OrderedParquetDataset(path) as ds:
        stats = ds.row_group_stats
    return list(
        zip(stats["n_rows"], stats["ordered_on_mins"], stats["ordered_on_maxs"], strict=True)
    )


SIZES = [130, 70, 110, 90, 150, 60, 40, 200, 35, 115]


@pytest.mark.parametrize(
    "kw",
    [
        {"row_group_target_size": 250, "max_n_off_target_rgs": 2},
        {"row_group_target_size": 300, "max_n_off_target_rgs": 1},
        {"row_group_target_size": "10min", "max_n_off_target_rgs": 2},
        {"row_group_target_size": 250, "max_n_off_target_rgs": 3, "duplicates_on": "ts"},
    ],
    ids=["rows", "rows-tight", "period", "dedup"],
)
def test_coalescing_appends_keep_rows_dtypes_and_layout(tmp_path, kw):
    expected = append_all(tmp_path / "ds", SIZES, **kw)
    with OrderedParquetDataset(tmp_path / "ds") as ds:
        pd.testing.assert_frame_equal(ds.to_pandas(), expected)
    # The same appends with a categorical column take the decoding path.
    append_all(tmp_path / "ref", SIZES, extra={"c": lambda d: d["s"].astype("category")}, **kw)
    assert layout(tmp_path / "ds") == layout(tmp_path / "ref")
    assert len(layout(tmp_path / "ds")) < len(SIZES)  # coalescing did happen


def test_spliced_files_are_plain_parquet_for_other_readers(tmp_path):
    expected = append_all(tmp_path / "ds", SIZES, row_group_target_size=250, max_n_off_target_rgs=2)
    files = sorted(str(p) for p in (tmp_path / "ds").glob("*.parquet"))
    # Each file on its own, in order, with its statistics true bounds of its values.
    offset = 0
    for name in files:
        pf = pq.ParquetFile(name)
        assert pf.metadata.num_row_groups == 1
        table = pf.read()
        part = expected.iloc[offset : offset + table.num_rows]
        offset += table.num_rows
        np.testing.assert_array_equal(table["i"].to_numpy(), part["i"].to_numpy())
        np.testing.assert_array_equal(table["f"].to_numpy(), part["f"].to_numpy())
        assert table["n"].to_pylist() == [None if v is pd.NA else v for v in part["n"]]
        assert table["s"].to_pylist() == part["s"].tolist()
        rg = pf.metadata.row_group(0)
        for col, values in (("i", part["i"]), ("i32", part["i32"]), ("f", part["f"].dropna())):
            stats = rg.column(table.schema.get_field_index(col)).statistics
            assert (stats.min, stats.max) == (values.min(), values.max()), col
        n_stats = rg.column(table.schema.get_field_index("n")).statistics
        assert n_stats.null_count == part["n"].isna().sum()
    assert offset == len(expected)
    table = pads.dataset(files).to_table()
    assert table["i"].to_pylist() == expected["i"].tolist()
    frame_pl = pl.read_parquet(files)
    assert frame_pl["i"].to_list() == expected["i"].tolist()
    # NaN from pandas is stored as null, as pyarrow converts it (docs/dataset.md).
    assert frame_pl["f"].is_null().sum() == expected["f"].isna().sum()
    con = duckdb.connect()
    rows = con.execute(f"select i, n, s from read_parquet({files!r}) order by ts, i").fetchall()
    assert [r[0] for r in rows] == expected["i"].tolist()
    assert [r[1] for r in rows] == [None if v is pd.NA else v for v in expected["n"]]
    # Page-level pruning (the offset index) still works: a range read of a spliced file.
    mid = expected["ts"].iloc[len(expected) // 2]
    got = con.execute(
        f"select count(*) from read_parquet({files!r}) where ts >= ?", [mid.to_pydatetime()]
    ).fetchone()
    assert got[0] == (expected["ts"] >= mid).sum()


def test_range_reads_of_spliced_row_groups(tmp_path):
    expected = append_all(tmp_path / "ds", SIZES, row_group_target_size=400, max_n_off_target_rgs=1)
    with OrderedParquetDataset(tmp_path / "ds") as ds:
        lo, hi = expected["ts"].iloc[123], expected["ts"].iloc[777]
        got = ds.to_pandas(start=lo, end_excl=hi)
    want = expected[(expected["ts"] >= lo) & (expected["ts"] < hi)].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)


def test_changing_compression_between_appends(tmp_path):
    path = tmp_path / "ds"
    kw = {"row_group_target_size": 250, "max_n_off_target_rgs": 2}
    a = append_all(path, [100, 100], compression="zstd", **kw)
    b = frame(200, 120)
    write(path, ordered_on="ts", df=b, compression="none", **kw)
    with OrderedParquetDataset(path) as ds:
        pd.testing.assert_frame_equal(ds.to_pandas(), pd.concat([a, b], ignore_index=True))
    # One codec per column chunk: the coalesced file is all one codec.
    for name in path.glob("*.parquet"):
        md = pq.ParquetFile(name).metadata.row_group(0)
        assert len({md.column(c).compression for c in range(md.num_columns)}) == 1


def test_a_tie_at_the_boundary_with_duplicates_on_replaces_the_stored_row(tmp_path):
    path = tmp_path / "ds"
    kw = {"row_group_target_size": 10, "max_n_off_target_rgs": 1, "duplicates_on": "ts"}
    first = frame(0, 4)
    write(path, ordered_on="ts", df=first, **kw)
    again = frame(3, 3)  # its first row has the stored last timestamp
    again["i"] = -1
    write(path, ordered_on="ts", df=again, **kw)
    with OrderedParquetDataset(path) as ds:
        out = ds.to_pandas()
    assert out["i"].tolist() == [0, 3, 6, -1, -1, -1]


def test_a_file_replaced_behind_our_back_is_not_copied(tmp_path):
    path = tmp_path / "ds"
    kw = {"row_group_target_size": 1000, "max_n_off_target_rgs": 1}
    append_all(path, [10, 10], **kw)
    (victim,) = path.glob("*.parquet")
    table = pq.read_table(victim)
    pq.write_table(table.take(pa.array(list(reversed(range(table.num_rows))))), victim)
    before = dir_digest(path.parent)
    with pytest.raises(CorruptDatasetError, match=victim.name):
        write(path, ordered_on="ts", df=frame(20, 10), **kw)
    assert dir_digest(path.parent) == before


def test_frames_read_before_a_splice_are_unchanged(tmp_path):
    path = tmp_path / "ds"
    kw = {"row_group_target_size": 1000, "max_n_off_target_rgs": 1}
    append_all(path, [50, 50], **kw)
    with OrderedParquetDataset(path) as ds:
        before = ds.to_pandas()
    snapshot = before.copy()
    write(path, ordered_on="ts", df=frame(100, 50), **kw)
    pd.testing.assert_frame_equal(before, snapshot)
    before.loc[0, "f"] = 123.0
    with OrderedParquetDataset(path) as ds:
        assert ds.to_pandas()["f"].iloc[0] != 123.0
