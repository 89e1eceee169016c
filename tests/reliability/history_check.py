"""What every crash test checks of a dataset's history directory."""

from __future__ import annotations

from pathlib import Path

from oups import OrderedParquetDataset


def check_history(path: Path) -> None:
    """The history holds exactly the files the kept versions list, and no
    marker, temp file or record put aside by an interrupted vacuum."""
    history = path.parent / f".{path.name}.oups"
    if not history.exists():
        return
    needed = set()
    for v in OrderedParquetDataset(path).versions()["version"].tolist():
        needed |= set(OrderedParquetDataset(path, version=v).row_group_stats["file_ids"])
    files = history / "files"
    kept = {p.name for p in files.iterdir()} if files.exists() else set()
    expected = {f"file_{i:010d}.parquet" for i in needed}
    assert kept == expected, (
        f"{path}: orphans {sorted(kept - expected)}, missing {sorted(expected - kept)}; "
        f"history {sorted(str(p.relative_to(history)) for p in history.rglob('*'))}"
    )
    litter = [p.name for p in history.iterdir() if p.name.startswith((".oups-tmp", "busy-"))]
    assert not litter, litter
    versions = history / "versions"
    records = {p.name for p in versions.iterdir()} if versions.exists() else set()
    assert all(n.startswith("v_") and len(n) == 22 for n in records), records
