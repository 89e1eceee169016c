"""SegmentedAggregator(window=...).agg(chunk, at=queries): rolling windows at
query keys (window joins), against a direct computation per query, chunked
calls against one call, and the state across a restart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oups import SegmentedAggregator, StatefulLoop
from oups.exceptions import (
    ColumnNotFoundError,
    InvalidParameterError,
    ParameterTypeError,
    SchemaMismatchError,
    UnsortedError,
)

AGGS = {
    "sum": ("v", "sum"),
    "mean": ("v", "mean"),
    "std": ("v", "std"),
    "var0": ("v", "var", 0),
    "count": ("v", "count"),
    "min": ("v", "min"),
    "max": ("v", "max"),
    "wmean": ("v", "wmean", "q"),
}
T0 = pd.Timestamp("2024-03-01 09:00", tz="Europe/Paris")


def expected(data, queries, window, closed, min_periods, by):
    """Each query's window computed from scratch with pandas."""
    span = None if isinstance(window, int) else pd.Timedelta(window)
    if min_periods is None:
        min_periods = 1 if span is not None else window
    rows = []
    for q in queries.itertuples(index=False):
        sub = data if by is None else data[data["g"] == q.g]
        if by is not None and pd.isna(q.g):
            sub = data.iloc[:0]
        ts = sub["ts"]
        upto = ts <= q.ts if closed in ("right", "both") else ts < q.ts
        if span is None:
            win = sub[upto].tail(window)
        else:
            after = ts >= q.ts - span if closed in ("left", "both") else ts > q.ts - span
            win = sub[upto & after]
        v = win["v"].astype(float)
        w = win["q"].astype(float)
        valid = v.notna() & w.notna()
        n = int(v.notna().sum())
        enough = n >= min_periods and n > 0
        row = {
            "sum": v.sum() if n >= min_periods else np.nan,
            "mean": v.mean() if enough else np.nan,
            "std": v.std() if enough else np.nan,
            "var0": v.var(ddof=0) if enough else np.nan,
            "count": float(n) if len(win) >= min_periods else np.nan,
            "min": v.min() if enough else np.nan,
            "max": v.max() if enough else np.nan,
        }
        nw = int(valid.sum())
        weights = w[valid].sum()
        row["wmean"] = (
            (v[valid] * w[valid]).sum() / weights
            if nw >= min_periods and nw > 0 and weights != 0
            else np.nan
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=list(AGGS))


def frames(n, m, grouped, seed):
    rng = np.random.default_rng(seed)
    steps = rng.choice([0, 7, 20, 45, 130], size=n)
    ts = T0 + pd.to_timedelta(np.cumsum(steps), unit="s")
    v = rng.integers(-500, 500, size=n) / 10.0
    v[rng.random(n) < 0.15] = np.nan
    q = rng.integers(1, 9, size=n).astype(float)
    data = pd.DataFrame({"ts": ts, "v": v, "q": q})
    span = int(np.sum(steps)) + 120
    qts = T0 + pd.to_timedelta(np.sort(rng.integers(-60, span, size=m)), unit="s")
    # Some queries fall exactly on data keys.
    if n and m:
        exact = rng.random(m) < 0.3
        qts = pd.DatetimeIndex(np.where(exact, ts[rng.integers(0, n, size=m)], qts)).sort_values()
        qts = qts.tz_localize("UTC").tz_convert(T0.tz) if qts.tz is None else qts
    queries = pd.DataFrame({"ts": pd.DatetimeIndex(qts).as_unit("ns")})
    if grouped:
        data["g"] = rng.choice(["a", "b", "c"], size=n)
        queries["g"] = rng.choice(["a", "b", "c", "d", None], size=m, p=[0.3, 0.3, 0.2, 0.1, 0.1])
    data["ts"] = data["ts"].dt.as_unit("ns")
    return data, queries


def passed(closed, q, last):
    """The data seen up to key ``last`` has passed the query at ``q``."""
    return last >= q if closed in ("left", "neither") else last > q


