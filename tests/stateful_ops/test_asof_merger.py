"""AsofMerger through its public API: the behaviour docs/asof_merger.md
describes (output columns in each frame's original order), the reference's
defects fixed, chunked streaming equivalence and pandas.merge_asof parity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oups import AsofMerger, StatefulLoop
from oups.exceptions import SchemaMismatchError, UnsortedError


def frame(**cols):
    return pd.DataFrame(cols)


A1 = frame(t=[10, 20, 30], a=[1, 2, 3], b=[1.5, 2.5, 3.5], c=[7, 8, 9])
MAIN = np.array([5, 10, 15, 30, 40])


def test_basic_strict():
    out = AsofMerger("t", n_dfs_per_group=1).merge(MAIN, df_groups=[A1])
    assert list(out.columns) == ["t", "a", "b", "c"]
    assert out["t"].tolist() == MAIN.tolist()
    assert out["a"].tolist() == [0, 0, 1, 2, 3]
    assert out["c"].tolist() == [0, 0, 7, 8, 9]
    assert out["b"].tolist() == [0.0, 0.0, 1.5, 2.5, 3.5]
    assert [str(d) for d in out.dtypes] == ["int64", "int64", "float64", "int64"]
    assert isinstance(out.index, pd.RangeIndex)


def test_exact_matches():
    out = AsofMerger("t", n_dfs_per_group=1, allow_exact_matches=[True]).merge(MAIN, df_groups=[A1])
    assert out["a"].tolist() == [0, 1, 1, 3, 3]
    assert out["c"].tolist() == [0, 7, 7, 9, 9]
    assert out["b"].tolist() == [0, 1.5, 1.5, 3.5, 3.5]


def test_streaming_with_previous_values():
    m = AsofMerger("t", n_dfs_per_group=1, n_prev=[2], allow_exact_matches=[True])
    out = m.merge(MAIN, df_groups=[A1])
    assert list(out.columns) == ["t", "a_2", "a_1", "a_0", "b_2", "b_1", "b_0", "c_2", "c_1", "c_0"]
    assert out.iloc[0, 1:].tolist() == [0] * 9
    assert out.loc[1, ["a_2", "a_1", "a_0"]].tolist() == [0, 0, 1]
    assert out.loc[3, ["c_2", "c_1", "c_0"]].tolist() == [7, 8, 9]
    out = m.merge(
        np.array([41, 45, 50]),
        df_groups=[frame(t=[45, 46], a=[4, 5], b=[4.5, 5.5], c=[10, 11])],
    )
    assert out[["a_2", "a_1", "a_0"]].values.tolist() == [[1, 2, 3], [2, 3, 4], [3, 4, 5]]
    assert out[["b_2", "b_1", "b_0"]].values.tolist()[1] == [2.5, 3.5, 4.5]
    empty = A1.iloc[:0]
    out = m.merge(np.array([60, 70]), df_groups=[empty])
    assert out[["a_2", "a_1", "a_0"]].values.tolist() == [[3, 4, 5], [3, 4, 5]]
    out = m.merge(np.array([75, 80]), df_groups=[frame(t=[80], a=[6], b=[6.5], c=[12])])
    assert out["a_0"].tolist() == [5, 6] and out["a_2"].tolist() == [3, 4]


def test_suffix_start():
    m = AsofMerger("t", n_dfs_per_group=1, n_prev=[1], n_prev_suffix_start=1)
    out = m.merge(np.array([2, 3]), df_groups=[frame(t=[1, 2], v=[10, 20])])
    assert list(out.columns) == ["t", "v_2", "v_1"]
    assert out.values.tolist() == [[2, 0, 10], [3, 10, 20]]


def test_streaming_current_only():
    m = AsofMerger("t", n_dfs_per_group=1)
    assert m.merge(np.array([15]), df_groups=[frame(t=[10, 20], v=[1, 2])])["v"].tolist() == [1]
    out = m.merge(np.array([25, 35]), df_groups=[frame(t=[30], v=[3])])
    assert out["v"].tolist() == [2, 3]
    out = m.merge(np.array([35, 40]), df_groups=[frame(t=[30, 40], v=[4, 5])])
    assert out["v"].tolist() == [4, 4]


def test_two_frames_flat_prefixes():
    m = AsofMerger(
        "t",
        n_dfs_per_group=2,
        prefixes=["p_", "q_"],
        n_prev=[0, 1],
        allow_exact_matches=[True, False],
    )
    assert m.prefixes == [["p_", "q_"]]
    out = m.merge(
        np.array([10, 20, 30]),
        df_groups=[
            frame(t=[10, 20], x=[1.0, 2.0]),
            frame(t=[10, 20], y=[100, 200], z=[True, False]),
        ],
    )
    assert list(out.columns) == ["t", "p_x", "q_y_1", "q_y_0", "q_z_1", "q_z_0"]
    assert out.values.tolist() == [
        [10, 1.0, 0, 0, False, False],
        [20, 2.0, 0, 100, False, True],
        [30, 2.0, 100, 200, True, False],
    ]
    assert out["q_z_0"].dtype == bool


def test_combinations():
    g0 = [
        frame(x=[1.0, 2.0], t=[10, 20], i=[1, 2], y=[0.1, 0.2]),
        frame(t=[15, 25], f=[True, False], k=[5, 6]),
    ]
    g1 = [
        frame(x=[3.0, 4.0], t=[12, 22], i=[3, 4], y=[0.3, 0.4]),
        frame(t=[11, 21], f=[False, True], k=[7, 8]),
    ]
    m = AsofMerger(
        "t",
        n_dfs_per_group=2,
        prefixes=[["L0_", "L1_"], ["R0_", "R1_"]],
        n_prev=[1, 0],
        allow_exact_matches=[True, False],
    )
    out = m.merge(
        np.array([12, 15, 21, 30]),
        df_groups=[g0, g1],
        combinations=np.array([[0, 1], [1, 0], [1, 1], [0, 0]]),
    )
    assert list(out.columns) == [
        "t", "L0_x_1", "L0_x_0", "L0_i_1", "L0_i_0", "L0_y_1", "L0_y_0", "L1_f", "L1_k",
        "R0_x_1", "R0_x_0", "R0_i_1", "R0_i_0", "R0_y_1", "R0_y_0", "R1_f", "R1_k",
    ]  # fmt: skip
    rows = out.values.tolist()
    assert rows[0] == [12, 0, 1, 0, 1, 0, 0.1, False, 0, 0, 3, 0, 3, 0, 0.3, False, 7]
    assert rows[1] == [15, 0, 3, 0, 3, 0, 0.3, False, 7, 0, 1, 0, 1, 0, 0.1, False, 0]
    assert rows[2] == [21, 0, 3, 0, 3, 0, 0.3, False, 7, 0, 3, 0, 3, 0, 0.3, False, 7]
    assert rows[3] == [30, 1, 2, 1, 2, 0.1, 0.2, False, 6, 1, 2, 1, 2, 0.1, 0.2, False, 6]


def test_same_group_at_several_positions():
    m = AsofMerger("t", n_dfs_per_group=1, prefixes=[["a_"], ["b_"]])
    out = m.merge(
        np.array([15, 25, 25]),
        df_groups=[[frame(t=[10, 20], v=[1, 2])], [frame(t=[12, 22], v=[3, 4])]],
        combinations=np.array([[0, 0], [0, 1], [1, 0]]),
    )
    assert out["a_v"].tolist() == [1, 2, 4] and out["b_v"].tolist() == [1, 4, 2]


def test_streaming_with_combinations():
    m = AsofMerger("t", n_dfs_per_group=1, prefixes=[["L_"], ["R_"]], n_prev=[1])
    out = m.merge(
        np.array([11, 21]),
        df_groups=[[frame(t=[10, 20], v=[1, 2])], [frame(t=[15, 25], v=[10, 20])]],
        combinations=np.array([[0, 1], [1, 0]]),
    )
    assert list(out.columns) == ["t", "L_v_1", "L_v_0", "R_v_1", "R_v_0"]
    assert out.values.tolist() == [[11, 0, 1, 0, 0], [21, 0, 10, 1, 2]]
    out = m.merge(
        np.array([22, 30]),
        df_groups=[[frame(t=[25], v=[3])], [frame(t=[26], v=[30])]],
        combinations=np.array([[1, 0], [0, 1]]),
    )
    assert out.values.tolist() == [[22, 10, 20, 1, 2], [30, 2, 3, 20, 30]]


def test_fill_values_init():
    df = frame(t=[10, 20], v=[1, 2], w=[1.5, 2.5])
    m = AsofMerger(
        "t", n_dfs_per_group=1, n_prev=[1], fill_values_init=[[frame(v=[-2, -1], w=[0.5, 0.25])]]
    )
    out = m.merge(np.array([5, 15, 25]), df_groups=[df])
    assert out["v_1"].tolist() == [-2, -1, 1] and out["v_0"].tolist() == [-1, 1, 2]
    assert out["w_1"].tolist() == [0.5, 0.25, 1.5] and out["w_0"].tolist() == [0.25, 1.5, 2.5]
    assert m.fill_values_init is not None, "kept, unlike the reference"
    m = AsofMerger("t", n_dfs_per_group=1, fill_values_init=[[frame(t=[0], v=[-1], w=[0.25])]])
    out = m.merge(np.array([5, 15, 25]), df_groups=[df])
    assert out["v"].tolist() == [-1, 1, 2] and out["w"].tolist() == [0.25, 1.5, 2.5]


def test_dtypes_are_kept_including_arrow_types():
    t = pd.to_datetime(["2023-05-05 10:00", "2023-05-05 11:00"])
    df = pd.DataFrame(
        {
            "t": t,
            "d": pd.to_datetime(["2023-05-05", "2023-06-06"]),
            "s": pd.Series(["a", "b"], dtype=object),
            "b": [True, False],
            "f32": np.array([1.5, 2.5], dtype="float32"),
            "i32": np.array([1, 2], dtype="int32"),
            "cat": pd.Categorical(["x", "y"]),
            "nint": pd.array([1, None], dtype="Int64"),
            "tz": pd.to_datetime(["2024-01-01", "2024-01-02"]).tz_localize("Europe/Paris"),
        }
    )
    main = pd.to_datetime(["2023-05-05 09:00", "2023-05-05 10:30", "2023-05-05 12:00"]).values
    out = AsofMerger("t", n_dfs_per_group=1, n_prev=[1]).merge(main, df_groups=[df])
    for c in df.columns.drop("t"):
        assert out[f"{c}_0"].dtype == df[c].dtype, c
    assert out["d_1"].tolist()[0] == pd.Timestamp(0)
    assert out["d_0"].tolist()[1:] == [pd.Timestamp("2023-05-05"), pd.Timestamp("2023-06-06")]
    assert pd.isna(out["s_0"][0]), "strings have no zero: missing"
    assert out["s_0"].tolist()[1:] == ["a", "b"]
    assert out["b_0"].tolist() == [False, True, False]
    assert out["f32_1"].tolist() == [0.0, 0.0, 1.5]
    assert out["cat_0"].tolist()[1:] == ["x", "y"] and pd.isna(out["cat_0"][0])
    assert out["nint_0"].tolist()[:2] == [0, 1] and pd.isna(out["nint_0"][2])
    assert out["tz_0"][2] == df["tz"][1]


def test_ties():
    df = frame(t=[10, 20, 20], c=[1, 2, 3])
    main = np.array([20, 20, 21])
    exact = AsofMerger("t", n_dfs_per_group=1, allow_exact_matches=[True])
    assert exact.merge(main, df_groups=[df])["c"].tolist() == [3, 3, 3]
    strict = AsofMerger("t", n_dfs_per_group=1)
    assert strict.merge(main, df_groups=[df])["c"].tolist() == [1, 1, 3]


def test_on_only_and_nan():
    out = AsofMerger("t", n_dfs_per_group=1).merge(np.array([5, 15]), df_groups=[frame(t=[1])])
    assert list(out.columns) == ["t"]
    out = AsofMerger("t", n_dfs_per_group=1).merge(
        np.array([5, 25]), df_groups=[frame(t=[1, 20], c=[np.nan, 2.0])]
    )
    assert np.isnan(out["c"][0]) and out["c"][1] == 2.0


def test_results_are_independent_of_later_calls():
    m = AsofMerger("t", n_dfs_per_group=1)
    first = m.merge(np.array([15, 25]), df_groups=[frame(t=[10, 20], v=[1, 2])])
    m.merge(np.array([35, 45, 55]), df_groups=[frame(t=[30, 40], v=[3, 4])], copy=False)
    assert first["v"].tolist() == [1, 2]


def test_sortedness_is_always_checked():
    m = AsofMerger("t", n_dfs_per_group=1)
    with pytest.raises(UnsortedError, match="'main' must be sorted"):
        m.merge(np.array([25, 15]), df_groups=[frame(t=[10, 20], v=[1, 2])])
    with pytest.raises(ValueError, match="frame 0 in group 0 must be sorted"):
        m.merge(np.array([15, 25]), df_groups=[frame(t=[20, 10], v=[1, 2])])
    out = m.merge(np.array([15, 15]), df_groups=[frame(t=[10, 10], v=[2, 2])])
    assert out["v"].tolist() == [2, 2]


def test_constructor_validation():
    with pytest.raises(TypeError):
        AsofMerger("t", 1)
    with pytest.raises(ValueError, match="each group must be of length 'n_dfs_per_group'"):
        AsofMerger("t", n_dfs_per_group=2, prefixes=["a_"])
    with pytest.raises(ValueError, match="non-empty"):
        AsofMerger("t", n_dfs_per_group=1, prefixes=[])
    with pytest.raises(ValueError, match="'allow_exact_matches' length must match"):
        AsofMerger("t", n_dfs_per_group=2, allow_exact_matches=[True])
    with pytest.raises(ValueError, match=r"'n_prev' must have length '2'.*got '1'"):
        AsofMerger("t", n_dfs_per_group=2, n_prev=[1])
    with pytest.raises(ValueError, match="all values in 'n_prev' must be >= 0"):
        AsofMerger("t", n_dfs_per_group=1, n_prev=[-1])
    m = AsofMerger("t", n_dfs_per_group=1)
    assert m.allow_exact_matches == [False] and m.n_prev == [0] and m.carry is None


def test_merge_validation_and_no_mutation():
    g0 = [frame(t=[10], x=[1.0], y=[1])]
    g1 = [frame(t=[12], x=[2.0], y=[2])]
    groups = [g0, g1]
    snapshot = [list(g) for g in groups]
    m = AsofMerger("t", n_dfs_per_group=1, prefixes=[["a_"]])
    with pytest.raises(TypeError):
        m.merge(np.array([1]), [frame(t=[1])])
    out = m.merge(np.array([11, 13]), df_groups=groups, combinations=np.array([[0], [1]]))
    assert out["a_x"].tolist() == [1.0, 2.0]
    assert all(
        a is b for ga, gb in zip(groups, snapshot, strict=True) for a, b in zip(ga, gb, strict=True)
    )
    with pytest.raises(ValueError, match="flat list of DataFrames"):
        AsofMerger("t", n_dfs_per_group=1).merge(np.array([1]), df_groups=[[frame(t=[1])]])
    with pytest.raises(ValueError, match=r"max value '2' at position '\(1, 0\)'"):
        m.merge(np.array([11, 13]), df_groups=groups, combinations=np.array([[0], [2]]))
    with pytest.raises(ValueError, match=r"negative value '-1' at position '\(0, 0\)'"):
        m.merge(np.array([11, 13]), df_groups=groups, combinations=np.array([[-1], [0]]))
    with pytest.raises(ValueError, match="must have the same length"):
        m.merge(np.array([11]), df_groups=groups, combinations=np.array([[0], [1]]))
    with pytest.raises(ValueError, match="2-D"):
        m.merge(np.array([11]), df_groups=groups, combinations=np.array([0]))
    with pytest.raises(ValueError, match="has no column 't'"):
        m.merge(np.array([11]), df_groups=[[frame(u=[1], x=[1.0], y=[1])], g1],
                combinations=np.array([[0]]))  # fmt: skip
    with pytest.raises(SchemaMismatchError, match="same columns"):
        m.merge(np.array([11]), df_groups=[[frame(t=[1], y=[1], x=[1.0])], g1],
                combinations=np.array([[0]]))  # fmt: skip
    with pytest.raises(SchemaMismatchError, match="same dtypes"):
        m.merge(np.array([11]), df_groups=[[frame(t=[1], x=[1], y=[1])], g1],
                combinations=np.array([[0]]))  # fmt: skip
    with pytest.raises(ValueError, match="number of groups cannot change"):
        m.merge(np.array([11]), df_groups=[g0], combinations=np.array([[0]]))
    with pytest.raises(ValueError, match="one list of prefixes per position"):
        m.merge(np.array([11]), df_groups=groups, combinations=np.array([[0, 1]]))


def test_duplicate_output_names_are_rejected():
    m = AsofMerger("t", n_dfs_per_group=1)
    with pytest.raises(ValueError, match="output column names would collide: v"):
        m.merge(
            np.array([11]),
            df_groups=[[frame(t=[10], v=[1])], [frame(t=[10], v=[3])]],
            combinations=np.array([[0, 1]]),
        )
    m = AsofMerger("t", n_dfs_per_group=2)
    with pytest.raises(ValueError, match="collide: v"):
        m.merge(np.array([11]), df_groups=[frame(t=[10], v=[1]), frame(t=[10], v=[3])])


def test_empty_main_and_unreferenced_groups():
    m = AsofMerger("t", n_dfs_per_group=1, prefixes=[["a_"]], n_prev=[1])
    groups = [[frame(t=[10, 20], v=[1, 2])], [frame(t=[12, 22], v=[3, 4])]]
    out = m.merge(np.array([], dtype="int64"), df_groups=groups, combinations=np.zeros((0, 1), int))
    assert list(out.columns) == ["t", "a_v_1", "a_v_0"] and len(out) == 0
    assert out["a_v_0"].dtype == np.int64
    # Group 1 is not referenced, yet its carry advanced with its chunk.
    out = m.merge(
        np.array([30]),
        df_groups=[[frame(t=[25], v=[5])], [frame(t=[26], v=[6])]],
        combinations=np.array([[1]]),
    )
    assert out[["a_v_1", "a_v_0"]].values.tolist() == [[4, 6]]


def _pandas_reference(main, frames, n_prev, exact):
    """merge_asof on the concatenated data, plus shifts for previous values."""
    out = pd.DataFrame({"t": main})
    for d, (df, k_max, ex) in enumerate(zip(frames, n_prev, exact, strict=True)):
        right = df.reset_index(drop=True)
        values = [c for c in right.columns if c != "t"]
        right = right.assign(_row=np.arange(len(right)))
        merged = pd.merge_asof(
            out[["t"]], right, on="t", allow_exact_matches=ex, direction="backward"
        )
        rows = merged["_row"].to_numpy()
        for c in values:
            col = right[c].to_numpy()
            for k in range(k_max, -1, -1):
                idx = rows - k
                ok = (~np.isnan(rows)) & (idx >= 0)
                vals = np.zeros(len(out), dtype=col.dtype)
                vals[ok] = col[idx[ok].astype(int)]
                name = f"f{d}_{c}" + (f"_{k}" if k_max else "")
                out[name] = vals
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**31),
    st.lists(st.integers(1, 4), min_size=1, max_size=4),
    st.lists(st.booleans(), min_size=2, max_size=2),
    st.lists(st.integers(0, 3), min_size=2, max_size=2),
)
def test_chunked_calls_equal_one_call_and_merge_asof(seed, cuts, exact, n_prev):
    rng = np.random.default_rng(seed)
    n, m0, m1 = 40, 30, 25
    main = np.sort(rng.integers(0, 100, n))
    f0 = frame(t=np.sort(rng.integers(0, 100, m0)), a=rng.random(m0), b=rng.integers(0, 9, m0))
    f1 = frame(t=np.sort(rng.integers(0, 100, m1)), c=rng.random(m1))

    def merger():
        return AsofMerger(
            "t", n_dfs_per_group=2, prefixes=["f0_", "f1_"], n_prev=n_prev,
            allow_exact_matches=exact,
        )  # fmt: skip

    whole = merger().merge(main, df_groups=[f0, f1])
    expected = _pandas_reference(main, [f0, f1], n_prev, exact)
    pd.testing.assert_frame_equal(whole, expected[whole.columns], check_dtype=False)

    # Split the key range at random bounds: each call gets the main rows and
    # frame rows of its slice (consecutive, non-overlapping chunks).
    bounds = np.unique(np.concatenate([[0], np.cumsum(cuts) * 100 // (sum(cuts) + 1), [101]]))
    streamed = merger()
    parts = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        part_main = main[(main >= lo) & (main < hi)]
        chunks = [f[(f["t"] >= lo) & (f["t"] < hi)] for f in (f0, f1)]
        parts.append(streamed.merge(part_main, df_groups=chunks))
    chunked = pd.concat(parts, ignore_index=True)
    pd.testing.assert_frame_equal(chunked, whole)


def test_carry_survives_a_restart_through_stateful_loop(tmp_path):
    path = tmp_path / "merge.state"
    stream = frame(t=np.arange(0, 100, 3), v=np.arange(34) * 1.5, n=np.arange(34))
    mains = [np.arange(1, 50, 7), np.arange(50, 100, 7)]

    def run(calls):
        loop = StatefulLoop(path)
        merger = loop.bind_object_state(
            AsofMerger("t", n_dfs_per_group=1, n_prev=[2]), state=["carry"], name="merger"
        )
        outs = []
        for item_ctx in loop.iterate(calls):
            with item_ctx as (main, lo, hi):
                chunk = stream[(stream["t"] >= lo) & (stream["t"] < hi)]
                outs.append(merger.merge(main, df_groups=[chunk]))
        return outs

    first = run([(mains[0], 0, 50)])
    second = run([(mains[1], 50, 100)])
    single = AsofMerger("t", n_dfs_per_group=1, n_prev=[2]).merge(
        np.concatenate(mains), df_groups=[stream]
    )
    pd.testing.assert_frame_equal(pd.concat(first + second, ignore_index=True), single)
    from oups._oups import load_state

    manifest, _ = load_state(path)
    assert '"pickle"' not in manifest


def test_nat_and_nan_keys_are_rejected_and_nat_values_kept():
    t = pd.to_datetime(["2024-01-01", "2024-01-02"]).values
    m = AsofMerger("t", n_dfs_per_group=1)
    bad = pd.DataFrame({"t": np.array(["NaT", "2024-01-01"], dtype="datetime64[ns]"), "v": [1, 2]})
    with pytest.raises(UnsortedError, match="NaT"):
        m.merge(t, df_groups=[bad])
    with pytest.raises(UnsortedError, match="missing value"):
        AsofMerger("t", n_dfs_per_group=1).merge(
            np.array([1.0, 2.0]), df_groups=[frame(t=[np.nan, 1.0], v=[1, 2])]
        )
    values = pd.DataFrame({"t": t, "d": np.array(["NaT", "2024-05-05"], dtype="datetime64[ns]")})
    out = AsofMerger("t", n_dfs_per_group=1, allow_exact_matches=[True]).merge(
        t, df_groups=[values]
    )
    assert out["d"].dtype == "datetime64[ns]"
    assert pd.isna(out["d"][0]) and out["d"][1] == pd.Timestamp("2024-05-05")
