"""Command line.

``python -m oups demo [DIR]`` runs an end-to-end example;
``python -m oups info PATH`` summarises a dataset or every dataset under a directory.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _ticks(start: str, periods: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.Timestamp(start) + pd.to_timedelta(np.sort(rng.integers(0, 86_400 * 10**9, periods)))
    ticks: pd.DataFrame = pd.DataFrame(
        {
            "ts": ts,
            "price": 100 + rng.standard_normal(periods).cumsum() * 0.01,
            "size": rng.integers(1, 500, periods),
        }
    )
    return ticks


def demo(base: Path) -> None:
    """Write, update and read an ordered dataset, printing each step."""
    from oups import OrderedParquetDataset, write

    path = base / "ticks"
    print(f"dataset: {path}")
    t0 = time.perf_counter()
    first = pd.concat([_ticks("2024-01-01", 200_000, 1), _ticks("2024-01-02", 200_000, 2)])
    write(
        path,
        ordered_on="ts",
        df=first,
        row_group_target_size="1D",
        key_value_metadata={"source": "demo", "version": 1},
    )
    print(
        f"1. wrote {len(first):,} ticks of 2 days, one row group per day "
        f"({time.perf_counter() - t0:.3f} s)"
    )

    t0 = time.perf_counter()
    day3 = _ticks("2024-01-03", 200_000, 3)
    bounds = np.linspace(0, len(day3), 11).astype(int)
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        chunk = day3.iloc[lo:hi]
        write(path, ordered_on="ts", df=chunk, row_group_target_size="1D", max_n_off_target_rgs=1)
    print(
        f"2. appended day 3 in 10 chunks, coalesced into one row group "
        f"({time.perf_counter() - t0:.3f} s)"
    )

    t0 = time.perf_counter()
    corrected = first.iloc[1000:1010].copy()
    corrected["price"] = -1.0
    write(
        path,
        ordered_on="ts",
        df=corrected,
        row_group_target_size="1D",
        duplicates_on="ts",
        key_value_metadata={"version": 2, "corrected": True},
    )
    print(
        f"3. corrected 10 ticks of day 1 in place (upsert on 'ts'); only day 1 was "
        f"rewritten ({time.perf_counter() - t0:.3f} s)"
    )

    t0 = time.perf_counter()
    with OrderedParquetDataset(path) as ds:
        df = ds.to_pandas()
        assert df is not None
        stats = ds.row_group_stats
        kvm = ds.key_value_metadata
    print(
        f"4. read back {len(df):,} rows ({time.perf_counter() - t0:.3f} s); "
        f"{int((df['price'] == -1.0).sum())} corrected rows; sorted: "
        f"{df['ts'].is_monotonic_increasing}"
    )
    print("   row groups:")
    for row in stats.itertuples():
        print(
            f"     file {row.file_ids:>10}  {row.n_rows:>7,} rows  "
            f"{row.ordered_on_mins} .. {row.ordered_on_maxs}"
        )
    print(f"   key-value metadata: {kvm}")
    assert len(df) == 600_000 and len(stats) == 3 and df["ts"].is_monotonic_increasing
    _loop_demo(base, path, df)


def _minute_bars(chunk: pd.DataFrame, *, totals: dict[str, Any]) -> pd.DataFrame:
    """1-minute bars with a VWAP running across chunks (``totals`` is the state)."""
    notional = chunk["price"] * chunk["size"]
    bars = (
        chunk.assign(notional=notional)
        .resample("1min", on="ts")
        .agg({"price": "last", "size": "sum", "notional": "sum"})
        .dropna()
        .reset_index()
    )
    cum_notional = bars["notional"].cumsum() + totals["notional"]
    cum_size = bars["size"].cumsum() + totals["size"]
    totals["notional"] = float(cum_notional.iloc[-1])
    totals["size"] = int(cum_size.iloc[-1])
    out: pd.DataFrame = bars.assign(vwap=cum_notional / cum_size).drop(columns="notional")
    return out


def _loop_demo(base: Path, path: Path, ticks: pd.DataFrame) -> None:
    """Process row groups in a StatefulLoop, stop, resume, and check the result."""
    from oups import OrderedParquetDataset, StatefulLoop, write

    t0 = time.perf_counter()
    bars_path = base / "bars"
    for run, row_groups in ((1, [0, 1]), (2, [2])):
        loop = StatefulLoop(base / "bars.state", default_memory_limit_mb=0.05)
        step = loop.bind_function_state(
            _minute_bars, state={"totals": {"notional": 0.0, "size": 0}}
        )
        with OrderedParquetDataset(path) as ds:
            for item_ctx in loop.iterate(row_groups):
                with item_ctx as i:
                    bars = step(ds[i].to_pandas())
                    flushed = loop.buffer({"bars": bars})
                    write(
                        bars_path, ordered_on="ts", df=flushed["bars"], row_group_target_size="1D"
                    )
        print(
            f"5.{run} StatefulLoop run {run}: row groups {row_groups} -> 1-minute bars, "
            f"running VWAP state {step.keywords['totals']['size']:,} lots"
        )
    with OrderedParquetDataset(bars_path) as ds:
        bars = ds.to_pandas()
    assert bars is not None
    expected = (ticks["price"] * ticks["size"]).sum() / ticks["size"].sum()
    print(
        f"   {len(bars):,} bars written; resumed VWAP {bars['vwap'].iloc[-1]:.6f} == "
        f"one-pass VWAP {expected:.6f} ({time.perf_counter() - t0:.3f} s)"
    )
    assert abs(bars["vwap"].iloc[-1] - expected) < 1e-9 and bars["ts"].is_monotonic_increasing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m oups")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="run an end-to-end example")
    p_demo.add_argument("dir", nargs="?", help="where to write (default: a temp dir)")
    p_info = sub.add_parser(
        "info", help="summarise a dataset, or every dataset under a directory (a store)"
    )
    p_info.add_argument(
        "path", help="a dataset directory or a store's base directory, or their URL (s3://...)"
    )
    p_info.add_argument(
        "--lock-timeout",
        type=float,
        default=10.0,
        help="seconds to wait for each dataset's lock (default: 10)",
    )
    args = parser.parse_args(argv)
    if args.command == "info":
        from oups._info import info

        try:
            lines = info(args.path, lock_timeout=args.lock_timeout)
        except (FileNotFoundError, TimeoutError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print("\n".join(lines))
        return 0
    if args.command == "demo":
        if args.dir:
            demo(Path(args.dir))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                demo(Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
