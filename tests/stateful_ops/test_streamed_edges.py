"""SegmentedAggregator(bins="edges"): edges streamed with the chunks
(``agg(chunk, edges=...)``) give exactly the bins of the same edges given at
once, and those of pandas' ``cut``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oups import SegmentedAggregator, StatefulLoop
from oups.exceptions import InvalidParameterError, ParameterTypeError

AGGS = {
    "s": ("v", "sum"),
    "n": ("v", "count"),
    "f": ("q", "first"),
    "l": ("q", "last"),
    "sd": ("v", "std"),
    "rows": ("q", "count"),
}


def data(n, grouped, seed):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "t": np.sort(rng.integers(0, 200, size=n)),
            "v": np.where(rng.random(n) < 0.1, np.nan, rng.integers(-50, 50, size=n) / 4),
            "q": rng.integers(0, 1000, size=n),
        }
    )
    if grouped:
        df["g"] = rng.choice(["a", "b", "c"], size=n)
    return df


def by_pandas(df, edges, by, closed):
    """The non-empty bins, from pandas' cut, sorted by group and label."""
    left = edges[:-1]
    cut = pd.cut(df["t"], edges, right=closed == "right", labels=False)
    df = df.assign(b=cut).dropna(subset=["b"])
    keys = ["b"] if by is None else [by, "b"]
    grouped = df.groupby(keys, sort=True)
    out = pd.DataFrame(
        {"s": grouped["v"].sum(), "n": grouped["v"].count(), "f": grouped["q"].first()}
    ).reset_index()
    out["t"] = left[out["b"].astype(int)]
    return out.drop(columns="b")


def stream(agg, df, edges, cuts, ecuts):
    """Rows in the pieces of ``cuts``; with each, the next edges up to ``ecuts``."""
    bounds = sorted({0, len(df), *[c % (len(df) + 1) for c in cuts]})
    splits = sorted(c % (len(edges) + 1) for c in ecuts)
    parts, given_e = [], 0
    for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        upto = max(given_e, splits[k % len(splits)])
        parts.append(agg.agg(df.iloc[lo:hi], edges=edges[given_e:upto]))
        given_e = upto
    parts.append(agg.agg(df.iloc[:0], edges=edges[given_e:], final=True))
    return pd.concat(parts, ignore_index=True)


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(0, 80),
    m=st.integers(0, 25),
    grouped=st.booleans(),
    closed=st.sampled_from(["left", "right"]),
    label=st.sampled_from(["left", "right"]),
    empty=st.sampled_from(["keep", "drop"]),
    seed=st.integers(0, 2**16),
    cuts=st.lists(st.integers(0, 80), max_size=6),
    ecuts=st.lists(st.integers(0, 25), min_size=1, max_size=6),
)
def test_streamed_edges_equal_edges_given_at_once(
    n, m, grouped, closed, label, empty, seed, cuts, ecuts
):
    df = data(n, grouped, seed)
    edges = np.unique(np.random.default_rng(seed + 1).integers(-10, 215, size=m))
    by = "g" if grouped else None
    options = {"by": by, "closed": closed, "label": label, "empty": empty, "aggs": AGGS}
    streamed = stream(SegmentedAggregator("t", bins="edges", **options), df, edges, cuts, ecuts)
    if len(edges) < 2:
        assert streamed.empty
        return
    whole = SegmentedAggregator("t", bins=edges, **options).agg(df, final=True)
    if whole.empty:
        assert streamed.empty
    else:
        pd.testing.assert_frame_equal(streamed, whole)
    if label == "left":
        ref = by_pandas(df, edges, by, closed)
        got = whole[whole["rows"] > 0] if empty == "keep" else whole
        sort = ["t"] if by is None else [by, "t"]
        got = got.sort_values(sort, ignore_index=True)
        ref = ref.sort_values(sort, ignore_index=True)
        assert got["t"].tolist() == ref["t"].tolist()
        np.testing.assert_allclose(got["s"].to_numpy(float), ref["s"].to_numpy(float))
        assert got["n"].tolist() == ref["n"].tolist()
        assert got["f"].tolist() == ref["f"].tolist()


def test_only_the_edges_still_needed_are_kept(tmp_path):
    rng = np.random.default_rng(3)
    t = np.sort(rng.integers(0, 10**6, size=20_000))
    df = pd.DataFrame({"t": t, "g": rng.choice(["x", "y"], size=len(t)), "v": 1.0})
    edges = np.arange(0, 10**6 + 1, 50)
    whole = SegmentedAggregator("t", by="g", bins=edges, aggs={"n": ("v", "count")}).agg(
        df, final=True
    )

    def run(pieces):
        loop = StatefulLoop(tmp_path / "edges.state")
        agg = loop.bind_object_state(
            SegmentedAggregator("t", by="g", bins="edges", aggs={"n": ("v", "count")}),
            state=["state"],
        )
        out = []
        for ctx in loop.iterate(pieces):
            with ctx as (lo, hi, final):
                chunk = df.iloc[lo:hi]
                # The edges up to a little past the chunk, not given before.
                near = edges[(edges > agg_last(agg)) & (edges < t[hi - 1] + 200)]
                out.append(agg.agg(chunk, edges=near, final=final))
                assert final or len(agg.state["bins"]["edges"]) < 20
        return out

    def agg_last(agg):
        if agg.state is None or not len(agg.state["bins"]["edges"]):
            return -1
        return agg.state["bins"]["edges"][-1]

    bounds = list(range(0, len(df) + 1, 1000))
    pieces = [(lo, hi, hi == len(df)) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    first = run(pieces[:7])
    rest = run(pieces[7:])
    pd.testing.assert_frame_equal(pd.concat(first + rest, ignore_index=True), whole)


def test_bad_edges_leave_the_state_unchanged():
    df = pd.DataFrame({"t": [1, 2, 3, 8], "v": [1.0, 2.0, 3.0, 4.0]})
    agg = SegmentedAggregator("t", bins="edges", aggs={"s": ("v", "sum")})
    agg.agg(df.iloc[:2], edges=[0, 5])
    before = agg.state
    with pytest.raises(InvalidParameterError, match="strictly increasing"):
        agg.agg(df.iloc[2:], edges=[4])
    with pytest.raises(InvalidParameterError, match="strictly increasing"):
        agg.agg(df.iloc[2:], edges=[9, 7])
    with pytest.raises(ParameterTypeError, match="'edges'"):
        agg.agg(df.iloc[2:], edges=pd.to_datetime(["2024-01-01"]))
    assert agg.state is before
    out = agg.agg(df.iloc[2:], edges=[10], final=True)
    assert out.to_dict("list") == {"t": [0, 5], "s": [6.0, 4.0]}


def test_edges_need_bins_edges():
    df = pd.DataFrame({"t": [1, 2], "v": [1.0, 2.0]})
    for bins in (2, [0, 5]):
        agg = SegmentedAggregator("t", bins=bins, aggs={"s": ("v", "sum")})
        with pytest.raises(InvalidParameterError, match="bins='edges'"):
            agg.agg(df, edges=[0, 1])
    rolling = SegmentedAggregator("t", window=2, aggs={"s": ("v", "sum")})
    with pytest.raises(InvalidParameterError, match="'edges'"):
        rolling.agg(df, edges=[0, 1])
    assert repr(SegmentedAggregator("t", bins="edges", aggs={"s": ("v", "sum")})).endswith(
        "bins='edges')"
    )
