"""SegmentedAggregator(window=...): rolling windows at every row, chunked
calls equal to one call and to pandas' rolling per group."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oups import SegmentedAggregator, StatefulLoop
from oups.exceptions import InvalidParameterError, ParameterTypeError, UnsortedError

AGGS = {
    "sum": ("v", "sum"),
    "mean": ("v", "mean"),
    "std": ("v", "std"),
    "var0": ("v", "var", 0),
    "count": ("v", "count"),
    "min": ("v", "min"),
    "max": ("v", "max"),
    "qsum": ("q", "sum"),
}


def reference(df, window, closed, min_periods, by):
    parts = []
    groups = [(None, df)] if by is None else list(df.groupby("g", sort=False))
    for _, sub in groups:
        r = (
            sub.set_index("ts")[["v", "q"]]
            .astype(float)
            .rolling(window, closed=closed, min_periods=min_periods)
        )
        out = pd.DataFrame(
            {
                "sum": r["v"].sum().to_numpy(),
                "mean": r["v"].mean().to_numpy(),
                "std": r["v"].std().to_numpy(),
                "var0": r["v"].var(ddof=0).to_numpy(),
                "count": r["v"].count().to_numpy(),
                "min": r["v"].min().to_numpy(),
                "max": r["v"].max().to_numpy(),
                "qsum": r["q"].sum().to_numpy(),
            },
            index=sub.index,
        )
        parts.append(out)
    return pd.concat(parts).sort_index().reset_index(drop=True)


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 70),
    window=st.sampled_from(["30s", "2min", "1h", 1, 3, 10]),
    closed=st.sampled_from(["right", "left", "both", "neither"]),
    min_periods=st.sampled_from([None, 0, 2]),
    grouped=st.booleans(),
    seed=st.integers(0, 2**16),
    cuts=st.lists(st.integers(0, 70), max_size=5),
)
def test_rolling_matches_pandas_and_chunking(n, window, closed, min_periods, grouped, seed, cuts):
    rng = np.random.default_rng(seed)
    steps = rng.choice([0, 1, 10, 40], n)  # ties, and gaps longer than some windows
    df = pd.DataFrame(
        {
            "ts": pd.Timestamp("2024-03-31 01:50", tz="Europe/Paris")
            + pd.to_timedelta(np.cumsum(steps), unit="s"),
            "g": rng.choice(["a", "b"], n),
            "v": np.where(rng.random(n) < 0.2, np.nan, rng.normal(50, 10, n)),
            "q": rng.integers(-3, 4, n),
        }
    )
    if isinstance(window, int) and min_periods is not None and min_periods > window:
        min_periods = window
    by = "g" if grouped else None

    def make():
        return SegmentedAggregator(
            "ts", by=by, window=window, aggs=AGGS, closed=closed, min_periods=min_periods
        )

    whole = make().agg(df)
    assert list(whole.columns) == make().columns
    pd.testing.assert_series_equal(whole["ts"], df["ts"])
    agg = make()
    bounds = sorted({0, n, *[c % (n + 1) for c in cuts]})
    parts = [agg.agg(df.iloc[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)
    expected = reference(df, window, closed, min_periods, by)
    pd.testing.assert_frame_equal(
        whole[list(AGGS)], expected, check_dtype=False, rtol=1e-12, atol=1e-9
    )


def test_weighted_mean_over_a_trailing_window():
    df = pd.DataFrame(
        {"t": np.arange(6), "px": [10.0, 11, np.nan, 13, 14, 15], "qty": [1.0, 3, 5, 1, 0, 2]}
    )
    out = SegmentedAggregator("t", window=3, aggs={"vwap": ("px", "wmean", "qty")}, min_periods=1)
    got = out.agg(df)["vwap"].to_numpy()
    for i in range(6):
        rows = df.iloc[max(0, i - 2) : i + 1].dropna()
        want = (rows.px * rows.qty).sum() / rows.qty.sum() if rows.qty.sum() else np.nan
        np.testing.assert_allclose(got[i], want, rtol=1e-12)


def test_rolling_state_survives_a_restart(tmp_path):
    path = tmp_path / "roll.state"
    df = pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=300, freq="7s"),
            "sym": pd.Categorical(["x", "y", "z"] * 100),
            "px": np.random.default_rng(1).normal(size=300).cumsum(),
        }
    )
    aggs = {"m": ("px", "mean"), "sd": ("px", "std"), "hi": ("px", "max")}

    def run(chunks):
        loop = StatefulLoop(path)
        agg = loop.bind_object_state(
            SegmentedAggregator("ts", by="sym", window="1min", aggs=aggs), state=["state"]
        )
        out = []
        for ctx in loop.iterate(chunks):
            with ctx as chunk:
                out.append(agg.agg(chunk))
        return out

    first = run([df.iloc[:90], df.iloc[90:150]])
    second = run([df.iloc[150:]])
    whole = SegmentedAggregator("ts", by="sym", window="1min", aggs=aggs).agg(df)
    pd.testing.assert_frame_equal(pd.concat(first + second, ignore_index=True), whole)
    from oups._oups import load_state

    manifest, _ = load_state(path)
    assert '"pickle"' not in manifest


def test_rolling_bad_input():
    ts = pd.date_range("2024-01-01", periods=5, freq="1min")
    df = pd.DataFrame({"ts": ts, "v": np.arange(5.0), "i": np.arange(5)})
    with pytest.raises(InvalidParameterError, match="either 'bins'"):
        SegmentedAggregator("ts", aggs={"m": ("v", "mean")})
    with pytest.raises(InvalidParameterError, match="not available for rolling"):
        SegmentedAggregator("ts", window="5min", aggs={"m": ("v", "first")})
    with pytest.raises(InvalidParameterError, match="'closed' of a rolling"):
        SegmentedAggregator("ts", window="5min", aggs={"m": ("v", "mean")}, closed="middle")
    with pytest.raises(InvalidParameterError, match="'min_periods' applies"):
        SegmentedAggregator("ts", bins="5min", aggs={"m": ("v", "mean")}, min_periods=2)
    with pytest.raises(ParameterTypeError, match="timestamp 'on' column"):
        SegmentedAggregator("i", window="5min", aggs={"m": ("v", "mean")}).agg(df)
    agg = SegmentedAggregator("ts", window="2min", aggs={"m": ("v", "mean")})
    agg.agg(df.iloc[:3])
    before = agg.state
    with pytest.raises(UnsortedError, match="before the end of the previous"):
        agg.agg(df.iloc[:2])
    assert agg.state is before
    bins_state = SegmentedAggregator("ts", bins="5min", aggs={"m": ("v", "mean")})
    bins_state.agg(df)
    with pytest.raises(InvalidParameterError, match="state"):
        SegmentedAggregator(
            "ts", window="2min", aggs={"m": ("v", "mean")}, state=bins_state.state
        ).agg(df)


def test_an_empty_chunk_gives_the_types_of_rows():
    df = pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=4, freq="1min", tz="UTC"),
            "g": pd.Categorical(list("abab")),
            "v": [1.0, 2.0, 3.0, 4.0],
        }
    )
    agg = SegmentedAggregator("ts", by="g", window="2min", aggs={"m": ("v", "mean")})
    full = agg.agg(df.iloc[:2])
    empty = agg.agg(df.iloc[2:2])
    assert empty.empty
    assert empty.dtypes.to_dict() == full.dtypes.to_dict()
