"""Key discovery of a store on object storage: 10,000 datasets on the local
S3 server (moto in server mode), found by ``Store(url, Key).keys``.

Each dataset is laid out as a written one is (its pointer ``<name>_opdmd``,
a data file under ``<name>/`` and a record under ``.<name>.oups/``), created
directly with boto3 so that the setup stays quick. Two key layouts: one
level (``sym-n``, 10,000 names in one prefix) and two levels (100 symbols x
100 days, a ``@sublevel`` key, so that discovery descends). Reports the
median time of ``--repeat`` discoveries and the requests the server saw.

    python bench/store_discovery.py [--datasets 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from object_storage import BUCKET, KEYS, Server  # noqa: E402


def fill(server: Server, prefix: str, names: list[str]) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=KEYS["access"],
        aws_secret_access_key=KEYS["secret"],
        region_name=KEYS["region"],
    )

    def put(name: str) -> None:
        parent, _, leaf = name.rpartition("/")
        base = f"{prefix}/{parent}/" if parent else f"{prefix}/"
        for key in (
            f"{base}{leaf}_opdmd",
            f"{base}{leaf}/file_0000000000_0000000000000000.parquet",
            f"{base}.{leaf}.oups/versions/v_00000000000000000001",
        ):
            client.put_object(Bucket=BUCKET, Key=key, Body=b"")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from oups import Store, sublevel, toplevel

    @toplevel
    class Flat:
        sym: str
        n: int

    @sublevel
    class Day:
        day: int

    @toplevel
    class Sym:
        sym: str
        day: Day

    n = args.datasets
    side = max(1, int(round(n**0.5)))
    layouts = {
        "one level": (Flat, [f"s-{i}" for i in range(n)]),
        "two levels": (Sym, [f"s{i}/{j}" for i in range(side) for j in range(n // side)]),
    }
    server = Server()
    options = {
        "aws_endpoint_url": server.endpoint,
        "aws_access_key_id": KEYS["access"],
        "aws_secret_access_key": KEYS["secret"],
        "aws_region": KEYS["region"],
    }
    try:
        print(f"{n:,} datasets; medians of {args.repeat}")
        print("| layout | keys found | seconds | requests |")
        print("|---|---|---|---|")
        for label, (key, names) in layouts.items():
            prefix = label.replace(" ", "-")
            fill(server, prefix, names)
            times, found, requests = [], 0, 0
            for _ in range(args.repeat):
                before = server.requests()
                t = time.perf_counter()
                found = len(Store(f"s3://{BUCKET}/{prefix}", key, storage_options=options).keys)
                times.append(time.perf_counter() - t)
                requests = server.requests() - before
            print(f"| {label} | {found:,} | {statistics.median(times):.3f} | {requests} |")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
