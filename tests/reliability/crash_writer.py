"""A writer process for the crash tests: runs a deterministic write sequence.

Usage: python crash_writer.py DATASET_DIR LOG_PATH START_STEP [END_STEP]
After each completed write it appends the step number to LOG_PATH (fsynced).
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd

from oups import OrderedParquetDataset, write


def steps(n: int = 40):
    """The sequence: appends, middle inserts, upserts, coalescing, metadata, and
    among them restores of an earlier version and vacuums. Each step is
    ``(op, df, kwargs)`` and commits at most one version."""
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        if i % 8 == 6:
            out.append(("restore", None, {"back": 2}))
            continue
        if i % 11 == 9:
            out.append(("vacuum", None, {"keep_versions": 3}))
            continue
        kind = i % 5
        base = i * 100
        if kind == 0:  # append
            keys = np.arange(base, base + 40)
            kw = dict(row_group_target_size=16)
        elif kind == 1:  # insert in the middle of existing data
            keys = np.sort(rng.integers(0, max(base, 1), 12))
            kw = dict(row_group_target_size=16)
        elif kind == 2:  # upsert with duplicates_on
            keys = np.sort(rng.integers(0, max(base, 1), 20))
            kw = dict(row_group_target_size=16, duplicates_on="k")
        elif kind == 3:  # small append with coalescing
            keys = np.arange(base, base + 3)
            kw = dict(row_group_target_size=16, max_n_off_target_rgs=1)
        else:  # metadata update and resize pass
            keys = None
            kw = dict(
                row_group_target_size=16, max_n_off_target_rgs=2, key_value_metadata={"step": i}
            )
        df = None if keys is None else pd.DataFrame({"k": keys, "v": np.full(len(keys), i)})
        out.append(("write", df, kw))
    return out


def run_step(path, step) -> None:
    op, df, kw = step
    if op == "write":
        write(path, ordered_on="k", df=df, **kw)
    elif op == "restore":
        ds = OrderedParquetDataset(path)
        ds.restore(ds.version - kw["back"])
    else:
        OrderedParquetDataset(path).vacuum(**kw)


def main() -> None:
    path, log, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
    seq = steps()
    end = int(sys.argv[4]) if len(sys.argv) > 4 else len(seq)
    for i in range(start, end):
        run_step(path, seq[i])
        with open(log, "a") as f:
            f.write(f"{i}\n")
            f.flush()
            os.fsync(f.fileno())


if __name__ == "__main__":
    main()
