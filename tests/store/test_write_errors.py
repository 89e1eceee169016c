"""Bad input raises a clear oups exception and leaves the files on disk unchanged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from oups import OrderedParquetDataset, write
from oups.exceptions import (
    ColumnNotFoundError,
    InvalidParameterError,
    OrderedOnMismatchError,
    OupsError,
    ParameterTypeError,
    ReadOnlyError,
    SchemaMismatchError,
    UnsortedError,
)
from tests.conftest import dir_digest


@pytest.fixture
def existing(tmp_ds):
    write(
        tmp_ds,
        ordered_on="a",
        df=pd.DataFrame({"a": [1, 2], "b": [1.0, 2.0]}),
        row_group_target_size=3,
        key_value_metadata={"k": "v"},
    )
    return tmp_ds


BAD_WRITES = [
    ("unsorted", dict(df=pd.DataFrame({"a": [5, 4], "b": [0.0, 0.0]})), UnsortedError, "sorted"),
    (
        "nan_key",
        dict(df=pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": [0.0] * 3})),
        UnsortedError,
        "missing value",
    ),
    ("missing_ordered_column", dict(df=pd.DataFrame({"z": [5, 6]})), ColumnNotFoundError, "'a'"),
    (
        "extra_column",
        dict(df=pd.DataFrame({"a": [5], "b": [0.0], "c": [1]})),
        SchemaMismatchError,
        "'c' is not in the dataset",
    ),
    ("missing_column", dict(df=pd.DataFrame({"a": [5]})), SchemaMismatchError, "'b' is missing"),
    (
        "dtype_change",
        dict(df=pd.DataFrame({"a": [5], "b": ["x"]})),
        SchemaMismatchError,
        "'b' has type",
    ),
    (
        "key_dtype_change",
        dict(df=pd.DataFrame({"a": [5.0], "b": [0.0]})),
        SchemaMismatchError,
        "'a' has type",
    ),
    (
        "zero_target",
        dict(df=pd.DataFrame({"a": [5], "b": [0.0]}), row_group_target_size=0),
        InvalidParameterError,
        "positive",
    ),
    (
        "negative_target",
        dict(df=pd.DataFrame({"a": [5], "b": [0.0]}), row_group_target_size=-3),
        InvalidParameterError,
        "positive",
    ),
    (
        "unknown_freq",
        dict(df=pd.DataFrame({"a": [5], "b": [0.0]}), row_group_target_size="2zz"),
        InvalidParameterError,
        "frequency",
    ),
    (
        "freq_on_int_key",
        dict(df=pd.DataFrame({"a": [5], "b": [0.0]}), row_group_target_size="1D"),
        ParameterTypeError,
        "timestamp",
    ),
    (
        "bad_target_type",
        dict(df=pd.DataFrame({"a": [5], "b": [0.0]}), row_group_target_size=1.5),
        ParameterTypeError,
        "row_group_target_size",
    ),
    (
        "missing_dup_column",
        dict(df=pd.DataFrame({"a": [5], "b": [0.0]}), duplicates_on="zz"),
        ColumnNotFoundError,
        "duplicates_on",
    ),
    (
        "bad_max_n",
        dict(df=pd.DataFrame({"a": [5], "b": [0.0]}), max_n_off_target_rgs="2"),
        ParameterTypeError,
        "max_n_off_target_rgs",
    ),
    (
        "bad_kvm",
        dict(df=pd.DataFrame({"a": [5], "b": [0.0]}), key_value_metadata={"k": object()}),
        ParameterTypeError,
        "JSON",
    ),
    ("bad_df", dict(df=[1, 2, 3]), ParameterTypeError, "'df'"),
    (
        "bad_compression",
        dict(df=pd.DataFrame({"a": [5], "b": [0.0]}), compression="brotli9"),
        InvalidParameterError,
        "compression",
    ),
]


@pytest.mark.parametrize("name,kwargs,exc,match", BAD_WRITES, ids=[b[0] for b in BAD_WRITES])
def test_bad_write_leaves_disk_unchanged(existing, name, kwargs, exc, match):
    before = dir_digest(existing.parent)
    with pytest.raises(exc, match=match) as info:
        write(existing, ordered_on="a", **kwargs)
    assert isinstance(info.value, OupsError)
    assert dir_digest(existing.parent) == before
    ds = OrderedParquetDataset(existing)
    assert ds.to_pandas()["a"].tolist() == [1, 2]


def test_builtin_bases_are_kept(existing):
    with pytest.raises(ValueError):
        write(existing, ordered_on="a", df=pd.DataFrame({"a": [5, 4], "b": [0.0, 0.0]}))
    with pytest.raises(KeyError):
        write(existing, ordered_on="a", df=pd.DataFrame({"z": [1]}))
    with pytest.raises(TypeError):
        write(
            existing,
            ordered_on="a",
            df=pd.DataFrame({"a": [5], "b": [0.0]}),
            row_group_target_size="1D",
        )


def test_ordered_on_mismatch(existing):
    before = dir_digest(existing.parent)
    with pytest.raises(OrderedOnMismatchError, match="does not match"):
        write(existing, ordered_on="b", df=pd.DataFrame({"a": [5], "b": [6.0]}))
    with pytest.raises(OrderedOnMismatchError):
        OrderedParquetDataset(existing, ordered_on="b")
    ds = OrderedParquetDataset(existing)
    with pytest.raises(OrderedOnMismatchError):
        write(ds, ordered_on="b", df=pd.DataFrame({"a": [5], "b": [6.0]}))
    with pytest.raises(OrderedOnMismatchError):
        ds.write(ordered_on="b", df=pd.DataFrame({"a": [5], "b": [6.0]}))
    ds.close()
    assert dir_digest(existing.parent) == before


def test_write_requires_ordered_on(tmp_ds):
    ds = OrderedParquetDataset(tmp_ds)
    with pytest.raises(InvalidParameterError, match="required"):
        ds.write(df=pd.DataFrame({"a": [1]}), row_group_target_size=2)
    assert not tmp_ds.parent.exists()


def test_nat_in_timestamp_key(tmp_ds):
    df = pd.DataFrame({"a": pd.to_datetime(["2024-01-01", None, "2024-01-02"])})
    with pytest.raises(UnsortedError, match="NaT"):
        write(tmp_ds, ordered_on="a", df=df)
    assert not tmp_ds.parent.exists()


def test_caller_inputs_are_not_mutated(existing):
    df = pd.DataFrame({"a": [3, 3, 4], "b": [1.0, 2.0, 3.0]})
    copy = df.copy()
    subset = ["b"]
    write(existing, ordered_on="a", df=df, duplicates_on=subset, row_group_target_size=2)
    pd.testing.assert_frame_equal(df, copy)
    assert subset == ["b"]


def test_view_is_read_only(existing):
    ds = OrderedParquetDataset(existing)
    view = ds[0]
    with pytest.raises(ReadOnlyError):
        view.write(df=pd.DataFrame({"a": [9], "b": [0.0]}))
    with pytest.raises(PermissionError):
        view.remove_from_disk()
    with pytest.raises(PermissionError):
        view.anything = 1
    with pytest.raises(ReadOnlyError):
        write(view, ordered_on="a", df=pd.DataFrame({"a": [9], "b": [0.0]}))


def test_lock_timeout_validation(existing):
    with pytest.raises(InvalidParameterError):
        OrderedParquetDataset(existing, lock_timeout=-1)
    with pytest.raises(ParameterTypeError):
        OrderedParquetDataset(existing, lock_timeout="1")
    with pytest.raises(ParameterTypeError):
        OrderedParquetDataset(12)


def test_data_file_deleted_behind_our_back(existing):
    from oups.exceptions import CorruptDatasetError

    # The latest version's files, in the dataset directory and in its history.
    for f in [*existing.iterdir(), *(existing.parent / ".ds.oups" / "files").iterdir()]:
        f.unlink()
    with pytest.raises(CorruptDatasetError, match="missing"):
        OrderedParquetDataset(existing).to_pandas()
    with pytest.raises(CorruptDatasetError, match="missing"):
        write(existing, ordered_on="a", df=pd.DataFrame({"a": [5], "b": [0.0]}))


def test_corrupt_metadata_file(existing):
    from oups.exceptions import CorruptDatasetError

    md = existing.parent / "ds_opdmd"
    md.write_bytes(md.read_bytes()[:-5])
    with pytest.raises(CorruptDatasetError, match="ds_opdmd"):
        OrderedParquetDataset(existing)
    md.write_bytes(b"PAR1 not an oups file")
    with pytest.raises(CorruptDatasetError, match="not an oups metadata file"):
        OrderedParquetDataset(existing)
    # The lock is free again after the failed open.
    assert not (existing.parent / "ds.lock").exists()


def test_frequency_parsing_warnings_never_replace_the_error(tmp_path, monkeypatch):
    """pandas may warn about an alias before it fails to parse it; with warnings
    as errors (this suite's setting), that warning must not escape instead of
    the InvalidParameterError. When parsing succeeds, the warning is kept."""
    import warnings

    import oups.store._target as target
    from oups.exceptions import InvalidParameterError

    real = target.to_offset
    df = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=3, freq="D")})

    def warns_then_fails(value):
        warnings.warn(f"{value!r} is deprecated", FutureWarning, stacklevel=2)
        raise ValueError(f"Invalid frequency: {value}")

    monkeypatch.setattr(target, "to_offset", warns_then_fails)
    with pytest.raises(InvalidParameterError, match="row_group_target_size"):
        write(tmp_path / "ds", ordered_on="t", df=df, row_group_target_size="bogus")
    assert not (tmp_path / "ds").exists()

    def warns_then_parses(value):
        warnings.warn("old alias", FutureWarning, stacklevel=2)
        return real("1D")

    monkeypatch.setattr(target, "to_offset", warns_then_parses)
    with pytest.warns(FutureWarning, match="old alias"):
        write(tmp_path / "ds", ordered_on="t", df=df, row_group_target_size="1d")
    assert (tmp_path / "ds").exists()
