"""OrderedParquetDataset: state, views, reading, locks, removal, dtypes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from oups import OrderedParquetDataset, ReadOnlyOrderedParquetDataset, write
from oups.exceptions import LockTimeoutError
from tests.conftest import rg_values


@pytest.fixture
def seven(tmp_ds):
    write(
        tmp_ds,
        ordered_on="t",
        df=pd.DataFrame({"t": range(1, 8), "v": range(7)}),
        row_group_target_size=3,
        key_value_metadata={"k": "v"},
    )
    return tmp_ds


def test_new_dataset_touches_nothing(tmp_ds):
    ds = OrderedParquetDataset(tmp_ds)
    assert (ds.ordered_on, ds.key_value_metadata, ds.is_newly_initialized) == (None, {}, True)
    assert (ds.max_file_id, len(ds), ds.to_pandas(), ds.to_arrow()) == (-1, 0, None, None)
    stats = ds.row_group_stats
    assert list(stats.columns) == ["file_ids", "n_rows", "ordered_on_mins", "ordered_on_maxs"]
    assert len(stats) == 0
    assert not tmp_ds.parent.exists()


def test_written_dataset_state(seven):
    ds = OrderedParquetDataset(seven)
    assert (ds.ordered_on, ds.key_value_metadata, ds.is_newly_initialized) == (
        "t",
        {"k": "v"},
        False,
    )
    assert len(ds) == 3
    stats = ds.row_group_stats
    assert stats["n_rows"].tolist() == [3, 3, 1]
    assert stats["ordered_on_mins"].tolist() == [1, 4, 7]
    assert stats["ordered_on_maxs"].tolist() == [3, 6, 7]
    assert ds.max_file_id == stats["file_ids"].max()
    assert ds.dirpath == seven.resolve()
    df = ds.to_pandas()
    assert df["t"].tolist() == list(range(1, 8))
    assert isinstance(df.index, pd.RangeIndex)
    assert ds.to_arrow().num_rows == 7
    # Reading takes no lock; the latest version's files are plain Parquet in
    # the dataset directory, the history is hidden beside it.
    assert not (seven.parent / "ds.lock").exists()
    assert sorted(p.name for p in seven.parent.iterdir()) == [".ds.oups", "ds", "ds_opdmd"]
    ds.close()


def test_views(seven):
    ds = OrderedParquetDataset(seven)
    v = ds[1]
    assert isinstance(v, ReadOnlyOrderedParquetDataset)
    assert v.to_pandas()["t"].tolist() == [4, 5, 6]
    assert ds[1:3].to_pandas()["t"].tolist() == [4, 5, 6, 7]
    assert ds[::2].to_pandas()["t"].tolist() == [1, 2, 3, 7]
    assert ds[-2:].to_pandas()["t"].tolist() == [4, 5, 6, 7]
    assert ds[1:3][1].to_pandas()["t"].tolist() == [7]
    assert ds[-1].to_pandas()["t"].tolist() == [7]
    assert ds[np.int64(0)].to_pandas()["t"].tolist() == [1, 2, 3]
    assert ds[[0, 2]].to_pandas()["t"].tolist() == [1, 2, 3, 7]
    assert ds[0:0].to_pandas() is None and len(ds[0:0]) == 0
    with pytest.raises(IndexError):
        ds[5]
    with pytest.raises(TypeError):
        ds["a"]
    with pytest.raises(TypeError):
        ds[True]
    kvm = v.key_value_metadata
    kvm["x"] = 1
    assert v.key_value_metadata == {"k": "v"}


def test_views_and_readers_never_block_writers(seven):
    ds = OrderedParquetDataset(seven)
    view = ds[0]
    _other_process_writes(seven, timeout=0, t=8)
    # Both keep reading the version they were made from.
    assert view.to_pandas()["t"].tolist() == [1, 2, 3]
    assert ds.n_rows == 7 and ds.refresh().n_rows == 8
    assert not (seven.parent / "ds.lock").exists()


def _other_process_writes(path, timeout, t=8):
    code = textwrap.dedent(f"""
        import sys
        import pandas as pd
        from oups import write
        from oups.exceptions import LockTimeoutError
        try:
            write({str(path)!r}, ordered_on="t", df=pd.DataFrame({{"t": [{t}], "v": [0]}}),
                  lock_timeout={timeout})
        except LockTimeoutError as e:
            print("TIMEOUT", e); sys.exit(3)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if r.returncode == 3:
        raise LockTimeoutError(r.stdout)
    assert r.returncode == 0, r.stderr


