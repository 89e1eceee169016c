"""Categorical columns: category sets that differ between row groups, ordered
categoricals and unused categories, and polars' Categorical."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from oups import OrderedParquetDataset, Store, toplevel, write


@toplevel
class Sym:
    name: str


def _frame(start: int, n: int, values: list[str], categories: list[str] | None = None):
    cats = pd.Categorical([values[i % len(values)] for i in range(n)], categories=categories)
    return pd.DataFrame({"ts": np.arange(start, start + n, dtype="int64"), "c": cats})


def _two_category_sets(path, n=1000):
    # Large enough that Arrow's concat would not merge the dictionaries itself.
    write(
        path, ordered_on="ts", df=_frame(0, n, ["a", "b"], ["a", "b", "z"]), row_group_target_size=n
    )
    write(path, ordered_on="ts", df=_frame(n, n, ["c", "a"]), row_group_target_size=n)
    return n


def test_row_groups_with_other_categories_read_as_one_categorical(tmp_path):
    n = _two_category_sets(tmp_path / "ds")
    ds = OrderedParquetDataset(tmp_path / "ds")
    assert len(ds) == 2
    expected = pd.concat([_frame(0, n, ["a", "b"]), _frame(n, n, ["c", "a"])], ignore_index=True)
    for out in [ds.to_pandas(), ds.to_arrow().to_pandas(), ds[0:2].to_pandas()]:
        # The union in order of first appearance, unused 'z' kept, as pyarrow does.
        assert out["c"].cat.categories.tolist() == ["a", "b", "z", "c"]
        assert out["c"].astype(str).tolist() == expected["c"].astype(str).tolist()
    part = ds.to_pandas(start=n - 2, end_excl=n + 2)
    assert part["c"].astype(str).tolist() == ["a", "b", "c", "a"]


def test_iter_intersections_warm_up_joins_category_sets(tmp_path):
    store = Store(tmp_path, Sym)
    n = _two_category_sets(store.basepath / "X")
    chunks = list(store.iter_intersections([Sym("X")], start=n, n_prev=3))
    first = chunks[0][Sym("X")]
    assert first["ts"].tolist()[:4] == [n - 3, n - 2, n - 1, n]
    assert first["c"].astype(str).tolist()[:4] == ["b", "a", "b", "c"]


def test_merges_into_stored_row_groups_unify_categories(tmp_path):
    path = tmp_path / "ds"
    write(path, ordered_on="ts", df=_frame(0, 10, ["a", "b"]), row_group_target_size=100)
    # New rows in the middle of the stored row group, with other categories.
    mid = pd.DataFrame({"ts": [4, 4], "c": pd.Categorical(["q", "a"], categories=["q", "a", "u"])})
    write(path, ordered_on="ts", df=mid, row_group_target_size=100)
    out = OrderedParquetDataset(path).to_pandas()
    assert out["ts"].tolist() == [0, 1, 2, 3, 4, 4, 4, 5, 6, 7, 8, 9]
    assert out["c"].astype(str).tolist() == list("ababaqababab")
    assert out["c"].cat.categories.tolist() == ["a", "b", "q", "u"]


def test_ordered_and_unused_categories_round_trip(tmp_path):
    path = tmp_path / "ds"
    dtype = pd.CategoricalDtype(["low", "mid", "high"], ordered=True)
    df = pd.DataFrame({"ts": [1, 2, 3], "c": pd.Series(["high", "low", "high"], dtype=dtype)})
    write(path, ordered_on="ts", df=df, row_group_target_size=2)
    out = OrderedParquetDataset(path).to_pandas()
    assert out["c"].dtype == dtype
    assert (out["c"] > "low").tolist() == [True, False, True]
    pd.testing.assert_frame_equal(out, df)
    # Other readers see the values, unordered (their categories come in order
    # of appearance, to which the order flag would not apply).
    other = pd.read_parquet(path)
    assert other["c"].astype(str).tolist() == ["high", "low", "high"]
    assert not other["c"].dtype.ordered


def test_polars_categorical_and_view_types_are_written(tmp_path):
    df = pl.DataFrame(
        {"ts": [1, 2, 3], "c": ["x", "y", "x"], "s": ["p", "q", "r"], "b": [b"1", b"2", b"3"]}
    ).with_columns(pl.col("c").cast(pl.Categorical))
    write(tmp_path / "ds", ordered_on="ts", df=df)
    write(tmp_path / "ds", ordered_on="ts", df=df.with_columns(pl.col("ts") + 10))
    out = OrderedParquetDataset(tmp_path / "ds").to_pandas()
    assert out["c"].astype(str).tolist() == ["x", "y", "x"] * 2
    assert out["s"].tolist() == ["p", "q", "r"] * 2
    assert out["b"].tolist() == [b"1", b"2", b"3"] * 2
    view = pa.table(
        {
            "ts": pa.array([20], pa.int64()),
            "c": pa.array(["z"], pa.string_view()).dictionary_encode(),
            "s": pa.array(["w"], pa.string_view()),
            "b": pa.array([b"4"], pa.binary_view()),
        }
    )
    write(tmp_path / "ds", ordered_on="ts", df=view)
    assert OrderedParquetDataset(tmp_path / "ds").to_pandas()["c"].astype(str).tolist()[-1] == "z"


def test_a_stream_of_batches_with_other_dictionaries_is_written(tmp_path):
    b1 = pa.record_batch({"ts": [1, 2], "c": pa.array(["a", "b"]).dictionary_encode()})
    b2 = pa.record_batch({"ts": [3], "c": pa.array(["c"]).dictionary_encode()})
    table = pa.Table.from_batches([b1, b2])
    write(tmp_path / "ds", ordered_on="ts", df=table)
    out = OrderedParquetDataset(tmp_path / "ds").to_pandas()
    assert out["c"].astype(str).tolist() == ["a", "b", "c"]


@pytest.mark.parametrize("target", [3, "2D"])
def test_random_category_sets_match_pandas(tmp_path, target):
    rng = np.random.default_rng(7)
    written = []
    path = tmp_path / "ds"
    for _ in range(6):
        cats = list(rng.choice(list("abcdefg"), size=rng.integers(1, 5), replace=False))
        n = int(rng.integers(1, 8))
        ts = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.sort(rng.integers(0, 200, n)), "h")
        df = pd.DataFrame({"ts": ts, "c": pd.Categorical(rng.choice(cats, n), categories=cats)})
        write(path, ordered_on="ts", df=df, row_group_target_size=target)
        written.append(df.assign(c=df["c"].astype(str)))
    expected = pd.concat(written).sort_values("ts", kind="stable").reset_index(drop=True)
    out = OrderedParquetDataset(path).to_pandas()
    assert out["c"].astype(str).tolist() == expected["c"].tolist()
    assert out["c"].cat.categories.is_unique


def test_finely_interleaved_merge_keeps_one_dictionary(tmp_path):
    path = tmp_path / "ds"
    n = 2000
    stored = pd.DataFrame(
        {"ts": np.arange(0, 2 * n, 2), "c": pd.Categorical(["a", "b"] * (n // 2))}
    )
    write(path, ordered_on="ts", df=stored, row_group_target_size=10 * n)
    new = pd.DataFrame({"ts": np.arange(1, 2 * n, 2), "c": pd.Categorical(["b", "c"] * (n // 2))})
    write(path, ordered_on="ts", df=new, row_group_target_size=10 * n)
    out = OrderedParquetDataset(path).to_pandas()
    assert out["c"].cat.categories.tolist() == ["a", "b", "c"]
    assert out["c"].astype(str).tolist()[:4] == ["a", "b", "b", "c"]
