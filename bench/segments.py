"""SegmentedAggregator benchmark against polars group_by_dynamic and pandas
groupby().resample().

Workload: ``--rows`` trades (10M) over 30 days, 4 symbols (categorical),
price and quantity; 5-minute bars per symbol with open, high, low, close,
volume (sum), trade count and vwap. All three compute the same table (checked
before timing). oups runs once on the whole frame and once over ``--chunks``
consecutive chunks (the 1.2x bound of the issue), one result frame per call
as a streaming job hands them on; the pd.concat of those frames is reported
apart. Medians of ``--repeat`` runs
after a warm-up; peak memory is the growth of the resident set (sampled every
millisecond) of a fresh process during one call.

    python bench/segments.py [--rows 10000000] [--repeat 3] [--chunks 100]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

import numpy as np
import pandas as pd
from timing import timed, timed_pair

from oups import SegmentedAggregator

AGGS = {
    "bar": ("px", "ohlc"),
    "volume": ("qty", "sum"),
    "n": ("px", "count"),
    "vwap": ("px", "wmean", "qty"),
}


def make(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    t = np.sort(rng.integers(0, 30 * 86_400 * 10**9, n)).astype("datetime64[ns]")
    return pd.DataFrame(
        {
            "ts": t,
            "sym": pd.Categorical.from_codes(
                rng.integers(0, 4, n), ["AAPL", "MSFT", "NVDA", "TSLA"]
            ),
            "px": 100 + rng.standard_normal(n).cumsum() * 0.01,
            "qty": rng.integers(1, 500, n).astype(np.float64),
        }
    )


def run_oups(df: pd.DataFrame, chunks: int = 1) -> pd.DataFrame:
    agg = SegmentedAggregator("ts", by="sym", bins="5min", aggs=AGGS)
    if chunks == 1:
        return agg.agg(df, final=True)
    return pd.concat(run_chunks(agg, df, chunks), ignore_index=True)


def split(df: pd.DataFrame, chunks: int) -> list[pd.DataFrame]:
    """``chunks`` consecutive slices of ``df``, and an empty one to close the
    stream: what a streaming job receives, sliced before any timing."""
    bounds = np.linspace(0, len(df), chunks + 1).astype(int)
    return [df.iloc[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)] + [df.iloc[:0]]


def run_chunks(
    agg: SegmentedAggregator, df: pd.DataFrame, chunks: int | list[pd.DataFrame]
) -> list[pd.DataFrame]:
    """The results of a stream of calls, one frame per call, as a streaming
    job hands each on (the concatenation is timed apart); ``chunks`` is a
    count or the slices of :func:`split`."""
    parts = split(df, chunks) if isinstance(chunks, int) else chunks
    out = [agg.agg(part) for part in parts[:-1]]
    out.append(agg.agg(parts[-1], final=True))
    return out


ROLL_AGGS = {"mean": ("px", "mean"), "std": ("px", "std")}


def roll_oups(df: pd.DataFrame, chunks: int = 1) -> pd.DataFrame:
    agg = SegmentedAggregator("ts", by="sym", window="5min", aggs=ROLL_AGGS)
    if chunks == 1:
        return agg.agg(df)
    return pd.concat(run_chunks(agg, df, chunks), ignore_index=True)


def roller() -> SegmentedAggregator:
    return SegmentedAggregator("ts", by="sym", window="5min", aggs=ROLL_AGGS)


def binner() -> SegmentedAggregator:
    return SegmentedAggregator("ts", by="sym", bins="5min", aggs=AGGS)


def chunked_report(args, df, make_agg, one_call) -> float:
    """Times one call and the stream of chunks in turn, checks that the
    stream's results concatenated are those of one call, prints the figures
    and returns the one-call time."""
    chunks = split(df, args.chunks)
    one, many, ratio = timed_pair(
        lambda: one_call(df), lambda: run_chunks(make_agg(), df, chunks), args.repeat
    )
    parts = run_chunks(make_agg(), df, chunks)
    joined = timed(lambda: pd.concat(parts, ignore_index=True), args.repeat)
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), one_call(df))
    print(f"  oups, one call          {one * 1000:8.0f} ms")
    print(
        f"  oups, {args.chunks} chunks        {many * 1000:8.0f} ms  (one frame per call; "
        f"{ratio:.2f}x one call, median of the ratios in turn); pd.concat of the results: "
        f"{joined * 1000:.0f} ms more"
    )
    return one


def roll_polars(pdf):
    import polars as pl

    return pdf.rolling(index_column="ts", period="5m", group_by="sym").agg(
        pl.col("px").mean().alias("mean"), pl.col("px").std().alias("std")
    )


def check_rolling(df, pdf) -> None:
    """Both give every row its 5-minute mean and std."""
    mine = roll_oups(df).astype({"sym": str}).sort_values(["sym", "ts"], kind="stable")
    theirs = roll_polars(pdf).to_pandas().astype({"sym": str})
    theirs = theirs.sort_values(["sym", "ts"], kind="stable")
    for c in ("mean", "std"):
        np.testing.assert_allclose(mine[c].to_numpy(), theirs[c].to_numpy(), rtol=1e-6)


def run_polars(pdf):
    import polars as pl

    return pdf.group_by_dynamic("ts", every="5m", group_by="sym").agg(
        pl.col("px").first().alias("bar_open"),
        pl.col("px").max().alias("bar_high"),
        pl.col("px").min().alias("bar_low"),
        pl.col("px").last().alias("bar_close"),
        pl.col("qty").sum().alias("volume"),
        pl.col("px").count().alias("n"),
        ((pl.col("px") * pl.col("qty")).sum() / pl.col("qty").sum()).alias("vwap"),
    )


def run_pandas(df: pd.DataFrame) -> pd.DataFrame:
    g = df.assign(pq=df["px"] * df["qty"]).groupby("sym", observed=True).resample("5min", on="ts")
    out = g["px"].ohlc()
    out.columns = ["bar_open", "bar_high", "bar_low", "bar_close"]
    out["volume"] = g["qty"].sum()
    out["n"] = g["px"].count()
    out["vwap"] = g["pq"].sum() / out["volume"]
    return out.reset_index()


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.query("n > 0").astype({"sym": str})
    return frame.sort_values(["sym", "ts"]).reset_index(drop=True)


def check(df, pdf) -> None:
    """The three give the same bars (polars leaves out empty bins)."""
    mine = _sorted(run_oups(df))
    theirs = _sorted(run_polars(pdf).to_pandas())
    pd.testing.assert_frame_equal(mine, theirs[mine.columns], check_dtype=False, rtol=1e-9)
    ref = _sorted(run_pandas(df))
    pd.testing.assert_frame_equal(mine, ref[mine.columns], check_dtype=False, rtol=1e-9)


MEMORY = """
import os, sys, threading, time
sys.path.insert(0, sys.argv[3])
import segments as s
df = s.make(int(sys.argv[1]))
pdf = None
if sys.argv[2].startswith("polars"):
    import polars as pl
    pdf = pl.from_pandas(df)
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
base, peak, done = rss(), [0], []
def sample():
    while not done:
        peak[0] = max(peak[0], rss())
        time.sleep(0.001)
