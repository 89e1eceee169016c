"""oups.dask.read on a LocalCluster: equality with to_pandas, divisions from
the metadata, pushdown of ranges and columns, version pinning."""

from __future__ import annotations

import gc
import shutil
import subprocess
import sys
import time
import urllib.request

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

import oups.dask
from oups import OrderedParquetDataset, Store, toplevel
from oups.exceptions import (
    DatasetFileNotFoundError,
    InvalidParameterError,
    ParameterTypeError,
)


def frame(n: int, seed: int = 0, start: str = "2024-03-30") -> pd.DataFrame:
    """Ticks across a DST change, with the dtypes users keep."""
    rng = np.random.default_rng(seed)
    ts = pd.Timestamp(start, tz="Europe/Paris") + pd.to_timedelta(
        np.sort(rng.integers(0, 3 * 86_400, n)), unit="s"
    )
    qty = pd.array(rng.integers(0, 100, n), dtype="Int64")
    qty[rng.random(n) < 0.1] = pd.NA
    px = rng.standard_normal(n)
    px[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "ts": ts,
            "sym": pd.Categorical(rng.choice(["AAPL", "MSFT", "NVDA"], n)),
            "venue": rng.choice(["XNAS", "XNYS", "BATS"], n),
            "px": px,
            "qty": qty,
        }
    )


@pytest.fixture
def ticks(location) -> OrderedParquetDataset:
    """The same dataset on local disk and on the local S3 server."""
    ds = OrderedParquetDataset(location, ordered_on="ts")
    ds.write(df=frame(2_000), row_group_target_size=150)
    return ds


def expected_divisions(ds: OrderedParquetDataset) -> tuple:
    stats = ds.row_group_stats
    return (*stats["ordered_on_mins"].tolist(), stats["ordered_on_maxs"].tolist()[-1])


def test_read_equals_to_pandas_with_divisions_from_the_metadata(client, ticks):
    ddf = oups.dask.read(ticks)
    assert ddf.npartitions == len(ticks)
    assert ddf.known_divisions
    assert ddf.divisions == expected_divisions(ticks)
    expected = ticks.to_pandas().set_index("ts")
    # Categories differ between row groups: dask learns them when computing.
    assert ddf.dtypes.astype(str).equals(expected.dtypes.astype(str))
    got = ddf.compute()
    pd.testing.assert_frame_equal(got, expected)
    # Every partition lies within its divisions, as dask assumes.
    for i, part in enumerate(ddf.to_delayed()):
        values = part.compute().index
        lo, hi = ddf.divisions[i], ddf.divisions[i + 1]
        assert values.min() >= lo
        assert values.max() < hi or (i == ddf.npartitions - 1 and values.max() == hi)


def test_path_and_plain_column(client, ticks):
    ddf = oups.dask.read(str(ticks.dirpath), index=False)
    assert not ddf.known_divisions
    got = ddf.compute().reset_index(drop=True)
    pd.testing.assert_frame_equal(got, ticks.to_pandas())


def test_loc_reads_only_the_overlapping_partitions(client, ticks, tmp_path, s3_server):
    ddf = oups.dask.read(ticks)
    stats = ticks.row_group_stats
    lo, hi = stats["ordered_on_mins"][5], stats["ordered_on_maxs"][7]
    selected = ddf.loc[lo:hi]
    assert selected.optimize().npartitions == 3
    expected = ticks.to_pandas().set_index("ts").loc[lo:hi]
    if ticks.is_remote:
        # The server's log says which data files the tasks fetched.
        urllib.request.urlopen(f"{s3_server.endpoint}/__log__").read()
        got = selected.compute()
        log = urllib.request.urlopen(f"{s3_server.endpoint}/__log__").read().decode()
        fetched = {line.split()[1] for line in log.splitlines() if line.startswith("GET")}
        assert len({p for p in fetched if "/file_" in p}) == 3, log
        pd.testing.assert_frame_equal(got, expected)
        return
    # The files of the other row groups go away: reading one would fail.
    aside = tmp_path / "aside"
    aside.mkdir()
    keep = {f"file_{i:010d}.parquet" for i in stats["file_ids"][5:8]}
    for p in ticks.dirpath.iterdir():
        if p.name not in keep:
            shutil.move(p, aside / p.name)
    got = selected.compute()
    for p in aside.iterdir():
        shutil.move(p, ticks.dirpath / p.name)
    pd.testing.assert_frame_equal(got, expected)


