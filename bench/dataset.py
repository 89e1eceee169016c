"""Dataset benchmark: oups vs pyarrow vs ArcticDB (LMDB), same data, same run.

10M rows x (timestamp + 4 float64 + 1 int64), row groups of 1,000,000 rows.
Steps: bulk write; 100 chunked appends (max_n_off_target_rgs=2); a 10% upsert in
the middle (duplicates_on the timestamp); full read to pandas; a 1% range read
(100,000 rows from the middle, through ``Store.iter_intersections``); and a
synchronised read of 10 datasets of 1M rows (row groups of 250,000, staggered
timestamps; ArcticDB and pyarrow read each dataset whole). Each (library, step)
runs in a fresh subprocess so that its peak RSS is its own; the median of
``--repeat`` runs is printed, with ratios against the peers. "RSS MB" is the step's
peak resident set, "op MB" the timed operation's own peak above the resident set
when it started (the frame to write already built; mapped file pages a read hands
over count in both).

    python bench/dataset.py [--rows 10000000] [--repeat 3] [--compression lz4]
    python bench/dataset.py --steps sync --libs oups,arcticdb   # some steps only
    python bench/dataset.py --compare-compression     # file sizes and times per codec
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

TARGET = 1_000_000
N_APPENDS = 100
START_NS = 1_704_067_200 * 10**9
SYNC_DATASETS, SYNC_ROWS, SYNC_RG = 10, 1_000_000, 250_000


def make_frame(n: int, start_ns: int = 1_704_067_200 * 10**9, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = start_ns + np.arange(n, dtype=np.int64) * 1_000_000  # one row per ms
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(ts),
            "a": rng.standard_normal(n),
            "b": rng.standard_normal(n),
            "c": rng.standard_normal(n),
            "d": rng.standard_normal(n),
            "n": rng.integers(0, 1_000_000, n),
        }
    )


def upsert_frame(n: int) -> pd.DataFrame:
    """10% of the rows, in the middle, same timestamps, new values."""
    df = make_frame(n)
    lo, hi = int(n * 0.45), int(n * 0.55)
    up = df.iloc[lo:hi].copy()
    up["a"] = -1.0
    return up.reset_index(drop=True)


def range_bounds(n: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """1% of the rows, from the middle (one row per ms)."""
    lo = START_NS + (n // 2) * 1_000_000
    return pd.Timestamp(lo), pd.Timestamp(lo + (n // 100) * 1_000_000)


def sync_frames() -> list[pd.DataFrame]:
    # Offsets that do not divide the row-group span: the row-group bounds interleave.
    return [
        make_frame(SYNC_ROWS, start_ns=START_NS + i * 37_000 * 1_000_000, seed=i)
        for i in range(SYNC_DATASETS)
    ]


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# -- one step of one library, in a subprocess --------------------------------------

# The resident set when the timed operation started (set by `start_clock`).
_OP_START_MB = [0.0]


def _status_mb(key: str) -> float:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def start_clock() -> float:
    """Starts timing an operation: resets the peak resident set (Linux) and notes the
    resident set, so that the operation's own memory is its peak above it."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass
    _OP_START_MB[0] = _status_mb("VmRSS")
    return time.perf_counter()


def oups_step(step: str, work: Path, n: int, compression: str) -> float:
    from oups import OrderedParquetDataset, Store, toplevel, write

    @toplevel
    class Sym:
        name: str

    path = work / "oups" / "ds"
    kw: dict = dict(ordered_on="ts", row_group_target_size=TARGET, compression=compression)
    if step == "write":
        df = make_frame(n)
        t = start_clock()
        write(path, df=df, **kw)
        return time.perf_counter() - t
    if step == "append":
        chunks = np.array_split(make_frame(n), N_APPENDS)
        t = start_clock()
        for c in chunks:
            write(path.with_name("appended"), df=c, max_n_off_target_rgs=2, **kw)
        return time.perf_counter() - t
    if step == "upsert":
        up = upsert_frame(n)
        t = start_clock()
        write(path, df=up, duplicates_on="ts", **kw)
        return time.perf_counter() - t
    if step == "read":
        t = start_clock()
        with OrderedParquetDataset(path) as ds:
            df = ds.to_pandas()
        elapsed = time.perf_counter() - t
        assert len(df) == n, len(df)
        return elapsed
    if step == "range":
        lo, hi = range_bounds(n)
        store = Store(work / "oups", Sym)
        t = start_clock()
        rows = sum(len(c[Sym("ds")]) for c in store.iter_intersections([Sym("ds")], lo, 0, hi))
        elapsed = time.perf_counter() - t
        assert rows == n // 100, rows
        return elapsed
    if step == "sync":
        store = Store(work / "sync", Sym)
        keys = [Sym(f"s{i:02d}") for i in range(SYNC_DATASETS)]
        for key, df in zip(keys, sync_frames(), strict=True):
            store[key].write(ordered_on="ts", df=df, row_group_target_size=SYNC_RG)
        t = start_clock()
        rows = sum(len(df) for chunk in store.iter_intersections(keys) for df in chunk.values())
        elapsed = time.perf_counter() - t
        assert rows == SYNC_ROWS * SYNC_DATASETS, rows
        return elapsed
    raise ValueError(step)