def test_lock_excludes_other_processes_and_is_shared_in_process(seven):
    ds = OrderedParquetDataset(seven)
    with ds.lock():
        with pytest.raises(LockTimeoutError, match="ds"):
            _other_process_writes(seven, timeout=0.3)
        with pytest.raises(TimeoutError):
            _other_process_writes(seven, timeout=0)
        # Same process: a second object shares the lock instead of deadlocking.
        again = OrderedParquetDataset(seven, lock_timeout=0)
        write(seven, ordered_on="t", df=pd.DataFrame({"t": [8], "v": [7]}), lock_timeout=0)
        assert again.refresh().to_pandas()["t"].tolist()[-1] == 8
        with ds.lock():  # re-entrant
            ds.write(df=pd.DataFrame({"t": [9], "v": [7]}))
        assert seven.with_name("ds.lock").exists()
    assert not seven.with_name("ds.lock").exists()
    _other_process_writes(seven, timeout=0, t=10)
    assert ds.refresh().to_pandas()["t"].tolist()[-3:] == [8, 9, 10]


def test_lock_block_sees_the_latest_version(seven):
    ds = OrderedParquetDataset(seven)
    _other_process_writes(seven, timeout=0)
    assert ds.n_rows == 7
    with ds.lock(timeout=1):
        assert ds.n_rows == 8


def test_crashed_holder_never_blocks(seven):
    code = textwrap.dedent(f"""
        import os
        from oups import OrderedParquetDataset
        ds = OrderedParquetDataset({str(seven)!r})
        os._exit(0)
    """)
    subprocess.run([sys.executable, "-c", code], check=True)
    ds = OrderedParquetDataset(seven, lock_timeout=0)
    assert len(ds) == 3
    code = textwrap.dedent(f"""
        import os
        from oups import OrderedParquetDataset
        ds = OrderedParquetDataset({str(seven)!r})
        with ds.lock():
            os._exit(0)
    """)
    subprocess.run([sys.executable, "-c", code], check=True)
    _other_process_writes(seven, timeout=0)


def test_context_manager_releases_lock(seven):
    with OrderedParquetDataset(seven) as ds:
        assert len(ds) == 3
        with ds.lock():
            pass
        ds.lock().__enter__()  # left held: the block's exit releases it
    _other_process_writes(seven, timeout=0)


def test_remove_from_disk(seven):
    ds = OrderedParquetDataset(seven)
    ds.write(df=pd.DataFrame({"t": [8], "v": [0]}))  # history as well
    ds.remove_from_disk(preserve_metadata=True, release_lock=False)
    assert sorted(p.name for p in seven.parent.iterdir()) == ["ds.lock"]
    assert ds.key_value_metadata == {"k": "v"} and ds.is_newly_initialized
    ds.write(df=pd.DataFrame({"t": [1], "v": [0]}))
    assert OrderedParquetDataset(seven).key_value_metadata == {"k": "v"}
    ds.remove_from_disk()
    assert ds.key_value_metadata == {} and len(ds) == 0
    assert list(seven.parent.iterdir()) == []
    ds.remove_from_disk()
    fresh = OrderedParquetDataset(seven)
    fresh.remove_from_disk()
    assert list(seven.parent.iterdir()) == []


