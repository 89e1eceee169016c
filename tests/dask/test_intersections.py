"""oups.dask.map_intersections on a LocalCluster: ranges in parallel, seeded
by their warm-up rows, equal one sequential pass."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

import oups.dask
from oups import SegmentedAggregator, Store, toplevel
from oups.exceptions import InvalidParameterError, ParameterTypeError


@toplevel
class Feed:
    name: str


WINDOW = 5  # rows of the trailing windows: the warm-up needs WINDOW - 1


def features(chunks: Iterator[dict[Any, pd.DataFrame]], start: Any, end_excl: Any) -> pd.DataFrame:
    """Per trade: the trailing mean of its last WINDOW prices, and the last
    quote at or before it (as-of); the state both carry comes from the
    warm-up rows."""
    roll = SegmentedAggregator("ts", window=WINDOW, aggs={"mean": ("px", "mean")})
    last_quote = np.nan
    out = []
    for chunk in chunks:
        trades, quotes = chunk.get(Feed("trades")), chunk.get(Feed("quotes"))
        if trades is None or not len(trades):
            if quotes is not None and len(quotes):
                last_quote = quotes["bid"].iloc[-1]
            continue
        means = roll.agg(trades)
        merged = (
            pd.merge_asof(trades[["ts"]], quotes[["ts", "bid"]], on="ts")
            if quotes is not None and len(quotes)
            else trades[["ts"]].assign(bid=np.nan)
        )
        bid = merged["bid"].to_numpy().copy()
        # Before the chunk's first quote, the last quote of earlier chunks.
        missing = np.isnan(bid)
        first_valid = np.argmax(~missing) if (~missing).any() else len(bid)
        bid[:first_valid] = last_quote
        if quotes is not None and len(quotes):
            last_quote = quotes["bid"].iloc[-1]
        out.append(
            pd.DataFrame(
                {"ts": trades["ts"].to_numpy(), "mean": means["mean"].to_numpy(), "bid": bid}
            )
        )
    result = (
        pd.concat(out, ignore_index=True)
        if out
        else pd.DataFrame({"ts": pd.Series([], dtype="datetime64[ns, UTC]"), "mean": [], "bid": []})
    )
    if start is not None:
        result = result[result["ts"] >= start]
    return result.reset_index(drop=True)


@pytest.fixture
def store(store_base) -> Store:
    """The same store on local disk and on the local S3 server."""
    rng = np.random.default_rng(7)
    s = Store(store_base, Feed)
    t0 = pd.Timestamp("2024-05-01", tz="UTC")
    trades = pd.DataFrame(
        {
            "ts": t0 + pd.to_timedelta(np.sort(rng.integers(0, 86_400, 3_000)), unit="s"),
            "px": 100 + rng.standard_normal(3_000).cumsum(),
        }
    ).drop_duplicates("ts")
    quotes = pd.DataFrame(
        {
            "ts": t0
            + pd.to_timedelta(np.sort(rng.integers(0, 86_400, 1_000)), unit="s")
            + pd.Timedelta("500ms"),
            "bid": 99 + rng.standard_normal(1_000).cumsum(),
        }
    ).drop_duplicates("ts")
    s[Feed("trades")].write(ordered_on="ts", df=trades, row_group_target_size=400)
    s[Feed("quotes")].write(ordered_on="ts", df=quotes, row_group_target_size=150)
    return s


def sequential(store: Store) -> pd.DataFrame:
    keys = [Feed("trades"), Feed("quotes")]
    return features(store.iter_intersections(keys), None, None)


def test_ranges_in_parallel_equal_one_sequential_pass(client, store):
    expected = sequential(store)
    t0 = pd.Timestamp("2024-05-01", tz="UTC")
    bounds = [None, *(t0 + pd.Timedelta(hours=h) for h in (3, 7.5, 12, 20)), None]
    meta = features(iter([]), None, None)
    parts = oups.dask.map_intersections(
        store,
        [Feed("trades"), Feed("quotes")],
        features,
        bounds,
        n_prev=[WINDOW - 1, 1],
        meta=meta,
    )
    assert parts.npartitions == 5
    got = parts.compute().reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected)
    # Without the warm-up, the first rows of each range differ.
    cold = oups.dask.map_intersections(
        store, [Feed("trades"), Feed("quotes")], features, bounds, meta=meta
    )
    assert not cold.compute().reset_index(drop=True).equals(expected)


def test_delayed_results_and_pinned_versions(client, store):
    if store.is_remote:
        pytest.skip("object storage has no leases (docs/storage.md): vacuums may remove a version")
    before = sequential(store)
    pieces = oups.dask.map_intersections(
        store, [Feed("trades"), Feed("quotes")], features, [None, None], n_prev=4
    )
    store[Feed("trades")].write(
        df=pd.DataFrame({"ts": [pd.Timestamp("2024-06-01", tz="UTC")], "px": [1.0]})
    )
    store.vacuum(keep_versions=1)
    (only,) = pieces
    pd.testing.assert_frame_equal(only.compute(), before)


def test_bad_input(store):
    with pytest.raises(ParameterTypeError, match="store"):
        oups.dask.map_intersections("x", [], features, [None, None])
    with pytest.raises(ParameterTypeError, match="func"):
        oups.dask.map_intersections(store, [], 3, [None, None])
    with pytest.raises(InvalidParameterError, match="bounds"):
        oups.dask.map_intersections(store, [], features, [None])
    with pytest.raises(InvalidParameterError, match="open end"):
        oups.dask.map_intersections(store, [], features, [None, None, None])


def test_key_classes_defined_in_a_function_reach_the_workers(client, tmp_path):
    # Classes defined in a notebook or inside a function are pickled by value:
    # the workers rebuild them from their class dict, without importing them.
    from oups import sublevel

    @sublevel
    class Venue:
        mic: str

    @toplevel(field_sep="_")
    class Local:
        sym: str
        venue: Venue

    store = Store(tmp_path / "local", Local)
    df = pd.DataFrame({"ts": np.arange(40), "v": np.arange(40.0)})
    for sym in ("a", "b"):
        store[Local(sym, Venue("X"))].write(ordered_on="ts", df=df, row_group_target_size=10)

    def describe(chunks, start, end_excl):
        rows = []
        for chunk in chunks:
            for key, frame in chunk.items():
                # The rebuilt class answers as the original: its separator,
                # depth, path and string form.
                rows.append((str(key), type(key).depth, key.field_sep, len(frame)))
        return pd.DataFrame(rows, columns=["key", "depth", "sep", "n"])

    meta = describe(iter([]), None, None)
    got = oups.dask.map_intersections(
        store,
        [Local("a", Venue("X")), Local("b", Venue("X"))],
        describe,
        [None, 20, None],
        meta=meta,
    ).compute()
    assert set(got["key"]) == {"a_X", "b_X"}
    assert set(got["depth"]) == {2} and set(got["sep"]) == {"_"}
    assert got["n"].sum() == 80
    frames = store.to_dask()
    assert frames[Local("b", Venue("X"))]["v"].sum().compute() == df["v"].sum()
    keys = client.submit(lambda k: (k, k.to_path().as_posix()), Local("a", Venue("X"))).result()
    assert keys == (Local("a", Venue("X")), "a/X")