def pyarrow_step(step: str, work: Path, n: int, compression: str) -> float:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = work / "pyarrow"
    path.mkdir(parents=True, exist_ok=True)
    codec = "none" if compression == "none" else compression.split("(")[0]
    if step == "write":
        df = make_frame(n)
        t = start_clock()
        pq.write_table(
            pa.Table.from_pandas(df, preserve_index=False),
            path / "all.parquet",
            row_group_size=TARGET,
            compression=codec,
        )
        return time.perf_counter() - t
    if step == "append":
        # pyarrow cannot append to a file: one file per chunk is the cheapest equivalent.
        chunks = np.array_split(make_frame(n), N_APPENDS)
        (path / "chunks").mkdir(exist_ok=True)
        t = start_clock()
        for i, c in enumerate(chunks):
            pq.write_table(
                pa.Table.from_pandas(c, preserve_index=False),
                path / "chunks" / f"part_{i:04d}.parquet",
                compression=codec,
            )
        return time.perf_counter() - t
    if step == "upsert":
        # Without an engine: read all, merge, rewrite all.
        up = upsert_frame(n)
        t = start_clock()
        df = pq.read_table(path / "all.parquet").to_pandas()
        merged = (
            pd.concat([df, up]).drop_duplicates("ts", keep="last").sort_values("ts", kind="stable")
        )
        pq.write_table(
            pa.Table.from_pandas(merged, preserve_index=False),
            path / "all.parquet",
            row_group_size=TARGET,
            compression=codec,
        )
        return time.perf_counter() - t
    if step == "read":
        t = start_clock()
        df = pq.read_table(path / "all.parquet").to_pandas()
        elapsed = time.perf_counter() - t
        assert len(df) == n
        return elapsed
    if step == "range":
        lo, hi = range_bounds(n)
        t = start_clock()
        table = pq.read_table(path / "all.parquet", filters=[("ts", ">=", lo), ("ts", "<", hi)])
        df = table.to_pandas()
        elapsed = time.perf_counter() - t
        assert len(df) == n // 100
        return elapsed
    if step == "sync":
        files = []
        for i, df in enumerate(sync_frames()):
            files.append(path / f"sync_{i}.parquet")
            pq.write_table(
                pa.Table.from_pandas(df, preserve_index=False), files[-1], row_group_size=SYNC_RG
            )
        t = start_clock()
        rows = sum(len(pq.read_table(f).to_pandas()) for f in files)
        elapsed = time.perf_counter() - t
        assert rows == SYNC_ROWS * SYNC_DATASETS
        return elapsed
    raise ValueError(step)


def arctic_step(step: str, work: Path, n: int, compression: str) -> float:
    import arcticdb as adb

    ac = adb.Arctic(f"lmdb://{work / 'arctic'}?map_size=20GB")
    lib = ac.get_library("bench", create_if_missing=True)
    if step == "write":
        df = make_frame(n).set_index("ts")
        t = start_clock()
        lib.write("ds", df)
        return time.perf_counter() - t
    if step == "append":
        chunks = np.array_split(make_frame(n).set_index("ts"), N_APPENDS)
        lib.delete("ds2") if lib.has_symbol("ds2") else None
        t = start_clock()
        lib.write("ds2", chunks[0])
        for c in chunks[1:]:
            lib.append("ds2", c)
        return time.perf_counter() - t
    if step == "upsert":
        up = upsert_frame(n).set_index("ts")
        t = start_clock()
        lib.update("ds", up)
        return time.perf_counter() - t
    if step == "read":
        t = start_clock()
        df = lib.read("ds").data
        elapsed = time.perf_counter() - t
        assert len(df) == n
        return elapsed
    if step == "range":
        lo, hi = range_bounds(n)
        t = start_clock()
        # date_range is inclusive at both ends: stop one ns early.
        df = lib.read("ds", date_range=(lo, hi - pd.Timedelta(1))).data
        elapsed = time.perf_counter() - t
        assert len(df) == n // 100
        return elapsed
    if step == "sync":
        names = [f"sync_{i}" for i in range(SYNC_DATASETS)]
        for name, df in zip(names, sync_frames(), strict=True):
            lib.write(name, df.set_index("ts"))
        t = start_clock()
        rows = sum(len(lib.read(name).data) for name in names)
        elapsed = time.perf_counter() - t
        assert rows == SYNC_ROWS * SYNC_DATASETS
        return elapsed
    raise ValueError(step)


