"""Worker processes for the concurrency tests.

python concurrent_worker.py append DATASET WORKER N_WORKERS N_CHUNKS CHUNK
    writes N_CHUNKS chunks of CHUNK rows whose keys are unique to WORKER
    (key = WORKER + N_WORKERS * j), logging each committed chunk.
python concurrent_worker.py read STORE_DIR SECONDS N_KEYS CHUNK
    discovers the store and iterates its datasets in sync until SECONDS
    have passed, checking that every dataset it sees is whole.
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


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    if cmd == "append":
        append(args[0], *(int(a) for a in args[1:]))
    else:
        read(args[0], float(args[1]), int(args[2]))