def run_chunked(agg, data, queries, cuts, qcuts):
    """Feeds data in the pieces given by ``cuts``; with each piece, the
    queries up to ``qcuts`` (at least those the piece passes)."""
    bounds = [0, *sorted(cuts), len(data)]
    out = []
    given_q = 0
    for c in range(len(bounds) - 1):
        piece = data.iloc[bounds[c] : bounds[c + 1]]
        if len(piece):
            last = piece["ts"].iloc[-1]
            needed = int(sum(passed(agg.closed, q, last) for q in queries["ts"]))
        else:
            needed = given_q
        upto = max(given_q, needed, min(qcuts[c % len(qcuts)], len(queries)))
        out.append(agg.agg(piece, at=queries.iloc[given_q:upto]))
        given_q = upto
    out.append(agg.agg(data.iloc[:0], at=queries.iloc[given_q:], final=True))
    return pd.concat(out, ignore_index=True)


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(0, 60),
    m=st.integers(0, 30),
    window=st.sampled_from(["30s", "2min", "10min", 1, 3, 8]),
    closed=st.sampled_from(["right", "left", "both", "neither"]),
    min_periods=st.sampled_from([None, 0, 2]),
    grouped=st.booleans(),
    seed=st.integers(0, 2**16),
    cuts=st.lists(st.integers(0, 60), max_size=6),
    qcuts=st.lists(st.integers(0, 30), min_size=1, max_size=6),
)
def test_queries_match_pandas_and_chunking(
    n, m, window, closed, min_periods, grouped, seed, cuts, qcuts
):
    if isinstance(window, int) and closed in ("both", "neither"):
        closed = "right" if closed == "both" else "left"
    data, queries = frames(n, m, grouped, seed)
    by = "g" if grouped else None

    def make():
        return SegmentedAggregator(
            "ts", by=by, window=window, closed=closed, min_periods=min_periods, aggs=AGGS
        )

    whole = make().agg(data, at=queries, final=True)
    assert len(whole) == len(queries)
    assert whole.columns.tolist() == [*([by] if by else []), "ts", *AGGS]
    pd.testing.assert_series_equal(whole["ts"], queries["ts"], check_names=False)
    if grouped:
        assert whole["g"].tolist() == queries["g"].tolist()
    ref = expected(data, queries, window, closed, min_periods, by)
    for name in AGGS:
        np.testing.assert_allclose(
            whole[name].to_numpy(float),
            ref[name].to_numpy(float),
            rtol=1e-9,
            atol=1e-9,
            err_msg=name,
        )
    chunked = run_chunked(make(), data, queries, [c for c in cuts if c <= n], qcuts)
    pd.testing.assert_frame_equal(chunked, whole)


def test_trades_at_quote_times():
    trades = pd.DataFrame(
        {
            "ts": pd.to_datetime(
                ["2024-01-02 09:00", "2024-01-02 09:01", "2024-01-02 09:03", "2024-01-02 09:07"]
            ),
            "px": [10.0, 11.0, 12.0, 13.0],
            "qty": [1.0, 3.0, 1.0, 2.0],
        }
    )
    quotes = pd.DataFrame(
        {"ts": pd.to_datetime(["2024-01-02 09:01", "2024-01-02 09:05", "2024-01-02 09:09"])}
    )
    agg = SegmentedAggregator(
        "ts",
        window="5min",
        aggs={"vwap": ("px", "wmean", "qty"), "volume": ("qty", "sum"), "n": ("px", "count")},
    )
    out = agg.agg(trades, at=quotes, final=True)
    assert out["ts"].tolist() == quotes["ts"].tolist()
    # (08:56, 09:01] holds the trades at 09:00 and 09:01; (09:00, 09:05]
    # those at 09:01 and 09:03; (09:04, 09:09] the one at 09:07.
    assert out["vwap"].tolist() == [(10 + 33) / 4, (33 + 12) / 4, 13.0]
    assert out["volume"].tolist() == [4.0, 4.0, 2.0]
    assert out["n"].tolist() == [2, 2, 1]
    # A query waits until a row passes its key, or the end of the stream.
    agg = SegmentedAggregator("ts", window="5min", aggs={"volume": ("qty", "sum")})
    assert agg.agg(trades.iloc[:2], at=quotes).empty
    first = agg.agg(trades.iloc[2:3])
    assert first["volume"].tolist() == [4.0]
    # At the end, the last window holds no trade: null, as pandas' sum with
    # min_periods=1.
    assert agg.flush().to_pydict()["volume"] == [4.0, None]