def test_datasets_opened_elsewhere_see_new_commits_after_refresh(seven):
    a = OrderedParquetDataset(seven)
    write(seven, ordered_on="t", df=pd.DataFrame({"t": [10], "v": [0]}))
    assert len(a) == 3 and a.to_pandas()["t"].iloc[-1] == 7  # its version
    assert a.refresh() is a
    assert len(a) == 4 and a.to_pandas()["t"].iloc[-1] == 10
    # A write plans against the latest version, whatever the object read.
    b = OrderedParquetDataset(seven, version=a.version - 1)
    a2 = OrderedParquetDataset(seven)
    write(seven, ordered_on="t", df=pd.DataFrame({"t": [11], "v": [0]}))
    a2.write(df=pd.DataFrame({"t": [12], "v": [0]}))
    assert a2.to_pandas()["t"].tolist()[-3:] == [10, 11, 12]
    assert b.to_pandas()["t"].tolist()[-1] == 7


DTYPES = {
    "i8": pd.Series([1, -2, 3], dtype="int8"),
    "i16": pd.Series([1, -2, 3], dtype="int16"),
    "i32": pd.Series([1, -2, 3], dtype="int32"),
    "i64": pd.Series([1, -2, 3], dtype="int64"),
    "u8": pd.Series([1, 2, 3], dtype="uint8"),
    "u16": pd.Series([1, 2, 3], dtype="uint16"),
    "u32": pd.Series([1, 2, 3], dtype="uint32"),
    "u64": pd.Series([1, 2, 2**63 + 5], dtype="uint64"),
    "f32": pd.Series([1.5, np.nan, 3.0], dtype="float32"),
    "f64": pd.Series([1.5, np.nan, -np.inf], dtype="float64"),
    "bool": pd.Series([True, False, True]),
    "dt_ns": pd.Series(pd.to_datetime(["2024-01-01", "2024-01-02", None])),
    "dt_us": pd.Series(pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"])).astype(
        "datetime64[us]"
    ),
    "dt_ms": pd.Series(pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"])).astype(
        "datetime64[ms]"
    ),
    "dt_s": pd.Series(pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"])).astype(
        "datetime64[s]"
    ),
    "dt_tz": pd.Series(pd.date_range("2024-01-01", periods=3, freq="h", tz="Europe/Paris")),
    "td": pd.Series(pd.to_timedelta([1, 2, 3], unit="s")),
    "obj_str": pd.Series(["a", "bb", None], dtype=object),
    "str": pd.Series(["a", "bb", "ccc"], dtype="string"),
    "Int64": pd.Series([1, None, 3], dtype="Int64"),
    "boolean": pd.Series([True, None, False], dtype="boolean"),
    "cat": pd.Series(["x", "y", "x"], dtype="category"),
}


def test_dtypes_round_trip(tmp_ds):
    df = pd.DataFrame({"key": [1, 2, 3], **DTYPES})
    write(tmp_ds, ordered_on="key", df=df.iloc[:2], row_group_target_size=2)
    write(tmp_ds, ordered_on="key", df=df.iloc[2:], row_group_target_size=2)
    out = OrderedParquetDataset(tmp_ds).to_pandas()
    expected = df.copy()
    if expected["obj_str"].dtype != out["obj_str"].dtype:
        expected["obj_str"] = expected["obj_str"].astype(out["obj_str"].dtype)
    pd.testing.assert_frame_equal(out, expected)


@pytest.mark.parametrize(
    "col", ["i8", "i32", "u16", "u64", "f32", "dt_ns", "dt_us", "dt_s", "dt_tz", "td"]
)
def test_ordered_column_types_keep_their_type_in_stats(tmp_ds, col):
    s = DTYPES[col].dropna().sort_values().reset_index(drop=True)
    df = pd.DataFrame({"k": s, "v": range(len(s))})
    write(tmp_ds, ordered_on="k", df=df, row_group_target_size=1)
    ds = OrderedParquetDataset(tmp_ds)
    stats = ds.row_group_stats
    assert stats["ordered_on_mins"].dtype == s.dtype
    assert stats["ordered_on_mins"].tolist() == s.tolist()
    pd.testing.assert_series_equal(ds.to_pandas()["k"], s, check_names=False)


