"""Property tests: random write sequences against a pandas model of the semantics."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oups import OrderedParquetDataset, write
from tests.store.merge_model import merge_rows

keys = st.lists(st.integers(0, 60), min_size=0, max_size=25).map(sorted)
write_params = st.fixed_dictionaries(
    {
        "row_group_target_size": st.integers(1, 12),
        "max_n_off_target_rgs": st.one_of(st.none(), st.integers(0, 4)),
    }
)
steps = st.lists(st.tuples(keys, write_params), min_size=1, max_size=8)


def check_layout(ds: OrderedParquetDataset, df: pd.DataFrame | None) -> None:
    stats = ds.row_group_stats
    if df is None:
        assert len(stats) == 0
        return
    assert stats["n_rows"].sum() == len(df)
    mins, maxs = stats["ordered_on_mins"].tolist(), stats["ordered_on_maxs"].tolist()
    assert all(lo <= hi for lo, hi in zip(mins, maxs, strict=True))
    assert all(a <= b for a, b in zip(maxs[:-1], mins[1:], strict=True))
    ids = stats["file_ids"].tolist()
    assert ids == sorted(set(ids))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_without_dedup_all_rows_are_kept_in_write_order(seq):
    tmp = Path(tempfile.mkdtemp())
    try:
        written = []
        for i, (k, params) in enumerate(seq):
            df = pd.DataFrame({"k": np.array(k, dtype="int64"), "w": np.full(len(k), i)})
            df["r"] = np.arange(len(k))
            write(tmp / "ds", ordered_on="k", df=df, **params)
            written.append(df)
        expected = pd.concat(written).sort_values("k", kind="stable").reset_index(drop=True)
        with OrderedParquetDataset(tmp / "ds") as ds:
            out = ds.to_pandas()
            check_layout(ds, out)
        if len(expected) == 0:
            assert out is None
        else:
            pd.testing.assert_frame_equal(out, expected)
    finally:
        shutil.rmtree(tmp)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_dedup_on_key_keeps_the_last_written_row(seq):
    tmp = Path(tempfile.mkdtemp())
    try:
        model: dict[int, int] = {}
        for i, (k, params) in enumerate(seq):
            # Duplicates inside one frame too: the last one of the frame must win.
            df = pd.DataFrame({"k": np.array(k, dtype="int64"), "w": np.arange(len(k)) + 100 * i})
            write(tmp / "ds", ordered_on="k", df=df, duplicates_on="k", **params)
            model.update(zip(df["k"].tolist(), df["w"].tolist(), strict=True))
        with OrderedParquetDataset(tmp / "ds") as ds:
            out = ds.to_pandas()
            check_layout(ds, out)
        if not model:
            assert out is None
            return
        expected = pd.DataFrame({"k": sorted(model), "w": [model[k] for k in sorted(model)]})
        pd.testing.assert_frame_equal(out, expected.astype({"k": "int64", "w": "int64"}))
    finally:
        shutil.rmtree(tmp)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.lists(st.integers(0, 96), min_size=1, max_size=20).map(sorted), min_size=1, max_size=6
    ),
    st.sampled_from(["1h", "3h", "1D", "W"]),
    st.sampled_from([None, 1, 3]),
)
def test_period_targets_keep_one_period_per_new_row_group(frames, freq, max_n):
    tmp = Path(tempfile.mkdtemp())
    try:
        written = []
        for i, hours in enumerate(frames):
            ts = pd.Timestamp("2024-01-01") + pd.to_timedelta(hours, unit="h")
            df = pd.DataFrame({"t": ts.astype("datetime64[ns]"), "w": i})
            write(
                tmp / "ds",
                ordered_on="t",
                df=df,
                row_group_target_size=freq,
                max_n_off_target_rgs=max_n,
            )
            written.append(df)
        expected = pd.concat(written).sort_values("t", kind="stable").reset_index(drop=True)
        with OrderedParquetDataset(tmp / "ds") as ds:
            out = ds.to_pandas()
            check_layout(ds, out)
            if len(frames) == 1:
                # A fresh dataset holds exactly one row group per non-empty period.
                # Fixed frequencies bin by epoch-aligned floor (to_period("3h")
                # would not group 12:00 and 13:00); weeks end on Sunday.
                t = expected["t"]
                periods = t.dt.to_period("W-SUN") if freq == "W" else t.dt.floor(freq)
                assert len(ds) == periods.nunique()
        pd.testing.assert_frame_equal(out, expected)
    finally:
        shutil.rmtree(tmp)


# A stored row goes only when a new row has its duplicates_on values; the same
# writes with any row-group targets give the same rows.
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            keys,
            st.sampled_from([None, ["k"], ["k", "tag"]]),
            st.integers(0, 2),
        ),
        min_size=1,
        max_size=6,
    ),
    st.lists(write_params, min_size=2, max_size=2),
)
def test_duplicates_on_result_does_not_depend_on_the_layout(seq, layouts):
    tmp = Path(tempfile.mkdtemp())
    try:
        outs = []
        for n, params in enumerate(layouts):
            model = pd.DataFrame({"k": [], "tag": [], "w": []}).astype("int64")
            for i, (k, subset, tags) in enumerate(seq):
                df = pd.DataFrame(
                    {
                        "k": np.array(k, dtype="int64"),
                        "tag": np.arange(len(k), dtype="int64") % (tags + 1),
                        "w": np.arange(len(k), dtype="int64") + 100 * i,
                    }
                )
                write(tmp / f"ds{n}", ordered_on="k", df=df, duplicates_on=subset, **params)
                model = merge_rows(model, df, "k", subset)
            with OrderedParquetDataset(tmp / f"ds{n}") as ds:
                out = ds.to_pandas()
                check_layout(ds, out)
            if len(model) == 0:
                assert out is None
                continue
            pd.testing.assert_frame_equal(out, model)
            outs.append(out)
        if len(outs) == 2:
            pd.testing.assert_frame_equal(outs[0], outs[1])
    finally:
        shutil.rmtree(tmp)


def test_duplicates_on_keeps_stored_rows_no_new_row_matches(tmp_path):
    # Three trades share a timestamp; a new trade at another timestamp in the
    # same month must not remove two of them (it did with "MS" targets).
    t = pd.Timestamp("2024-03-05 10:00")
    trades = pd.DataFrame({"ts": [t, t, t], "px": [1.0, 2.0, 3.0]})
    write(tmp_path / "ds", ordered_on="ts", df=trades, row_group_target_size="MS")
    late = pd.DataFrame({"ts": [t + pd.Timedelta("1h")], "px": [4.0]})
    write(
        tmp_path / "ds",
        ordered_on="ts",
        df=late,
        row_group_target_size="MS",
        duplicates_on="ts",
    )
    out = OrderedParquetDataset(tmp_path / "ds").to_pandas()
    assert out["px"].tolist() == [1.0, 2.0, 3.0, 4.0]
    # A new row with the shared timestamp replaces all three stored ones.
    write(
        tmp_path / "ds",
        ordered_on="ts",
        df=trades.iloc[[0]].assign(px=9.0),
        row_group_target_size="MS",
        duplicates_on="ts",
    )
    assert OrderedParquetDataset(tmp_path / "ds").to_pandas()["px"].tolist() == [9.0, 4.0]