def test_keys_alone_when_there_is_no_by():
    data = pd.DataFrame({"t": [1, 2, 3, 4, 5], "v": [1.0, 2.0, 3.0, 4.0, 5.0]})
    agg = SegmentedAggregator("t", window=2, aggs={"s": ("v", "sum")})
    out = agg.agg(data, at=np.array([2, 2, 4, 9]), final=True)
    assert out.to_dict("list") == {"t": [2, 2, 4, 9], "s": [3.0, 3.0, 7.0, 9.0]}
    agg = SegmentedAggregator("ts", window="1min", aggs={"s": ("v", "sum")})
    ts = pd.date_range("2024-01-01", periods=3, freq="30s")
    out = agg.agg(pd.DataFrame({"ts": ts, "v": [1.0, 2.0, 4.0]}), at=ts[1:], final=True)
    assert out["s"].tolist() == [3.0, 6.0]


def test_groups_and_frame_types():
    pl = pytest.importorskip("polars")
    data = pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=6, freq="1min"),
            "sym": pd.Categorical(["a", "b", "a", "b", "a", None]),
            "v": [1.0, 10.0, 2.0, 20.0, 3.0, 99.0],
        }
    )
    queries = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2024-01-01 00:02", "2024-01-01 00:04"] * 2),
            "sym": ["a"] * 2 + ["b", "z"],
        }
    ).sort_values("ts", kind="stable", ignore_index=True)
    aggs = {"s": ("v", "sum"), "n": ("v", "count")}
    agg = SegmentedAggregator("ts", by="sym", window="3min", min_periods=0, aggs=aggs)
    out = agg.agg(data, at=queries, final=True)
    assert out["sym"].tolist() == ["a", "b", "a", "z"]
    assert out["s"].tolist() == [3.0, 10.0, 5.0, 0.0]
    assert out["n"].tolist() == [2, 1, 2, 0]
    as_arrow = SegmentedAggregator("ts", by="sym", window="3min", min_periods=0, aggs=aggs).agg(
        pa.Table.from_pandas(data), at=pa.Table.from_pandas(queries), final=True
    )
    assert as_arrow.column("s").to_pylist() == [3.0, 10.0, 5.0, 0.0]
    as_polars = SegmentedAggregator("ts", by="sym", window="3min", min_periods=0, aggs=aggs).agg(
        pl.from_pandas(data), at=pl.from_pandas(queries), final=True
    )
    assert as_polars["sym"].to_list() == ["a", "b", "a", "z"]


def test_state_survives_a_restart(tmp_path):
    data, queries = frames(400, 120, True, 7)
    whole = SegmentedAggregator("ts", by="g", window="5min", aggs=AGGS).agg(
        data, at=queries, final=True
    )
    pieces = []
    given_q = 0
    for i in range(4):
        piece = data.iloc[i * 100 : (i + 1) * 100]
        # Each piece brings the queries up to the end of the next one: some wait.
        ahead = data["ts"].iloc[min(len(data), (i + 2) * 100) - 1]
        upto = int((queries["ts"] < ahead).sum()) if i < 3 else len(queries)
        pieces.append((piece, queries.iloc[given_q:upto], i == 3))
        given_q = upto

    def run(chunks):
        loop = StatefulLoop(tmp_path / "join.state")
        agg = loop.bind_object_state(
            SegmentedAggregator("ts", by="g", window="5min", aggs=AGGS), state=["state"]
        )
        out = []
        for ctx in loop.iterate(chunks):
            with ctx as (piece, at, final):
                out.append(agg.agg(piece, at=at, final=final))
        return out, agg

    first, agg = run(pieces[:2])
    # The queries not answered yet wait in the persisted state.
    assert agg.state["queries"].num_rows > 0
    second, _ = run(pieces[2:])
    pd.testing.assert_frame_equal(pd.concat(first + second, ignore_index=True), whole)


