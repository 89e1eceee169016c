"""A loop that writes two datasets of a store through buffer() flushes.

    python exactly_once_worker.py STATE_FILE STORE_DIR N_ITEMS

Plain appends (no duplicates_on): a batch written twice would show up twice.
Prints "done" when the loop completed.
"""

from __future__ import annotations

import sys

import pandas as pd

from oups import StatefulLoop, Store, toplevel


@toplevel
class Out:
    name: str


def frames(i: int) -> dict[Out, pd.DataFrame]:
    t = [i * 10 + j for j in range(10)]
    return {
        Out("a"): pd.DataFrame({"t": t, "item": i}),
        Out("b"): pd.DataFrame({"t": t[::2], "item": -i}),
    }


def advance(i: int, *, cursor: dict[str, int]) -> None:
    cursor["next"] = i + 1


def main(state_file: str, store_dir: str, n_items: int) -> None:
    store = Store(store_dir, Out)
    loop = StatefulLoop(state_file, default_memory_limit_mb=0.0006, store=store)
    step = loop.bind_function_state(advance, state={"cursor": {"next": 0}})
    start = step.keywords["cursor"]["next"]
    for item_ctx in loop.iterate(range(start, n_items)):
        with item_ctx as i:
            step(i)
            batch = loop.buffer(frames(i))
            for key, df in batch.items():
                store[key].write(
                    ordered_on="t", df=df, row_group_target_size=40, max_n_off_target_rgs=2
                )
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
