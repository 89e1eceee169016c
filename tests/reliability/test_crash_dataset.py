"""Crash consistency: killing a writer at any instant loses nothing.

After a crash, the next open must show the dataset exactly as before or as
after the interrupted step (a write, a restore or a vacuum), every kept version
must read exactly as it was committed, and no file may be left that no kept
version needs.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from oups import OrderedParquetDataset, _oups

from .crash_writer import run_step, steps
from .history_check import check_history

WRITER = str(Path(__file__).with_name("crash_writer.py"))
N_STEPS = len(steps())


@pytest.fixture(scope="module")
def model_states(tmp_path_factory):
    """The dataset after each step, computed without crashes."""

    path = tmp_path_factory.mktemp("model") / "ds"
    states = [None]
    kvms = [{}]
    for step in steps():
        run_step(path, step)
        with OrderedParquetDataset(path) as ds:
            states.append(ds.to_pandas())
            kvms.append(ds.key_value_metadata)
            BY_VERSION[ds.version] = (states[-1], kvms[-1])
    return states, kvms


#: The model's state at each version (every step commits at most one).
BY_VERSION: dict[int | None, tuple[pd.DataFrame | None, dict]] = {}


def check_versions(path: Path) -> None:
    """Every kept version reads as committed, and only what they need is left."""
    for v in OrderedParquetDataset(path).versions()["version"].tolist():
        old = OrderedParquetDataset(path, version=v)
        expected, kvm = BY_VERSION[v]
        got = old.to_pandas()
        assert (got is None and expected is None) or got.equals(expected), f"version {v}"
        assert old.key_value_metadata == kvm, f"version {v}"
    check_history(path)


def check_consistent(path: Path) -> tuple[pd.DataFrame | None, dict]:
    ds = OrderedParquetDataset(path)  # recovers
    df = ds.to_pandas()
    stats = ds.row_group_stats
    listed = {f"file_{i:010d}.parquet" for i in stats["file_ids"]}
    on_disk = {p.name for p in path.iterdir()} if path.exists() else set()
    assert on_disk == listed, f"orphans or missing files: {on_disk ^ listed}"
    leftovers = [p.name for p in path.parent.iterdir() if p.name.startswith(".oups-tmp")]
    assert not leftovers
    if ds.version is not None:
        check_versions(path)
    if df is not None:
        assert df["k"].is_monotonic_increasing
        assert stats["n_rows"].sum() == len(df)
    kvm = ds.key_value_metadata
    ds.close()
    return df, kvm


def matches(df, kvm, states, kvms, i) -> bool:
    if i < 0 or i >= len(states):
        return False
    expected = states[i]
    if expected is None or df is None:
        return expected is None and df is None and kvm == kvms[i]
    return df.equals(expected) and kvm == kvms[i]


def run_writer(path: Path, log: Path, start: int, end: int | None = None, env=None):
    args = [sys.executable, WRITER, str(path), str(log), str(start)]
    if end is not None:
        args.append(str(end))
    # The writer's stderr is kept for post-mortems of a failing run.
    with open(path.parent / "writer.err", "a") as err:
        return subprocess.Popen(
            args,
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def completed(log: Path) -> int:
    return len(log.read_text().split()) if log.exists() else 0


FAILPOINTS = [
    "after_data_file:1",
    "after_data_file:2",
    "before_commit_rename",
    "after_commit",
    "during_cleanup",
    "during_vacuum",
]


@pytest.mark.skipif(
    not _oups.FAILPOINTS, reason="needs the failpoints build feature (bash .ci/setup enables it)"
)
@pytest.mark.slow
@pytest.mark.parametrize("failpoint", FAILPOINTS)
def test_abort_at_each_commit_step(tmp_path, model_states, failpoint):
    states, kvms = model_states
    path, log = tmp_path / "ds", tmp_path / "log"
    crashed = 0
    # Every third step covers every kind of write (the kinds cycle with period 5).
    for i in range(0, N_STEPS, 3):
        run_writer(path, log, completed(log), i).wait(timeout=300)
        assert completed(log) == i
        p = run_writer(path, log, i, i + 1, {"OUPS_FAILPOINT": failpoint})
        p.wait(timeout=300)
        crashed += p.returncode != 0
        df, kvm = check_consistent(path)
        if matches(df, kvm, states, kvms, i + 1):
            if completed(log) == i:
                with open(log, "a") as f:
                    f.write(f"{i}\n")
        else:
            assert matches(df, kvm, states, kvms, i), (
                f"after an abort at {failpoint} in step {i}, the dataset is neither the state "
                "before nor after that step"
            )
            run_writer(path, log, i, i + 1).wait(timeout=300)
        assert completed(log) == i + 1, (path.parent / "writer.err").read_text()[-3000:]
    run_writer(path, log, completed(log)).wait(timeout=300)
    df, kvm = check_consistent(path)
    assert matches(df, kvm, states, kvms, N_STEPS)
    assert crashed > 0


@pytest.mark.slow
def test_random_sigkill(tmp_path, model_states):
    states, kvms = model_states
    rng = random.Random(int(os.environ.get("OUPS_CRASH_SEED", "1")))
    kills = int(os.environ.get("OUPS_CRASH_KILLS", "60"))
    path, log = tmp_path / "ds", tmp_path / "log"
    n_killed = 0
    for _ in range(kills):
        done = completed(log)
        if done >= N_STEPS:
            path_files = list(tmp_path.iterdir())
            for p in path_files:
                if p.is_dir():
                    import shutil

                    shutil.rmtree(p)
                else:
                    p.unlink()
            done = 0
        p = run_writer(path, log, done)
        time.sleep(rng.uniform(0.05, 0.6))
        p.send_signal(signal.SIGKILL)
        p.wait()
        n_killed += p.returncode == -signal.SIGKILL
        finished = completed(log)
        df, kvm = check_consistent(path)
        if matches(df, kvm, states, kvms, finished + 1):
            with open(log, "a") as f:
                f.write(f"{finished}\n")
        else:
            assert matches(df, kvm, states, kvms, finished), (
                f"after a kill during step {finished}, the dataset is neither before nor after it"
            )
    assert n_killed > kills // 2
