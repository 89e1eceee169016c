"""AsofMerger calls that would give wrong values are refused, leaving the
carry as it was; chunks with other categories are accepted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from oups import AsofMerger, StatefulLoop
from oups.exceptions import InvalidParameterError, ParameterTypeError, SchemaMismatchError


def _quotes(ts, bid):
    return pd.DataFrame({"ts": np.asarray(ts, dtype="int64"), "bid": np.asarray(bid, dtype=float)})


def _carry_copy(m):
    return [[w.to_pydict() for w in g] for g in m.carry]


def test_a_chunk_older_than_the_carry_is_refused():
    m = AsofMerger("ts", n_dfs_per_group=1, n_prev=[1])
    m.merge(np.array([15, 25]), df_groups=[_quotes([10, 20], [1, 2])])
    before = _carry_copy(m)
    with pytest.raises(InvalidParameterError, match="older than the carry"):
        m.merge(np.array([35]), df_groups=[_quotes([5, 30], [9, 3])])
    assert _carry_copy(m) == before
    # The same chunk in order is fine, and equal keys at the boundary too.
    out = m.merge(np.array([35]), df_groups=[_quotes([20, 30], [2.5, 3])])
    assert out["bid_0"].tolist() == [3.0] and out["bid_1"].tolist() == [2.5]


def test_main_going_back_in_time_is_refused():
    m = AsofMerger("ts", n_dfs_per_group=1)
    m.merge(np.array([15, 25]), df_groups=[_quotes([10, 20], [1, 2])])
    before = _carry_copy(m)
    with pytest.raises(InvalidParameterError, match="'main' goes back in time"):
        m.merge(np.array([22, 40]), df_groups=[_quotes([30], [3])])
    assert _carry_copy(m) == before


def test_the_order_guard_survives_a_saved_and_restored_carry(tmp_path):
    # A chunk replayed after a resume must be refused too.
    state = tmp_path / "loop.state"
    m = AsofMerger("ts", n_dfs_per_group=1)
    loop = StatefulLoop(state)
    loop.bind_object_state(m, state=["carry"])
    for ctx in loop.iterate([0]):
        with ctx:
            m.merge(np.array([25]), df_groups=[_quotes([10, 20], [1, 2])])
    m2 = AsofMerger("ts", n_dfs_per_group=1)
    loop2 = StatefulLoop(state)
    loop2.bind_object_state(m2, state=["carry"])
    with pytest.raises(InvalidParameterError, match="older than the carry"):
        for ctx in loop2.iterate([0]):
            with ctx:
                m2.merge(np.array([25]), df_groups=[_quotes([10, 20], [1, 2])])


def test_naive_main_against_zoned_on_names_both_dtypes():
    ts = pd.date_range("2024-01-01", periods=3, freq="h", tz="Europe/Paris")
    df = pd.DataFrame({"ts": ts, "v": [1.0, 2.0, 3.0]})
    m = AsofMerger("ts", n_dfs_per_group=1)
    with pytest.raises(
        ParameterTypeError, match=r"'main' has type timestamp\[.s\] .*tz=Europe/Paris"
    ):
        m.merge(pd.date_range("2024-01-01", periods=2, freq="h").values, df_groups=[df])
    assert m.carry is None
    out = m.merge(pd.Series(ts), df_groups=[df])
    assert out["ts"].dtype == df["ts"].dtype


def test_chunks_with_other_categories_are_unified():
    m = AsofMerger("ts", n_dfs_per_group=1, n_prev=[1], allow_exact_matches=[True])
    a = pd.DataFrame({"ts": [1, 2], "c": pd.Categorical(["x", "y"])})
    b = pd.DataFrame({"ts": [3, 4], "c": pd.Categorical(["z", "x"], categories=["z", "x"])})
    first = m.merge(np.array([2]), df_groups=[a])
    out = m.merge(np.array([3, 4]), df_groups=[b])
    assert out["c_0"].astype(str).tolist() == ["z", "x"]
    assert out["c_1"].astype(str).tolist() == ["y", "z"]
    assert list(out["c_0"].cat.categories) == ["x", "y", "z"]
    assert first["c_0"].astype(str).tolist() == ["y"]
    # Two groups with different categories in one call, too.
    m = AsofMerger("ts", n_dfs_per_group=1, allow_exact_matches=[True])
    out = m.merge(np.array([2, 4]), df_groups=[[a], [b]], combinations=np.array([[0], [1]]))
    assert out["c"].astype(str).tolist() == ["y", "x"]
    # An ordered categorical against an unordered one is still a mismatch,
    # and the message shows what differs.
    c = a.assign(c=a["c"].cat.as_ordered())
    with pytest.raises(SchemaMismatchError, match="ordered=True"):
        AsofMerger("ts", n_dfs_per_group=1).merge(
            np.array([2]), df_groups=[[a], [c]], combinations=np.array([[0]])
        )


@pytest.mark.parametrize("fill", [None, "missing"])
def test_rows_before_the_first_match(fill):
    df = pd.DataFrame(
        {
            "ts": [10, 20],
            "f": [1.5, 2.5],
            "i": np.array([1, 2], dtype="int64"),
            "b": [True, False],
            "d": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "s": pd.Series(["p", "q"], dtype=object),
        }
    )
    m = AsofMerger("ts", n_dfs_per_group=1, fill_values_init=fill)
    out = m.merge(np.array([5, 15]), df_groups=[df])
    later = m.merge(np.array([25]), df_groups=[df.iloc[:0]])
    if fill is None:
        assert out.iloc[0][["f", "i", "b"]].tolist() == [0.0, 0, False]
        assert out["i"].dtype == "int64" and later["i"].dtype == "int64"
    else:
        assert out.iloc[0][["f", "i", "d"]].isna().all() and out["b"].isna().iloc[0]
        assert out["i"].tolist()[1] == 1.0
        assert out["i"].dtype == "float64" and later["i"].dtype == "float64"
        assert later["i"].tolist() == [2.0] and later["b"].tolist() == [False]
        ref = pd.merge_asof(pd.DataFrame({"ts": [5, 15]}), df, on="ts", allow_exact_matches=False)
        pd.testing.assert_series_equal(out["i"], ref["i"], check_names=False)
    with pytest.raises(InvalidParameterError, match="fill_values_init"):
        AsofMerger("ts", n_dfs_per_group=1, fill_values_init="nan")


def test_carry_stays_arrow_only():
    m = AsofMerger("ts", n_dfs_per_group=1)
    m.merge(np.array([15]), df_groups=[_quotes([10], [1])])
    assert all(isinstance(w, pa.Table) for g in m.carry for w in g)
