"""AsofMerger benchmark against pandas.merge_asof and polars join_asof.

main = 1,000,000 sorted timestamps; 4 groups x 2 frames of 1,000,000 rows
(timestamp + 4 float64 + 1 int64); output row i reads group i % 4; frame 0
with n_prev=2 (current and 2 previous rows), frame 1 current only; exact
matches allowed. Peers compute the same table: per group, an as-of join of
the main rows of that group with the frame carrying shifted copies of its
columns, then the rows put back in order. Medians of ``--repeat`` runs after
one warm-up run; peak memory of the oups call next to its output size.

    python bench/asof.py [--rows 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import tracemalloc

import numpy as np
import pandas as pd
from timing import timed

from oups import AsofMerger

COLS = ["a", "b", "c", "d", "i"]


def make_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 86_400 * 10**9, n)).astype("datetime64[ns]")
    data = {"t": t, **{c: rng.random(n) for c in "abcd"}, "i": rng.integers(0, 10**6, n)}
    return pd.DataFrame(data)


def shifts(n_prev: int, prefix: str):
    """``(column, k, output name)`` of every output column of a frame."""
    for c in COLS:
        for k in range(n_prev, -1, -1):
            yield c, k, f"{prefix}{c}_{k}" if n_prev else f"{prefix}{c}"


def shifted(df: pd.DataFrame, n_prev: int, prefix: str) -> pd.DataFrame:
    out = {"t": df["t"]}
    for c, k, name in shifts(n_prev, prefix):
        out[name] = df[c].shift(k, fill_value=0)
    return pd.DataFrame(out)


def pandas_peer(main, groups):
    order = np.arange(len(main)) % 4
    parts = []
    for g, (f0, f1) in enumerate(groups):
        rows = np.flatnonzero(order == g)
        left = pd.DataFrame({"t": main[rows], "_row": rows})
        for df, n_prev, prefix in ((f0, 2, "x_"), (f1, 0, "y_")):
            left = pd.merge_asof(left, shifted(df, n_prev, prefix), on="t")
        parts.append(left)
    out = pd.concat(parts).sort_values("_row").drop(columns="_row")
    return out.fillna(0).reset_index(drop=True)


def polars_peer(main, groups):
    import polars as pl

    order = np.arange(len(main)) % 4
    parts = []
    for g, (f0, f1) in enumerate(groups):
        rows = np.flatnonzero(order == g)
        left = pl.DataFrame({"t": main[rows], "_row": rows})
        for df, n_prev, prefix in ((f0, 2, "x_"), (f1, 0, "y_")):
            right = pl.from_pandas(df)
            exprs = [pl.col("t")] + [
                pl.col(c).shift(k, fill_value=0).alias(name)
                for c, k, name in shifts(n_prev, prefix)
            ]
            left = left.join_asof(right.select(exprs), on="t", strategy="backward")
        parts.append(left)
    return pl.concat(parts).sort("_row").drop("_row").fill_null(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n = args.rows
    main_keys = np.sort(np.random.default_rng(0).integers(0, 86_400 * 10**9, n)).astype(
        "datetime64[ns]"
    )
    groups = [[make_frame(n, 10 * g + 1), make_frame(n, 10 * g + 2)] for g in range(4)]
    combinations = (np.arange(n) % 4).reshape(-1, 1)
    merger = AsofMerger(
        "t",
        n_dfs_per_group=2,
        prefixes=[["x_", "y_"]],
        n_prev=[2, 0],
        allow_exact_matches=[True, True],
    )

    def oups_run():
        merger.carry = None
        return merger.merge(main_keys, df_groups=groups, combinations=combinations)

    out = oups_run()
    expected = pandas_peer(main_keys, groups)
    pd.testing.assert_frame_equal(out, expected[out.columns], check_dtype=False)
    t_oups = timed(oups_run, args.repeat)
    t_pandas = timed(lambda: pandas_peer(main_keys, groups), args.repeat)
    try:
        t_polars = timed(lambda: polars_peer(main_keys, groups), args.repeat)
    except ImportError:
        t_polars = float("nan")
    tracemalloc.start()
    oups_run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    size = out.memory_usage(index=False).sum()
    print(f"output {out.shape[0]:,} rows x {out.shape[1]} columns ({size / 1e6:.0f} MB)")
    print(f"oups AsofMerger    {t_oups:.3f} s")
    print(f"pandas merge_asof  {t_pandas:.3f} s  (oups/pandas {t_oups / t_pandas:.2f}x)")
    print(f"polars join_asof   {t_polars:.3f} s  (oups/polars {t_oups / t_polars:.2f}x)")
    # numpy allocations (the output blocks) are traced; the engine's own are
    # the row selections, 4 bytes per output row and (position, frame).
    print(f"peak Python-tracked memory of a call: {peak / 1e6:.0f} MB ({peak / size:.2f}x output)")


if __name__ == "__main__":
    main()
