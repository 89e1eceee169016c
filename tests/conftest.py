"""Shared fixtures and helpers for the oups test suite."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import pytest


def dir_digest(root: Path) -> dict[str, str]:
    """Path -> sha256 of every file below ``root`` (to prove nothing changed).

    Read leases are left out: like lock files, they only say who is reading
    (an open dataset object holds one for its version) and hold no data."""
    out: dict[str, str] = {}
    for dirpath, _, files in os.walk(root):
        if Path(dirpath).name == "leases" and Path(dirpath).parent.name.endswith(".oups"):
            continue
        for name in files:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def rg_values(ds, column: str = "a") -> list[list]:
    """The values of ``column`` in each row group, in order."""
    out = []
    for i in range(len(ds)):
        out.append(ds[i].to_pandas()[column].tolist())
    return out


@pytest.fixture
def tmp_ds(tmp_path: Path) -> Path:
    return tmp_path / "parent" / "ds"


def ts(s: str) -> pd.Timestamp:
    return pd.Timestamp(s)