# "oups-nofsync" is oups with OUPS_FSYNC=0: still atomic, not durable on power loss.
RUNNERS = {
    "oups": oups_step,
    "oups-nofsync": oups_step,
    "pyarrow": pyarrow_step,
    "arcticdb": arctic_step,
}
STEPS = ["write", "append", "upsert", "read", "range", "sync"]


def child(lib: str, step: str, work: str, n: int, compression: str) -> None:
    import pyarrow as pa

    # One-time library initialisation (pyarrow's pandas bridge, with the pandas
    # metadata path) is not the step's cost.
    pa.Table.from_pandas(pd.DataFrame({"x": [1.0]})).to_pandas()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    elapsed = RUNNERS[lib](step, Path(work), n, compression)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    op_mb = _status_mb("VmHWM") - _OP_START_MB[0]
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "peak_rss_mb": peak / 1024,
                "base_mb": base / 1024,
                "op_mb": op_mb,
            }
        )
    )


def run_child(lib: str, step: str, work: Path, n: int, compression: str) -> dict:
    env = {**os.environ, "OUPS_FSYNC": "0" if lib == "oups-nofsync" else "1"}
    out = subprocess.run(
        [sys.executable, __file__, "--child", lib, step, str(work), str(n), compression],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{lib}/{step} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench(libs: list[str], n: int, repeat: int, compression: str, steps: list[str]) -> dict:
    results: dict = {lib: {s: [] for s in steps} for lib in libs}
    for _ in range(repeat):
        for lib in libs:
            work = Path(tempfile.mkdtemp(prefix=f"oups-bench-{lib}-"))
            try:
                for step in steps:
                    results[lib][step].append(run_child(lib, step, work, n, compression))
                if lib.startswith("oups") and "write" in steps:
                    results[lib]["size"] = dir_size(work / "oups" / "ds")
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return results


def median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def report(results: dict, n: int, compression: str) -> None:
    libs = list(results)
    steps = [s for s in STEPS if s in results[libs[0]]]
    print(
        f"\n{n:,} rows x 6 columns, target {TARGET:,} rows/row group, oups compression "
        f"'{compression}', medians of {len(results[libs[0]][steps[0]])} runs\n"
    )
    print(
        f"{'step':<8}"
        + "".join(f"{lib + ' s':>16}{'RSS MB':>8}{'op MB':>7}" for lib in libs)
        + "".join(f"{'oups/' + lib:>16}" for lib in libs if not lib.startswith("oups"))
    )
    for step in steps:
        line = f"{step:<8}"
        for lib in libs:
            line += f"{median(results[lib][step], 'seconds'):>16.3f}"
            line += f"{median(results[lib][step], 'peak_rss_mb'):>8.0f}"
            line += f"{median(results[lib][step], 'op_mb'):>7.0f}"
        for lib in libs:
            if not lib.startswith("oups"):
                ratio = median(results["oups"][step], "seconds") / median(
                    results[lib][step], "seconds"
                )
                line += f"{ratio:>16.2f}"
        print(line)
    for lib in libs:
        if "size" in results[lib]:
            print(f"\n{lib} dataset size after the upsert: {results[lib]['size'] / 2**20:.0f} MiB")


def compare_compression(n: int, repeat: int) -> None:
    print(f"{'codec':<10}{'write s':>9}{'read s':>9}{'size MiB':>10}")
    for codec in ["none", "lz4", "snappy", "zstd"]:
        res = bench(["oups"], n, repeat, codec, STEPS)["oups"]
        print(
            f"{codec:<10}{median(res['write'], 'seconds'):>9.3f}"
            f"{median(res['read'], 'seconds'):>9.3f}{res['size'] / 2**20:>10.0f}"
        )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, lib, step, work, n, compression = sys.argv
        child(lib, step, work, int(n), compression)
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--compression", default="none")
    parser.add_argument("--libs", default="oups,oups-nofsync,pyarrow,arcticdb")
    parser.add_argument(
        "--steps",
        default=",".join(STEPS),
        help="a subset of the steps; upsert, read and range need the write step",
    )
    parser.add_argument("--compare-compression", action="store_true")
    args = parser.parse_args()
    if args.compare_compression:
        compare_compression(args.rows, args.repeat)
        return
    libs = [lib for lib in args.libs.split(",") if lib]
    steps = [s for s in STEPS if s in args.steps.split(",")]
    results = bench(libs, args.rows, args.repeat, args.compression, steps)
    report(results, args.rows, args.compression)
    print(f"\nmachine: {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
