"""Datasets at object-storage URLs: what is particular to them (the behaviour
they share with local datasets runs on both backends in the other suites)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from oups import OrderedParquetDataset, write
from oups.exceptions import (
    InvalidParameterError,
    ParameterTypeError,
    StorageError,
    StorageNotFoundError,
)


def frame(n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"t": np.arange(start, start + n), "v": np.arange(n, dtype=float)})


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("s3://oups-test/a/../b", "segment '..' is not allowed"),
        ("s3://oups-test/./b", "segment '.' is not allowed"),
        ("s3://oups-test//b", "empty segment"),
        ("s3://oups-test", "names no dataset"),
        ("s3://oups-test/", "names no dataset"),
        ("s3:///ds", "names no bucket"),
        ("ftp://host/ds", "scheme 'ftp' is not supported"),
        ("s3://oups-test/ds?versionId=1", "storage_options"),
    ],
)
def test_hostile_urls_are_refused_before_any_request(s3_server, url, match):
    before = s3_server.client().list_objects_v2(Bucket=s3_server.bucket).get("KeyCount", 0)
    with pytest.raises(InvalidParameterError, match=match) as err:
        write(url, ordered_on="t", df=frame(3))
    assert url.split("?")[0].rstrip("/") in str(err.value) or "names no" in str(err.value)
    after = s3_server.client().list_objects_v2(Bucket=s3_server.bucket).get("KeyCount", 0)
    assert after == before


def test_a_missing_bucket_names_the_url(s3_server):
    with pytest.raises(StorageNotFoundError, match="s3://no-such-bucket/.*does not exist") as e:
        OrderedParquetDataset("s3://no-such-bucket/x/ds")
    assert isinstance(e.value, StorageError) and isinstance(e.value, FileNotFoundError)


def test_storage_options(s3_server):
    url = s3_server.url("options") + "/ds"
    # Explicit options override the environment (here: the same values).
    options = {
        "aws_endpoint_url": s3_server.endpoint,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "aws_region": "us-east-1",
        "allow_http": True,
        "max_retries": 2,
    }
    write(url, ordered_on="t", df=frame(5), storage_options=options)
    assert OrderedParquetDataset(url, storage_options=options).to_pandas()["t"].tolist() == [
        0,
        1,
        2,
        3,
        4,
    ]
    with pytest.raises(InvalidParameterError, match="'storage_options' key 'no_such_key'"):
        OrderedParquetDataset(url, storage_options={"no_such_key": "1"})
    with pytest.raises(ParameterTypeError, match="'storage_options' value of 'aws_region'"):
        OrderedParquetDataset(url, storage_options={"aws_region": ["x"]})
    with pytest.raises(ParameterTypeError, match="'storage_options' must be a dict"):
        OrderedParquetDataset(url, storage_options="aws_region=x")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="'max_retries' must be a number"):
        OrderedParquetDataset(url, storage_options={"max_retries": "many"})


def test_storage_options_are_for_urls_only(tmp_path):
    with pytest.raises(InvalidParameterError, match="is a local path"):
        OrderedParquetDataset(tmp_path / "ds", storage_options={"aws_region": "x"})


def test_an_unreachable_endpoint_is_a_storage_error(s3_server):
    options = {"aws_endpoint_url": "http://127.0.0.1:9", "max_retries": 0, "timeout": "2s"}
    with pytest.raises(StorageError, match="s3://oups-test/unreachable"):
        OrderedParquetDataset("s3://oups-test/unreachable/ds", storage_options=options)


@pytest.mark.parametrize("key", ["denied", "unknown"])
def test_refused_credentials_are_a_permission_error_naming_the_url(s3_server, key):
    from oups import Store, toplevel
    from oups.exceptions import StoragePermissionError

    url = s3_server.url("refused") + "/ds"
    write(url, ordered_on="t", df=frame(3))
    refused = {"aws_access_key_id": key, "aws_secret_access_key": "x", "max_retries": 0}
    for call in (
        lambda: OrderedParquetDataset(url, storage_options=refused),
        lambda: write(url, ordered_on="t", df=frame(3), storage_options=refused),
    ):
        with pytest.raises(StoragePermissionError, match=url) as info:
            call()
        assert "credentials" in str(info.value) and isinstance(info.value, PermissionError)

    @toplevel
    class K:
        name: str

    with pytest.raises(StoragePermissionError, match="credentials"):
        Store(url.rsplit("/", 1)[0], K, storage_options=refused).keys  # noqa: B018
    assert OrderedParquetDataset(url).n_rows == 3  # nothing changed


def test_no_credentials_at_all_is_a_permission_error(s3_server, monkeypatch, tmp_path):
    from oups.exceptions import StoragePermissionError

    url = s3_server.url("anonymous") + "/ds"
    write(url, ordered_on="t", df=frame(3))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    # No keys, no profile, no instance metadata to ask (a closed port).
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    options = {"aws_metadata_endpoint": "http://127.0.0.1:9", "max_retries": 0, "timeout": "2s"}
    with pytest.raises(StoragePermissionError, match="no credentials were found") as info:
        OrderedParquetDataset(url, storage_options=options)
    assert url.rsplit("/", 1)[0] in str(info.value)


def test_throttling_after_the_retries_is_a_storage_error(s3_server):
    from tests.conftest import s3_faults

    url = s3_server.url("throttled") + "/ds"
    write(url, ordered_on="t", df=frame(3))
    s3_faults(s3_server, before=1.0)
    try:
        with pytest.raises(StorageError, match=url) as info:
            write(url, ordered_on="t", df=frame(3), storage_options={"max_retries": 1})
        assert "SlowDown" in str(info.value) or "503" in str(info.value)
    finally:
        s3_faults(s3_server)
    assert OrderedParquetDataset(url).n_rows == 3


def test_lock_is_not_offered_on_object_storage(s3_server):
    url = s3_server.url("lock") + "/ds"
    write(url, ordered_on="t", df=frame(3))
    ds = OrderedParquetDataset(url)
    with pytest.raises(InvalidParameterError, match="no locks"), ds.lock():
        pass
    assert ds.is_remote and ds.dirpath == url


def test_memory_urls_share_objects_within_a_process():
    write("memory://unit/ds", ordered_on="t", df=frame(4), row_group_target_size=2)
    ds = OrderedParquetDataset("memory://unit/ds")
    assert len(ds) == 2 and ds.to_pandas()["t"].tolist() == [0, 1, 2, 3]


def test_range_read_requests(s3_server):
    # One open reads the pointer; a range within one row group then costs its
    # footer and one request for the column chunks.
    url = s3_server.url("requests") + "/ds"
    write(url, ordered_on="t", df=frame(10_000), row_group_target_size=1_000)
    # As another process would read it (this one keeps the files it wrote).
    from oups._oups import _forget_objects

    _forget_objects()
    ds = OrderedParquetDataset(url)
    opened = ds._raw.requests
    assert opened == 1
    got = ds.to_pandas(start=4_100, end_excl=4_200)
    assert got["t"].tolist() == list(range(4_100, 4_200))
    assert ds._raw.requests - opened <= 2


def test_an_append_costs_four_requests(s3_server):
    # Reading the pointer, the new data file, the record, the pointer: the
    # tail row group it merges with is the one this process wrote, and a
    # vacuum reads no record this process wrote.
    url = s3_server.url("appends") + "/ds"
    write(url, ordered_on="t", df=frame(1_000), row_group_target_size=400)
    ds = OrderedParquetDataset(url)
    ds.set_retention(keep_versions=5)
    counts = []
    for i in range(10):
        before = ds._raw.requests
        ds.write(df=frame(50, start=1_000 + 50 * i), row_group_target_size=400)
        counts.append(ds._raw.requests - before)
    vacuums = [c for i, c in enumerate(counts) if (i + 3) % 5 == 0]
    assert [c for i, c in enumerate(counts) if (i + 3) % 5 != 0] == [4] * 8
    # A vacuum adds its two listings (and a bulk delete of records).
    assert all(c <= 4 + 4 for c in vacuums), counts
    assert ds.to_pandas()["t"].tolist() == list(range(1_500))
    assert ds.versions()["version"].tolist() == list(range(6, 13))


def test_remove_from_disk(s3_server):
    url = s3_server.url("remove") + "/ds"
    write(url, ordered_on="t", df=frame(6), row_group_target_size=2, key_value_metadata={"a": 1})
    ds = OrderedParquetDataset(url)
    ds.remove_from_disk()
    assert len(OrderedParquetDataset(url)) == 0
    assert OrderedParquetDataset(url).is_newly_initialized
    prefix = url.removeprefix(f"s3://{s3_server.bucket}/").rsplit("/", 1)[0]
    listed = s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix=prefix)
    assert listed.get("KeyCount", 0) == 0


def test_store_discovery_lists_prefixes_page_by_page(s3_server):
    from oups import Store, toplevel

    @toplevel
    class Sym:
        name: str
        n: int

    base = s3_server.url("many")
    client = s3_server.client()
    prefix = base.removeprefix(f"s3://{s3_server.bucket}/")
    n = 1_200  # more than one page of a listing (1,000)
    for i in range(n):
        client.put_object(Bucket=s3_server.bucket, Key=f"{prefix}/s-{i}_opdmd", Body=b"")
    client.put_object(Bucket=s3_server.bucket, Key=f"{prefix}/not a key_opdmd", Body=b"")
    keys = Store(base, Sym).keys
    assert len(keys) == n and keys[:3] == [Sym("s", 0), Sym("s", 1), Sym("s", 2)]


def test_store_features_not_on_object_storage_say_so(s3_server):
    from oups import Store, toplevel

    @toplevel
    class K:
        name: str

    base = s3_server.url("store-limits")
    store = Store(base, K)
    store[K("a")].write(ordered_on="t", df=frame(4))
    assert store.is_remote and store.basepath == base and store.snapshots() == []
    with pytest.raises(InvalidParameterError, match="is a local path"):
        Store("/tmp/x", K, storage_options={"aws_region": "x"})


def test_info_on_urls(s3_server):
    import subprocess
    import sys

    base = s3_server.url("info")
    write(base + "/a/x", ordered_on="t", df=frame(10), row_group_target_size=4)
    write(base + "/b", ordered_on="t", df=frame(3), key_value_metadata={"src": "feed"})
    one = subprocess.run(
        [sys.executable, "-m", "oups", "info", base + "/a/x"], capture_output=True, text=True
    )
    assert one.returncode == 0, one.stderr
    assert "rows        10 in 3 row groups" in one.stdout
    assert "columns     t: int64, v: double" in one.stdout
    store = subprocess.run(
        [sys.executable, "-m", "oups", "info", base], capture_output=True, text=True
    )
    assert store.returncode == 0, store.stderr
    assert f"store {base}: 2 datasets, 13 rows" in store.stdout
    assert "a/x" in store.stdout and "\n  b " in store.stdout


def test_a_write_planned_on_a_vacuumed_version_is_never_lost(s3_server):
    # A writer stalls on version 1 while another commits and vacuums past it:
    # the stalled writer's version number is free again, but its commit must
    # not land there, where no reader would look.
    import json

    url = s3_server.url("stalled") + "/ds"
    write(url, ordered_on="t", df=frame(10), row_group_target_size=5)
    stalled = OrderedParquetDataset(url)
    other = OrderedParquetDataset(url)
    other.set_retention(keep_versions=2)
    for i in range(4):
        other.write(df=frame(5, start=100 + 10 * i), row_group_target_size=5)
    assert other.versions()["version"].tolist() == [5, 6]

    def raw_write(ds, df):  # the engine's write, on the version it last read
        ds._raw.write(df, json.dumps("t"), "t", target_rows=5)

    raw_write(stalled, frame(5, start=1000))
    latest = OrderedParquetDataset(url)
    assert latest.version == 7 and latest.versions()["version"].tolist() == [5, 6, 7]
    assert latest.to_pandas()["t"].tolist()[-5:] == list(range(1000, 1005))
    assert len(latest.to_pandas()) == 10 + 4 * 5 + 5
    # Rows in a range the vacuumed versions changed: a conflict, nothing lost.
    from oups.exceptions import CommitConflictError

    stalled_again = OrderedParquetDataset(url)
    for i in range(3):
        other.write(df=frame(5, start=2000 + 10 * i), row_group_target_size=5)
    with pytest.raises(CommitConflictError, match="vacuumed"):
        raw_write(stalled_again, frame(3, start=2002))
    assert OrderedParquetDataset(url).version == 10
