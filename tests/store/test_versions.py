"""Versions: every commit is a numbered version; readers read one without a lock;
old versions open read-only by number or time, can be restored, and are vacuumed by
retention unless a snapshot or a live reader keeps them."""

from __future__ import annotations

import gc
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pytest

from oups import OrderedParquetDataset, Store, toplevel, write
from oups.exceptions import (
    CorruptDatasetError,
    InvalidParameterError,
    ParameterTypeError,
    ReadOnlyError,
    VersionNotFoundError,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "format1"


def frame(values, v=0.0) -> pd.DataFrame:
    return pd.DataFrame({"t": list(values), "v": [float(v)] * len(values)})


def history(path: Path) -> Path:
    return path.parent / f".{path.name}.oups"


@pytest.fixture
def three(tmp_path) -> Path:
    """Versions 1 (write), 2 (append), 3 (metadata only)."""
    path = tmp_path / "ds"
    write(path, ordered_on="t", df=frame([1, 2]), key_value_metadata={"src": "a"})
    write(path, ordered_on="t", df=frame([3]))
    write(path, ordered_on="t", df=None, key_value_metadata={"src": "b"})
    return path


@pytest.fixture
def three_anywhere(location) -> Path | str:
    """`three`, on each backend."""
    write(location, ordered_on="t", df=frame([1, 2]), key_value_metadata={"src": "a"})
    write(location, ordered_on="t", df=frame([3]))
    write(location, ordered_on="t", df=None, key_value_metadata={"src": "b"})
    return location


def test_every_commit_is_a_version(three_anywhere):
    three = three_anywhere
    ds = OrderedParquetDataset(three)
    assert ds.version == 3 and not ds.read_only
    v = ds.versions()
    assert v["version"].tolist() == [1, 2, 3]
    assert v["operation"].tolist() == ["write", "write", "update_metadata"]
    assert v["n_rows"].tolist() == [2, 3, 3]
    assert v["n_row_groups"].tolist() == [1, 2, 2]
    assert str(v["committed_at"].dtype) == "datetime64[ns, UTC]"
    assert v["committed_at"].is_monotonic_increasing
    # A write that changes nothing makes no version.
    write(three, ordered_on="t", df=None, key_value_metadata={"src": "b"})
    assert ds.refresh().version == 3


def test_old_versions_read_only(three_anywhere):
    three = three_anywhere
    one = OrderedParquetDataset(three, version=1)
    assert one.read_only and one.version == 1
    assert one.to_pandas()["t"].tolist() == [1, 2]
    assert one.key_value_metadata == {"src": "a"}
    assert one.to_pandas(start=2)["t"].tolist() == [2]
    assert one[0].to_pandas()["t"].tolist() == [1, 2]
    for call in (
        lambda: one.write(df=frame([9])),
        lambda: one.remove_from_disk(),
        lambda: one.restore(2),
        lambda: one.vacuum(),
        lambda: one.lock().__enter__(),
    ):
        with pytest.raises(ReadOnlyError, match="read-only"):
            call()
    assert OrderedParquetDataset(three).n_rows == 3  # nothing written
    assert one.refresh().version == 1  # a fixed version stays


def test_as_of(three_anywhere):
    three = three_anywhere
    times = OrderedParquetDataset(three).versions()["committed_at"].tolist()
    assert OrderedParquetDataset(three, as_of=times[0]).version == 1
    between = times[1] + (times[2] - times[1]) / 2
    assert OrderedParquetDataset(three, as_of=between).version == 2
    assert OrderedParquetDataset(three, as_of=str(between)).version == 2
    # Naive times are UTC; other zones are converted.
    naive = between.tz_convert("UTC").tz_localize(None)
    assert OrderedParquetDataset(three, as_of=naive).version == 2
    assert (
        OrderedParquetDataset(
            three, as_of=pd.Timestamp.now(tz="UTC").tz_localize(None).to_pydatetime()
        ).version
        == 3
    )
    assert OrderedParquetDataset(three, as_of=between.tz_convert("Asia/Tokyo")).version == 2
    assert OrderedParquetDataset(three, as_of=np.datetime64(naive)).version == 2
    assert OrderedParquetDataset(three, as_of=pd.Timestamp.now(tz="UTC")).version == 3
    with pytest.raises(VersionNotFoundError, match="at or before"):
        OrderedParquetDataset(three, as_of="2001-01-01")


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"version": 9}, VersionNotFoundError, "version 9 .* does not exist"),
        ({"version": -1}, InvalidParameterError, "'version' must be >= 0"),
        ({"version": "1"}, ParameterTypeError, "'version' must be an int"),
        ({"version": True}, ParameterTypeError, "'version'"),
        ({"as_of": 5}, ParameterTypeError, "'as_of'"),
        ({"as_of": "yesterday-ish"}, InvalidParameterError, "'as_of' is not a point in time"),
        ({"version": 1, "as_of": "2024"}, InvalidParameterError, "not both"),
    ],
)
def test_bad_version_arguments(three_anywhere, kwargs, exc, match):
    three = three_anywhere
    with pytest.raises(exc, match=match):
        OrderedParquetDataset(three, **kwargs)


