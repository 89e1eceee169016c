"""Damaged, foreign and inconsistent files: each gives a clear error from
``oups.exceptions`` naming the path, never a crash, a hang or wrong data."""

from __future__ import annotations

import json
import pickle
import random
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from oups import OrderedParquetDataset, Store, toplevel, write
from oups.exceptions import CorruptDatasetError, DatasetIOError, OupsError

pytestmark = pytest.mark.slow


@toplevel
class Key:
    name: str


def _frame(keys, value=0.0) -> pd.DataFrame:
    keys = np.asarray(keys)
    return pd.DataFrame({"t": keys, "v": np.full(len(keys), value)})


@pytest.fixture
def ds_path(tmp_path) -> Path:
    path = tmp_path / "ds"
    write(
        path,
        ordered_on="t",
        df=_frame(range(10)),
        row_group_target_size=4,
        key_value_metadata={"source": "feed"},
    )
    return path


def _meta(path: Path) -> Path:
    return path.with_name(path.name + "_opdmd")


def _forge(path: Path, doc: dict) -> None:
    """Writes metadata with a valid header and checksum around ``doc``."""
    body = json.dumps(doc).encode()
    header = f"OUPS-OPDMD 1 {zlib.crc32(body):08x} {len(body)}\n".encode()
    _meta(path).write_bytes(header + body)


def _doc(path: Path) -> dict:
    raw = _meta(path).read_bytes()
    return json.loads(raw.split(b"\n", 1)[1])


def _open_and_read(path: Path):
    with OrderedParquetDataset(path, lock_timeout=5) as ds:
        return ds.to_pandas()


def _expect_corrupt(path: Path, name: str) -> None:
    with pytest.raises(CorruptDatasetError) as info:
        _open_and_read(path)
    assert name in str(info.value), str(info.value)


def test_every_truncation_of_the_metadata_is_detected(ds_path):
    good = _meta(ds_path).read_bytes()
    for n in range(len(good)):
        _meta(ds_path).write_bytes(good[:n])
        _expect_corrupt(ds_path, "ds_opdmd")
    _meta(ds_path).write_bytes(good)
    assert len(_open_and_read(ds_path)) == 10


def test_bit_flips_in_the_metadata_are_detected(ds_path):
    good = bytearray(_meta(ds_path).read_bytes())
    rng = random.Random(3)
    flips = [(i, b) for i in range(len(good)) for b in range(8)]
    for i, b in rng.sample(flips, 400):
        bad = bytearray(good)
        bad[i] ^= 1 << b
        _meta(ds_path).write_bytes(bytes(bad))
        try:
            df = _open_and_read(ds_path)
        except CorruptDatasetError as exc:
            assert "ds_opdmd" in str(exc) or "ds" in str(exc)
        else:  # a flip the format cannot see must still give the right data
            pytest.fail(f"flipping bit {b} of byte {i} went unnoticed: {df}")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00" * 64,
        pickle.dumps({"ordered_on": "t", "row_groups": [1, 2]}),  # the reference's format
        b"PAR1\x00\x00PAR1",
        b"OUPS-OPDMD 99 00000000 2\n{}",
        b"OUPS-OPDMD 1 zzzzzzzz 2\n{}",
        b"OUPS-OPDMD 1 00000000 99999999999999999999\n{}",
        bytes(random.Random(1).randrange(256) for _ in range(4096)),
    ],
    ids=["empty", "zeros", "pickle", "parquet", "version", "crc", "length", "random"],
)
def test_foreign_metadata_files(ds_path, content):
    _meta(ds_path).write_bytes(content)
    _expect_corrupt(ds_path, "ds_opdmd")


