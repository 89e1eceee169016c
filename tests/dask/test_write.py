"""oups.dask.write on a LocalCluster: equality with a single-machine write,
one atomic commit, and nothing left behind by errors or dead processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from dask.distributed import Client, LocalCluster
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oups.dask
from oups import OrderedParquetDataset, write
from oups.exceptions import InvalidParameterError, ParameterTypeError, UnsortedError

from ..conftest import dir_digest


def ticks(n: int, seed: int, start: int = 0, step: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = start + np.sort(rng.integers(0, max(1, n * step), n))
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(ts, unit="s").tz_localize("UTC"),
            "px": rng.standard_normal(n).round(3),
            "qty": pd.array(rng.integers(0, 5, n), dtype="Int64"),
            "sym": pd.Categorical(rng.choice(["a", "b"], n)),
        }
    )


def stored(path: Path) -> pd.DataFrame:
    return OrderedParquetDataset(path).to_pandas()


def files(path: Path) -> set[str]:
    return {p.name for p in path.iterdir()} if path.exists() else set()


def listed(path: Path) -> set[str]:
    return {
        f"file_{i:010d}.parquet" for i in OrderedParquetDataset(path).row_group_stats["file_ids"]
    }


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    existing=st.integers(0, 60),
    new=st.integers(0, 60),
    offset=st.integers(-100, 150),
    nparts=st.integers(1, 5),
    target=st.sampled_from([4, 7, 25, "1min"]),
    dedup=st.booleans(),
    max_n=st.sampled_from([None, 2]),
    as_index=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_equals_a_single_machine_write(
    client, tmp_path_factory, existing, new, offset, nparts, target, dedup, max_n, as_index, seed
):
    root = tmp_path_factory.mktemp("eq")
    one, many = root / "one", root / "many"
    options = {
        "ordered_on": "ts",
        "row_group_target_size": target,
        "duplicates_on": "ts" if dedup else None,
        "max_n_off_target_rgs": max_n,
    }
    if existing:
        base = ticks(existing, seed)
        for path in (one, many):
            write(path, df=base, **options)
    df = ticks(new, seed + 1, start=offset)
    if dedup:
        df = df.drop_duplicates("ts", keep="last")
    frame = df.set_index("ts") if as_index else df
    ddf = dd.from_pandas(frame, npartitions=nparts, sort=as_index)
    write(one, df=frame, **options)
    oups.dask.write(ddf, many, **options)
    if not (one.exists() or many.exists()):
        return
    pd.testing.assert_frame_equal(stored(many), stored(one))
    assert files(many) == listed(many)
    if ddf.npartitions == 1:
        # One unit of work: the layout of the single write, row group for row group.
        a, b = OrderedParquetDataset(one), OrderedParquetDataset(many)
        cols = ["n_rows", "ordered_on_mins", "ordered_on_maxs"]
        pd.testing.assert_frame_equal(a.row_group_stats[cols], b.row_group_stats[cols])


def test_one_version_per_write_and_metadata(client, location):
    # On local disk and on the local S3 server.
    path = location
    write(path, ordered_on="ts", df=ticks(100, 1), row_group_target_size=20)
    ddf = dd.from_pandas(ticks(500, 2, start=400).set_index("ts"), npartitions=4)
    oups.dask.write(
        ddf, path, ordered_on="ts", row_group_target_size=20, key_value_metadata={"src": "dask"}
    )
    ds = OrderedParquetDataset(path)
    assert ds.version == 2
    assert ds.key_value_metadata == {"src": "dask"}
    assert ds.n_rows == 600
    # Partitions were written by the workers, in parallel, into row groups of the target.
    sizes = ds.row_group_stats["n_rows"].tolist()
    assert sum(s == 20 for s in sizes) >= len(sizes) - 4
    # A round trip through oups.dask.read.
    again = oups.dask.read(path)
    pd.testing.assert_frame_equal(again.compute(), ds.to_pandas().set_index("ts"))


def test_unsorted_partition_commits_nothing(client, tmp_path):
    path = tmp_path / "ds"
    write(path, ordered_on="ts", df=ticks(50, 1), row_group_target_size=10)
    before = dir_digest(tmp_path)
    df = ticks(40, 3, start=500)
    df.loc[[5, 30], "ts"] = df.loc[[30, 5], "ts"].to_numpy()  # swapped: unsorted
    with pytest.raises(UnsortedError):
        oups.dask.write(dd.from_pandas(df, npartitions=3, sort=False), path, ordered_on="ts")
    assert dir_digest(tmp_path) == before


def test_overlapping_partitions_commit_nothing(client, tmp_path):
    path = tmp_path / "ds"
    write(path, ordered_on="ts", df=ticks(50, 1), row_group_target_size=10)
    before = dir_digest(tmp_path)
    a, b = ticks(20, 4, start=500), ticks(20, 5, start=520)
    ddf = dd.concat([dd.from_pandas(a, npartitions=1), dd.from_pandas(b, npartitions=1)])
    with pytest.raises(UnsortedError, match="overlap"):
        oups.dask.write(ddf, path, ordered_on="ts")
    assert dir_digest(tmp_path) == before


def test_bad_input(tmp_path):
    ddf = dd.from_pandas(ticks(10, 1), npartitions=2)
    with pytest.raises(ParameterTypeError, match="dask DataFrame"):
        oups.dask.write(ticks(10, 1), tmp_path / "ds", ordered_on="ts")
    with pytest.raises(ParameterTypeError, match="ordered_on"):
        oups.dask.write(ddf, tmp_path / "ds", ordered_on="nope")
    with pytest.raises(ParameterTypeError, match="path"):
        oups.dask.write(ddf, 3, ordered_on="ts")
    assert not (tmp_path / "ds").exists()


def test_a_worker_killed_mid_write_commits_nothing(tmp_path):
    from oups._oups import FAILPOINTS

    if not FAILPOINTS:
        pytest.skip("needs the failpoints build")
    path = tmp_path / "ds"
    write(path, ordered_on="ts", df=ticks(50, 1), row_group_target_size=10)
    before = dir_digest(tmp_path)
    ddf = dd.from_pandas(ticks(200, 2, start=100).set_index("ts"), npartitions=3)
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=":0",
            env={"OUPS_FAILPOINT": "after_data_file"},  # the worker aborts there
        ) as cluster,
        Client(cluster),
        pytest.raises(Exception, match="KilledWorker|died"),
    ):
        oups.dask.write(ddf, path, ordered_on="ts", row_group_target_size=10)
    OrderedParquetDataset(path)  # the next open
    assert dir_digest(tmp_path) == before


CLIENT = """
import sys, pandas as pd, numpy as np, dask, dask.dataframe as dd
import oups.dask
df = pd.DataFrame({"ts": np.arange(100, 300), "v": np.arange(200.0)}).set_index("ts")
with dask.config.set(scheduler="synchronous"):
    oups.dask.write(dd.from_pandas(df, npartitions=4), sys.argv[1], ordered_on="ts",
                    row_group_target_size=10)