def test_versions_of_a_missing_dataset(tmp_path):
    ds = OrderedParquetDataset(tmp_path / "none")
    assert ds.version is None and len(ds.versions()) == 0
    with pytest.raises(VersionNotFoundError, match="no version yet"):
        OrderedParquetDataset(tmp_path / "none", version=1)
    assert list(tmp_path.iterdir()) == []


def test_restore(three_anywhere):
    three = three_anywhere
    ds = OrderedParquetDataset(three)
    ds.write(df=frame([2, 3], v=-1.0), duplicates_on="t")  # a bad write, say
    assert ds.to_pandas()["v"].tolist() == [0.0, -1.0, -1.0]
    ds.restore(3)
    assert ds.version == 5
    assert ds.to_pandas()["v"].tolist() == [0.0, 0.0, 0.0]
    assert ds.key_value_metadata == {"src": "b"}
    ds.restore(1)
    assert ds.to_pandas()["t"].tolist() == [1, 2] and ds.key_value_metadata == {"src": "a"}
    v = ds.versions()
    assert v["operation"].tolist()[-2:] == ["restore", "restore"]
    if isinstance(three, Path):
        # The dataset directory holds the restored version, for other readers.
        assert pads.dataset(str(three), format="parquet").to_table()["t"].to_pylist() == [1, 2]
    with pytest.raises(VersionNotFoundError, match="version 99 .*does not exist"):
        ds.restore(99)


def test_default_retention_bounds_the_history_of_coalescing_appends(tmp_path):
    path = tmp_path / "ds"
    for i in range(100):
        write(
            path,
            ordered_on="t",
            df=frame(range(i * 10, i * 10 + 10)),
            row_group_target_size=1000,
            max_n_off_target_rgs=2,
        )
    ds = OrderedParquetDataset(path)
    assert ds.n_rows == 1000
    kept = ds.versions()["version"].tolist()
    assert kept == list(range(91, 101))
    files = list((history(path) / "files").iterdir())
    # Each kept version rewrote the tail: about one file per kept version.
    assert len(files) <= 12, sorted(f.name for f in files)
    assert sorted(p.name for p in path.iterdir()) == [
        f"file_{i:010d}.parquet" for i in ds.row_group_stats["file_ids"]
    ]
    # The oldest kept version still reads as committed.
    assert OrderedParquetDataset(path, version=91).n_rows == 910


