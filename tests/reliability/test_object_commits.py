"""Commits on object storage (a local S3 server): writers race without locks,
one wins each version, and no committed write is lost, duplicated or torn."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from oups import OrderedParquetDataset, write
from oups._oups import FAILPOINTS

WORKER = str(Path(__file__).with_name("concurrent_worker.py"))
N_WORKERS = 4
N_CHUNKS = 6
CHUNK = 20


def _run(*args: object, env: dict[str, str] | None = None, timeout: float = 300):
    return subprocess.run(
        [sys.executable, WORKER, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def _write_keys_script(keys: list[int]) -> str:
    """A program that writes rows with these keys `k` to the URL it is given."""
    return (
        "import sys, pandas as pd\n"
        "from oups import write\n"
        f"write(sys.argv[1], ordered_on='k', df=pd.DataFrame({{'k': {keys!r}}}),\n"
        "      row_group_target_size=4)\n"
    )


def _chunks(out: str, status: str) -> set[int]:
    return {int(line.split()[1]) for line in out.splitlines() if line.startswith(status)}


def test_four_processes_commit_to_one_dataset(s3_server):
    url = s3_server.url("race") + "/shared"
    procs = [
        subprocess.Popen(
            [sys.executable, WORKER, "race", url, *map(str, (w, N_WORKERS, N_CHUNKS, CHUNK))],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(N_WORKERS)
    ]
    committed: dict[int, set[int]] = {}
    conflicts = 0
    for w, p in enumerate(procs):
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        committed[w] = _chunks(out, "ok")
        lost = _chunks(out, "conflict")
        assert committed[w] | lost == set(range(N_CHUNKS)) and not committed[w] & lost
        conflicts += len(lost)
    df = OrderedParquetDataset(url).to_pandas()
    assert df["k"].is_monotonic_increasing and df["k"].is_unique
    # Every committed chunk is there exactly once, and no lost one is.
    got = df.groupby(["worker", "chunk"]).size()
    expected = {(w, c) for w, cs in committed.items() for c in cs}
    assert set(got.index) == expected
    assert (got == CHUNK).all()
    # The racing writers did commit in turns, each on the version before.
    versions = OrderedParquetDataset(url).versions()
    assert versions["version"].is_monotonic_increasing
    assert len(expected) + conflicts == N_WORKERS * N_CHUNKS


def test_writers_of_disjoint_ranges_retry_instead_of_failing(s3_server):
    # Each worker appends in its own band of keys: the loser of a race
    # re-plans on the winner's version (its rows do not overlap the winner's).
    url = s3_server.url("bands") + "/shared"
    script = (
        "import sys, numpy as np, pandas as pd\n"
        "from oups import write\n"
        "url, w = sys.argv[1], int(sys.argv[2])\n"
        "for c in range(5):\n"
        "    k = np.arange(10) + 1000 * c + 100 * w\n"
        "    write(url, ordered_on='k', df=pd.DataFrame({'k': k, 'w': w}),\n"
        "          row_group_target_size=40, max_n_off_target_rgs=2)\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, url, str(w)], stderr=subprocess.PIPE)
        for w in range(N_WORKERS)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-3000:]
    df = OrderedParquetDataset(url).to_pandas()
    expected = np.sort(
        np.concatenate(
            [np.arange(10) + 1000 * c + 100 * w for c in range(5) for w in range(N_WORKERS)]
        )
    )
    assert df["k"].tolist() == expected.tolist()


@pytest.mark.skipif(not FAILPOINTS, reason="needs the test build (failpoints)")
def test_a_writer_killed_before_its_commit_leaves_the_previous_version(s3_server):
    url = s3_server.url("killed") + "/ds"
    first = pd.DataFrame({"k": np.arange(10), "v": np.arange(10.0)})
    write(url, ordered_on="k", df=first, row_group_target_size=4)
    script = (
        "import sys, numpy as np, pandas as pd\n"
        "from oups import write\n"
        "write(sys.argv[1], ordered_on='k', row_group_target_size=4,\n"
        "      df=pd.DataFrame({'k': np.arange(5, 30), 'v': -1.0}))\n"
    )
    killed = subprocess.run(
        [sys.executable, "-c", script, url],
        env={**os.environ, "OUPS_FAILPOINT": "before_commit"},
        capture_output=True,
    )
    assert killed.returncode != 0
    ds = OrderedParquetDataset(url)
    pd.testing.assert_frame_equal(ds.to_pandas(), first)
    assert ds.versions()["version"].tolist() == [1]
    # Its uploaded files are never read, and a vacuum removes them once they
    # are past the grace period left to writers still uploading.
    client = s3_server.client()
    prefix = url.removeprefix(f"s3://{s3_server.bucket}/") + "/"
    listed = client.list_objects_v2(Bucket=s3_server.bucket, Prefix=prefix)["Contents"]
    assert len(listed) > len(ds)
    os.environ["OUPS_ORPHAN_GRACE_SECONDS"] = "0"
    try:
        ds.vacuum()
    finally:
        del os.environ["OUPS_ORPHAN_GRACE_SECONDS"]
    listed = client.list_objects_v2(Bucket=s3_server.bucket, Prefix=prefix)["Contents"]
    assert len(listed) == len(ds)
    pd.testing.assert_frame_equal(OrderedParquetDataset(url).to_pandas(), first)


@pytest.mark.skipif(not FAILPOINTS, reason="needs the test build (failpoints)")
def test_a_writer_killed_after_its_commit_is_committed(s3_server):
    url = s3_server.url("committed") + "/ds"
    write(url, ordered_on="k", df=pd.DataFrame({"k": [1, 2]}), row_group_target_size=4)
    killed = subprocess.run(
        [sys.executable, "-c", _write_keys_script([3, 4]), url],
        env={**os.environ, "OUPS_FAILPOINT": "after_commit"},
        capture_output=True,
    )
    assert killed.returncode != 0
    # Its version is committed, whether readers see it yet or not: the next
    # write comes after it, and moves readers on.
    write(url, ordered_on="k", df=pd.DataFrame({"k": [5]}), row_group_target_size=4)
    ds = OrderedParquetDataset(url)
    assert ds.to_pandas()["k"].tolist() == [1, 2, 3, 4, 5]
    assert ds.versions()["version"].tolist() == [1, 2, 3]


@pytest.mark.skipif(not FAILPOINTS, reason="needs the test build (failpoints)")
def test_a_version_planned_on_before_its_pointer_moved_is_kept(s3_server):
    # A writer stalls between creating its record and moving the pointer;
    # another writer, in another range, plans on that record and commits the
    # next version. The first writer must then find its version in the
    # history (it is), and neither retract it nor write its rows twice.
    import time

    url = s3_server.url("unpublished") + "/ds"
    write(url, ordered_on="k", df=pd.DataFrame({"k": [1, 2]}), row_group_target_size=4)
    stalled = subprocess.Popen(
        [sys.executable, "-c", _write_keys_script([10, 11]), url],
        env={**os.environ, "OUPS_FAILPOINT": "sleep=4000:after_commit"},
        stderr=subprocess.PIPE,
    )
    try:
        record = url.removeprefix(f"s3://{s3_server.bucket}/").replace("/ds", "/.ds.oups")
        client = s3_server.client()
        for _ in range(200):
            listed = client.list_objects_v2(Bucket=s3_server.bucket, Prefix=record)
            if len(listed.get("Contents", [])) == 2:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the stalled writer never created its record")
        # Readers still see version 1; this write plans on version 2.
        assert OrderedParquetDataset(url).version == 1
        write(url, ordered_on="k", df=pd.DataFrame({"k": [20]}), row_group_target_size=4)
    finally:
        _, err = stalled.communicate(timeout=120)
    assert stalled.returncode == 0, err.decode()[-3000:]
    ds = OrderedParquetDataset(url)
    assert ds.version == 3
    assert ds.versions()["version"].tolist() == [1, 2, 3]
    assert ds.to_pandas()["k"].tolist() == [1, 2, 10, 11, 20]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_failing_requests_never_tear_a_version(s3_server, seed):
    # A share of requests fails before the server acts on them, another after
    # it did (the answer is lost). With one retry per request, some writes
    # fail: each failed write is wholly there or wholly absent, never half.
    from oups.exceptions import StorageError
    from tests.conftest import s3_faults

    url = s3_server.url("faults") + "/ds"
    options = {"max_retries": 1, "retry_timeout": 5}
    rng = np.random.default_rng(seed)
    model = pd.DataFrame({"k": pd.Series([], dtype="int64"), "v": pd.Series([], dtype="float64")})
    failed = 0
    for i in range(12):
        keys = np.sort(rng.choice(200, size=15, replace=False))
        df = pd.DataFrame({"k": keys, "v": float(i)})
        with_it = (
            pd.concat([model, df]).drop_duplicates("k", keep="last").sort_values("k")
        ).reset_index(drop=True)
        s3_faults(s3_server, before=0.15, after=0.15, seed=seed * 100 + i)
        try:
            write(
                url,
                ordered_on="k",
                df=df,
                row_group_target_size=20,
                duplicates_on="k",
                storage_options=options,
            )
            ok = True
        except StorageError:
            ok = False
            failed += 1
        finally:
            s3_faults(s3_server)
        got = OrderedParquetDataset(url).to_pandas()
        got = model.iloc[:0] if got is None else got
        if ok:
            pd.testing.assert_frame_equal(got, with_it, check_dtype=False)
            model = with_it
        elif len(got) == len(with_it) and got.equals(with_it):
            model = with_it  # it committed before its error
        else:
            pd.testing.assert_frame_equal(got, model, check_dtype=False)
    assert OrderedParquetDataset(url).versions()["version"].is_monotonic_increasing


def test_pins_taken_while_another_process_writes_and_vacuums_hold(s3_server):
    # The writer keeps one version (a vacuum after every commit), so any
    # version it does not see pinned is deleted at once. Pins are taken
    # meanwhile; each must keep its version readable, rows and all.
    url = s3_server.url("pins-race") + "/ds"
    write(url, ordered_on="k", df=pd.DataFrame({"k": [0]}))
    OrderedParquetDataset(url).set_retention(keep_versions=1)
    script = (
        "import sys, pandas as pd\n"
        "from oups import write\n"
        "for i in range(1, 61):\n"
        "    write(sys.argv[1], ordered_on='k', df=pd.DataFrame({'k': [i]}),\n"
        "          max_n_off_target_rgs=1)\n"
        "    if i == 1:\n"
        "        print('writing', flush=True)\n"
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", script, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pinned: dict[str, int] = {}
    during = 0  # pins taken while the writer was still writing
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
        while writer.poll() is None and len(pinned) < 15:
            name = f"p{len(pinned)}"
            version = OrderedParquetDataset(url)._pin(name)
            assert version is not None
            pinned[name] = version
            during += writer.poll() is None
            time.sleep(0.01)  # leave the writer room to commit in between
    finally:
        _, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err[-3000:]
    assert during >= 1, pinned
    latest = OrderedParquetDataset(url)
    assert latest._pins() == pinned
    kept = set(latest.versions()["version"])
    for name, version in pinned.items():
        assert version in kept, name
        rows = OrderedParquetDataset(url, version=version).to_pandas()["k"].tolist()
        assert rows == list(range(len(rows)))  # whole: every file still there
    for name in pinned:
        assert latest._unpin(name)
    latest.vacuum()
    assert latest.versions()["version"].tolist() == [latest.version]