"""


@pytest.mark.parametrize("failpoint", ["after_data_file:3", "before_commit_rename"])
def test_a_client_killed_mid_write_leaves_the_dataset_as_it_was(tmp_path, failpoint):
    from oups._oups import FAILPOINTS

    if not FAILPOINTS:
        pytest.skip("needs the failpoints build")
    path = tmp_path / "ds"
    write(path, ordered_on="ts", df=pd.DataFrame({"ts": np.arange(100), "v": np.arange(100.0)}))
    expected = stored(path)
    proc = subprocess.run(
        [sys.executable, "-c", CLIENT, str(path)],
        env={**os.environ, "OUPS_FAILPOINT": failpoint},
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert files(path) != listed(path)  # files left by the crash
    pd.testing.assert_frame_equal(stored(path), expected)
    # The next writer recovers: no orphan remains, and writes go on.
    write(path, ordered_on="ts", df=pd.DataFrame({"ts": [500], "v": [1.0]}))
    assert files(path) == listed(path)
    assert len(stored(path)) == 101


def _objects(s3_server, url: str) -> set[str]:
    """Every object below a dataset's parent prefix on the local S3 server."""
    bucket, _, key = url.removeprefix("s3://").partition("/")
    parent = key.rsplit("/", 1)[0] + "/"
    pages = (
        s3_server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=parent)
    )
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    existing=st.integers(0, 60),
    new=st.integers(1, 60),
    offset=st.integers(-100, 150),
    nparts=st.integers(1, 4),
    dedup=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_equals_a_single_machine_write_on_object_storage(
    client, s3_server, existing, new, offset, nparts, dedup, seed
):
    root = s3_server.url("dask-eq")
    one, many = f"{root}/one", f"{root}/many"
    options = {
        "ordered_on": "ts",
        "row_group_target_size": 7,
        "duplicates_on": "ts" if dedup else None,
    }
    if existing:
        for url in (one, many):
            write(url, df=ticks(existing, seed), **options)
    df = ticks(new, seed + 1, start=offset)
    if dedup:
        df = df.drop_duplicates("ts", keep="last")
    frame = df.set_index("ts")
    ddf = dd.from_pandas(frame, npartitions=nparts, sort=True)
    write(one, df=frame, **options)
    oups.dask.write(ddf, many, **options)
    pd.testing.assert_frame_equal(stored(many), stored(one))
    assert OrderedParquetDataset(many).version == (2 if existing else 1)


def test_on_object_storage_errors_and_conflicts_commit_nothing(client, s3_server):
    from oups.exceptions import CommitConflictError

    url = s3_server.url("dask-s3") + "/ds"
    write(url, ordered_on="ts", df=ticks(50, 1), row_group_target_size=10)
    before, version = _objects(s3_server, url), OrderedParquetDataset(url).version
    df = ticks(40, 3, start=500)
    df.loc[[5, 30], "ts"] = df.loc[[30, 5], "ts"].to_numpy()  # swapped: unsorted
    with pytest.raises(UnsortedError):
        oups.dask.write(dd.from_pandas(df, npartitions=3, sort=False), url, ordered_on="ts")
    assert _objects(s3_server, url) == before

    # Another writer commits while the workers run: the plan no longer holds.
    def meanwhile(part: pd.DataFrame, partition_info: dict | None = None) -> pd.DataFrame:
        if partition_info is not None and partition_info["number"] == 0:
            write(url, ordered_on="ts", df=ticks(1, 9, start=10_000))
        return part

    later = dd.from_pandas(ticks(60, 4, start=400).set_index("ts"), npartitions=2)
    racing = later.map_partitions(meanwhile, meta=later._meta)
    with pytest.raises(CommitConflictError, match="planned on version"):
        oups.dask.write(racing, url, ordered_on="ts", row_group_target_size=10)
    ds = OrderedParquetDataset(url)
    assert ds.version == version + 1 and ds.n_rows == 51  # the other writer's row only
    # The distributed write's uploads are gone; the other writer's stay.
    left = _objects(s3_server, url) - before
    assert not any("file_stage_" in key for key in left), left
    with pytest.raises(InvalidParameterError, match="local path"):
        oups.dask.write(later, "/tmp/oups-x", ordered_on="ts", storage_options={"a": "b"})