def test_vacuum(tmp_path):
    path = tmp_path / "ds"
    for i in range(5):
        write(path, ordered_on="t", df=frame([i]), max_n_off_target_rgs=1)
    ds = OrderedParquetDataset(path)
    assert ds.vacuum(older_than="1h") == {"versions_removed": [], "files_removed": 0}
    reader = OrderedParquetDataset(path, version=2)  # a live reader keeps its version
    report = ds.vacuum(keep_versions=1)
    assert report["versions_removed"] == [1, 3, 4] and report["files_removed"] == 3
    assert ds.versions()["version"].tolist() == [2, 5]
    assert reader.to_pandas()["t"].tolist() == [0, 1]
    del reader
    gc.collect()
    assert ds.vacuum(older_than=0)["versions_removed"] == [2]
    assert len(list((history(path) / "files").iterdir())) == 1
    assert ds.to_pandas()["t"].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(VersionNotFoundError, match="version 2 .*vacuumed"):
        OrderedParquetDataset(path, version=2)
    with pytest.raises(InvalidParameterError, match="'older_than'"):
        ds.vacuum(older_than="soon")
    with pytest.raises(InvalidParameterError, match="older_than"):
        ds.vacuum(older_than=-5)


def test_a_reader_whose_version_disappears_gets_a_clear_error(three):
    old = OrderedParquetDataset(three, version=2)
    frame_before = old.to_pandas()
    # As a vacuum by a host that cannot see this reader's lease would do.
    record = history(three) / "versions" / f"v_{2:020d}"
    record.unlink()
    with pytest.raises(VersionNotFoundError, match="version 2 .*refresh"):
        old.to_pandas()
    with pytest.raises(VersionNotFoundError, match="version 2"):
        old.to_arrow(start=2)
    assert frame_before["t"].tolist() == [1, 2, 3]  # what was read stays valid


def test_lock_for_read_modify_write(three):
    ds = OrderedParquetDataset(three)
    code = textwrap.dedent(f"""
        import pandas as pd
        from oups import write
        write({str(three)!r}, ordered_on="t", df=pd.DataFrame({{"t": [100], "v": [1.0]}}),
              lock_timeout=0.2)
    """)
    with ds.lock(timeout=1):
        n = ds.n_rows
        blocked = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert "LockTimeoutError" in blocked.stderr
        ds.write(df=frame([n + 10]))
    subprocess.run([sys.executable, "-c", code], check=True)
    assert ds.refresh().to_pandas()["t"].tolist() == [1, 2, 3, 13, 100]


def test_format_1_datasets_open_and_upgrade_on_first_write(tmp_path):
    shutil.copytree(FIXTURES, tmp_path / "f1")
    path = tmp_path / "f1" / "ticks"
    expected = pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=9, freq="h", tz="Europe/Paris").as_unit("ns"),
            "px": np.arange(9, dtype="float64") / 4,
            "n": pd.array([1, None, 3, 4, 5, None, 7, 8, 9], dtype="Int64"),
            "side": pd.Categorical(list("bsbsbsbsb")),
        }
    )
    ds = OrderedParquetDataset(path)
    pd.testing.assert_frame_equal(ds.to_pandas(), expected)
    assert ds.version == 2 and ds.key_value_metadata == {"source": "feed-a"}
    listed = ds.versions()
    assert listed["version"].tolist() == [2] and listed["committed_at"].isna().all()
    assert not history(path).exists()  # reading changes nothing
    more = expected.iloc[-1:].copy()
    more["ts"] += pd.Timedelta("1h")
    ds.write(df=more, row_group_target_size=3)
    assert ds.version == 3
    assert ds.versions()["version"].tolist() == [2, 3]
    pd.testing.assert_frame_equal(OrderedParquetDataset(path, version=2).to_pandas(), expected)
    assert OrderedParquetDataset(path).n_rows == 10
    assert path.with_name("ticks_opdmd").read_bytes().startswith(b"OUPS-OPDMD 2 ")
    # A store of format-1 datasets: discovery, reads, snapshots.

    @toplevel
    class Sym:
        sym: str

    store = Store(tmp_path / "f1" / "store", Sym)
    assert [k.sym for k in store] == ["abc", "xyz"]
    chunks = list(store.iter_intersections([Sym("abc"), Sym("xyz")]))
    assert sum(len(c[Sym("abc")]) for c in chunks) == 3
    assert store.snapshot("s") == {Sym("abc"): 1, Sym("xyz"): 1}
    assert Store(store.basepath, Sym, snapshot="s")[Sym("xyz")].to_pandas()["t"].tolist() == [5, 6]


