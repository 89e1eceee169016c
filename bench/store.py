"""Store benchmark: synchronised iteration, range reads and key discovery.

10 datasets x 1,000,000 rows (timestamp + 4 float64 + 1 int64), timestamps
offset per dataset so that row-group bounds interleave, 250,000-row row groups.
The same data is stored with oups, as Parquet files for pyarrow, and in an
ArcticDB (LMDB) library. Timed, with medians of ``--repeat`` runs after one
warm-up run (all reads from the page cache):

- sync:   oups ``iter_intersections`` over the 10 datasets, every chunk to
          pandas; peers read the 10 datasets fully (pyarrow ``read_table``,
          ArcticDB ``read(date_range=...)``), which is less work than chunking.
- range:  1% of one dataset (10,000 rows in the middle) to pandas.
- keys:   discovering the keys of a store of 10,000 datasets.

    python bench/store.py [--rows 1000000] [--datasets 10] [--repeat 5]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from timing import timed

from dataset import make_frame  # same columns as the dataset benchmark

RG = 250_000
START_NS = 1_704_067_200 * 10**9
STEP_NS = 1_000_000  # one row per ms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--datasets", type=int, default=10)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-arctic", action="store_true")
    args = parser.parse_args()

    from oups import Store, toplevel

    @toplevel
    class Sym:
        name: str

    n, n_ds = args.rows, args.datasets
    work = Path(tempfile.mkdtemp(prefix="oups-bench-store-"))
    results: dict[str, dict[str, float]] = {}
    try:
        store = Store(work / "oups", Sym)
        keys = [Sym(f"s{i:02d}") for i in range(n_ds)]
        pq_dir = work / "pyarrow"
        pq_dir.mkdir()
        frames = {}
        for i, key in enumerate(keys):
            # Offsets that do not divide the row-group span: bounds interleave.
            df = make_frame(n, start_ns=START_NS + i * 37_000 * STEP_NS, seed=i)
            frames[key] = df
            store[key].write(ordered_on="ts", df=df, row_group_target_size=RG)
            pq.write_table(
                pa.Table.from_pandas(df, preserve_index=False),
                pq_dir / f"{key.name}.parquet",
                row_group_size=RG,
                compression="none",
            )
        lo = START_NS + (n // 2) * STEP_NS
        hi = lo + (n // 100) * STEP_NS
        lo_ts, hi_ts = pd.Timestamp(lo), pd.Timestamp(hi)

        def oups_sync() -> None:
            rows = 0
            for chunk in store.iter_intersections(keys):
                rows += sum(len(df) for df in chunk.values())
            assert rows == n * n_ds, rows

        def pyarrow_full() -> None:
            for key in keys:
                pq.read_table(pq_dir / f"{key.name}.parquet").to_pandas()

        def oups_range() -> None:
            df = store[keys[0]].to_pandas(start=lo_ts, end_excl=hi_ts)
            assert len(df) == n // 100

        def pyarrow_range() -> None:
            t = pq.read_table(
                pq_dir / f"{keys[0].name}.parquet",
                filters=[("ts", ">=", lo_ts), ("ts", "<", hi_ts)],
            )
            assert t.num_rows == n // 100
            t.to_pandas()

        results["sync"] = {"oups": timed(oups_sync, args.repeat)}
        results["sync"]["pyarrow"] = timed(pyarrow_full, args.repeat)
        results["range"] = {"oups": timed(oups_range, args.repeat * 4)}
        results["range"]["pyarrow"] = timed(pyarrow_range, args.repeat * 4)

        if not args.no_arctic:
            from arcticdb import Arctic

            ac = Arctic(f"lmdb://{work / 'arctic'}?map_size=8GB")
            lib = ac.get_library("bench", create_if_missing=True)
            for key, df in frames.items():
                lib.write(key.name, df.set_index("ts"))
            full = (pd.Timestamp(START_NS), pd.Timestamp(START_NS + 10 * n * STEP_NS))

            def arctic_full() -> None:
                rows = sum(len(lib.read(key.name, date_range=full).data) for key in keys)
                assert rows == n * n_ds, rows

            def arctic_range() -> None:
                # date_range is inclusive at both ends: stop one ns early.
                df = lib.read(keys[0].name, date_range=(lo_ts, hi_ts - pd.Timedelta(1))).data
                assert len(df) == n // 100

            results["sync"]["arcticdb"] = timed(arctic_full, args.repeat)
            results["range"]["arcticdb"] = timed(arctic_range, args.repeat * 4)
        del frames

        # Discovery: a store of many datasets (metadata files are what is found).
        many = work / "many"
        meta = next((work / "oups").glob("*_opdmd"))
        many.mkdir()
        for i in range(args.keys):
            shutil.copyfile(meta, many / f"k{i:06d}_opdmd")
        big = Store(many, Sym)

        def discover() -> None:
            assert len(big.keys) == args.keys

        results["keys"] = {"oups": timed(discover, args.repeat)}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{n_ds} datasets x {n:,} rows, row groups of {RG:,}; medians (s)")
    for step, row in results.items():
        cells = []
        for lib, t in row.items():
            ratio = "" if lib == "oups" else f" (oups/{lib} = {row['oups'] / t:.2f}x)"
            cells.append(f"{lib} {t * 1000:.1f} ms{ratio}")
        print(f"  {step:6s} " + " | ".join(cells))


if __name__ == "__main__":
    main()
