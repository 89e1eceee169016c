"""Worker processes for the concurrency tests.

python concurrent_worker.py append DATASET WORKER N_WORKERS N_CHUNKS CHUNK
    writes N_CHUNKS chunks of CHUNK rows whose keys are unique to WORKER
    (key = WORKER + N_WORKERS * j), logging each committed chunk.
python concurrent_worker.py read STORE_DIR SECONDS N_KEYS CHUNK
    discovers the store and iterates its datasets in sync until SECONDS
    have passed, checking that every dataset it sees is whole.
python concurrent_worker.py feed STORE_DIR N_KEYS N_CHUNKS CHUNK
    appends N_CHUNKS chunks to each of N_KEYS datasets of a store, in turn,
    coalescing the tails (each append rewrites the last row group, and the
    default retention vacuums the old tails); never waits for the lock.
python concurrent_worker.py watch STORE_DIR STOP_FILE CHUNK
    until STOP_FILE exists: lists the store, reads each dataset (stats,
    length, frame), iterates them in sync and lists their versions; checks
    each observation is whole and that row counts never go down.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from oups import OrderedParquetDataset, Store, toplevel, write


@toplevel
class Feed:
    name: str


def append(path: str, worker: int, n_workers: int, n_chunks: int, chunk: int) -> None:
    for c in range(n_chunks):
        j = np.arange(c * chunk, (c + 1) * chunk)
        keys = worker + n_workers * j
        df = pd.DataFrame({"k": keys, "worker": np.full(chunk, worker), "chunk": c})
        write(path, ordered_on="k", df=df, row_group_target_size=3 * chunk, lock_timeout=60)
        print(c, flush=True)


def race(url: str, worker: int, n_workers: int, n_chunks: int, chunk: int) -> None:
    """``append`` on object storage, where writers do not wait for each other:
    each chunk prints ``ok <c>`` once committed, or ``conflict <c>`` when it
    lost to an overlapping write (and was not committed)."""
    from oups.exceptions import CommitConflictError

    for c in range(n_chunks):
        j = np.arange(c * chunk, (c + 1) * chunk)
        keys = worker + n_workers * j
        df = pd.DataFrame({"k": keys, "worker": np.full(chunk, worker), "chunk": c})
        try:
            write(url, ordered_on="k", df=df, row_group_target_size=3 * chunk)
        except CommitConflictError:
            print("conflict", c, flush=True)
        else:
            print("ok", c, flush=True)


def read(store_dir: str, seconds: float, chunk: int) -> None:
    store = Store(store_dir, Feed)
    deadline = time.monotonic() + seconds
    n_checks = 0
    while time.monotonic() < deadline:
        keys = list(store)
        for key in keys:
            with OrderedParquetDataset(store.basepath / str(key), lock_timeout=60) as ds:
                df = ds.to_pandas()
            if df is None:
                continue
            assert df["k"].is_monotonic_increasing, f"{key} is not sorted"
            assert len(df) % chunk == 0, f"{key} holds {len(df)} rows: a partial write"
            counts = df.groupby(["worker", "chunk"]).size()
            assert (counts == chunk).all(), f"{key} holds a partial chunk"
        if keys:
            rows = 0
            for part in store.iter_intersections(keys, lock_timeout=60):
                for df in part.values():
                    assert df["k"].is_monotonic_increasing
                    rows += len(df)
            assert rows % chunk == 0, f"iter_intersections saw {rows} rows"
        n_checks += 1
    print(n_checks, flush=True)


def feed(store_dir: str, n_keys: int, n_chunks: int, chunk: int) -> None:
    store = Store(store_dir, Feed)
    for c in range(n_chunks):
        for w in range(n_keys):
            j = np.arange(c * chunk, (c + 1) * chunk)
            df = pd.DataFrame({"k": j, "worker": np.full(chunk, w), "chunk": c})
            store[Feed(f"feed{w}")].write(
                ordered_on="k",
                df=df,
                row_group_target_size=8 * chunk,
                max_n_off_target_rgs=2,
                lock_timeout=0,  # readers never hold the lock
            )
        print(c, flush=True)


def watch(store_dir: str, stop_file: str, chunk: int) -> None:
    from pathlib import Path

    store = Store(store_dir, Feed)
    seen: dict[Feed, int] = {}
    n_checks = 0
    stop = Path(stop_file)
    while not stop.exists():
        keys = list(store)
        for key in keys:
            ds = store[key]
            n = ds.n_rows
            assert len(ds) == len(ds.row_group_stats)
            df = ds.to_pandas()
            got = 0 if df is None else len(df)
            assert got == n, f"{key}: {got} rows read, {n} in the stats of the same version"
            assert n >= seen.get(key, 0), f"{key} went back from {seen.get(key)} to {n} rows"
            seen[key] = n
            if df is not None:
                assert df["k"].is_monotonic_increasing and df["k"].is_unique, key
                counts = df.groupby("chunk").size()
                assert (counts == chunk).all(), f"{key} holds a partial chunk"
            assert ds.versions()["version"].is_monotonic_increasing
        if keys:
            rows = dict.fromkeys(keys, 0)
            for part in store.iter_intersections(keys):
                for key, df in part.items():
                    assert df["k"].is_monotonic_increasing
                    rows[key] += len(df)
            for key, n in rows.items():
                assert n % chunk == 0 and n >= seen.get(key, 0), f"iteration saw {n} of {key}"
        n_checks += 1
    print(n_checks, flush=True)


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    if cmd == "append":
        append(args[0], *(int(a) for a in args[1:]))
    elif cmd == "race":
        race(args[0], *(int(a) for a in args[1:]))
    elif cmd == "feed":
        feed(args[0], *(int(a) for a in args[1:]))
    elif cmd == "watch":
        watch(args[0], args[1], int(args[2]))
    else:
        read(args[0], float(args[1]), int(args[2]))