def test_damaged_or_forged_version_records(three):
    record = history(three) / "versions" / f"v_{1:020d}"
    good = record.read_bytes()
    record.write_bytes(good[:-3])
    with pytest.raises(CorruptDatasetError, match="v_0"):
        OrderedParquetDataset(three, version=1)
    # A valid record under another version's name.
    record.write_bytes((history(three) / "versions" / f"v_{2:020d}").read_bytes())
    with pytest.raises(CorruptDatasetError, match="holds version 2"):
        OrderedParquetDataset(three, version=1)
    with pytest.raises(CorruptDatasetError):
        OrderedParquetDataset(three).versions()
    record.write_bytes(good)
    assert OrderedParquetDataset(three, version=1).n_rows == 2


def test_snapshots(store_base):
    @toplevel
    class K:
        name: str

    store = Store(store_base, K)
    # On object storage a pin is recorded by a commit (docs/storage.md).
    remote = store.is_remote
    a, b, c = K("a"), K("b"), K("c")
    store[a].write(ordered_on="t", df=frame([1, 2]))
    store[b].write(ordered_on="t", df=frame([2, 3]))
    assert store.snapshot("train") == {a: 1, b: 1}
    for i in range(12):  # beyond default retention
        store[a].write(ordered_on="t", df=frame([10 + i]), max_n_off_target_rgs=1)
    store[b].write(ordered_on="t", df=frame([2, 3], v=9.0), duplicates_on="t")
    store[c].write(ordered_on="t", df=frame([5]))
    frozen = Store(store_base, K, snapshot="train")
    assert frozen.snapshot_name == "train" and list(frozen) == [a, b] and c not in frozen
    assert frozen[a].to_pandas()["t"].tolist() == [1, 2] and frozen[a].read_only
    chunks = list(store.iter_intersections([a, b, c], snapshot="train"))
    assert [x for ch in chunks for x in ch[b]["v"]] == [0.0, 0.0]
    assert all(c not in ch for ch in chunks)
    assert list(frozen.iter_intersections([a, b])) and len(frozen) == 2
    with pytest.raises(KeyError, match="not in snapshot"):
        frozen.get(c)
    for call in (
        lambda: frozen.snapshot("x"),
        lambda: frozen.vacuum(),
        lambda: frozen.__delitem__(a),
    ):
        with pytest.raises(ReadOnlyError):
            call()
    with pytest.raises(ReadOnlyError):
        frozen[a].write(df=frame([99]))
    with pytest.raises(InvalidParameterError, match="already exists"):
        store.snapshot("train")
    for bad in ["", ".hidden", "a/b", "x" * 200]:
        with pytest.raises(InvalidParameterError, match="snapshot name"):
            store.snapshot(bad)
    with pytest.raises(VersionNotFoundError, match='no snapshot "nope"'):
        Store(store_base, K, snapshot="nope")
    # Vacuums keep the snapshot's versions until it is deleted.
    store.vacuum(keep_versions=1)
    assert store[a].versions()["version"].tolist() == [1, 14 if remote else 13]
    assert Store(store_base, K, snapshot="train")[a].n_rows == 2
    store.delete_snapshot("train")
    assert store.snapshots() == []
    store.vacuum(keep_versions=1)
    assert store[a].versions()["version"].tolist() == [15 if remote else 13]
    with pytest.raises(KeyError):
        store.delete_snapshot("train")
    if remote:
        assert store[a].versions()["operation"].tolist() == ["unpin"]
    else:
        assert not any(p.name == "leases" for p in store_base.rglob("pins"))


