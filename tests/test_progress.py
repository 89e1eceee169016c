"""progress=True on write() and iter_intersections(): tqdm bars when available."""

from __future__ import annotations

import sys
import warnings

import pandas as pd
import pytest

import oups._progress
from oups import Store, toplevel, write
from oups.exceptions import ParameterTypeError


@toplevel
class Key:
    name: str


def _frame(n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"t": range(start, start + n), "v": [1.0] * n})


def test_write_progress_counts_every_new_row(tmp_path, capsys):
    path = tmp_path / "ds"
    write(path, ordered_on="t", df=_frame(10_000), row_group_target_size=1_000, progress=True)
    err = capsys.readouterr().err
    assert "write ds" in err and "10.0k/10.0k" in err
    # A merge counts the rows of the rewritten row groups, not the whole dataset.
    write(path, ordered_on="t", df=_frame(10, 10_000), row_group_target_size=1_000, progress=True)
    err = capsys.readouterr().err
    assert "10.0/10.0" in err and "10.0k" not in err


def test_iter_intersections_progress_counts_chunks(tmp_path, capsys):
    store = Store(tmp_path, Key)
    store[Key("a")].write(ordered_on="t", df=_frame(6), row_group_target_size=2)
    store[Key("b")].write(ordered_on="t", df=_frame(4, 1), row_group_target_size=2)
    chunks = list(store.iter_intersections([Key("a"), Key("b")], progress=True))
    err = capsys.readouterr().err
    assert f"{len(chunks)}/{len(chunks)}" in err and "chunk" in err


def test_no_output_without_progress_or_without_tqdm(tmp_path, capsys, monkeypatch):
    write(tmp_path / "a", ordered_on="t", df=_frame(100))
    assert capsys.readouterr().err == ""
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails: no tqdm
    monkeypatch.setattr(oups._progress, "_warned_no_tqdm", False)
    # progress=True without tqdm says so, once per process.
    with pytest.warns(UserWarning, match="tqdm is not installed"):
        write(tmp_path / "b", ordered_on="t", df=_frame(100), progress=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store = Store(tmp_path, Key)
        list(store.iter_intersections([Key("a")], progress=True))
    assert capsys.readouterr().err == ""


def test_progress_must_be_a_bool(tmp_path):
    with pytest.raises(ParameterTypeError, match="'progress' must be True or False"):
        write(tmp_path / "ds", ordered_on="t", df=_frame(3), progress="yes")
    assert not (tmp_path / "ds").exists()
    with pytest.raises(ParameterTypeError, match="'progress'"):
        Store(tmp_path, Key).iter_intersections([Key("a")], progress=1)
