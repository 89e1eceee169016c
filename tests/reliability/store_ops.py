"""A seeded random sequence of store operations, and a process that runs it.

Shared by the crash harness (which kills the process at random instants) and
its model (the same sequence run without crashes).

    python store_ops.py STORE_DIR LOG SEED START
runs operations START.. of the sequence of SEED, appending the number of each
completed operation to LOG (fsynced), after printing "ready" once imported.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from oups import Store, toplevel

N_OPS = 60
HOUR = 3600 * 10**9
T0 = pd.Timestamp("2024-01-01").value


@toplevel
class Feed:
    name: str


KEYS = [Feed("a"), Feed("b")]


@dataclass
class Op:
    kind: str
    key: Feed
    df: pd.DataFrame | None = None
    kwargs: dict[str, Any] | None = None


def _frame(ns: np.ndarray, step: int) -> pd.DataFrame:
    ns = np.sort(ns)
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(ns),
            "v": np.arange(len(ns), dtype=np.float64) + step * 1000,
            "step": np.full(len(ns), step, dtype=np.int64),
        }
    )


def operations(seed: int, n: int = N_OPS) -> list[Op]:
    rng = np.random.default_rng(seed)
    ops: list[Op] = []
    horizon = {k: T0 for k in KEYS}  # end of each key's appended data
    kinds = [
        "append",
        "append",
        "insert",
        "upsert",
        "period",
        "metadata",
        "remove",
        "delete",
        "restore",
        "snapshot",
        "vacuum",
    ]
    weights = np.array([4, 3, 2, 2, 2, 1, 0.5, 0.5, 1, 0.5, 0.5])
    for i in range(n):
        kind = kinds[rng.choice(len(kinds), p=weights / weights.sum())]
        key = KEYS[rng.integers(len(KEYS))]
        if kind in ("append", "period"):
            start = horizon[key]
            ns = start + rng.integers(1, 2 * HOUR, rng.integers(5, 60))
            horizon[key] = int(ns.max()) + 1
            kw: dict[str, Any] = (
                {"row_group_target_size": "1h", "max_n_off_target_rgs": 2}
                if kind == "period"
                else {"row_group_target_size": 40, "max_n_off_target_rgs": 1}
            )
            ops.append(Op("write", key, _frame(ns, i), kw))
        elif kind in ("insert", "upsert"):
            lo, hi = T0, max(horizon[key], T0 + HOUR)
            ns = rng.integers(lo, hi, rng.integers(3, 30))
            if kind == "upsert":
                ns = np.unique(ns)
            kw = {"row_group_target_size": 40}
            if kind == "upsert":
                kw["duplicates_on"] = "ts"
            ops.append(Op("write", key, _frame(ns, i), kw))
        elif kind == "metadata":
            ops.append(Op("write", key, None, {"key_value_metadata": {"step": i, "drop": None}}))
        elif kind == "remove":
            ops.append(Op("remove", key))
            horizon[key] = T0
        elif kind == "restore":
            # Back to the version before the last one, or to the previous one.
            ops.append(Op("restore", key, None, {"back": int(rng.integers(1, 3))}))
        elif kind == "snapshot":
            ops.append(Op("snapshot", key, None, {"name": f"s{i}"}))
        elif kind == "vacuum":
            # Keeps what the restores (at most two versions back) need.
            ops.append(Op("vacuum", key, None, {"keep_versions": 3}))
        else:
            ops.append(Op("delete", key))
            horizon[key] = T0
    return ops


def apply(store: Store, op: Op) -> None:
    if op.kind == "write":
        store[op.key].write(ordered_on="ts", df=op.df, lock_timeout=30, **(op.kwargs or {}))
    elif op.kind == "remove":
        if op.key in store:
            with store[op.key] as ds:
                ds.remove_from_disk()
    elif op.kind == "restore":
        ds = store[op.key]
        back = (op.kwargs or {})["back"]
        # Versions after a removal may leave gaps (a snapshot kept a few).
        if ds.version is not None and ds.version - back in set(ds.versions()["version"]):
            ds.restore(ds.version - back)
    elif op.kind == "snapshot":
        name = (op.kwargs or {})["name"]
        if name not in store.snapshots():  # done already, before a kill
            store.snapshot(name)
    elif op.kind == "vacuum":
        store.vacuum(**(op.kwargs or {}))
    elif op.key in store:
        del store[op.key]


def took_effect(store: Store, op: Op) -> bool:
    """Whether ``op`` finished, as far as the store shows beyond the datasets'
    rows: a snapshot leaves them as they were, so only its manifest tells."""
    if op.kind == "snapshot":
        return (op.kwargs or {})["name"] in store.snapshots()
    return True


def main() -> None:
    store_dir, log, seed, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    ops = operations(seed)
    store = Store(store_dir, Feed)
    print("ready", flush=True)
    for i in range(start, len(ops)):
        apply(store, ops[i])
        with open(log, "a") as f:
            f.write(f"{i}\n")
            f.flush()
            os.fsync(f.fileno())


if __name__ == "__main__":
    main()
