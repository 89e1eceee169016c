"""StatefulLoop benchmark: per-iteration overhead and state persistence.

Timed, with medians of ``--repeat`` runs after one warm-up run:

- empty:    ``for ctx in loop.iterate(items): with ctx as item: pass`` over
            100,000 small items; reported per iteration, raw and minus a bare
            ``for`` over the same list.
- buffered: the same loop with two chained ``buffer()`` calls per item (a
            one-row DataFrame into position 0, its flushes into position 1),
            position 0 flushing every ~1 MB; reported with the default
            concat, with ``concat_func=pandas.concat`` (what the reference
            uses) and with a no-op ``concat_func`` (the loop's own
            bookkeeping).
- persist:  a bound state holding a 1,000,000-row x 6-column DataFrame
            (5 float64 + 1 int64): save at the end of a one-item run, then
            load by building the loop again. The reference pickles its state;
            the peer is ``pickle.dump`` + ``pickle.load`` (protocol 5) of the
            same dict to a file with fsync, measured in the same run.

    python bench/loop.py [--items 100000] [--rows 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from timing import timed

from oups import StatefulLoop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n = args.items
    tmp = Path(tempfile.mkdtemp(prefix="oups-bench-loop-"))
    items = list(range(n))
    frames = [pd.DataFrame({"v": [i]}, index=pd.RangeIndex(i, i + 1)) for i in range(256)]

    def bare():
        for _item in items:
            pass

    def empty():
        loop = StatefulLoop(tmp / "empty.bin")
        for ctx in loop.iterate(items, check_loop_usage=False):
            with ctx as item:
                pass
        return item

    def buffered(concat_func=None):
        def run():
            loop = StatefulLoop(tmp / "buffered.bin")
            flushes = 0
            for ctx in loop.iterate(items, check_loop_usage=False):
                with ctx as item:
                    out = loop.buffer(
                        {"k": frames[item & 255]}, memory_limit_mb=1, concat_func=concat_func
                    )
                    flushes += 1
                    out = loop.buffer(out, memory_limit_mb=1000, concat_func=concat_func)
            return flushes

        return run

    t_bare = timed(bare, args.repeat)
    t_empty = timed(empty, args.repeat)
    t_buf = timed(buffered(), args.repeat)
    t_buf_pd = timed(buffered(pd.concat), args.repeat)
    t_buf_noop = timed(buffered(lambda frames: frames[0]), args.repeat)
    us = 1e6 / n
    print(f"iterations: {n:,}")
    print(
        f"empty loop      {t_empty * us:6.2f} us/iteration "
        f"({(t_empty - t_bare) * us:.2f} over a bare for loop)"
    )
    print(f"two buffers     {t_buf * us:6.2f} us/iteration (default concat)")
    print(f"two buffers     {t_buf_pd * us:6.2f} us/iteration (concat_func=pandas.concat)")
    print(f"two buffers     {t_buf_noop * us:6.2f} us/iteration (no-op concat_func)")

    rng = np.random.default_rng(0)
    big = pd.DataFrame({c: rng.random(args.rows) for c in "abcde"})
    big["f"] = np.arange(args.rows)
    state_path = tmp / "state.bin"

    def save():
        state_path.unlink(missing_ok=True)
        loop = StatefulLoop(state_path)
        loop.bind_function_state(lambda *, s: s, state={"s": {"df": big}}, name="job")
        for ctx in loop.iterate([0], check_loop_usage=False):
            with ctx:
                pass

    def load():
        loop = StatefulLoop(state_path)
        bound = loop.bind_function_state(lambda *, s: s, state={"s": {}}, name="job")
        return bound()["df"]

    save()
    pd.testing.assert_frame_equal(load(), big)
    t_save = timed(save, args.repeat)
    t_load = timed(load, args.repeat)

    pickle_path = tmp / "state.pkl"

    def pickle_save():
        with open(pickle_path, "wb") as f:
            pickle.dump({"func:job#1": {"s": {"df": big}}}, f, protocol=5)
            f.flush()
            os.fsync(f.fileno())

    def pickle_load():
        with open(pickle_path, "rb") as f:
            return pickle.load(f)

    p_save = timed(pickle_save, args.repeat)
    p_load = timed(pickle_load, args.repeat)
    size = state_path.stat().st_size / 1e6
    print(f"state {args.rows:,} rows x 6 columns ({size:.0f} MB on disk)")
    print(f"oups   save {t_save:.3f} s  load {t_load:.3f} s  total {t_save + t_load:.3f} s")
    print(
        f"pickle save {p_save:.3f} s  load {p_load:.3f} s  total {p_save + p_load:.3f} s"
        f"  (oups/pickle {(t_save + t_load) / (p_save + p_load):.2f}x)"
    )


if __name__ == "__main__":
    main()
