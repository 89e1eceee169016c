"""Object-storage benchmark: oups vs ArcticDB vs delta-rs on one local S3
server (moto in server mode, threaded), same data, same run.

1M rows x (timestamp + 4 float64 + 1 int64) by default, row groups of 100,000
rows. Steps: bulk write; 20 appends of 10,000 rows (oups:
``max_n_off_target_rgs=2``); a 10% upsert in the middle (oups:
``duplicates_on`` the timestamp; ArcticDB: ``update``; delta-rs: ``merge`` on
the timestamp); full read to pandas; a 1% range read from the middle (oups:
``to_pandas(start=, end_excl=)`` on a fresh object, so the open is counted;
ArcticDB: ``date_range``; delta-rs: ``filters``). Each step reports its median
time over ``--repeat`` runs and the S3 requests the server saw during it.

    python bench/object_storage.py [--rows 1000000] [--repeat 3] [--libs oups,arcticdb,deltalake]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
START_NS = 1_704_067_200 * 10**9
BUCKET = "oups-bench"
KEYS = {"access": "testing", "secret": "testing", "region": "us-east-1"}


def make_frame(n: int, start_row: int = 0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = START_NS + (start_row + np.arange(n, dtype=np.int64)) * 1_000_000
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


class Server:
    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "s3_server.py"), str(self.port), "--threaded"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.endpoint = f"http://127.0.0.1:{self.port}"
        for _ in range(300):
            try:
                self.requests()
                break
            except OSError:
                time.sleep(0.1)
        import boto3

        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=KEYS["access"],
            aws_secret_access_key=KEYS["secret"],
            region_name=KEYS["region"],
        ).create_bucket(Bucket=BUCKET)

    def requests(self) -> int:
        with urllib.request.urlopen(self.endpoint + "/__requests__", timeout=5) as r:
            return int(r.read())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def oups_steps(server: Server, prefix: str, rows: int, target: int) -> dict[str, Callable[[], Any]]:
    from oups import OrderedParquetDataset, write

    options = {
        "aws_endpoint_url": server.endpoint,
        "aws_access_key_id": KEYS["access"],
        "aws_secret_access_key": KEYS["secret"],
        "aws_region": KEYS["region"],
    }
    url = f"s3://{BUCKET}/{prefix}/ticks"
    base, appended = (
        make_frame(rows),
        [make_frame(rows // 100, rows + i * rows // 100, i + 1) for i in range(20)],
    )
    upsert = make_frame(rows // 10, rows * 45 // 100, 99)
    lo, hi = _range(rows)

    def kw(**more: Any) -> dict[str, Any]:
        return {
            "ordered_on": "ts",
            "row_group_target_size": target,
            "storage_options": options,
            **more,
        }

    return {
        "bulk write": lambda: write(url, df=base, **kw()),
        "20 appends": lambda: [write(url, df=a, **kw(max_n_off_target_rgs=2)) for a in appended],
        "10% upsert": lambda: write(url, df=upsert, **kw(duplicates_on="ts")),
        "full read": lambda: OrderedParquetDataset(url, storage_options=options).to_pandas(),
        "1% range read": lambda: OrderedParquetDataset(url, storage_options=options).to_pandas(
            start=lo, end_excl=hi
        ),
    }


def arctic_steps(
    server: Server, prefix: str, rows: int, target: int
) -> dict[str, Callable[[], Any]]:
    import arcticdb

    uri = (
        f"s3://127.0.0.1:{BUCKET}?port={server.port}&access={KEYS['access']}"
        f"&secret={KEYS['secret']}&region={KEYS['region']}&path_prefix={prefix}"
    )
    ac = arcticdb.Arctic(uri)
    lib = ac.get_library("bench", create_if_missing=True)
    base = make_frame(rows).set_index("ts")
    appended = [
        make_frame(rows // 100, rows + i * rows // 100, i + 1).set_index("ts") for i in range(20)
    ]
    upsert = make_frame(rows // 10, rows * 45 // 100, 99).set_index("ts")
    lo, hi = _range(rows)
    return {
        "bulk write": lambda: lib.write("ticks", base),
        "20 appends": lambda: [lib.append("ticks", a) for a in appended],
        "10% upsert": lambda: lib.update("ticks", upsert),
        "full read": lambda: arcticdb.Arctic(uri).get_library("bench").read("ticks").data,
        "1% range read": lambda: (
            arcticdb.Arctic(uri)
            .get_library("bench")
            .read("ticks", date_range=(lo, hi - pd.Timedelta(1, "ns")))
            .data
        ),
    }


def delta_steps(
    server: Server, prefix: str, rows: int, target: int
) -> dict[str, Callable[[], Any]]:
    import deltalake

    options = {
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_ACCESS_KEY_ID": KEYS["access"],
        "AWS_SECRET_ACCESS_KEY": KEYS["secret"],
        "AWS_REGION": KEYS["region"],
        "AWS_ALLOW_HTTP": "true",
        "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
    }
    url = f"s3://{BUCKET}/{prefix}/ticks"
    base = make_frame(rows)
    appended = [make_frame(rows // 100, rows + i * rows // 100, i + 1) for i in range(20)]
    upsert = make_frame(rows // 10, rows * 45 // 100, 99)
    lo, hi = _range(rows)

    def merge() -> None:
        table = deltalake.DeltaTable(url, storage_options=options)
        (
            table.merge(upsert, predicate="t.ts = s.ts", source_alias="s", target_alias="t")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute()
        )

    def write(df: pd.DataFrame, mode: str) -> None:
        deltalake.write_deltalake(url, df, mode=mode, storage_options=options)

    return {
        "bulk write": lambda: write(base, "overwrite"),
        "20 appends": lambda: [write(a, "append") for a in appended],
        "10% upsert": merge,
        "full read": lambda: deltalake.DeltaTable(url, storage_options=options).to_pandas(),
        "1% range read": lambda: deltalake.DeltaTable(url, storage_options=options).to_pandas(
            filters=[("ts", ">=", lo), ("ts", "<", hi)]
        ),
    }


def _range(rows: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The middle 1% of the rows."""
    first = rows // 2
    lo = pd.Timestamp(START_NS + first * 1_000_000)
    return lo, lo + pd.Timedelta(rows // 100, "ms")


STEPS = ["bulk write", "20 appends", "10% upsert", "full read", "1% range read"]
LIBS = {"oups": oups_steps, "arcticdb": arctic_steps, "deltalake": delta_steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--target", type=int, default=100_000, help="rows per row group")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--libs", default="oups,arcticdb,deltalake")
    args = parser.parse_args()
    libs = args.libs.split(",")
    server = Server()
    times: dict[tuple[str, str], list[float]] = {}
    requests: dict[tuple[str, str], list[int]] = {}
    try:
        for r in range(args.repeat):
            for lib in libs:
                steps = LIBS[lib](server, f"{lib}-{r}", args.rows, args.target)
                for step, run in steps.items():
                    if lib == "oups" and "read" in step:
                        # Read as another process would: without the
                        # files this one wrote.
                        from oups._oups import _forget_objects

                        _forget_objects()
                    before = server.requests()
                    t0 = time.perf_counter()
                    run()
                    times.setdefault((lib, step), []).append(time.perf_counter() - t0)
                    requests.setdefault((lib, step), []).append(server.requests() - before)
    finally:
        server.stop()
    steps = STEPS
    print(f"{args.rows:,} rows, row groups of {args.target:,}; medians of {args.repeat}")
    header = "| step | " + " | ".join(f"{lib} s (requests)" for lib in libs)
    peers = [lib for lib in libs if lib != "oups"]
    if "oups" in libs and peers:
        header += " | " + " | ".join(f"oups / {lib}" for lib in peers)
    print(header + " |")
    print("|" + "---|" * (header.count("|")))
    for step in steps:
        med = {lib: statistics.median(times[(lib, step)]) for lib in libs}
        req = {lib: int(statistics.median(requests[(lib, step)])) for lib in libs}
        cells = [f"{med[lib]:.3f} ({req[lib]})" for lib in libs]
        if "oups" in libs:
            cells += [f"{med['oups'] / med[lib]:.2f}" for lib in peers]
        print(f"| {step} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
