"""What this machine can do at best: the floors under the dataset benchmark.

Each figure is the cheapest way to do one thing the engine must do, measured here, so
that a step's time can be split into what the hardware costs and what oups adds:

* memcpy into memory already faulted in, and into fresh memory (page faults included);
* faulting fresh memory in without copying (what a new buffer costs before any work);
* write() into the page cache, copy_file_range() between files (the kernel's copy);
* fdatasync of a freshly written file, and of the directory entry after a rename
  (the durable commit's device cost);
* reading a file back through mmap (page-cache hits).

    python bench/floor.py [--mb 480] [--repeat 5] [--dir /path/on/the/disk/to/test]

Medians of ``--repeat`` runs after a warm-up run, in GB/s or milliseconds. 480 MB is
the 10M-row frame of bench/dataset.py (timestamp + 4 float64 + 1 int64).
"""

from __future__ import annotations

import argparse
import mmap
import os
import tempfile
from pathlib import Path

import numpy as np
from timing import timed


def gbps(nbytes: int, seconds: float) -> str:
    return f"{nbytes / seconds / 1e9:6.2f} GB/s  ({seconds * 1000:7.1f} ms)"


def memory_floors(nbytes: int, repeat: int) -> list[tuple[str, str]]:
    src = np.random.default_rng(0).standard_normal(nbytes // 8)
    warm = np.empty_like(src)
    warm[:] = 0.0
    rows = [
        (
            "memcpy into faulted memory",
            gbps(nbytes, timed(lambda: np.copyto(warm, src), repeat)),
        )
    ]

    def fresh_copy():
        dst = np.empty_like(src)
        np.copyto(dst, src)

    rows.append(("memcpy into fresh memory", gbps(nbytes, timed(fresh_copy, repeat))))

    def fault_only():
        m = mmap.mmap(
            -1,
            nbytes,
            flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0),
        )
        m.close()

    rows.append(("fault in fresh memory (MAP_POPULATE)", gbps(nbytes, timed(fault_only, repeat))))
    return rows


def file_floors(base: Path, nbytes: int, repeat: int) -> list[tuple[str, str]]:
    payload = np.random.default_rng(1).bytes(nbytes)
    rows = []
    src = base / "src.bin"

    def write_cache(path: Path = src):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    rows.append(("write() into the page cache", gbps(nbytes, timed(write_cache, repeat))))

    def write_durable():
        write_cache(base / "durable.bin")
        fd = os.open(base / "durable.bin", os.O_RDONLY)
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)

    rows.append(("write() then fdatasync", gbps(nbytes, timed(write_durable, repeat))))
    write_cache()

    def copy_range():
        fin = os.open(src, os.O_RDONLY)
        fout = os.open(base / "copy.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            left = nbytes
            while left:
                left -= os.copy_file_range(fin, fout, left)
        finally:
            os.close(fin)
            os.close(fout)

    rows.append(("copy_file_range (page cache to file)", gbps(nbytes, timed(copy_range, repeat))))

    def mmap_read():
        with open(src, "rb") as f:
            m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            np.frombuffer(m, dtype=np.uint8).sum(dtype=np.uint64)  # touch every page
            del m

    rows.append(("mmap and touch (page-cache hits)", gbps(nbytes, timed(mmap_read, repeat))))

    def small_commit():
        # A metadata commit: write a small file, fdatasync it, rename it, fsync the directory.
        tmp, final = base / "meta.tmp", base / "meta"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, payload[:4096])
            os.fdatasync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        dfd = os.open(base, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    t = timed(small_commit, max(repeat, 20))
    rows.append(("4 KiB write + fdatasync + rename + dir fsync", f"{t * 1000:7.2f} ms"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=int, default=480)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where files go (default: a temporary directory)"
    )
    args = parser.parse_args()
    nbytes = args.mb * 1_000_000
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        rows = memory_floors(nbytes, args.repeat) + file_floors(Path(tmp), nbytes, args.repeat)
    width = max(len(name) for name, _ in rows)
    print(f"floors for {args.mb} MB, medians of {args.repeat}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


if __name__ == "__main__":
    main()
