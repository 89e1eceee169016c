"""oups.dask against dask's own Parquet reader, on a LocalCluster of 2
worker processes (one thread each) on this machine.

Workloads:
- graph: building the collection of a 1,000-row-group dataset, against
  ``dd.read_parquet(..., calculate_divisions=True)`` of the same files (which
  reads every footer to learn the divisions);
- read: a full read of ``--rows`` rows (10M) into the client, against
  ``dd.read_parquet`` of the same directory;
- write: ``oups.dask.write`` of ``--rows`` rows held by the workers (a
  persisted frame made on the workers, in 1M-row partitions and in 8) into a
  new dataset, against ``oups.write`` of the same rows from one process's
  memory.

Medians of ``--repeat`` runs after a warm-up; the ratios are medians of the
ratios of runs taken in turn.

    python bench/dask.py [--rows 10000000] [--repeat 5] [--steps graph,read,write]
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file's name shadows the dask package while its directory leads the
# path (here and in the workers the cluster spawns): it goes to the end.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]

import argparse  # noqa: E402
import tempfile  # noqa: E402

import dask.dataframe as dd  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from dask.distributed import Client, LocalCluster  # noqa: E402
from timing import timed_pair  # noqa: E402

import oups  # noqa: E402
import oups.dask  # noqa: E402
from oups import OrderedParquetDataset  # noqa: E402


def make(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "ts": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(np.sort(rng.integers(0, 30 * 86_400 * 10**9, n)), unit="ns"),
            "px": 100 + rng.standard_normal(n).cumsum() * 0.01,
            "qty": rng.integers(1, 500, n),
            "side": rng.integers(0, 2, n).astype(np.int8),
        }
    )


def dataset(root: Path, name: str, n: int, row_groups: int) -> OrderedParquetDataset:
    ds = OrderedParquetDataset(root / name, ordered_on="ts")
    ds.write(df=make(n), row_group_target_size=-(-n // row_groups))
    return ds


def graph(args, root: Path) -> None:
    ds = dataset(root, "graph", 1_000_000, 1_000)
    print(f"Building the graph of a {len(ds):,}-row-group dataset")

    def ours():
        return oups.dask.read(ds)

    def theirs():
        return dd.read_parquet(ds.dirpath, calculate_divisions=True, index="ts")

    assert ours().divisions == theirs().divisions
    a, b, ratio = timed_pair(ours, theirs, args.repeat)
    print(f"  oups.dask.read          {a * 1000:8.1f} ms  (target <= 50 ms)")
    print(f"  dd.read_parquet         {b * 1000:8.1f} ms  (calculate_divisions=True)")
    print(f"  dd.read_parquet / oups  {ratio:8.1f} x")


def read(args, root: Path, client: Client) -> None:
    ds = dataset(root, "read", args.rows, max(1, args.rows // 1_000_000))
    print(f"Full read of {args.rows:,} rows in {len(ds)} row groups into the client")

    def ours():
        return oups.dask.read(ds).compute()

    def theirs():
        return dd.read_parquet(ds.dirpath, index="ts", calculate_divisions=True).compute()

    pd.testing.assert_frame_equal(ours(), theirs(), check_freq=False)
    a, b, ratio = timed_pair(ours, theirs, args.repeat)
    print(f"  oups.dask.read          {a * 1000:8.0f} ms")
    print(f"  dd.read_parquet         {b * 1000:8.0f} ms")
    print(f"  oups / dd.read_parquet  {1 / ratio:8.2f} x time  (target <= 1)")


def part(i: int, n: int, parts: int) -> pd.DataFrame:
    """Partition ``i`` of ``parts`` of a sorted frame of ``n`` rows (made where it runs)."""
    rng = np.random.default_rng(i)
    size = n // parts + (i < n % parts)
    span = 30 * 86_400 * 10**9 // parts
    ts = i * span + np.sort(rng.integers(0, span, size))
    return pd.DataFrame(
        {
            "px": 100 + rng.standard_normal(size).cumsum() * 0.01,
            "qty": rng.integers(1, 500, size),
            "side": rng.integers(0, 2, size).astype(np.int8),
        },
        index=pd.DatetimeIndex(pd.Timestamp("2024-01-01") + pd.to_timedelta(ts), name="ts"),
    )


def write(args, root: Path, client: Client) -> None:
    print(f"Write of {args.rows:,} rows into a new dataset (row groups of 1M rows)")
    runs = iter(range(10**6))
    # 1M-row partitions give the layout of one write; 8 partitions of 1.25M
    # each end with a short row group (16 files instead of 10).
    for parts in (max(1, args.rows // 1_000_000), 8):
        span = 30 * 86_400 * 10**9 // parts
        divisions = [
            pd.Timestamp("2024-01-01") + pd.Timedelta(i * span, "ns") for i in range(parts + 1)
        ]
        ddf = client.persist(
            dd.from_map(part, range(parts), args=(args.rows, parts), divisions=divisions)
        )
        df = pd.concat([part(i, args.rows, parts) for i in range(parts)])

        def ours(ddf=ddf):
            path = root / f"dask-{next(runs)}"
            oups.dask.write(ddf, path, ordered_on="ts", row_group_target_size=1_000_000)
            return path

        def theirs(df=df):
            path = root / f"plain-{next(runs)}"
            oups.write(path, ordered_on="ts", df=df, row_group_target_size=1_000_000)
            return path

        got, expected = ours(), theirs()
        pd.testing.assert_frame_equal(
            OrderedParquetDataset(got).to_pandas(), OrderedParquetDataset(expected).to_pandas()
        )
        a, b, ratio = timed_pair(ours, theirs, args.repeat)
        files, single = len(OrderedParquetDataset(got)), len(OrderedParquetDataset(expected))
        print(f"  {parts} partitions ({files} files; one write: {single})")
        print(f"    oups.dask.write (2 workers) {a * 1000:6.0f} ms")
        print(f"    oups.write (one process)    {b * 1000:6.0f} ms")
        print(f"    dask / one process          {1 / ratio:6.2f} x time  (target <= 1)")
        del ddf


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--steps", default="graph,read,write")
    args = ap.parse_args()
    steps = args.steps.split(",")
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        root = Path(tmp)
        if "graph" in steps:
            graph(args, root)
        if "read" in steps:
            read(args, root, client)
        if "write" in steps:
            write(args, root, client)


if __name__ == "__main__":
    main()
