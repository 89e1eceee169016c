"""A market-data pipeline on synthetic trades and quotes, end to end.

1. Ingest: trades and quotes of several instruments arrive day by day and are
   merged into a Store (one dataset per kind and symbol, one row group per day).
2. Features: a StatefulLoop walks the raw datasets in sync, day by day
   (``Store.iter_intersections``). An AsofMerger attaches to every trade the
   quote in force and the one before it, for all symbols in one call
   (``combinations`` routes each trade to its symbol's quotes). A
   SegmentedAggregator turns them into 5-minute bars per symbol (OHLC-style
   sums, counts, means and a vwap), written to a second Store with
   ``row_group_target_size="1D"``.
3. Restart: more days arrive; a new process (here: a new loop on the same
   state file) resumes where the first stopped, the as-of carry and the open
   bars included. The
   result is checked against one pass over all days.

Run it (about 10 s):

    python examples/market_pipeline.py [--dir DIR] [--days 5] [--quotes-per-day 200000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from oups import AsofMerger, SegmentedAggregator, StatefulLoop, Store, toplevel

SYMBOLS = ["AAPL", "MSFT", "NVDA", "TSLA"]
FIRST_DAY = pd.Timestamp("2024-03-04")


@toplevel
class Raw:
    """Raw data: ``quotes-AAPL``, ``trades-AAPL``..."""

    kind: str
    symbol: str


@toplevel
class Bars:
    """Derived data: ``AAPL-5min``..."""

    symbol: str
    freq: str


class Cursor:
    """Where the feature loop stopped; persisted by the StatefulLoop."""

    def __init__(self) -> None:
        self.next_day = FIRST_DAY


def synthetic_day(symbol: str, day: pd.Timestamp, n_quotes: int) -> dict[str, pd.DataFrame]:
    """One session (09:30-16:00) of quotes and trades (a tenth as many) of a symbol."""
    rng = np.random.default_rng([SYMBOLS.index(symbol), day.day_of_year])
    session = np.int64(6.5 * 3600 * 1e9)
    open_ns = (day + pd.Timedelta("9h30min")).value

    def times(n: int) -> np.ndarray:
        return (open_ns + np.sort(rng.integers(0, session, n))).astype("datetime64[ns]")

    base = 100.0 * (1 + SYMBOLS.index(symbol))
    mid = base * np.exp(np.cumsum(rng.normal(0, 2e-5, n_quotes)))
    spread = base * 1e-4 * rng.integers(1, 5, n_quotes)
    quotes = pd.DataFrame({"ts": times(n_quotes), "bid": mid - spread / 2, "ask": mid + spread / 2})
    n_trades = n_quotes // 10
    at = rng.integers(0, n_quotes, n_trades)
    trades = pd.DataFrame(
        {
            "ts": times(n_trades),
            "px": np.round(mid[np.sort(at)] + rng.normal(0, spread.mean(), n_trades), 4),
            "qty": rng.integers(1, 20, n_trades) * 100,
        }
    )
    return {"quotes": quotes, "trades": trades}


def ingest(raw: Store, days: pd.DatetimeIndex, n_quotes: int) -> None:
    for day in days:
        for symbol in SYMBOLS:
            for kind, df in synthetic_day(symbol, day, n_quotes).items():
                raw[Raw(kind, symbol)].write(
                    ordered_on="ts", df=df, row_group_target_size="1D", duplicates_on="ts"
                )


BAR_AGGS = {
    "volume": ("qty", "sum"),
    "buy_volume": ("buy_qty", "sum"),
    "n_trades": ("qty", "count"),
    "mean_spread": ("spread", "mean"),
    "mid_move": ("mid_move", "sum"),
    "vwap": ("px", "wmean", "qty"),
}


def five_minute_bars(
    chunk: dict, merger: AsofMerger, bars: SegmentedAggregator, last: bool
) -> dict[Bars, pd.DataFrame]:
    """Joins quotes onto the trades of every symbol and aggregates 5-minute bars."""
    trades = [chunk[Raw("trades", s)].assign(sym=i) for i, s in enumerate(SYMBOLS)]
    trades = pd.concat(trades, ignore_index=True).sort_values("ts", kind="stable")
    quotes = [[chunk[Raw("quotes", s)]] for s in SYMBOLS]
    # Row i reads group trades.sym[i]: the quotes of its own symbol. With
    # n_prev=1 we get the quote in force (bid_0/ask_0) and the one before it.
    joined = merger.merge(
        trades["ts"].to_numpy(),
        df_groups=quotes,
        combinations=trades["sym"].to_numpy().reshape(-1, 1),
    )
    mid = (joined["bid_0"] + joined["ask_0"]) / 2
    prev_mid = (joined["bid_1"] + joined["ask_1"]) / 2
    px, qty = trades["px"].to_numpy(), trades["qty"].to_numpy()
    enriched = pd.DataFrame(
        {
            "ts": joined["ts"],
            "sym": trades["sym"].to_numpy(),
            "px": px,
            "qty": qty,
            "buy_qty": np.where(px >= mid, qty, 0),
            "spread": joined["ask_0"] - joined["bid_0"],
            "mid_move": mid - prev_mid,
        }
    )
    # Bars still open at the end of the chunk stay in the aggregator's state
    # (persisted with the loop) and come out with the next chunk.
    done = bars.agg(enriched, final=last)
    return {
        Bars(s, "5min"): done[done["sym"] == i].drop(columns="sym").reset_index(drop=True)
        for i, s in enumerate(SYMBOLS)
    }


def daily_chunks(raw: Store, start: pd.Timestamp, until: pd.Timestamp):
    """``(day, {key: frame})`` for each day in ``[start, until)`` holding trades.

    ``iter_intersections`` reads the eight datasets in sync; its chunks end
    where any dataset's row group begins, so a day comes in several chunks,
    gathered here into one per day (the loop's cursor counts days).
    """
    keys = [Raw(kind, s) for kind in ("trades", "quotes") for s in SYMBOLS]
    for day in pd.date_range(start, until, freq="D", inclusive="left"):
        parts: dict[Raw, list[pd.DataFrame]] = {key: [] for key in keys}
        for chunk in raw.iter_intersections(keys, start=day, end_excl=day + pd.Timedelta("1D")):
            for key, df in chunk.items():
                parts[key].append(df)
        if all(parts.values()):
            yield day, {key: pd.concat(dfs, ignore_index=True) for key, dfs in parts.items()}


def build_features(raw: Store, features: Store, state: Path, until: pd.Timestamp) -> int:
    """Processes the raw days in ``[cursor, until)``; returns how many were done."""
    loop = StatefulLoop(state, default_memory_limit_mb=2.0)
    cursor = loop.bind_object_state(Cursor(), state=["next_day"], name="cursor")
    merger = loop.bind_object_state(
        AsofMerger("ts", n_dfs_per_group=1, n_prev=[1], allow_exact_matches=[True]),
        state=["carry"],
        name="quotes_on_trades",
    )
    bars = loop.bind_object_state(
        SegmentedAggregator("ts", by="sym", bins="5min", aggs=BAR_AGGS, empty="drop"),
        state=["state"],
        name="bars",
    )
    days = 0
    for item_ctx in loop.iterate(daily_chunks(raw, cursor.next_day, until)):
        with item_ctx as (day, chunk):
            days += 1
            cursor.next_day = day + pd.Timedelta("1D")
            # Bars are buffered in memory and written in batches (and always
            # after the last day), so the store sees few, large writes.
            last = loop.is_last_iteration
            batch = loop.buffer(five_minute_bars(chunk, merger, bars, last))
            for key, bars in batch.items():
                features[key].write(ordered_on="ts", df=bars, row_group_target_size="1D")
    return days


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="where to write (default: a temp dir)")
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--quotes-per-day", type=int, default=200_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        run(args.dir or Path(tmp), args.days, args.quotes_per_day)


def run(base: Path, n_days: int, n_quotes: int) -> None:
    days = pd.bdate_range(FIRST_DAY, periods=n_days)
    first, later = days[: max(1, n_days // 2)], days[max(1, n_days // 2) :]
    raw, features = Store(base / "raw", Raw), Store(base / "features", Bars)
    end = days[-1] + pd.Timedelta("1D")

    t0 = time.perf_counter()
    ingest(raw, first, n_quotes)
    n_rows = sum(len(raw[k]) and raw[k].row_group_stats["n_rows"].sum() for k in raw)
    print(
        f"1. ingested {len(first)} days x {len(SYMBOLS)} symbols: {n_rows:,} rows in "
        f"{len(raw)} datasets ({time.perf_counter() - t0:.2f} s)"
    )

    t0 = time.perf_counter()
    done = build_features(raw, features, base / "features.state", until=end)
    print(
        f"2. feature loop, run 1: {done} days -> 5-minute bars with quotes joined as of "
        f"each trade ({time.perf_counter() - t0:.2f} s)"
    )

    t0 = time.perf_counter()
    ingest(raw, later, n_quotes)
    done = build_features(raw, features, base / "features.state", until=end)
    print(
        f"3. {len(later)} more days arrived; run 2 resumed from the saved state and "
        f"processed {done} days ({time.perf_counter() - t0:.2f} s)"
    )

    t0 = time.perf_counter()
    check = Store(base / "check", Bars)
    build_features(raw, check, base / "check.state", until=end)
    for key in features:
        resumed, one_pass = features[key].to_pandas(), check[key].to_pandas()
        pd.testing.assert_frame_equal(resumed, one_pass)
    print(
        f"4. resumed result == one pass over all days, for every symbol "
        f"({time.perf_counter() - t0:.2f} s)"
    )

    key = Bars("NVDA", "5min")
    with features[key] as ds:
        bars = ds.to_pandas()
        print(f"5. {key}: {len(bars):,} bars in {len(ds)} row groups (one per day)")
    print(bars.head(3).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for kind, store in (("raw", raw), ("features", features)):
        print(f"   {kind}: {', '.join(map(str, store))}")


if __name__ == "__main__":
    main()