def test_start_end_and_columns_are_pushed_down(client, ticks):
    start = pd.Timestamp("2024-03-31 03:30", tz="Europe/Paris")
    end = pd.Timestamp("2024-04-01 01:00", tz="Europe/Paris")
    ddf = oups.dask.read(ticks, columns=["px", "sym"], start=start, end_excl=end)
    bounds = ticks.row_group_stats
    overlapping = ((bounds["ordered_on_maxs"] >= start) & (bounds["ordered_on_mins"] < end)).sum()
    assert ddf.npartitions == overlapping < len(ticks)
    expected = ticks.to_pandas(start=start, end_excl=end, columns=["ts", "px", "sym"])
    pd.testing.assert_frame_equal(ddf.compute(), expected.set_index("ts"))
    # A projection after the read reaches the tasks.
    pd.testing.assert_series_equal(ddf["px"].compute(), expected.set_index("ts")["px"])
    assert list(ddf[["sym"]].optimize()._meta.columns) == ["sym"]


def test_a_range_outside_the_data_is_one_empty_partition(client, ticks):
    late = pd.Timestamp("2030-01-01", tz="Europe/Paris")
    ddf = oups.dask.read(ticks, start=late)
    got = ddf.compute()
    assert got.empty
    assert got.dtypes.astype(str).equals(ticks.to_pandas().dtypes.iloc[1:].astype(str))


def test_partition_size_gathers_row_groups(client, ticks):
    ddf = oups.dask.read(ticks, partition_size=400)
    sizes = ddf.map_partitions(len).compute().tolist()
    assert all(s >= 400 for s in sizes[:-1]) and sum(sizes) == 2_000
    assert ddf.npartitions < len(ticks)
    pd.testing.assert_frame_equal(ddf.compute(), ticks.to_pandas().set_index("ts"))
    by_bytes = oups.dask.read(ticks, partition_size="20KB")
    assert 1 < by_bytes.npartitions < len(ticks)


def test_row_groups_sharing_a_value_share_a_partition(client, tmp_path):
    ds = OrderedParquetDataset(tmp_path / "dups", ordered_on="t")
    ds.write(
        df=pd.DataFrame({"t": [1] * 5 + [2] * 2 + [3] * 6 + [4], "v": range(14)}),
        row_group_target_size=3,
    )
    mins = ds.row_group_stats["ordered_on_mins"].tolist()
    maxs = ds.row_group_stats["ordered_on_maxs"].tolist()
    assert any(a == b for a, b in zip(maxs[:-1], mins[1:], strict=True))  # the case under test
    ddf = oups.dask.read(ds)
    assert ddf.divisions[0] == 1 and ddf.divisions[-1] == 4
    pd.testing.assert_frame_equal(ddf.loc[3:3].compute(), ds.to_pandas().set_index("t").loc[3:3])
    # Without divisions any boundary will do.
    assert oups.dask.read(ds, index=False).npartitions == len(ds)


def no_leases(ds: OrderedParquetDataset) -> None:
    if ds.is_remote:
        pytest.skip("object storage has no leases (docs/storage.md): vacuums may remove a version")


