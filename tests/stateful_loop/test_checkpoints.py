"""StatefulLoop checkpoints at buffer() flushes: a run killed late resumes from
the last completed flush, and batches written by a flush are not lost."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pandas as pd
import pytest

from oups import OrderedParquetDataset, StatefulLoop

N = 23

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import pandas as pd
    from oups import StatefulLoop, write

    base, kill_at = sys.argv[1], int(sys.argv[2])

    class Cursor:
        def __init__(self):
            self.next = 0

    def one(i):
        return pd.DataFrame({"ts": [i], "v": [float(i)]})

    row_mb = one(0).memory_usage(deep=True).sum() / 2**20
    loop = StatefulLoop(base + "/loop.state")
    cursor = loop.bind_object_state(Cursor(), state=["next"])
    flushes = 0
    with open(base + "/seen.log", "a") as log:
        for ctx in loop.iterate(range(cursor.next, N)):
            with ctx as i:
                log.write(f"{i}\\n"); log.flush()
                cursor.next = i + 1
                # Two chained buffers: the second holds frames across checkpoints.
                a = loop.buffer({"a": one(i)}, memory_limit_mb=3 * row_mb)
                write(base + "/a", ordered_on="ts", df=a["a"], duplicates_on="ts")
                flushes += 1
                if flushes == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)  # after the write, before the save
                b = loop.buffer({"b": a["a"]}, memory_limit_mb=7 * row_mb)
                write(base + "/b", ordered_on="ts", df=b["b"])
    """
).replace("N)", f"{N})")


def _run(base: Path, kill_at: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(base), str(kill_at)], capture_output=True, text=True
    )


@pytest.mark.parametrize("kill_at", [1, 2, 4, 6])
def test_a_kill_after_a_flush_write_resumes_from_the_last_checkpoint(tmp_path, kill_at):
    killed = _run(tmp_path, kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    done = _run(tmp_path, 0)
    assert done.returncode == 0, done.stderr
    seen = [int(x) for x in (tmp_path / "seen.log").read_text().split()]
    first_run = seen[: seen.index(max(seen[: 3 * kill_at])) + 1]
    resumed = seen[len(first_run) :]
    # The resumed run starts after the last completed flush, not from scratch.
    assert resumed[0] == 3 * (kill_at - 1)
    expected = pd.DataFrame({"ts": list(range(N)), "v": [float(i) for i in range(N)]})
    # 'a' is rewritten with duplicates_on: exactly one row per item.
    pd.testing.assert_frame_equal(OrderedParquetDataset(tmp_path / "a").to_pandas(), expected)
    # 'b' is written without deduplication: frames held by the second buffer at
    # the checkpoint come back from the state file, none is lost or doubled.
    pd.testing.assert_frame_equal(OrderedParquetDataset(tmp_path / "b").to_pandas(), expected)


def test_rebinding_a_state_parameter_warns():
    def bad(x, *, n):
        n = n + x
        return n

    def good(x, *, acc):
        acc["n"] += x
        return acc["n"]

    loop = StatefulLoop(Path("/nonexistent-oups-dir/never-written.state"))
    with pytest.warns(UserWarning, match="state 'n' of 'bad' is assigned inside it"):
        loop.bind_function_state(bad, state={"n": 0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loop.bind_function_state(good, state={"acc": {"n": 0}})