def test_categoricals_with_new_categories_append(tmp_ds):
    write(tmp_ds, ordered_on="k", df=pd.DataFrame({"k": [1, 2], "c": pd.Categorical(["a", "b"])}))
    many = pd.Categorical([f"c{i}" for i in range(300)])
    write(tmp_ds, ordered_on="k", df=pd.DataFrame({"k": range(3, 303), "c": many}))
    out = OrderedParquetDataset(tmp_ds).to_pandas()
    assert out["c"].dtype == "category"
    assert out["c"].astype(str).tolist() == ["a", "b"] + [f"c{i}" for i in range(300)]


def test_arrow_and_polars_inputs(tmp_ds):
    import polars as pl

    write(tmp_ds, ordered_on="k", df=pa.table({"k": [1, 2], "v": [1.0, 2.0]}))
    write(tmp_ds, ordered_on="k", df=pa.record_batch({"k": [3], "v": [3.0]}))
    write(tmp_ds, ordered_on="k", df=pl.DataFrame({"k": [4, 5], "v": [4.0, 5.0]}))
    out = OrderedParquetDataset(tmp_ds).to_pandas()
    assert out["k"].tolist() == [1, 2, 3, 4, 5]
    assert out["v"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_files_are_plain_parquet_in_order(tmp_ds):
    write(
        tmp_ds,
        ordered_on="k",
        df=pd.DataFrame({"k": range(10), "v": range(10)}),
        row_group_target_size=3,
    )
    write(tmp_ds, ordered_on="k", df=pd.DataFrame({"k": [4], "v": [-1]}), row_group_target_size=3)
    import pyarrow.dataset as pads

    table = pads.dataset(str(tmp_ds), format="parquet").to_table()
    assert table.column("k").to_pylist() == [0, 1, 2, 3, 4, 4, 5, 6, 7, 8, 9]
    files = sorted(p.name for p in tmp_ds.iterdir())
    import pyarrow.parquet as pq

    assert all(pq.ParquetFile(tmp_ds / f).num_row_groups == 1 for f in files)


def test_unsorted_dataset_never_results(tmp_ds):
    # Bug B2 of the reference: rgs [3,5] [5,5] [5,6] + [4], target 2.
    for rg in ([3, 5], [5, 5], [5, 6]):
        write(tmp_ds, ordered_on="a", df=pd.DataFrame({"a": rg}), row_group_target_size=10**6)
    write(tmp_ds, ordered_on="a", df=pd.DataFrame({"a": [4]}), row_group_target_size=2)
    ds = OrderedParquetDataset(tmp_ds)
    values = ds.to_pandas()["a"].tolist()
    assert values == sorted(values) == [3, 4, 5, 5, 5, 5, 6]
    flat = [v for rg in rg_values(ds) for v in rg]
    assert flat == values


def test_int_target_dedup_within_new_rows(tmp_ds):
    # Bug B3 of the reference: the new row must win, no misalignment.
    write(
        tmp_ds,
        ordered_on="a",
        df=pd.DataFrame({"a": [1, 2, 3], "b": [0, 0, 0]}),
        row_group_target_size=10,
    )
    write(
        tmp_ds,
        ordered_on="a",
        df=pd.DataFrame({"a": [2, 2, 3, 3], "b": [1, 2, 3, 4]}),
        row_group_target_size=10,
        duplicates_on="a",
    )
    out = OrderedParquetDataset(tmp_ds).to_pandas()
    assert out["a"].tolist() == [1, 2, 3] and out["b"].tolist() == [0, 2, 4]


def test_compression_choices(tmp_ds):
    import pyarrow.parquet as pq

    for i, codec in enumerate(["none", "snappy", "zstd", "zstd(3)", "lz4", "gzip"]):
        write(
            tmp_ds, ordered_on="k", df=pd.DataFrame({"k": [i], "v": [float(i)]}), compression=codec
        )
    ds = OrderedParquetDataset(tmp_ds)
    assert ds.to_pandas()["k"].tolist() == list(range(6))
    codecs = [
        pq.ParquetFile(tmp_ds / p.name).metadata.row_group(0).column(0).compression
        for p in sorted(tmp_ds.iterdir())
    ]
    assert codecs == ["UNCOMPRESSED", "SNAPPY", "ZSTD", "ZSTD", "LZ4", "GZIP"]


def test_panic_becomes_internal_error():
    from oups import _oups
    from oups.exceptions import InternalError

    with pytest.raises(InternalError, match="deliberate"):
        _oups._debug_panic()


def test_remove_from_disk_can_keep_the_lock_against_other_processes(seven):
    ds = OrderedParquetDataset(seven)
    lock = seven.with_name("ds.lock")
    ds.remove_from_disk(release_lock=False)
    assert lock.exists()  # held after the removal
    code = textwrap.dedent(f"""
        import sys
        import pandas as pd
        from oups import write
        from oups.exceptions import LockTimeoutError
        try:
            write({str(seven)!r}, ordered_on="t", df=pd.DataFrame({{"t": [1]}}), lock_timeout=0.2)
        except LockTimeoutError:
            sys.exit(3)
    """)
    blocked = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert blocked.returncode == 3, blocked.stderr
    assert not seven.exists()
    ds.close()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(OrderedParquetDataset(seven)) == 1


def test_frames_returned_by_reads_are_writable_and_never_reach_the_files(tmp_path):
    from oups import Store, toplevel

    @toplevel
    class K:
        name: str

    store = Store(tmp_path, K)
    n = 300_000  # large enough for the joined, zero-copy read path
    df = pd.DataFrame(
        {
            "t": np.arange(n, dtype="int64"),
            "v": np.arange(n, dtype="float64"),
            "z": pd.date_range("2024", periods=n, freq="s", tz="Europe/Paris"),
        }
    )
    store[K("a")].write(ordered_on="t", df=df, row_group_target_size=100_000)
    ds = store[K("a")]
    frames = [
        ds.to_pandas(),
        ds.to_pandas(start=10, end_excl=20),
        ds[1].to_pandas(),
        next(iter(store.iter_intersections([K("a")])))[K("a")],
    ]
    for out in frames:
        out.loc[out.index[0], "v"] = -1.0
        out.loc[out.index[0], "t"] = -1
        out.loc[out.index[0], "z"] = pd.Timestamp("2000", tz="Europe/Paris")
        assert out["v"].iloc[0] == -1.0
    pd.testing.assert_frame_equal(ds.to_pandas(), df)
    pd.testing.assert_frame_equal(pd.read_parquet(store.basepath / "a").reset_index(drop=True), df)


def test_write_lock_timeout_bounds_the_wait_of_a_dataset_object(seven):
    code = textwrap.dedent(f"""
        import time
        from oups import OrderedParquetDataset
        ds = OrderedParquetDataset({str(seven)!r})
        with ds.lock():
            print("locked", flush=True)
            time.sleep(5)
    """)
    ds = OrderedParquetDataset(seven)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockTimeoutError):
            ds.write(df=pd.DataFrame({"t": [9], "v": [0]}), lock_timeout=0.1)
        # An object that does not hold the lock (released, or opened before the
        # dataset existed) waits at most the write's own lock_timeout.
        fresh = OrderedParquetDataset(seven.with_name("fresh"))
        fresh.write(ordered_on="t", df=pd.DataFrame({"t": [1]}), lock_timeout=0.1)
        assert fresh.n_rows == 1
        with pytest.raises(LockTimeoutError):
            write(seven, ordered_on="t", df=pd.DataFrame({"t": [9], "v": [0]}), lock_timeout=0.1)
    finally:
        holder.kill()
        holder.communicate()
