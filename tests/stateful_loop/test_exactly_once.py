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


def run_worker(state: Path | str, base: Path | str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, WORKER, str(state), str(base), str(N_ITEMS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def check_result(base: Path | str) -> None:
    store = Store(base, Out)
    for name in ("a", "b"):
        got = store[Out(name)].to_pandas()
        pd.testing.assert_frame_equal(got, expected(name), check_dtype=False)


@pytest.mark.slow
def test_random_kills_leave_the_result_of_one_uninterrupted_run(state_at, store_base):
    remote = not isinstance(store_base, Path)
    if remote == isinstance(state_at("x"), Path):
        pytest.skip("state and store in different places: the quick tests cover it")
    rng = random.Random(int(os.environ.get("OUPS_CRASH_SEED", "1")))
    env = {**os.environ, "OUPS_FSYNC": "0"}
    rounds = int(os.environ.get("OUPS_EXACTLY_ONCE_ROUNDS", "3" if remote else "6"))
    # A run on the local S3 server takes longer: kill it later, or it never ends.
    slower = 3.0 if remote else 1.0
    n_killed = 0
    for r in range(rounds):
        state = state_at(f"loop-{r}.state")
        base = store_base / f"r{r}" if isinstance(store_base, Path) else f"{store_base}/r{r}"
        while True:
            p = run_worker(state, base, env)
            try:
                out, err = p.communicate(timeout=slower * rng.uniform(0.3, 1.2))
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


def _run_in_process(state: Path | str, base: Path | str, stop_after: int | None = None) -> None:
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


def test_a_failed_run_resumes_without_duplicates(state_at, store_base):
    # State and store each on local disk or on the local S3 server.
    state, base = state_at("loop.state"), store_base
    _run_in_process(state, base, stop_after=7)  # flushed batches after the checkpoint
    assert Store(base, Out)[Out("a")].n_rows > 0
    _run_in_process(state, base)
    check_result(base)
    # Versions record who wrote them (pins commit versions on object storage).
    versions = Store(base, Out)[Out("a")].versions()
    writers = versions[~versions["operation"].isin(["pin", "unpin"])]["writer"]
    assert writers.notna().all() and writers.nunique() == 1


def test_a_crash_before_the_first_checkpoint_is_undone_too(state_at, store_base):
    state, base = state_at("loop.state"), store_base
    _run_in_process(state, base, stop_after=0)
    _run_in_process(state, base)
    check_result(base)


def test_another_writer_since_the_checkpoint_is_refused(state_at, store_base):
    state, base = state_at("loop.state"), store_base
    _run_in_process(state, base, stop_after=7)
    store = Store(base, Out)
    store[Out("a")].write(ordered_on="t", df=pd.DataFrame({"t": [10_000], "item": [-1]}))
    before = store[Out("a")].version
    with pytest.raises(ConcurrentWriteError, match=r"a.*another writer"):
        StatefulLoop(state, store=store)
    assert store[Out("a")].refresh().version == before  # nothing undone


def test_writes_outside_the_store_or_the_loop_are_not_tracked(tmp_path, store_base):
    state, base = tmp_path / "loop.state", store_base
    store = Store(base, Out)
    other = Store(tmp_path / "elsewhere", Out)
    loop = StatefulLoop(state, store=store)
    for item_ctx in loop.iterate([0], check_loop_usage=False):
        with item_ctx:
            other[Out("x")].write(ordered_on="t", df=pd.DataFrame({"t": [1]}))
            store[Out("a")].write(ordered_on="t", df=pd.DataFrame({"t": [1]}))
    store[Out("b")].write(ordered_on="t", df=pd.DataFrame({"t": [1]}))
    assert other[Out("x")].versions()["writer"].isna().all()
    written = store[Out("a")].versions()
    assert written[written["operation"] == "write"]["writer"].notna().all()
    assert store[Out("b")].versions()["writer"].isna().all()
    with pytest.raises(ParameterTypeError, match="'store'"):
        StatefulLoop(tmp_path / "x.state", store=str(base))