t = threading.Thread(target=sample)
t.start()
out = {"oups": lambda: s.run_oups(df), "polars": lambda: s.run_polars(pdf),
       "pandas": lambda: s.run_pandas(df), "oups-rolling": lambda: s.roll_oups(df),
       "polars-rolling": lambda: s.roll_polars(pdf)}[sys.argv[2]]()
done.append(1)
t.join()
print((peak[0] - base) / 1e6)
"""


def peak_memory(engine: str, n: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", MEMORY, str(n), engine, sys.path[0]],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.split()[-1])


def bins(args, df, pdf) -> None:
    check(df.iloc[: min(len(df), 1_000_000)], pdf.head(1_000_000))
    print(f"{args.rows:,} rows, 4 symbols, 5-minute OHLC + volume + count + vwap bars")
    one = chunked_report(args, df, binner, run_oups)
    polars = timed(lambda: run_polars(pdf), args.repeat)
    print(f"  polars group_by_dynamic {polars * 1000:8.0f} ms  (oups {polars / one:.1f}x faster)")
    if not args.no_pandas:
        pandas = timed(lambda: run_pandas(df), 1)
        print(
            f"  pandas groupby.resample {pandas * 1000:8.0f} ms  (oups {pandas / one:.1f}x faster)"
        )
    engines = ["oups", "polars"] + ([] if args.no_pandas else ["pandas"])
    memory = {e: peak_memory(e, args.rows) for e in engines}
    size = df.memory_usage(deep=True).sum() / 1e6
    print(
        f"  peak memory growth of one call (input {size:.0f} MB): "
        + ", ".join(f"{e} {m:.0f} MB" for e, m in memory.items())
    )


def rolling(args, df, pdf) -> None:
    check_rolling(df.iloc[: min(len(df), 1_000_000)], pdf.head(1_000_000))
    print(f"{args.rows:,} rows, 4 symbols, 5-minute trailing mean and std at every row")
    one = chunked_report(args, df, roller, roll_oups)
    polars = timed(lambda: roll_polars(pdf), args.repeat)
    print(f"  polars rolling          {polars * 1000:8.0f} ms  (oups {polars / one:.1f}x faster)")
    memory = {e: peak_memory(e, args.rows) for e in ("oups-rolling", "polars-rolling")}
    print(
        "  peak memory growth of one call: "
        + ", ".join(f"{e} {m:.0f} MB" for e, m in memory.items())
    )


def overhead(args, df) -> None:
    """The floor of a stream's extra cost: what one call costs on a chunk of
    10 rows (no work to speak of), in all and inside the engine binding."""
    import time

    import oups.stateful_ops._segment_rolling as rolling_mod
    import oups.stateful_ops.segmented_aggregator as bins_mod

    spent = [0.0]

    def timing(f):
        def timed_call(*a):
            t = time.perf_counter()
            try:
                return f(*a)
            finally:
                spent[0] += time.perf_counter() - t

        return timed_call

    saved = bins_mod.segment_aggregate, rolling_mod.segment_roll
    bins_mod.segment_aggregate = timing(saved[0])
    rolling_mod.segment_roll = timing(saved[1])
    try:
        print("Per-call cost of a stream, chunks of 10 rows (medians of 5 runs of 2,000 calls)")
        for name, make_agg in (("bars", binner), ("rolling", roller)):
            totals, engines = [], []
            for _ in range(5):
                agg = make_agg()
                agg.agg(df.iloc[:100_000])
                pieces = [df.iloc[100_000 + i * 10 : 100_010 + i * 10] for i in range(2000)]
                spent[0] = 0.0
                t = time.perf_counter()
                for piece in pieces:
                    agg.agg(piece)
                totals.append((time.perf_counter() - t) / 2000)
                engines.append(spent[0] / 2000)
            total, engine = statistics.median(totals), statistics.median(engines)
            print(
                f"  {name:8s} {total * 1e6:5.0f} us a call: engine binding {engine * 1e6:.0f} us, "
                f"Python around it {(total - engine) * 1e6:.0f} us"
            )
    finally:
        bins_mod.segment_aggregate, rolling_mod.segment_roll = saved


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--chunks", type=int, default=100)
    ap.add_argument("--steps", default="bins,rolling,overhead")
    ap.add_argument("--no-pandas", action="store_true", help="skip pandas (about a minute a run)")
    args = ap.parse_args()
    import polars as pl

    df = make(args.rows)
    pdf = pl.from_pandas(df)
    steps = args.steps.split(",")
    if "bins" in steps:
        bins(args, df, pdf)
    if "rolling" in steps:
        rolling(args, df, pdf)
    if "overhead" in steps:
        overhead(args, df)


if __name__ == "__main__":
    main()
