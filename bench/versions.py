"""Versions: what opening costs as the history grows, and what readers cost a writer.

    python bench/versions.py [--repeat 50] [--steps open,writer] [--appends 200]

``open``: a dataset of 20 row groups whose history holds 10, 1,000 and 100,000
kept versions. The first 10 are real commits; the others are records written
straight into the history (the same record as the latest, renumbered, with
increasing commit times), as a dataset that keeps its history longer than the
default retention would hold them. Measured, as medians in microseconds: opening
the latest version (``OrderedParquetDataset(path)`` and ``len``), opening an old
version by number and by time, and listing the versions. The reference row opens
a format-1 dataset (the previous release's, without history).

``previous``: opening (and ``len``, and a full ``to_pandas``) a dataset of 10
versions, here and with another oups given by ``--previous`` (the ``python/``
directory of a checkout of the previous release with its extension built), each
on a dataset it wrote itself, alternating, in the same run.

``cpu-floor``: the same appends while 3 processes that only burn CPU run (no
oups): what sharing 2 cores with three busy processes costs the writer, the floor
under readers that never pause.

``pinned``: the writer with iterating readers, the writer on core 0 and the
readers on core 1 (Linux ``taskset``): what readers cost a writer when they do not
share its CPU.

``writer``: the wall time of ``--appends`` appends of 1,000 rows (fsync on, the
default), alone and while 3 reader processes list the store, read every dataset
and iterate it in sync, each pausing ``--reader-pause`` seconds between rounds. On
a 2-core machine readers that never pause take CPU from the writer: the writer's
slowdown is then the share of the cores it loses, not a wait (the writer uses
``lock_timeout=0`` in the test suite and never waits for a reader).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from timing import timed

from oups import OrderedParquetDataset, Store, toplevel, write

ROOT = Path(__file__).resolve().parent.parent


def frame(start: int, n: int) -> pd.DataFrame:
    t = np.arange(start, start + n)
    return pd.DataFrame({"t": t, "v": t * 0.5})


def build(path: Path, n_versions: int) -> None:
    for i in range(10):
        write(path, ordered_on="t", df=frame(i * 2000, 2000), row_group_target_size=1000)
    history = path.parent / f".{path.name}.oups" / "versions"
    head = path.with_name(path.name + "_opdmd").read_bytes()
    doc = json.loads(head.split(b"\n", 1)[1])
    t0 = doc["committed_at"]
    for v in range(11, n_versions + 1):
        doc["version"] = v
        doc["committed_at"] = t0 + v * 1_000_000
        data = json.dumps(doc, separators=(",", ":")).encode()
        record = f"OUPS-OPDMD 2 {zlib.crc32(data):08x} {len(data)}\n".encode() + data
        (history / f"v_{v:020d}").write_bytes(record)
    if n_versions > 10:
        os.link(history / f"v_{n_versions:020d}", history / "latest.tmp")
        os.replace(history / "latest.tmp", path.with_name(path.name + "_opdmd"))


def open_costs(repeat: int) -> None:
    work = Path(tempfile.mkdtemp())
    fixture = ROOT / "tests" / "fixtures" / "format1"
    shutil.copytree(fixture, work / "f1")
    f1 = work / "f1" / "ticks"
    us = 1e6
    print(f"{'kept versions':>14} {'latest':>8} {'version=':>9} {'as_of=':>8} {'versions()':>11}")
    t = timed(lambda: len(OrderedParquetDataset(f1)), repeat) * us
    print(f"{'format 1':>14} {t:8.0f} {'':>9} {'':>8} {'':>11}")
    for n in (10, 1_000, 100_000):
        path = work / f"ds{n}"
        build(path, n)
        mid = n // 2
        when = OrderedParquetDataset(path).versions().set_index("version")["committed_at"][mid]
        latest = timed(lambda p=path: len(OrderedParquetDataset(p)), repeat) * us
        old = timed(lambda p=path, m=mid: len(OrderedParquetDataset(p, version=m)), repeat) * us
        as_of = timed(lambda p=path, w=when: len(OrderedParquetDataset(p, as_of=w)), repeat) * us
        listing = timed(
            lambda p=path: len(OrderedParquetDataset(p).versions()), max(1, repeat // 10)
        )
        print(f"{n:>14,} {latest:8.0f} {old:9.0f} {as_of:8.0f} {listing * 1000:9.1f}ms")
    shutil.rmtree(work)


@toplevel
class Feed:
    name: str


READER = """
import sys, time
from pathlib import Path
from oups import Store, toplevel

@toplevel
class Feed:
    name: str

store, stop, iterate = Store(sys.argv[1], Feed), Path(sys.argv[2]), sys.argv[4] == "1"
rounds = 0
while not stop.exists():
    keys = list(store)
    for key in keys:
        store[key].to_pandas()
    if keys and iterate:
        for _ in store.iter_intersections(keys):
            pass
    rounds += 1
    time.sleep(float(sys.argv[3]))