def test_a_graph_reads_the_version_it_was_built_from(client, ticks):
    no_leases(ticks)
    before = ticks.to_pandas().set_index("ts")
    ddf = oups.dask.read(ticks.dirpath)
    for i in range(12):  # more writes than the default retention keeps
        ticks.write(df=frame(50, seed=i + 1, start="2024-04-05"), row_group_target_size=150)
    ticks.vacuum(keep_versions=1)
    pd.testing.assert_frame_equal(ddf.compute(), before)
    # Once the collection is gone, its version may go too (the client drops
    # its last references to a sent graph on its own thread).
    del ddf
    deadline = time.monotonic() + 30
    while True:
        gc.collect()
        if ticks.vacuum(keep_versions=1)["versions_removed"]:
            break
        assert time.monotonic() < deadline, "the version is still leased"
        time.sleep(0.05)


def test_concurrent_writer_during_reads(client, ticks, tmp_path):
    no_leases(ticks)
    expected = ticks.to_pandas().set_index("ts")
    ddf = oups.dask.read(ticks)
    script = tmp_path / "writer.py"
    script.write_text(
        "import sys, pandas as pd, numpy as np\n"
        "from oups import OrderedParquetDataset\n"
        "ds = OrderedParquetDataset(sys.argv[1])\n"
        "for i in range(40):\n"
        "    t = pd.Timestamp('2024-04-10', tz='Europe/Paris') + pd.Timedelta(minutes=i)\n"
        "    ds.write(df=pd.DataFrame({'ts': [t], 'sym': pd.Categorical(['AAPL']),\n"
        "                              'venue': ['XNAS'], 'px': [1.0],\n"
        "                              'qty': pd.array([1], dtype='Int64')}))\n"
        "    ds.vacuum(keep_versions=1)\n"
    )
    writer = subprocess.Popen([sys.executable, str(script), str(ticks.dirpath)])
    try:
        runs = 0
        while writer.poll() is None or runs < 2:
            pd.testing.assert_frame_equal(ddf.compute(), expected)
            runs += 1
    finally:
        writer.wait(timeout=120)
    assert writer.returncode == 0
    assert OrderedParquetDataset(ticks.dirpath).n_rows == 2_040


def test_a_snapshot_store_reads_its_versions(client, store_base):
    @toplevel
    class Feed:
        name: str

    store = Store(store_base, Feed)
    for name, seed in (("a", 1), ("b", 2)):
        store[Feed(name)].write(ordered_on="ts", df=frame(300, seed), row_group_target_size=100)
    store.snapshot("day1")
    store[Feed("a")].write(ordered_on="ts", df=frame(10, 9, "2024-04-10"))
    frozen = Store(store.basepath, Feed, snapshot="day1")
    frames = frozen.to_dask()
    assert list(frames) == [Feed("a"), Feed("b")]
    got = frames[Feed("a")].compute()
    assert len(got) == 300
    pd.testing.assert_frame_equal(got, frozen[Feed("a")].to_pandas().set_index("ts"))
    some = store.to_dask([Feed("a")], columns=["px"])
    assert len(some[Feed("a")].compute()) == 310


def test_bad_input(client, ticks, tmp_path):
    with pytest.raises(DatasetFileNotFoundError, match="no dataset"):
        oups.dask.read(tmp_path / "nothing")
    with pytest.raises(ParameterTypeError, match="columns=\\[name\\]"):
        oups.dask.read(ticks, columns="px")
    with pytest.raises(ParameterTypeError, match="path_or_dataset"):
        oups.dask.read(42)
    with pytest.raises(ParameterTypeError, match="view"):
        oups.dask.read(ticks[1:3])
    with pytest.raises(InvalidParameterError, match="partition_size"):
        oups.dask.read(ticks, partition_size=0)
    with pytest.raises(InvalidParameterError, match="partition_size"):
        oups.dask.read(ticks, partition_size="lots")
    with pytest.raises(ParameterTypeError, match="index"):
        oups.dask.read(ticks, index="ts")
    with pytest.raises(InvalidParameterError, match="ordered column"):
        oups.dask.read(ticks, columns=["ts", "px"])
    with pytest.raises(ParameterTypeError, match="naive"):
        oups.dask.read(ticks, start="2024-03-31")


def test_returns_a_dask_dataframe(ticks):
    assert isinstance(oups.dask.read(ticks), dd.DataFrame)