def test_removal_deletes_every_version(three):
    OrderedParquetDataset(three).remove_from_disk()
    assert sorted(p.name for p in three.parent.iterdir()) == []
    write(three, ordered_on="t", df=frame([7]))
    assert OrderedParquetDataset(three).versions()["version"].tolist() == [1]


def test_readers_in_other_processes_hold_their_version_against_vacuum(three):
    code = textwrap.dedent(f"""
        import time
        from oups import OrderedParquetDataset
        ds = OrderedParquetDataset({str(three)!r}, version=1)
        print(ds.n_rows, flush=True)
        time.sleep(30)
    """)
    reader = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "2"
        ds = OrderedParquetDataset(three)
        assert ds.vacuum(keep_versions=1)["versions_removed"] == [2]
    finally:
        reader.kill()
        reader.wait()
        reader.stdout.close()
    # Its lease died with it.
    deadline = time.time() + 5
    while 1 in OrderedParquetDataset(three).versions()["version"].tolist():
        OrderedParquetDataset(three).vacuum(keep_versions=1)
        assert time.time() < deadline


def test_retention_setting(tmp_path):
    path = tmp_path / "ds"
    ds = OrderedParquetDataset(path, ordered_on="t")
    assert ds.retention == {"keep_versions": 10, "older_than": None}
    with pytest.raises(InvalidParameterError, match="write it first"):
        ds.set_retention(keep_versions=3)
    ds.write(df=frame([0]))
    ds.set_retention(keep_versions=None)  # keep everything
    for i in range(1, 15):
        ds.write(df=frame([i]), max_n_off_target_rgs=1)
    assert len(ds.versions()) == 16 and ds.versions()["operation"][1] == "set_retention"
    assert ds.vacuum() == {"versions_removed": [], "files_removed": 0}
    ds.set_retention(keep_versions=3)
    assert ds.versions()["version"].tolist() == [15, 16, 17]
    assert OrderedParquetDataset(path).retention == {"keep_versions": 3, "older_than": None}
    ds.set_retention(keep_versions=1, older_than="1h")
    ds.write(df=frame([99]))
    assert len(ds.versions()) == 5  # all superseded within the hour
    for bad, exc in [(0, InvalidParameterError), (-1, InvalidParameterError), ("3", TypeError)]:
        with pytest.raises(exc):
            ds.set_retention(keep_versions=bad)
    with pytest.raises(InvalidParameterError):
        ds.set_retention(older_than=-3)
    with pytest.raises(ReadOnlyError):
        OrderedParquetDataset(path, version=17).set_retention(keep_versions=2)
    with pytest.raises(ReadOnlyError):
        ds[0].set_retention(keep_versions=2)


@pytest.mark.skipif(
    not __import__("oups._oups", fromlist=["FAILPOINTS"]).FAILPOINTS,
    reason="needs the failpoints build feature (bash .ci/setup enables it)",
)
def test_a_write_killed_before_its_commit_uses_no_version_number(tmp_path):
    # A dataset created afresh (or again, after a removal) numbers its first
    # version 1 even if a write killed just before its commit left a record.
    path = tmp_path / "ds"
    df = pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=3, freq="1h"), "v": 1.0})
    df.to_pickle(tmp_path / "df.pkl")
    script = textwrap.dedent(
        f"""
        import pandas as pd
        from oups import write
        write({str(path)!r}, ordered_on="ts", df=pd.read_pickle({str(tmp_path / "df.pkl")!r}))
        """
    )
    killed = subprocess.run(
        [sys.executable, "-c", script],
        env={**__import__("os").environ, "OUPS_FAILPOINT": "before_commit_rename"},
        capture_output=True,
    )
    assert killed.returncode != 0
    write(path, ordered_on="ts", df=df)
    ds = OrderedParquetDataset(path)
    assert ds.version == 1
    assert ds.versions()["version"].tolist() == [1]
