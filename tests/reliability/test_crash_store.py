"""Crash consistency of a Store under random operation sequences.

A writer process runs a seeded random sequence of appends, middle inserts,
upserts, period-target writes with coalescing, metadata updates,
``remove_from_disk``, ``del store[key]``, restores, snapshots and vacuums, and is
killed with SIGKILL at random instants. After each kill every dataset must equal,
row for row, the model's state before or after the interrupted operation, every
committed snapshot must read as it did when taken, and no orphan or temporary
file may remain once the datasets have been reopened.

``OUPS_CRASH_KILLS`` sets the number of kills (300 by default: CI);
``OUPS_CRASH_SEED`` the first sequence's seed. Locally, for a long run:
``OUPS_CRASH_KILLS=2000 pytest -m slow tests/reliability/test_crash_store.py``.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from oups import OrderedParquetDataset, Store

from .history_check import check_history
from .store_ops import KEYS, N_OPS, Feed, apply, operations, took_effect

pytestmark = pytest.mark.slow

WRITER = str(Path(__file__).with_name("store_ops.py"))
State = dict[Feed, tuple[Any, dict[str, Any]]]


def capture(store: Store) -> State:
    """Each key's rows and metadata (None, {} when absent). Opening a dataset
    recovers what an interrupted operation left, even when it has no metadata
    (a first write or a deletion cut short)."""
    out: State = {}
    for key in KEYS:
        with store[key] as ds:
            out[key] = (ds.to_pandas(), ds.key_value_metadata)
    return out


def same(a: State, b: State) -> bool:
    for key in KEYS:
        (da, ka), (db, kb) = a[key], b[key]
        if ka != kb or (da is None) != (db is None):
            return False
        if da is not None and not da.equals(db):
            return False
    return True


#: What each snapshot of the model reads, by name.
SNAPSHOTS: dict[str, State] = {}


def capture_snapshot(store: Store, name: str) -> State:
    frozen = Store(store.basepath, Feed, snapshot=name)
    return {
        key: (frozen[key].to_pandas(), frozen[key].key_value_metadata)
        if key in frozen
        else (None, {})
        for key in KEYS
    }


def model(seed: int, workdir: Path) -> list[State]:
    """The state after 0, 1, ..., N_OPS operations, without crashes."""
    store = Store(workdir / f"model-{seed}", Feed)
    states = [capture(store)]
    for op in operations(seed):
        apply(store, op)
        states.append(capture(store))
        if op.kind == "snapshot":
            name = (op.kwargs or {})["name"]
            SNAPSHOTS[f"{seed}/{name}"] = capture_snapshot(store, name)
    return states


def check_snapshots(store: Store, seed: int) -> None:
    for name in store.snapshots():
        assert same(capture_snapshot(store, name), SNAPSHOTS[f"{seed}/{name}"]), name


def check_no_leftovers(store: Store) -> None:
    for key in KEYS:
        path = store.basepath / str(key)
        files = {p.name for p in path.iterdir()} if path.exists() else set()
        if key in store:
            with OrderedParquetDataset(path) as ds:
                listed = {f"file_{i:010d}.parquet" for i in ds.row_group_stats["file_ids"]}
        else:
            listed = set()
        assert files == listed, f"{key}: orphan or missing files {files ^ listed}"
        check_history(path)
    temps = [p.name for p in store.basepath.rglob("*") if ".oups-tmp" in p.name]
    assert not temps, temps


def completed(log: Path) -> int:
    return len(log.read_text().split()) if log.exists() else 0


def test_random_kills_during_store_operations(tmp_path):
    kills = int(os.environ.get("OUPS_CRASH_KILLS", "300"))
    seed = int(os.environ.get("OUPS_CRASH_SEED", "1"))
    rng = random.Random(seed)
    states = model(seed, tmp_path)
    base, log = tmp_path / f"store-{seed}", tmp_path / f"log-{seed}"
    n_killed = n_before = n_after = 0
    for _ in range(kills):
        done = completed(log)
        if done >= N_OPS:  # this sequence is finished: start the next one
            seed += 1
            shutil.rmtree(tmp_path / f"model-{seed - 1}", ignore_errors=True)
            states = model(seed, tmp_path)
            base, log, done = tmp_path / f"store-{seed}", tmp_path / f"log-{seed}", 0
        writer = subprocess.Popen(
            [sys.executable, WRITER, str(base), str(log), str(seed), str(done)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready", (
            writer.stderr.read() if writer.stderr else ""
        )
        time.sleep(rng.uniform(0.0, 0.12))
        writer.send_signal(signal.SIGKILL)
        _, err = writer.communicate()
        if writer.returncode != -signal.SIGKILL:
            assert writer.returncode == 0, err[-3000:]
        n_killed += writer.returncode == -signal.SIGKILL
        finished = completed(log)
        store = Store(base, Feed)
        now = capture(store)
        # A killed snapshot leaves the rows as they were, like a finished one:
        # counting it done would skip the pins later removals must respect.
        if (
            finished < N_OPS
            and same(now, states[finished + 1])
            and took_effect(store, operations(seed)[finished])
        ):
            n_after += 1
            with open(log, "a") as f:  # it committed before the kill
                f.write(f"{finished}\n")
        else:
            assert same(now, states[finished]), (
                f"seed {seed}: after a kill during operation {finished} "
                f"({operations(seed)[finished].kind}), a dataset is neither as before nor as "
                "after it"
            )
            n_before += 1
        check_snapshots(store, seed)  # listing them tidies a cut-short snapshot's temp file
        check_no_leftovers(store)
    print(f"{kills} runs, {n_killed} killed; states found: {n_before} before, {n_after} after")
    assert n_killed > kills // 2
