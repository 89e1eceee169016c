"""The scripts in examples/ run (smaller sizes) and check their own results."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str, monkeypatch):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules, as for any import.
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("n_days", [1, 4])
def test_market_pipeline(tmp_path, capsys, monkeypatch, n_days):
    module = _load("market_pipeline", monkeypatch)
    module.main(["--dir", str(tmp_path), "--days", str(n_days), "--quotes-per-day", "5000"])
    out = capsys.readouterr().out
    assert "resumed result == one pass over all days" in out
    assert f"NVDA-5min: {78 * n_days} bars in {n_days} row groups" in out
