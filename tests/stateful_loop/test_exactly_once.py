"""A StatefulLoop given a store writes to it exactly once: batches flushed after
the last checkpoint and written before a crash are undone on resume, so the
resumed run's writes replace them instead of duplicating them."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from oups import StatefulLoop, Store
from oups.exceptions import ConcurrentWriteError, ParameterTypeError

from .exactly_once_worker import Out, frames

WORKER = str(Path(__file__).with_name("exactly_once_worker.py"))
N_ITEMS = 60


def expected(name: str) -> pd.DataFrame:
    parts = [frames(i)[Out(name)] for i in range(N_ITEMS)]
    return pd.concat(parts, ignore_index=True)


def run_worker(state: Path, base: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, WORKER, str(state), str(base), str(N_ITEMS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def check_result(base: Path) -> None:
    store = Store(base, Out)
    for name in ("a", "b"):
        got = store[Out(name)].to_pandas()
        pd.testing.assert_frame_equal(got, expected(name), check_dtype=False)


@pytest.mark.slow
def test_random_kills_leave_the_result_of_one_uninterrupted_run(tmp_path):
    rng = random.Random(int(os.environ.get("OUPS_CRASH_SEED", "1")))
    env = {**os.environ, "OUPS_FSYNC": "0"}
    rounds = int(os.environ.get("OUPS_EXACTLY_ONCE_ROUNDS", "6"))
    n_killed = 0
    for r in range(rounds):
        state, base = tmp_path / f"loop-{r}.state", tmp_path / f"store-{r}"
        while True:
            p = run_worker(state, base, env)
            try:
                out, err = p.communicate(timeout=rng.uniform(0.3, 1.2))
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
                p.communicate()
                n_killed += 1
                continue
            assert p.returncode == 0, err[-3000:]
            assert out.strip() == "done"
            break
        check_result(base)
    assert n_killed > 0


def _run_in_process(state: Path, base: Path, stop_after: int | None = None) -> None:
    """The worker's loop, stopped by an exception after `stop_after` items."""
    store = Store(base, Out)
    loop = StatefulLoop(state, default_memory_limit_mb=0.0006, store=store)
    step = loop.bind_function_state(
        lambda i, *, cursor: cursor.__setitem__("next", i + 1), state={"cursor": {"next": 0}}
    )
    start = step.keywords["cursor"]["next"]

    class Stop(Exception):
        pass

    try:
        for item_ctx in loop.iterate(range(start, N_ITEMS), check_loop_usage=False):
            with item_ctx as i:
                step(i)
                batch = loop.buffer(frames(i))
                for key, df in batch.items():
                    store[key].write(ordered_on="t", df=df)
                if stop_after is not None and i == stop_after:
                    raise Stop
    except Stop:
        pass


def test_a_failed_run_resumes_without_duplicates(tmp_path):
    state, base = tmp_path / "loop.state", tmp_path / "store"
    _run_in_process(state, base, stop_after=7)  # flushed batches after the checkpoint
    assert Store(base, Out)[Out("a")].n_rows > 0
    _run_in_process(state, base)
    check_result(base)
    # Versions record who wrote them.
    writers = Store(base, Out)[Out("a")].versions()["writer"]
    assert writers.notna().all() and writers.nunique() == 1


def test_a_crash_before_the_first_checkpoint_is_undone_too(tmp_path):
    state, base = tmp_path / "loop.state", tmp_path / "store"
    _run_in_process(state, base, stop_after=0)
    _run_in_process(state, base)
    check_result(base)


def test_another_writer_since_the_checkpoint_is_refused(tmp_path):
    state, base = tmp_path / "loop.state", tmp_path / "store"
    _run_in_process(state, base, stop_after=7)
    store = Store(base, Out)
    store[Out("a")].write(ordered_on="t", df=pd.DataFrame({"t": [10_000], "item": [-1]}))
    before = store[Out("a")].version
    with pytest.raises(ConcurrentWriteError, match=r"a.*another writer"):
        StatefulLoop(state, store=store)
    assert store[Out("a")].refresh().version == before  # nothing undone


def test_writes_outside_the_store_or_the_loop_are_not_tracked(tmp_path):
    state, base = tmp_path / "loop.state", tmp_path / "store"
    store = Store(base, Out)
    other = Store(tmp_path / "elsewhere", Out)
    loop = StatefulLoop(state, store=store)
    for item_ctx in loop.iterate([0], check_loop_usage=False):
        with item_ctx:
            other[Out("x")].write(ordered_on="t", df=pd.DataFrame({"t": [1]}))
            store[Out("a")].write(ordered_on="t", df=pd.DataFrame({"t": [1]}))
    store[Out("b")].write(ordered_on="t", df=pd.DataFrame({"t": [1]}))
    assert other[Out("x")].versions()["writer"].isna().all()
    assert store[Out("a")].versions()["writer"].notna().all()
    assert store[Out("b")].versions()["writer"].isna().all()
    with pytest.raises(ParameterTypeError, match="'store'"):
        StatefulLoop(tmp_path / "x.state", store=str(base))
