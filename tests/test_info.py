"""``python -m oups info``: dataset and store summaries from the command line."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from oups import Store, toplevel, write
from oups.__main__ import main


@toplevel
class Feed:
    venue: str
    symbol: str


def _ticks(start: str, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"ts": pd.date_range(start, periods=n, freq="h"), "px": range(n), "qty": [1.5] * n}
    )


def test_dataset_summary(tmp_path, capsys):
    path = tmp_path / "ticks"
    write(
        path,
        ordered_on="ts",
        df=_ticks("2024-01-01", 48),
        row_group_target_size="1D",
        key_value_metadata={"source": "feed-a"},
    )
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"dataset {path.resolve()}" in out
    assert "48 in 2 row groups (smallest 24, largest 24)" in out
    assert "range       2024-01-01 00:00:00 .. 2024-01-02 23:00:00" in out
    assert "columns     ts: timestamp[" in out and "px: int64, qty: double" in out
    assert '"source": "feed-a"' in out
    assert out.count("2024-01-0") == 2 + 4  # range line + 2 row-group lines


def test_store_summary_lists_every_dataset_and_damage(tmp_path, capsys):
    store = Store(tmp_path / "store", Feed)
    store[Feed("xnys", "ibm")].write(ordered_on="ts", df=_ticks("2024-01-01", 10))
    store[Feed("xpar", "air")].write(ordered_on="ts", df=_ticks("2024-02-01", 5))
    broken = Feed("xlon", "bp")
    store[broken].write(ordered_on="ts", df=_ticks("2024-03-01", 3))
    meta = store.basepath / f"{broken}_opdmd"
    meta.write_bytes(meta.read_bytes()[:20])
    assert main(["info", str(store.basepath)]) == 0
    out = capsys.readouterr().out
    assert "3 datasets, 15 rows" in out
    lines = out.splitlines()
    ibm = next(line for line in lines if line.strip().startswith("xnys-ibm"))
    assert "10" in ibm and "2024-01-01 00:00:00" in ibm
    assert any(line.startswith("  ! xlon-bp") and "opdmd" in line for line in lines)


def test_missing_path_is_an_error_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "oups", "info", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "neither an oups dataset" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "nothing").exists()


def test_empty_directory(tmp_path, capsys):
    assert main(["info", str(tmp_path)]) == 0
    assert "no dataset" in capsys.readouterr().out


def test_info_never_waits_for_a_writer(tmp_path):
    path = tmp_path / "ticks"
    write(path, ordered_on="ts", df=_ticks("2024-01-01", 24))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from oups import OrderedParquetDataset\n"
            "with OrderedParquetDataset(sys.argv[1]).lock():\n"
            "    print('held', flush=True); time.sleep(30)\n",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        out = subprocess.run(
            [sys.executable, "-m", "oups", "info", str(path)],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert out.returncode == 0, out.stderr
        assert "24 in 1 row groups" in out.stdout or "24 in 1 row group" in out.stdout
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
