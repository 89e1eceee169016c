"""``python -m oups info PATH``: what is on disk, without writing code."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from oups._oups import RawObjectDataset, find_datasets_url, metadata_path
from oups._oups import find_datasets as _find_datasets
from oups.exceptions import InvalidParameterError, OupsError
from oups.store._storage import is_url
from oups.store.ordered_parquet_dataset import OrderedParquetDataset

# Row groups listed for a single dataset before the rest is summarised.
_MAX_ROW_GROUPS_SHOWN = 20


@dataclass
class DatasetSummary:
    """What ``info`` reports about one dataset."""

    path: Path | str
    ordered_on: Any
    n_rows: int
    row_groups: list[tuple[int, int, Any, Any]]  # file id, rows, min, max
    columns: list[tuple[str, str]]
    size_bytes: int
    key_value_metadata: dict[str, Any]
    error: str | None = None

    @property
    def start(self) -> Any:
        return self.row_groups[0][2] if self.row_groups else None

    @property
    def end(self) -> Any:
        return self.row_groups[-1][3] if self.row_groups else None


def find_datasets(root: Path) -> list[Path]:
    """Every dataset below ``root`` (a dataset is known by its metadata file), sorted."""
    return [Path(p) for p in _find_datasets(str(root))]


def _size(path: Path) -> int:
    total = 0
    meta = metadata_path(str(path))
    if meta.is_file():
        total += meta.stat().st_size
    if path.is_dir():
        total += sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    return total


def summarize(path: Path | str, lock_timeout: float | None) -> DatasetSummary:
    """Opens the latest version of the dataset (no lock) and collects its summary."""
    remote = isinstance(path, str)
    with OrderedParquetDataset(path, lock_timeout=None if remote else lock_timeout) as ds:
        stats = ds.row_group_stats
        kvm = ds.key_value_metadata
        ordered_on = ds.ordered_on
        raw = ds._raw
        if isinstance(raw, RawObjectDataset):
            schema = raw.schema()
            size = raw.stored_bytes()
    row_groups = [
        (int(file_id), int(n), lo, hi)
        for file_id, n, lo, hi in zip(
            stats["file_ids"],
            stats["n_rows"],
            stats["ordered_on_mins"],
            stats["ordered_on_maxs"],
            strict=True,
        )
    ]
    columns: list[tuple[str, str]] = []
    if isinstance(path, Path):
        files = sorted(path.glob("file_*.parquet")) if path.is_dir() else []
        schema = pq.read_schema(files[0]) if files else None
        size = _size(path)
    if schema is not None:
        columns = [(field.name, str(field.type)) for field in schema]
    return DatasetSummary(
        path=path,
        ordered_on=ordered_on,
        n_rows=sum(n for _, n, _, _ in row_groups),
        row_groups=row_groups,
        columns=columns,
        size_bytes=size,
        key_value_metadata=kvm,
    )


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def format_dataset(s: DatasetSummary) -> list[str]:
    lines = [f"dataset {s.path}"]
    if not s.row_groups:
        lines.append("  empty (no row group yet)")
    else:
        sizes = sorted(n for _, n, _, _ in s.row_groups)
        lines += [
            f"  ordered on  {s.ordered_on!r}",
            f"  rows        {s.n_rows:,} in {len(s.row_groups):,} row groups "
            f"(smallest {sizes[0]:,}, largest {sizes[-1]:,})",
            f"  range       {s.start} .. {s.end}",
        ]
    per_row = f" ({s.size_bytes / s.n_rows:.1f} B/row)" if s.n_rows else ""
    lines.append(f"  on disk     {human_bytes(s.size_bytes)}{per_row}")
    if s.columns:
        lines.append("  columns     " + ", ".join(f"{n}: {t}" for n, t in s.columns))
    if s.key_value_metadata:
        lines.append(f"  metadata    {json.dumps(s.key_value_metadata, default=str)}")
    if s.row_groups:
        lines.append(f"  row groups  {'file id':>10} {'rows':>11}  first .. last")
        shown = s.row_groups[:_MAX_ROW_GROUPS_SHOWN]
        for file_id, n, lo, hi in shown:
            lines.append(f"              {file_id:>10} {n:>11,}  {lo} .. {hi}")
        if len(s.row_groups) > len(shown):
            lines.append(f"              ... {len(s.row_groups) - len(shown):,} more")
    return lines


def _relative(path: Path | str, root: Path | str) -> str:
    if isinstance(path, str):
        return path.removeprefix(str(root)).lstrip("/")
    return str(path.relative_to(root))


def format_store(root: Path | str, summaries: list[DatasetSummary]) -> list[str]:
    if not summaries:
        return [f"store {root}: no dataset"]
    rows = [
        (
            _relative(s.path, root),
            f"{s.n_rows:,}",
            f"{len(s.row_groups):,}",
            str(s.start),
            str(s.end),
            human_bytes(s.size_bytes),
        )
        for s in summaries
    ]
    header = ("dataset", "rows", "row groups", "first", "last", "on disk")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        left = cells[0].ljust(widths[0])
        rest = [
            c.rjust(w) if i < 2 else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells[1:], widths[1:], strict=True))
        ]
        return "  " + "  ".join([left, *rest]).rstrip()

    total_rows = sum(s.n_rows for s in summaries)
    total_size = sum(s.size_bytes for s in summaries)
    return [
        f"store {root}: {len(summaries):,} datasets, {total_rows:,} rows, "
        f"{human_bytes(total_size)}",
        line(header),
        *(line(r) for r in rows),
    ]


def info(path: str | os.PathLike[str], lock_timeout: float | None = 10.0) -> list[str]:
    """The summary lines of a dataset, or of every dataset under a directory.

    Raises
    ------
    FileNotFoundError
        When ``path`` is neither a dataset nor a directory.
    """
    if isinstance(path, str) and is_url(path):
        return _info_url(path.rstrip("/"))
    root = Path(path).expanduser().resolve()
    meta = metadata_path(str(root))
    if meta.is_file():
        return format_dataset(summarize(root, lock_timeout))
    if not root.is_dir():
        raise FileNotFoundError(
            f"{str(path)!r} is neither an oups dataset (no {meta.name} "
            "beside it) nor a directory; give the dataset directory or a store's base path."
        )
    summaries = []
    for dataset in find_datasets(root):
        try:
            summaries.append(summarize(dataset, lock_timeout))
        except OupsError as exc:  # one damaged dataset should not hide the others
            summaries.append(
                DatasetSummary(dataset, None, 0, [], [], _size(dataset), {}, error=str(exc))
            )
    lines = format_store(root, summaries)
    lines += [f"  ! {_relative(s.path, root)}: {s.error}" for s in summaries if s.error]
    return lines


def _info_url(url: str) -> list[str]:
    """``info`` of a dataset or a store at an object-storage URL."""
    try:
        exists = not OrderedParquetDataset(url).is_newly_initialized
    except InvalidParameterError:
        exists = False  # a bucket's root names no dataset: look for a store
    if exists:
        return format_dataset(summarize(url, None))
    summaries = []
    for rel in find_datasets_url(url):
        dataset = f"{url}/{rel}"
        try:
            summaries.append(summarize(dataset, None))
        except OupsError as exc:
            summaries.append(DatasetSummary(dataset, None, 0, [], [], 0, {}, error=str(exc)))
    lines = format_store(url, summaries)
    lines += [f"  ! {_relative(s.path, url)}: {s.error}" for s in summaries if s.error]
    return lines
