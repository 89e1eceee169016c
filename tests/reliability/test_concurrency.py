"""Several processes on one dataset or one store: every write is serialised by
the lock, no row is lost or duplicated, readers never see a partial write,
never block a writer, and a process killed while holding a lock blocks nobody."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from oups import OrderedParquetDataset

pytestmark = pytest.mark.slow

WORKER = str(Path(__file__).with_name("concurrent_worker.py"))
N_WORKERS = 4
N_CHUNKS = int(os.environ.get("OUPS_CONCURRENCY_CHUNKS", "15"))
CHUNK = 50


def _start(*args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, WORKER, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(p: subprocess.Popen[str], timeout: float = 300) -> str:
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, err[-3000:]
    return out


def _check_dataset(path: Path, expected_chunks: dict[int, int]) -> None:
    with OrderedParquetDataset(path) as ds:
        df = ds.to_pandas()
        stats = ds.row_group_stats
    assert df is not None
    assert df["k"].is_monotonic_increasing and df["k"].is_unique
    assert stats["n_rows"].sum() == len(df)
    for worker, n in expected_chunks.items():
        mine = df[df["worker"] == worker]
        j = np.arange(n * CHUNK)
        assert mine["k"].tolist() == (worker + N_WORKERS * j).tolist(), f"worker {worker}"
    assert len(df) == CHUNK * sum(expected_chunks.values())


def test_four_writers_on_one_dataset(tmp_path):
    path = tmp_path / "shared"
    writers = [_start("append", path, w, N_WORKERS, N_CHUNKS, CHUNK) for w in range(N_WORKERS)]
    for p in writers:
        _finish(p)
    _check_dataset(path, {w: N_CHUNKS for w in range(N_WORKERS)})


def test_four_writers_on_a_store_with_a_reader(tmp_path):
    writers = [
        _start("append", tmp_path / f"feed{w}", w, N_WORKERS, N_CHUNKS, CHUNK)
        for w in range(N_WORKERS)
    ]
    reader = _start("read", tmp_path, 4.0, CHUNK)
    for p in writers:
        _finish(p)
    n_checks = int(_finish(reader).split()[-1])
    assert n_checks > 0
    for w in range(N_WORKERS):
        _check_dataset(tmp_path / f"feed{w}", {w: N_CHUNKS})


def test_a_writer_killed_mid_stream_blocks_nobody(tmp_path):
    path = tmp_path / "shared"
    writers = [_start("append", path, w, N_WORKERS, N_CHUNKS, CHUNK) for w in range(N_WORKERS)]
    victim = writers[0]
    # Let the victim commit a few chunks, then kill it wherever it is
    # (possibly holding the lock, possibly inside a commit).
    assert victim.stdout is not None
    for _ in range(3):
        victim.stdout.readline()
    time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    out, _ = victim.communicate()
    for p in writers[1:]:
        _finish(p)
    # The victim's committed chunks are those it logged, or one more whose
    # commit happened just before the kill.
    logged = 3 + len(out.split())
    with OrderedParquetDataset(path) as ds:
        df = ds.to_pandas()
    assert df is not None
    victim_chunks = int((df["worker"] == 0).sum()) // CHUNK
    assert victim_chunks in (logged, logged + 1)
    _check_dataset(path, {0: victim_chunks, **{w: N_CHUNKS for w in range(1, N_WORKERS)}})
    # No orphan file is left once the dataset has been reopened.
    with OrderedParquetDataset(path) as ds:
        listed = {f"file_{i:010d}.parquet" for i in ds.row_group_stats["file_ids"]}
    assert {p.name for p in path.iterdir()} == listed


def test_one_writer_and_three_readers_never_wait_for_each_other(tmp_path):
    """The writer never waits for the lock (lock_timeout=0) while three
    processes list, read and iterate the store without pause; every
    observation is a whole committed version and row counts only go up."""
    base, stop = tmp_path / "store", tmp_path / "stop"
    n_keys, n_chunks = 2, 3 * N_CHUNKS
    writer = _start("feed", base, n_keys, n_chunks, CHUNK)
    assert writer.stdout is not None
    writer.stdout.readline()  # the datasets exist
    readers = [_start("watch", base, stop, CHUNK) for _ in range(3)]
    try:
        _finish(writer)
    finally:
        stop.touch()
    checks = [int(_finish(r).split()[-1]) for r in readers]
    assert all(c > 0 for c in checks), checks
    for w in range(n_keys):
        path = base / f"feed{w}"
        ds = OrderedParquetDataset(path)
        df = ds.to_pandas()
        assert df is not None and df["k"].tolist() == list(range(n_chunks * CHUNK))
        # Readers may have kept versions past retention while they read them;
        # once they are gone, only what the kept versions need is left.
        ds.vacuum()
        kept = ds.versions()["version"].tolist()
        assert len(kept) <= 10
        needed = set()
        for v in kept:
            needed |= set(OrderedParquetDataset(path, version=v).row_group_stats["file_ids"])
        files = {p.name for p in (base / f".feed{w}.oups" / "files").iterdir()}
        assert files == {f"file_{i:010d}.parquet" for i in needed}
        assert {p.name for p in path.iterdir()} == {
            f"file_{i:010d}.parquet" for i in ds.row_group_stats["file_ids"]
        }
