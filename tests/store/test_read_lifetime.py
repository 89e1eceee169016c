"""What a read returns is the caller's: later writes, coalescing and removal leave it as
it was, and modifying it never reaches the files (reads map file pages copy-on-write)."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from oups import OrderedParquetDataset, write
from tests.conftest import dir_digest


def frame(start: int, n: int, value: float) -> pd.DataFrame:
    idx = np.arange(start, start + n)
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(idx, unit="s"),
            "f": np.full(n, value),
            "i": idx,
            "i32": idx.astype("int32"),
        }
    )


# Large enough to be joined into dedicated mappings (4 MB a column); row groups not a
# multiple of 512 rows, so that files meet inside memory pages.
RG = 262_144 + 100
N = 2 * RG + 1000


def mapped_files(path) -> set[str]:
    """Data files below `path` that this process maps (Linux): reads open them in
    the history directory of their dataset, where every version finds its files."""
    with open("/proc/self/maps") as maps:
        return {
            name
            for line in maps
            if (name := line.split()[-1]).startswith(str(path.parent)) and ".oups/files/" in name
        }


@pytest.mark.parametrize("change", ["rewrite", "coalesce", "remove"])
def test_a_read_outlives_what_happens_to_the_files(tmp_path, change):
    path = tmp_path / "ds"
    write(path, ordered_on="ts", df=frame(0, N, 1.0), row_group_target_size=RG)
    with OrderedParquetDataset(path) as ds:
        df = ds.to_pandas()
        table = ds.to_arrow()
    expected, expected_table = df.copy(), table
    if sys.platform == "linux":
        # The frame's columns are the files' pages, not copies of them.
        assert len(mapped_files(path)) == 3
    assert expected_table.num_rows == N
    if change == "rewrite":
        write(
            path,
            ordered_on="ts",
            df=frame(0, N, 2.0),
            row_group_target_size=RG,
            duplicates_on="ts",
        )
    elif change == "coalesce":
        write(path, ordered_on="ts", df=None, row_group_target_size=10 * N, max_n_off_target_rgs=1)
    else:
        OrderedParquetDataset(path).remove_from_disk()
    pd.testing.assert_frame_equal(df, expected)
    assert table["f"].to_pylist() == [1.0] * N
    assert table["i"].to_pylist() == list(range(N))


def test_modifying_a_read_frame_never_changes_the_files(tmp_path):
    path = tmp_path / "ds"
    write(path, ordered_on="ts", df=frame(0, N, 1.0), row_group_target_size=RG)
    before = dir_digest(tmp_path)
    with OrderedParquetDataset(path) as ds:
        df = ds.to_pandas()
    df["f"] = df["f"].to_numpy()  # keep the block, then write into it
    df.loc[:, "i"] = -1
    df.iloc[RG + 5000, df.columns.get_loc("f")] = 99.0
    df.iloc[:, df.columns.get_loc("i32")] = np.int32(7)
    assert dir_digest(tmp_path) == before
    with OrderedParquetDataset(path) as ds:
        again = ds.to_pandas()
    assert again["i"].tolist() == list(range(N))
    assert (again["f"] == 1.0).all()
    assert again["i32"].tolist() == list(range(N))


def test_range_reads_and_chunks_are_writable_and_typed_as_pyarrow_makes_them(tmp_path):
    from oups import Store, toplevel

    @toplevel
    class K:
        name: str

    store = Store(tmp_path / "store", K)
    df = frame(0, 5000, 1.0)
    df["tz"] = df["ts"].dt.tz_localize("UTC").dt.tz_convert("Asia/Tokyo")
    df["s"] = ["a", "b"] * 2500
    df["n"] = pd.array(np.where(np.arange(5000) % 3 == 0, None, 1), dtype="Int64")
    store[K("a")].write(ordered_on="ts", df=df, row_group_target_size=1000)
    lo, hi = df["ts"].iloc[1500], df["ts"].iloc[3500]
    with OrderedParquetDataset(tmp_path / "store" / "a") as ds:
        part = ds.to_pandas(start=lo, end_excl=hi)
        reference = ds.to_arrow(start=lo, end_excl=hi).to_pandas()
    pd.testing.assert_frame_equal(part, reference)
    part.iloc[0, part.columns.get_loc("f")] = 5.0
    chunks = [c[K("a")] for c in store.iter_intersections([K("a")])]
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), df)
    chunks[0].loc[0, "i"] = -9
    assert chunks[0]["i"].iloc[0] == -9


@pytest.mark.parametrize("bounded", [False, True])
def test_chunks_are_their_own_memory_and_outlive_the_dataset(tmp_path, bounded):
    """Chunks of a synchronised read take over the mapped pages of the files they
    come from; several chunks come from one file and meet inside memory pages.
    Writing into a chunk, even into its ordered column, changes neither the
    files, nor the other chunks, nor where the next chunks start."""
    from oups import Store, toplevel

    @toplevel
    class K:
        name: str

    store = Store(tmp_path / "store", K)
    keys = [K("a"), K("b")]
    frames = {K("a"): frame(0, 20_000, 1.0), K("b"): frame(1_234, 20_000, 2.0)}
    store[K("a")].write(ordered_on="ts", df=frames[K("a")], row_group_target_size=3_001)
    store[K("b")].write(ordered_on="ts", df=frames[K("b")], row_group_target_size=2_503)
    before = dir_digest(tmp_path)
    # Bounds inside row groups: the edge groups are mapped as chunks take them.
    span = (
        dict(start=frames[K("a")]["ts"].iloc[4_500], end_excl=frames[K("a")]["ts"].iloc[17_000])
        if bounded
        else {}
    )
    reference = [
        {k: t.to_pandas() for k, t in c.items()}
        for c in store.iter_intersections(keys, output="arrow", **span)
    ]
    assert len(reference) > 8
    received = []
    for chunk in store.iter_intersections(keys, **span):
        received.append(chunk)
        if sys.platform == "linux" and len(received) == 1:
            assert mapped_files(tmp_path / "store")
        copies = {k: df.copy() for k, df in chunk.items()}
        for df in chunk.values():
            if len(df):
                df.loc[:, "ts"] = pd.Timestamp("2100-01-01")
                df.loc[:, "f"] = -1.0
                df.iloc[-1, df.columns.get_loc("i")] = -5
        for k, df in copies.items():
            pd.testing.assert_frame_equal(df, reference[len(received) - 1][k])
    assert len(received) == len(reference)
    assert dir_digest(tmp_path) == before
    for k in keys:
        pd.testing.assert_frame_equal(store[k].to_pandas(), frames[k])
        store[k].remove_from_disk()
    last = received[-1][K("b")]
    assert (last["f"] == -1.0).all() and last["i"].iloc[-1] == -5