def test_bad_queries_leave_the_state_unchanged():
    data = pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=4, freq="1min"), "v": 1.0})
    agg = SegmentedAggregator("ts", window="2min", aggs={"s": ("v", "sum")})
    first = agg.agg(data.iloc[:3], at=data[["ts"]].iloc[1:2])
    assert first["s"].tolist() == [2.0]
    before = agg.state
    with pytest.raises(UnsortedError, match="'at' is not sorted"):
        agg.agg(data.iloc[3:], at=data[["ts"]].iloc[::-1])
    with pytest.raises(UnsortedError, match="window is gone"):
        agg.agg(data.iloc[3:], at=data[["ts"]].iloc[1:2])
    with pytest.raises(UnsortedError, match="previous queries"):
        agg.agg(data.iloc[3:], at=data[["ts"]].iloc[:1])
    with pytest.raises(ColumnNotFoundError, match="'at'"):
        agg.agg(data.iloc[3:], at=pd.DataFrame({"x": [1]}))
    with pytest.raises(SchemaMismatchError, match="'at'"):
        agg.agg(data.iloc[3:], at=data[["ts"]].assign(ts=data["ts"].dt.tz_localize("UTC")))
    assert agg.state is before
    out = agg.agg(data.iloc[3:], at=data[["ts"]].iloc[2:], final=True)
    assert out["s"].tolist() == [2.0, 2.0]


def test_at_needs_a_rolling_window_of_the_same_kind():
    data = pd.DataFrame({"t": [1, 2, 3], "v": [1.0, 2.0, 3.0]})
    bins = SegmentedAggregator("t", bins=2, aggs={"s": ("v", "sum")})
    with pytest.raises(InvalidParameterError, match="'at'"):
        bins.agg(data, at=np.array([2]))
    rows = SegmentedAggregator("t", window=2, closed="both", aggs={"s": ("v", "sum")})
    with pytest.raises(InvalidParameterError, match="'both' or 'neither'"):
        rows.agg(data, at=np.array([2]))
    every = SegmentedAggregator("t", window=2, aggs={"s": ("v", "sum")})
    every.agg(data)
    with pytest.raises(InvalidParameterError, match="every row"):
        every.agg(data, at=np.array([4]))
    grouped = SegmentedAggregator("t", by="g", window=2, aggs={"s": ("v", "sum")})
    with pytest.raises(ParameterTypeError, match="'at'"):
        grouped.agg(data.assign(g="a"), at=np.array([2]))


def test_query_groups_in_another_string_layout():
    data = pd.DataFrame(
        {"t": [1, 2, 3], "g": pd.Categorical(["a", "b", "a"]), "v": [1.0, 2.0, 3.0]}
    )
    agg = SegmentedAggregator("t", by="g", window=2, min_periods=1, aggs={"s": ("v", "sum")})
    queries = pa.table({"t": [3, 3], "g": pa.array(["a", "b"], type=pa.large_string())})
    out = agg.agg(pa.Table.from_pandas(data), at=queries, final=True)
    assert out.column("s").to_pylist() == [4.0, 2.0]
    ints = pa.table({"t": [3], "g": [1]})
    with pytest.raises(SchemaMismatchError, match="'at'\\['g'\\]"):
        SegmentedAggregator("t", by="g", window=2, aggs={"s": ("v", "sum")}).agg(data, at=ints)
