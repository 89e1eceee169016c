"""check_cmidx / conform_cmidx (column MultiIndex, docs/dataset.md)."""

from __future__ import annotations

import pandas as pd
import pytest

from oups import check_cmidx, conform_cmidx


def test_check_cmidx():
    ok = pd.MultiIndex.from_tuples([("a", "x"), ("b", "")], names=["l0", ""])
    assert check_cmidx(ok) is None
    with pytest.raises(ValueError, match="level name set to None"):
        check_cmidx(pd.MultiIndex.from_tuples([("a", "x")], names=["l0", None]))
    with pytest.raises(TypeError, match="has to be of type 'string'"):
        check_cmidx(pd.MultiIndex.from_tuples([("a", 1)], names=["l0", "l1"]))


def test_conform_cmidx():
    df = pd.DataFrame(
        [[1, 2]], columns=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["L0", None])
    )
    assert conform_cmidx(df) is None
    assert list(df.columns) == [("a", "1"), ("b", "2")]
    assert list(df.columns.names) == ["L0", ""]
    check_cmidx(df.columns)
    unchanged = pd.DataFrame(
        [[1]], columns=pd.MultiIndex.from_tuples([("a", "b")], names=["x", "y"])
    )
    cols = unchanged.columns
    conform_cmidx(unchanged)
    assert unchanged.columns is cols
    with pytest.raises(ValueError):
        conform_cmidx(pd.DataFrame({"a": [1]}))


def test_write_rejects_unconformed_multiindex(tmp_ds):
    from oups import write

    df = pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)]))
    with pytest.raises(ValueError):
        write(tmp_ds, ordered_on=("a", "1"), df=df)
    assert not tmp_ds.parent.exists()
