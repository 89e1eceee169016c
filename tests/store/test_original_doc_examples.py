"""The examples of the original oups store documentation, run as written.

Only the example paths (``/path/to/...``) point into a temporary directory, and
frames the examples use without defining are defined here.
"""

from __future__ import annotations

import pandas as pd


def test_hierarchical_indexer(tmp_path):
    from oups.store import sublevel, toplevel

    @sublevel
    class Sampling:
        frequency: str

    @toplevel
    class Measure:
        quantity: str
        city: str
        sampling: Sampling

    berlin_1D = Measure("temperature", "berlin", Sampling("1D"))
    berlin_1W = Measure("temperature", "berlin", Sampling("1W"))
    assert berlin_1D.to_path().as_posix() == "temperature-berlin/1D"
    assert berlin_1W.to_path().as_posix() == "temperature-berlin/1W"
    assert Measure.depth == 2


def test_simple_indexer():
    from oups.store import toplevel

    @toplevel
    class TimeSeriesIndex:
        symbol: str
        date: str

    # "AAPL-2023.01.01" in the seed comment would hold '.', a forbidden character.
    key = TimeSeriesIndex("AAPL", "20230101")
    assert str(key) == "AAPL-20230101"


def test_ordered_parquet_dataset_example(tmp_path):
    from oups.store import OrderedParquetDataset

    dataset = OrderedParquetDataset(tmp_path / "path/to/dataset", ordered_on="timestamp")
    df = pd.DataFrame(
        {"timestamp": pd.date_range("2023-01-01", periods=1000), "value": range(1000)}
    )
    dataset.write(df=df)
    result = dataset.to_pandas()
    pd.testing.assert_frame_equal(result, df)


def test_store_example(tmp_path, capsys):
    from oups.store import Store, toplevel

    @toplevel
    class StockIndex:
        symbol: str
        year: str

    store = Store(tmp_path / "path/to/data", StockIndex)
    aapl_2023 = store[StockIndex("AAPL", "2023")]
    aapl_2023.write(
        ordered_on="ts", df=pd.DataFrame({"ts": pd.date_range("2023-01-01", periods=3)})
    )
    for key in store:
        dataset = store[key]
        print(f"Dataset {key} has {len(dataset)} row groups")
    assert capsys.readouterr().out == "Dataset AAPL-2023 has 1 row groups\n"


def test_write_example(tmp_path):
    from oups.store import OrderedParquetDataset, write

    path = tmp_path / "path/to/dataset"
    stamps = pd.date_range("2023-01-01", periods=96, freq="h")
    df = pd.DataFrame({"timestamp": stamps, "symbol": "AAPL", "px": range(96)})
    new_df = df.iloc[-10:].assign(px=-1)
    write(
        path,
        ordered_on="timestamp",
        df=df,
        row_group_target_size="1D",
        duplicates_on=["timestamp", "symbol"],
        key_value_metadata={
            "source": "market_data",
            "version": "2.1",
            "processed_by": "data_pipeline",
        },
    )
    write(
        path,
        ordered_on="timestamp",
        df=new_df,
        duplicates_on=["timestamp", "symbol"],
        key_value_metadata={
            "version": "2.2",
            "last_updated": "2023-12-01",
            "processed_by": None,
        },
    )
    ds = OrderedParquetDataset(path)
    assert ds.key_value_metadata == {
        "source": "market_data",
        "version": "2.2",
        "last_updated": "2023-12-01",
    }
    out = ds.to_pandas()
    assert len(out) == 96 and out["px"].tolist()[-10:] == [-1] * 10
    assert len(ds) == 4  # one row group per day


def test_iter_intersections_example(tmp_path, capsys):
    from oups.store import Store, toplevel

    @toplevel
    class StockIndex:
        symbol: str
        year: str

    store = Store(tmp_path, StockIndex)
    for i, sym in enumerate(["AAPL", "GOOGL"]):
        stamps = pd.date_range("2022-12-15", "2023-02-15", freq="D") + pd.Timedelta(hours=i)
        store[StockIndex(sym, "2023")].write(
            ordered_on="ts", df=pd.DataFrame({"ts": stamps}), row_group_target_size="MS"
        )
    keys = [StockIndex("AAPL", "2023"), StockIndex("GOOGL", "2023")]
    total = 0
    for intersection in store.iter_intersections(
        keys, start=pd.Timestamp("2023-01-01"), end_excl=pd.Timestamp("2023-02-01")
    ):
        for key, df in intersection.items():
            print(f"Data from {key}: {len(df)} rows")
            total += len(df)
    assert total == 62
    assert "Data from AAPL-2023: 31 rows" in capsys.readouterr().out
