"""What becomes of a frame's index and column labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from oups import OrderedParquetDataset, Store, toplevel, write
from oups.exceptions import ParameterTypeError, SchemaMismatchError


@toplevel
class K:
    name: str


def test_a_named_index_round_trips(tmp_path):
    df = pd.DataFrame({"ts": [1, 2, 3], "v": [1.0, 2.0, 3.0]}, index=pd.Index([7, 8, 9], name="id"))
    write(tmp_path / "ds", ordered_on="ts", df=df, row_group_target_size=2)
    write(tmp_path / "ds", ordered_on="ts", df=df.assign(ts=df["ts"] + 10))
    out = OrderedParquetDataset(tmp_path / "ds").to_pandas()
    pd.testing.assert_frame_equal(out, pd.concat([df, df.assign(ts=df["ts"] + 10)]))
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "ds"), out)


def test_an_unnamed_datetime_or_string_index_round_trips(tmp_path):
    for i, index in enumerate([pd.date_range("2024", periods=3, freq="D"), pd.Index(list("abc"))]):
        df = pd.DataFrame({"ts": [1, 2, 3]}, index=index)
        write(tmp_path / str(i), ordered_on="ts", df=df)
        out = OrderedParquetDataset(tmp_path / str(i)).to_pandas()
        pd.testing.assert_frame_equal(out, df, check_freq=False)


def test_a_positional_integer_index_is_dropped(tmp_path):
    # What filtering or concatenation leaves: it means nothing once merged.
    df = pd.DataFrame({"ts": np.arange(10), "v": np.arange(10.0)})
    write(tmp_path / "ds", ordered_on="ts", df=df[df["v"] > 4])
    write(tmp_path / "ds", ordered_on="ts", df=df.iloc[:3])
    out = OrderedParquetDataset(tmp_path / "ds").to_pandas()
    assert out.index.equals(pd.RangeIndex(8))
    assert out["ts"].tolist() == [0, 1, 2, 5, 6, 7, 8, 9]


def test_a_later_frame_without_the_stored_index_gets_a_clear_error(tmp_path):
    df = pd.DataFrame({"ts": [1, 2]}, index=pd.Index(["a", "b"]))
    write(tmp_path / "ds", ordered_on="ts", df=df)
    with pytest.raises(SchemaMismatchError, match="stores the index of its first frame"):
        write(tmp_path / "ds", ordered_on="ts", df=df.reset_index(drop=True))


def test_a_datetime_index_named_by_ordered_on_is_the_ordered_column(tmp_path):
    idx = pd.date_range("2024-01-01", periods=6, freq="h", tz="UTC", name="ts")
    df = pd.DataFrame({"v": np.arange(6.0)}, index=idx)
    store = Store(tmp_path, K)
    store[K("a")].write(ordered_on="ts", df=df, row_group_target_size="2h")
    ds = store[K("a")]
    assert len(ds) == 3
    pd.testing.assert_frame_equal(ds.to_pandas(), df, check_freq=False)
    assert ds.to_pandas(start=pd.Timestamp("2024-01-01 02:00", tz="UTC"))["v"].tolist() == [
        2.0,
        3.0,
        4.0,
        5.0,
    ]
    chunks = list(store.iter_intersections([K("a")]))
    pd.testing.assert_frame_equal(pd.concat(c[K("a")] for c in chunks), df, check_freq=False)
    late = pd.DataFrame({"v": [9.0]}, index=idx[[1]])
    ds.write(df=late, duplicates_on="ts")
    assert ds.to_pandas()["v"].tolist() == [0.0, 9.0, 2.0, 3.0, 4.0, 5.0]


@pytest.mark.parametrize("columns", [["ts", 0], ["ts", 1.5], ["ts", None]])
def test_non_str_column_labels_are_refused_and_nothing_is_written(tmp_path, columns):
    df = pd.DataFrame([[1, 2.0]], columns=columns)
    with pytest.raises(ParameterTypeError, match="column labels must be str"):
        write(tmp_path / "ds", ordered_on="ts", df=df)
    assert list(tmp_path.iterdir()) == []
