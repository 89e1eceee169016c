"""SegmentedAggregator: chunked calls equal one call, and one call equals
pandas (time bins) or a plain Python model (row, threshold and edge bins)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from oups import SegmentedAggregator, StatefulLoop, Threshold
from oups.exceptions import (
    ColumnNotFoundError,
    InvalidParameterError,
    ParameterTypeError,
    SchemaMismatchError,
    UnsortedError,
)

AGGS = {
    "first": ("v", "first"),
    "last": ("v", "last"),
    "min": ("v", "min"),
    "max": ("v", "max"),
    "sum": ("v", "sum"),
    "mean": ("v", "mean"),
    "count": ("v", "count"),
    "std": ("v", "std"),
    "var0": ("v", "var", 0),
    "nunique": ("v", "nunique"),
    "qsum": ("q", "sum"),
    "qmax": ("q", "max"),
    "wmean": ("v", "wmean", "w"),
    "rows": ("w", "count"),
}
FREQS = ["1min", "5min", "7min", "1h", "90min", "1D", "2D", "W-MON", "W", "MS", "ME"]


def reference_resample(df, freq, by, closed, label, origin):
    """pandas on the whole frame, one group at a time. Each group starts with a
    row at the stream's first key whose values are all missing: the bins of
    every group are then on the grid of the stream's first row, as oups makes
    them (pandas' groupby().resample puts each group on its own). Empty bins
    before a group's first row or after its last are dropped: pandas adds one,
    for calendar frequencies closed on the right, when the first row falls
    after midnight of an anchor day."""
    offset = pd.tseries.frequencies.to_offset(freq)
    naive_day = type(offset).__name__ == "Day" and df["ts"].dt.tz is None
    tick = isinstance(offset, pd.offsets.Tick) or naive_day  # pandas 3: Day is no Tick
    kwargs = {"closed": closed, "label": label, **({"origin": origin} if tick else {})}
    parts = []
    groups = [(None, df)] if by is None else list(df.groupby("g", sort=True))
    for key, sub in groups:
        lead = pd.DataFrame({"ts": df["ts"].iloc[:1], "v": np.nan, "q": np.nan, "w": np.nan})
        sub = pd.concat([lead, sub.drop(columns="g")], ignore_index=True).set_index("ts")
        r = sub.resample(freq, **kwargs)
        out = pd.DataFrame(
            {
                "first": r["v"].first(),
                "last": r["v"].last(),
                "min": r["v"].min(),
                "max": r["v"].max(),
                "sum": r["v"].sum(),
                "mean": r["v"].mean(),
                "count": r["v"].count(),
                "std": r["v"].std(),
                "var0": r["v"].var(ddof=0),
                "nunique": r["v"].nunique(),
                "qsum": r["q"].sum(),
                "qmax": r["q"].max(),
            }
        )
        out["rows"] = r["w"].count()
        valid = sub["v"].notna() & sub["w"].notna()
        pw = (sub["v"] * sub["w"]).where(valid, 0.0)
        ww = sub["w"].where(valid, 0.0)
        num = pw.resample(freq, **kwargs).sum()
        den = ww.resample(freq, **kwargs).sum()
        out["wmean"] = (num / den).where(den != 0)
        out.index.name = "ts"
        occupied = np.flatnonzero(out["rows"].to_numpy() > 0)
        out = out.iloc[occupied[0] : occupied[-1] + 1].reset_index()
        if by is not None:
            out.insert(0, "g", key)
        parts.append(out)
    return pd.concat(parts, ignore_index=True)


def chunked(agg, df, cuts):
    bounds = sorted({0, len(df), *[c % (len(df) + 1) for c in cuts]})
    parts = [agg.agg(df.iloc[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    parts.append(agg.agg(df.iloc[len(df) :], final=True))
    return pd.concat([p for p in parts if len(p)], ignore_index=True) if parts else None


def frame_strategy():
    @st.composite
    def build(draw):
        freq = draw(st.sampled_from(FREQS))
        tz = draw(st.sampled_from([None, "UTC", "Europe/Paris"]))
        n = draw(st.integers(1, 60))
        tick = pd.Timedelta(freq) if freq[-1] in "nhD" and freq not in ("MS",) else None
        scale = (tick or pd.Timedelta(days=3)) / 3
        steps = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
        base = pd.Timestamp(draw(st.sampled_from(["2024-03-30 22:13", "2024-10-26 23:59:30"])))
        ts = pd.DatetimeIndex(base + scale * np.cumsum(steps)).as_unit("ns")
        if tz:
            ts = ts.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
            assume(not ts.hasnans and ts.is_monotonic_increasing)
        v = draw(
            st.lists(
                st.one_of(st.floats(-1e3, 1e3), st.just(float("nan")), st.just(1.5)),
                min_size=n,
                max_size=n,
            )
        )
        df = pd.DataFrame(
            {
                "ts": ts,
                "g": draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n)),
                "v": v,
                "q": draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n)),
                "w": draw(st.lists(st.integers(1, 4), min_size=n, max_size=n)),
            }
        )
        return freq, df

    return build()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=frame_strategy(),
    grouped=st.booleans(),
    closed=st.sampled_from([None, "left", "right"]),
    label=st.sampled_from([None, "left", "right"]),
    origin=st.sampled_from(["start_day", "start_day", "start", "epoch"]),
    cuts=st.lists(st.integers(0, 60), max_size=6),
)
def test_time_bins_match_pandas_and_chunking(case, grouped, closed, label, origin, cuts):
    freq, df = case
    by = "g" if grouped else None

    def make():
        return SegmentedAggregator(
            "ts", by=by, bins=freq, aggs=AGGS, closed=closed, label=label, origin=origin
        )

    whole = make().agg(df, final=True)
    streamed = chunked(make(), df, cuts)
    pd.testing.assert_frame_equal(streamed, whole)
    agg = make()
    expected = reference_resample(df, freq, by, agg.closed, agg.label, origin)
    keys = ["g", "ts"] if by else ["ts"]
    mine = whole.sort_values(keys, kind="stable").reset_index(drop=True)
    assert list(mine.columns) == agg.columns
    pd.testing.assert_frame_equal(
        mine[expected.columns], expected, check_dtype=False, rtol=1e-12, atol=1e-9
    )


def model_rows(df, bins, label):
    """Row-count or threshold bins, one Python loop per group."""
    rows = []
    for key, sub in df.groupby("g", sort=True):
        current: list[int] = []
        running = 0.0
        bars = []
        for i in sub.index:
            current.append(i)
            if isinstance(bins, int):
                close = len(current) == bins
            else:
                x = df.at[i, bins.column]
                running += 0.0 if pd.isna(x) else float(x)
                close = running >= bins.value
            if close:
                bars.append(current)
                current, running = [], 0.0
        if current:
            bars.append(current)
        for bar in bars:
            part = df.loc[bar]
            rows.append(
                {
                    "g": key,
                    "ts": part["ts"].iloc[0 if label == "left" else -1],
                    "sum": part["v"].sum(),
                    "count": part["v"].count(),
                    "qmax": part["q"].max(),
                }
            )
    return pd.DataFrame(rows)


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 80),
    bins=st.one_of(st.integers(1, 7), st.floats(0.5, 20).map(lambda x: Threshold("w", x))),
    label=st.sampled_from(["left", "right"]),
    seed=st.integers(0, 2**16),
    cuts=st.lists(st.integers(0, 80), max_size=5),
)
def test_row_and_threshold_bins_match_a_model(n, bins, label, seed, cuts):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "ts": np.sort(rng.integers(0, 50, n)),
            "g": rng.choice(["a", "b"], n),
            "v": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
            "q": rng.integers(-9, 9, n),
            "w": rng.integers(0, 6, n).astype(float),
        }
    )
    aggs = {"sum": ("v", "sum"), "count": ("v", "count"), "qmax": ("q", "max")}

    def make():
        return SegmentedAggregator("ts", by="g", bins=bins, aggs=aggs, label=label)

    whole = make().agg(df, final=True)
    pd.testing.assert_frame_equal(chunked(make(), df, cuts), whole)
    expected = model_rows(df, bins, label)
    mine = whole.sort_values(["g", "ts"], kind="stable").reset_index(drop=True)
    expected = expected.sort_values(["g", "ts"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, expected[mine.columns], check_dtype=False, rtol=1e-12)


def test_threshold_bars_close_on_the_crossing_row():
    df = pd.DataFrame({"t": np.arange(6), "qty": [4.0, 5, 2, 9, 1, 1]})
    out = SegmentedAggregator(
        "t", bins=Threshold("qty", 10), aggs={"vol": ("qty", "sum"), "n": ("qty", "count")}
    ).agg(df, final=True)
    # 4+5+2 = 11 crosses at row 2; 9+1 = 10 reaches it at row 4; row 5 is the open bar.
    assert out["t"].tolist() == [0, 3, 5]
    assert out["vol"].tolist() == [11, 10, 1]
    assert out["n"].tolist() == [3, 2, 1]


QUOTES = pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:01", "2024-01-01 10:05"])
TRADES = pd.DataFrame(
    {
        "ts": pd.to_datetime(
            [
                "2024-01-01 09:59",
                "2024-01-01 10:00",
                "2024-01-01 10:00:30",
                "2024-01-01 10:03",
                "2024-01-01 10:05",
                "2024-01-01 10:06",
            ],
            format="ISO8601",
        ),
        "qty": [100, 1, 2, 3, 4, 200],
    }
)


def test_explicit_edges_aggregate_between_quote_times():
    agg = SegmentedAggregator("ts", bins=QUOTES, aggs={"vol": ("qty", "sum")})
    out = pd.concat([agg.agg(TRADES.iloc[:3]), agg.agg(TRADES.iloc[3:], final=True)])
    assert out["ts"].tolist() == list(QUOTES[:2])
    assert out["vol"].tolist() == [3, 3]  # 09:59 and the rows from 10:05 are outside


def test_streamed_edges_between_quote_times():
    agg = SegmentedAggregator("ts", bins="edges", aggs={"vol": ("qty", "sum")})
    # Rows past the last edge wait: the bin after 10:00 has no end yet.
    assert agg.agg(TRADES.iloc[:3], edges=QUOTES[:1]).empty
    assert len(agg.state["held"]) == 2
    first = agg.agg(TRADES.iloc[3:5], edges=QUOTES[1:])
    assert first["ts"].tolist() == [QUOTES[0]]
    assert first["vol"].tolist() == [3]
    last = agg.agg(TRADES.iloc[5:], final=True)
    assert last["vol"].tolist() == [3]  # 10:05 and later are past the last edge


def test_empty_bins_kept_or_dropped_and_int_results_keep_their_dtype():
    df = pd.DataFrame(
        {"ts": pd.to_datetime(["2024-01-01 00:00", "2024-01-01 00:21"]), "q": [3, 4]}
    ).astype({"q": "int32"})
    aggs = {"q": ("q", "first"), "n": ("q", "count"), "s": ("q", "sum")}
    kept = SegmentedAggregator("ts", bins="10min", aggs=aggs).agg(pa.Table.from_pandas(df), True)
    assert kept.column("n").to_pylist() == [1, 0, 1]
    assert kept.column("s").to_pylist() == [3, 0, 4]
    assert kept.column("q").to_pylist() == [3, None, 4]
    assert kept.schema.field("q").type == pa.int32()
    dropped = SegmentedAggregator("ts", bins="10min", aggs=aggs, empty="drop").agg(df, True)
    assert dropped["n"].tolist() == [1, 1]


def test_tz_aware_calendar_days_follow_the_wall_clock():
    ts = pd.date_range("2024-03-30", "2024-04-01 23:00", freq="1h", tz="Europe/Paris")
    df = pd.DataFrame({"ts": ts, "v": 1.0})
    out = SegmentedAggregator("ts", bins="1D", aggs={"n": ("v", "count")}).agg(df, final=True)
    assert out["n"].tolist() == [24, 23, 24]  # 31 March has 23 hours in Paris
    assert str(out["ts"].dt.tz) == "Europe/Paris"
    assert (out["ts"].dt.hour == 0).all()


def test_polars_and_pyarrow_chunks_give_the_same_frames():
    pl = pytest.importorskip("polars")
    ts = pd.date_range("2024-01-01", periods=50, freq="47s")
    df = pd.DataFrame({"ts": ts, "g": ["x", "y"] * 25, "v": np.arange(50.0)})
    aggs = {"ohlc": ("v", "ohlc"), "n": ("v", "count")}
    make = lambda: SegmentedAggregator("ts", by="g", bins="5min", aggs=aggs)  # noqa: E731
    from_pandas = make().agg(df, final=True)
    from_arrow = make().agg(pa.Table.from_pandas(df, preserve_index=False), final=True)
    from_polars = make().agg(pl.from_pandas(df), final=True)
    assert list(from_pandas.columns) == [
        "g",
        "ts",
        "ohlc_open",
        "ohlc_high",
        "ohlc_low",
        "ohlc_close",
        "n",
    ]
    pd.testing.assert_frame_equal(from_arrow.to_pandas(), from_pandas)
    pd.testing.assert_frame_equal(from_polars.to_pandas(), from_pandas, check_dtype=False)


def test_state_survives_a_restart_through_stateful_loop(tmp_path):
    path = tmp_path / "bars.state"
    ts = pd.date_range("2024-01-01", periods=400, freq="13s", tz="UTC")
    df = pd.DataFrame(
        {"ts": ts, "sym": pd.Categorical(["a", "b", "c", "a"] * 100), "px": np.arange(400.0)}
    )
    aggs = {"bar": ("px", "ohlc"), "n": ("px", "count"), "u": ("px", "nunique")}

    def run(chunks):
        loop = StatefulLoop(path)
        agg = loop.bind_object_state(
            SegmentedAggregator("ts", by="sym", bins="5min", aggs=aggs), state=["state"]
        )
        outs = []
        for ctx in loop.iterate(chunks):
            with ctx as chunk:
                outs.append(agg.agg(chunk))
        return outs, agg

    first, _ = run([df.iloc[:100], df.iloc[100:170]])
    second, agg = run([df.iloc[170:]])
    rest = agg.agg(df.iloc[:0], final=True)
    whole = SegmentedAggregator("ts", by="sym", bins="5min", aggs=aggs).agg(df, final=True)
    pd.testing.assert_frame_equal(pd.concat([*first, *second, rest], ignore_index=True), whole)
    from oups._oups import load_state

    manifest, _ = load_state(path)
    assert '"pickle"' not in manifest


def _bad_input_keeps_state(agg, chunk, error, match):
    before = agg.state
    with pytest.raises(error, match=match):
        agg.agg(chunk)
    assert agg.state is before


def test_bad_input_raises_clear_errors_and_keeps_the_state():
    ts = pd.date_range("2024-01-01", periods=10, freq="1min")
    df = pd.DataFrame({"ts": ts, "v": np.arange(10.0), "s": list("abcdefghij")})
    agg = SegmentedAggregator("ts", bins="5min", aggs={"m": ("v", "mean")})
    agg.agg(df.iloc[:6])
    _bad_input_keeps_state(agg, df.iloc[:3], UnsortedError, "before the end of the previous")
    _bad_input_keeps_state(agg, df.iloc[::-1], UnsortedError, "not sorted")
    _bad_input_keeps_state(agg, df.drop(columns="v"), ColumnNotFoundError, "'v'")
    _bad_input_keeps_state(
        agg, df.iloc[6:].astype({"v": "int64"}), SchemaMismatchError, "'v' was double"
    )
    nat = df.iloc[6:].copy()
    nat["ts"] = pd.Series(pd.NaT, index=nat.index, dtype=df["ts"].dtype)
    _bad_input_keeps_state(agg, nat, UnsortedError, "NaT")
    out = agg.agg(df.iloc[6:], final=True)
    assert out["m"].tolist() == [7.0]  # the first call emitted [0, 5), closed by 00:05
    with pytest.raises(InvalidParameterError, match="unknown aggregation 'median'"):
        SegmentedAggregator("ts", bins="5min", aggs={"m": ("v", "median")})
    with pytest.raises(InvalidParameterError, match="weight column"):
        SegmentedAggregator("ts", bins="5min", aggs={"m": ("v", "wmean")})
    with pytest.raises(InvalidParameterError, match="not a frequency"):
        SegmentedAggregator("ts", bins="xyz", aggs={"m": ("v", "sum")})
    with pytest.raises(InvalidParameterError, match="'end'"):
        SegmentedAggregator("ts", bins="5min", aggs={"m": ("v", "sum")}, origin="end")
    with pytest.raises(ParameterTypeError, match="string"):
        SegmentedAggregator("ts", bins="5min", aggs={"m": ("s", "sum")}).agg(df)
    with pytest.raises(ParameterTypeError, match="timestamp 'on' column"):
        SegmentedAggregator("v", bins="5min", aggs={"m": ("v", "sum")}).agg(df.assign(v=1))
    with pytest.raises(InvalidParameterError, match="state"):
        SegmentedAggregator("ts", bins="5min", aggs={"m": ("v", "sum")}, state={"x": 1}).agg(df)


def test_hostile_state_is_refused():
    ts = pd.date_range("2024-01-01", periods=10, freq="1min")
    df = pd.DataFrame({"ts": ts, "v": np.arange(10.0)})
    agg = SegmentedAggregator("ts", bins="5min", aggs={"m": ("v", "mean")})
    agg.agg(df.iloc[:7])
    other = SegmentedAggregator("ts", bins="5min", aggs={"m": ("v", "std")}, state=agg.state)
    with pytest.raises(InvalidParameterError, match="state"):
        other.agg(df.iloc[7:])
    broken = dict(agg.state)
    broken["slots"] = broken["slots"].drop_columns(["n_rows"])
    with pytest.raises(InvalidParameterError, match="n_rows"):
        SegmentedAggregator("ts", bins="5min", aggs={"m": ("v", "mean")}, state=broken).agg(
            df.iloc[7:]
        )


def test_an_empty_first_chunk_does_not_fix_the_types():
    # pandas gives an empty object column no type: the first values set it.
    agg = SegmentedAggregator("t", by="g", bins=2, aggs={"n": ("v", "count")})
    empty = pd.DataFrame({"t": pd.Series([], dtype="int64"), "g": [], "v": []})
    agg.agg(empty.astype({"v": float}))
    out = agg.agg(pd.DataFrame({"t": [1, 2, 3], "g": ["a", "a", None], "v": 1.0}), final=True)
    assert out.to_dict("list") == {"g": ["a"], "t": [1], "n": [2]}


def test_a_categorical_by_with_missing_values():
    df = pd.DataFrame(
        {"t": [1, 2, 3, 4], "g": pd.Categorical(["a", None, "b", "a"]), "v": [1.0, 2.0, 3.0, 4.0]}
    )
    out = SegmentedAggregator("t", by="g", bins=10, aggs={"s": ("v", "sum")}).agg(df, final=True)
    assert out["g"].tolist() == ["a", "b"]
    assert out["s"].tolist() == [5.0, 3.0]


def test_a_pickled_aggregator_continues_the_stream():
    import copy
    import pickle

    df = pd.DataFrame(
        {"t": np.arange(40), "g": pd.Categorical(list("ab") * 20), "v": np.arange(40.0)}
    )
    for options in ({"bins": 7}, {"window": 5}):
        whole = SegmentedAggregator("t", by="g", aggs={"s": ("v", "sum")}, **options)
        expected = whole.agg(df, final=True)
        agg = SegmentedAggregator("t", by="g", aggs={"s": ("v", "sum")}, **options)
        first = agg.agg(df.iloc[:15])
        for twin in (pickle.loads(pickle.dumps(agg)), copy.deepcopy(agg)):
            rest = twin.agg(df.iloc[15:], final=True)
            pd.testing.assert_frame_equal(pd.concat([first, rest], ignore_index=True), expected)
