"""The named code blocks (``test_store_*``) of the original oups store
documentation, run as written: each test's body is the block, unchanged."""

# ruff: noqa: F841, I001, E501


def test_store_indexer_hierarchy():
    from oups.store import toplevel, sublevel

    @sublevel
    class Sampling:
        frequency: str

    @toplevel
    class Measure:
        quantity: str
        city: str
        sampling: Sampling

    # Define different indexes for temperature in Berlin
    berlin_1D = Measure('temperature', 'berlin', Sampling('1D'))
    berlin_1W = Measure('temperature', 'berlin', Sampling('1W'))

    # When this indexer is connected to a Store, the directory structure will look like:
    # temperature-berlin/
    # ├── 1D/
    # │   ├── file_0000.parquet
    # │   └── file_0001.parquet
    # └── 1W/
    #     ├── file_0000.parquet
    #     └── file_0001.parquet


def test_store_indexer_simple():
    from oups.store import toplevel

    @toplevel
    class CityDateIndex:
        city: str
        date: str

    # This creates a schema where datasets are organized as:
    # city-date/ (e.g., "berlin-2023.01.01/")


def test_store_ordered_parquet_dataset_example():
    from pathlib import Path
    import tempfile
    import pandas as pd
    from oups.store import OrderedParquetDataset

    with tempfile.TemporaryDirectory() as tmpdir:
        # Create or load a dataset
        dataset = OrderedParquetDataset(str(Path(tmpdir) / "dataset"), ordered_on="timestamp")

        # Write data
        df = pd.DataFrame({
            "timestamp": pd.date_range("2023-01-01", periods=3),
            "value": range(3),
        })
        dataset.write(df=df)

        # Read data back
        result = dataset.to_pandas()
        assert len(result) == 3


def test_store_basic_usage():
    from pathlib import Path
    import tempfile
    import pandas as pd
    from oups.store import Store
    from oups.store import toplevel

    @toplevel
    class CityYearIndex:
        city: str
        year: str

    with tempfile.TemporaryDirectory() as tmpdir:
        # Create store in a temporary directory
        store = Store(Path(tmpdir) / "data", CityYearIndex)

        # Access datasets via indexing (example):
        # berlin_2023 = store[CityYearIndex("berlin", "2023")]

        # Iterate over all datasets (example):
        # for key in store:
        #     dataset = store[key]
        #     print(f"Dataset {key} has {len(dataset)} row groups")

        # Basic write via Store[key]
        berlin_key = CityYearIndex("berlin", "2023")
        df = pd.DataFrame({
            "timestamp": pd.date_range("2023-01-01", periods=3, freq="D"),
            "temperature": [20, 21, 22],
            "humidity": [30, 31, 32],
        })
        store[berlin_key].write(df=df, ordered_on="timestamp")

        # Read back
        result_df = store[berlin_key].to_pandas()
        assert len(result_df) == 3


def test_store_write_params():
    from pathlib import Path
    import tempfile
    import pandas as pd
    from oups.store import Store, toplevel

    @toplevel
    class CityYearIndex:
        city: str
        year: str

    with tempfile.TemporaryDirectory() as tmpdir:
        store = Store(Path(tmpdir) / "data", CityYearIndex)
        berlin_key = CityYearIndex("berlin", "2023")

        df = pd.DataFrame({
            "timestamp": pd.date_range("2023-01-01", periods=2, freq="D"),
            "temperature": [20, 21],
        })

        # Write with time-based row groups and metadata
        store[berlin_key].write(
            df=df,
            ordered_on="timestamp",
            row_group_target_size="1D",
            duplicates_on=["timestamp"],
            key_value_metadata={
                "source": "weather_station",
                "version": "2.1",
                "processed_by": "stateful_loop",
            },
        )

        # Update existing metadata (add new, update existing, remove with None)
        new_df = pd.DataFrame({
            "timestamp": pd.date_range("2023-01-03", periods=1, freq="D"),
            "temperature": [22],
        })
        store[berlin_key].write(
            df=new_df,
            ordered_on="timestamp",
            key_value_metadata={
                "version": "2.2",
                "last_updated": "2023-12-01",
                "processed_by": None,
            },
        )


def test_store_write_helper():
    from pathlib import Path
    import tempfile
    import pandas as pd
    from oups.store import write, OrderedParquetDataset

    with tempfile.TemporaryDirectory() as tmpdir:
        path = Path(tmpdir) / "dataset"
        df = pd.DataFrame({
            "timestamp": pd.date_range("2023-01-01", periods=2, freq="D"),
            "value": [1, 2],
        })
        write(
            path,
            ordered_on="timestamp",
            df=df,
            row_group_target_size="1D",
            duplicates_on=["timestamp"],
        )
        # Verify
        ds = OrderedParquetDataset(str(path), ordered_on="timestamp")
        assert len(ds.to_pandas()) == 2


def test_store_incremental():
    from pathlib import Path
    import tempfile
    import pandas as pd
    from oups.store import Store, toplevel

    @toplevel
    class CityYearIndex:
        city: str
        year: str

    with tempfile.TemporaryDirectory() as tmpdir:
        store = Store(Path(tmpdir) / "data", CityYearIndex)
        berlin_key = CityYearIndex("berlin", "2023")

        df = pd.DataFrame({
            "timestamp": pd.date_range("2023-02-01", periods=2, freq="D"),
            "temperature": [15, 16],
            "humidity": [40, 41],
        })
        store[berlin_key].write(df=df, ordered_on="timestamp")

        # Append newer rows with correct ordering
        new_df = pd.DataFrame({
            "timestamp": pd.date_range("2023-02-03", periods=2, freq="D"),
            "temperature": [17, 18],
            "humidity": [42, 43],
        })
        store[berlin_key].write(df=new_df, ordered_on="timestamp")

        result = store[berlin_key].to_pandas()
        assert len(result) == 4


def test_store_manual_vs_store():
    from pathlib import Path
    import tempfile
    import pandas as pd
    from oups.store import Store, toplevel

    @toplevel
    class CityYearIndex:
        city: str
        year: str

    with tempfile.TemporaryDirectory() as tmpdir:
        store = Store(Path(tmpdir) / "data", CityYearIndex)
        keys = [CityYearIndex("berlin", "2023"), CityYearIndex("paris", "2023")]

        # Seed small datasets with overlapping dates
        df_berlin = pd.DataFrame({
            "timestamp": pd.date_range("2023-01-01", periods=2, freq="D"),
            "v": [1, 2],
        })
        df_paris = pd.DataFrame({
            "timestamp": pd.date_range("2023-01-02", periods=2, freq="D"),
            "v": [3, 4],
        })
        store[keys[0]].write(df=df_berlin, ordered_on="timestamp")
        store[keys[1]].write(df=df_paris, ordered_on="timestamp")

        found = list(store.iter_intersections(
            keys,
            start=pd.Timestamp("2023-01-01"),
            n_prev=[1, 0],
            end_excl=pd.Timestamp("2023-01-04"),
        ))
        assert isinstance(found, list)