print(rounds)
"""


def appends(base: Path, n: int) -> float:
    store = Store(base, Feed)
    start = time.perf_counter()
    for i in range(n):
        for name in ("a", "b"):
            store[Feed(name)].write(
                ordered_on="t",
                df=frame(i * 1000, 1000),
                row_group_target_size=20_000,
                max_n_off_target_rgs=2,
            )
    return time.perf_counter() - start


def writer_with_readers(
    n: int, pause: float, iterate: bool, repeat: int, pinned: bool = False
) -> None:
    """Medians of `repeat` runs, alone and with readers in turn (the device's
    speed drifts over a run). `pinned`: the writer on core 0, the readers on
    core 1 (Linux), so that they share no CPU."""
    work = Path(tempfile.mkdtemp())
    taskset = ["taskset", "-c", "1"] if pinned else []
    if pinned:
        os.sched_setaffinity(0, {0})
    alone, shared, rounds = [], [], []
    for r in range(repeat):
        alone.append(appends(work / f"alone{r}", n))
        base, stop = work / f"shared{r}", work / f"stop{r}"
        Store(base, Feed)[Feed("a")].write(ordered_on="t", df=frame(-1000, 1000))
        readers = [
            subprocess.Popen(
                [
                    *taskset,
                    sys.executable,
                    "-c",
                    READER,
                    str(base),
                    str(stop),
                    str(pause),
                    str(int(iterate)),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        time.sleep(1.0)  # the readers are running
        shared.append(appends(base, n))
        stop.touch()
        rounds.append(sum(int(p.communicate()[0].split()[-1]) for p in readers))
    if pinned:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    a, s_ = statistics.median(alone), statistics.median(shared)
    what = "list, read, iterate" if iterate else "list, read"
    if pinned:
        what += "; writer and readers on separate cores"
    print(
        f"{2 * n} appends alone: {a:.2f} s; with 3 readers ({what}; {pause * 1000:.0f} ms "
        f"pauses): {s_:.2f} s ({s_ / a:.2f}x); reader rounds {rounds}"
    )
    shutil.rmtree(work)


OPEN = """
import statistics, sys, time
from pathlib import Path
import numpy as np, pandas as pd
from oups import OrderedParquetDataset, write
path = Path(sys.argv[1]) / "ds"
if not path.exists():
    for i in range(10):
        t = np.arange(i * 2000, (i + 1) * 2000)
        write(path, ordered_on="t", df=pd.DataFrame({"t": t, "v": t * 0.5}),
              row_group_target_size=1000)
def med(fn, n):
    fn()
    times = []
    for _ in range(n):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6
print(med(lambda: len(OrderedParquetDataset(path)), 300),
      med(lambda: OrderedParquetDataset(path).to_pandas(), 100))
"""


def against_previous(previous: str) -> None:
    work = Path(tempfile.mkdtemp())
    runs: dict[str, list[tuple[float, float]]] = {"this": [], "previous": []}
    for _ in range(3):
        for name, env in (
            ("this", dict(os.environ)),
            ("previous", {**os.environ, "PYTHONPATH": previous}),
        ):
            out = subprocess.run(
                [sys.executable, "-c", OPEN, str(work / name)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            ).stdout.split()
            runs[name].append((float(out[0]), float(out[1])))
    for name, values in runs.items():
        opens = statistics.median(v[0] for v in values)
        reads = statistics.median(v[1] for v in values)
        print(f"{name:>9}: open + len {opens:6.0f} us, open + to_pandas {reads:7.0f} us")
    shutil.rmtree(work)


BURN = """
import sys, time
from pathlib import Path
stop = Path(sys.argv[1])
n = 0
while not stop.exists():
    for _ in range(100_000):
        n += 1
"""


def cpu_floor(n: int, repeat: int) -> None:
    work = Path(tempfile.mkdtemp())
    alone, shared = [], []
    for r in range(repeat):
        alone.append(appends(work / f"alone{r}", n))
        stop = work / f"stop{r}"
        burners = [subprocess.Popen([sys.executable, "-c", BURN, str(stop)]) for _ in range(3)]
        time.sleep(0.5)
        shared.append(appends(work / f"shared{r}", n))
        stop.touch()
        for b in burners:
            b.wait()
    a, s_ = statistics.median(alone), statistics.median(shared)
    print(f"{2 * n} appends alone: {a:.2f} s; with 3 CPU burners: {s_:.2f} s ({s_ / a:.2f}x)")
    shutil.rmtree(work)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--steps", default="open,cpu-floor,writer")
    ap.add_argument("--appends", type=int, default=200)
    ap.add_argument("--writer-repeat", type=int, default=3)
    ap.add_argument("--previous", help="python/ directory of the previous release (step previous)")
    ap.add_argument(
        "--reader-pause",
        default="0.01,0.1",
        help="seconds each reader sleeps between rounds (comma-separated: one run each)",
    )
    args = ap.parse_args()
    steps = args.steps.split(",")
    if "open" in steps:
        open_costs(args.repeat)
    if "previous" in steps:
        if not args.previous:
            raise SystemExit("--steps previous needs --previous PATH")
        against_previous(args.previous)
    if "cpu-floor" in steps:
        cpu_floor(args.appends, args.writer_repeat)
    if "pinned" in steps:
        for pause in args.reader_pause.split(","):
            writer_with_readers(args.appends, float(pause), True, args.writer_repeat, True)
    if "writer" in steps:
        for iterate in (False, True):
            for pause in args.reader_pause.split(","):
                writer_with_readers(args.appends, float(pause), iterate, args.writer_repeat)


if __name__ == "__main__":
    main()