def test_metadata_that_is_a_directory(ds_path):
    _meta(ds_path).unlink()
    _meta(ds_path).mkdir()
    with pytest.raises(OupsError) as info:
        _open_and_read(ds_path)
    assert "ds_opdmd" in str(info.value)


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["row_groups"].append({"file_id": 9000, "n_rows": 1, "min": 20, "max": 20}),
        lambda d: d["row_groups"][0].update(n_rows=3),
        lambda d: d["row_groups"][0].update(n_rows=-1),
        lambda d: d["row_groups"][0].update(n_rows="four"),
        lambda d: d["row_groups"][0].update(min=5, max=1),
        lambda d: d["row_groups"].reverse(),
        lambda d: d["row_groups"][1].update(file_id=0),
        lambda d: d["row_groups"][0].update(file_id=-5),
        lambda d: d["row_groups"][0].update(file_id=2**70),
        lambda d: d.update(ordered_type="NotAType"),
        lambda d: d.update(ordered_field="missing_column"),
        lambda d: d.update(row_groups={"not": "a list"}),
        lambda d: d.pop("row_groups"),
        lambda d: d.update(key_value_metadata=[1, 2]),
        lambda d: d.update(generation=-1),
    ],
    ids=[
        "unknown-file",
        "wrong-n_rows",
        "negative-n_rows",
        "string-n_rows",
        "min-after-max",
        "unsorted-row-groups",
        "duplicate-file-id",
        "negative-file-id",
        "huge-file-id",
        "bad-type",
        "bad-field",
        "row-groups-not-list",
        "no-row-groups",
        "kvm-not-dict",
        "negative-generation",
    ],
)
def test_metadata_that_lies_about_the_files(ds_path, edit):
    doc = _doc(ds_path)
    edit(doc)
    _forge(ds_path, doc)
    with pytest.raises(CorruptDatasetError) as info:
        _open_and_read(ds_path)
        # Some lies only show when the data is used for a write.
        write(ds_path, ordered_on="t", df=_frame([3, 11]), row_group_target_size=4)
    assert "ds" in str(info.value)


def _data_files(path: Path) -> list[Path]:
    """The files oups reads: every version's, in the history directory (the
    dataset directory holds links of the latest version's, for other readers)."""
    return sorted((path.parent / f".{path.name}.oups" / "files").glob("file_*.parquet"))


@pytest.mark.parametrize(
    "damage",
    ["truncate", "zeros", "random", "other-schema", "more-rows", "fewer-rows", "unsorted"],
)
def test_data_files_that_do_not_match_the_metadata(ds_path, damage):
    target = _data_files(ds_path)[1]
    good = target.read_bytes()
    if damage == "truncate":
        target.write_bytes(good[: len(good) // 2])
    elif damage == "zeros":
        target.write_bytes(b"\x00" * len(good))
    elif damage == "random":
        target.write_bytes(bytes(random.Random(2).randrange(256) for _ in range(len(good))))
    else:
        table = {
            "other-schema": pa.table({"t": [4, 5, 6, 7], "w": ["a", "b", "c", "d"]}),
            "more-rows": pa.table({"t": [4, 5, 6, 7, 7], "v": [0.0] * 5}),
            "fewer-rows": pa.table({"t": [4, 5], "v": [0.0] * 2}),
            "unsorted": pa.table({"t": [7, 6, 5, 4], "v": [0.0] * 4}),
        }[damage]
        pq.write_table(table, target)
    with pytest.raises(CorruptDatasetError) as info:
        _open_and_read(ds_path)
    assert target.name in str(info.value) or "ds" in str(info.value), str(info.value)
    # A write that must read the damaged file refuses as well, and changes nothing.
    before = {p.name: p.read_bytes() for p in ds_path.iterdir()}
    with pytest.raises(CorruptDatasetError):
        write(ds_path, ordered_on="t", df=_frame([5.5 if damage == "x" else 5]), duplicates_on="t")
    assert {p.name: p.read_bytes() for p in ds_path.iterdir()} == before


def test_deleted_data_file_is_named(ds_path):
    victim = _data_files(ds_path)[0]
    victim.unlink()
    _expect_corrupt(ds_path, victim.name)


def test_lock_file_that_is_a_directory(ds_path):
    lock = ds_path.with_name("ds.lock")
    lock.mkdir()
    # Reads take no lock; a write names the lock it cannot take.
    assert len(_open_and_read(ds_path)) == 10
    with pytest.raises((DatasetIOError, CorruptDatasetError)) as info:
        OrderedParquetDataset(ds_path, lock_timeout=1).write(df=_frame(range(10, 12)))
    assert "ds.lock" in str(info.value)
    lock.rmdir()
    assert len(_open_and_read(ds_path)) == 10


def test_store_discovery_and_iteration_with_a_damaged_dataset(tmp_path):
    store = Store(tmp_path, Key)
    for name in ("a", "b"):
        store[Key(name)].write(ordered_on="t", df=_frame(range(6)), row_group_target_size=2)
    _meta(tmp_path / "b").write_bytes(b"garbage")
    assert set(store) == {Key("a"), Key("b")}  # discovery only looks at names
    with pytest.raises(CorruptDatasetError, match="b_opdmd"):
        list(store.iter_intersections([Key("a"), Key("b")]))
    # The healthy dataset was released and is usable.
    assert len(store[Key("a")].to_pandas()) == 6
