"""Store: discovery, container protocol, get / del (docs/store.md, "The store")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from oups import OrderedParquetDataset, Store, sublevel, toplevel, write
from oups.exceptions import LockTimeoutError, OrderedOnMismatchError, VersionNotFoundError
from tests.conftest import dir_digest, under


@toplevel
class Pair:
    a: str
    b: int


@toplevel
class StrPair:
    a: str
    b: str


@sublevel
class Sub:
    x: str
    n: int


@toplevel
class Two:
    p: str
    sub: Sub


def _df(values=(1, 2, 3)):
    return pd.DataFrame({"t": list(values), "v": [float(v) for v in values]})


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def _all_paths(root: Path) -> list[str]:
    # Read leases (who reads which version) come and go with dataset objects.
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if "leases" not in p.parts)


def test_depth_one_discovery(tmp_path):
    base = tmp_path / "st"
    for key in [Pair("x", 1), Pair("a", 2)]:
        write(base / key.to_path(), ordered_on="t", df=_df())
    write(base / "m-3", ordered_on="t", key_value_metadata={"k": "v"})  # metadata only
    (base / "y-2_opdmd").mkdir()
    _touch(base / "w-q_opdmd")
    _touch(base / "n-5.lock")
    (base / "n-5").mkdir()
    _touch(base / "_opdmd")
    _touch(base / "sub" / "z-9_opdmd")
    store = Store(base, Pair)
    assert store.keys == [Pair("a", 2), Pair("m", 3), Pair("x", 1)]
    assert repr(store) == f"Store('{store.basepath}', Pair, 3 datasets)"
    assert len(store) == 3
    assert list(store) == store.keys
    # Strict parsing: extra fields and non-canonical ints give no key.
    _touch(base / "a-b-7_opdmd")
    _touch(base / "x-01_opdmd")
    assert store.keys == [Pair("a", 2), Pair("m", 3), Pair("x", 1)]


def test_depth_two_discovery(tmp_path):
    base = tmp_path / "st"
    _touch(base / "p" / "x-1_opdmd")
    _touch(base / "q" / "y-2_opdmd")
    _touch(base / "top_opdmd")
    _touch(base / "p" / "deeper" / "r-1_opdmd")
    _touch(base / "p-x" / "1_opdmd")  # wrong layout for Two
    store = Store(base, Two)
    assert store.keys == [Two("p", Sub("x", 1)), Two("q", Sub("y", 2))]
    # No key is borrowed from the base directory's own name.
    st1 = tmp_path / "st1"
    _touch(st1 / "z_opdmd")
    assert Store(st1, StrPair).keys == []


def test_construction(tmp_path):
    with pytest.raises(TypeError, match="has to be '@toplevel' decorated"):
        Store(tmp_path, Sub)
    with pytest.raises(TypeError):
        Store(tmp_path, 3)
    with pytest.raises(TypeError):
        Store(3, Pair)
    # str and Path both work; an instance works like its class.
    assert Store(str(tmp_path), Pair).basepath == tmp_path.resolve()
    assert Store(tmp_path, Pair("x", 1)).indexer is Pair
    missing = tmp_path / "not" / "there"
    store = Store(missing, Pair)
    assert (store.keys, len(store), list(store)) == ([], 0, [])
    assert repr(store) == f"Store('{missing}', Pair, 0 datasets)"
    assert not missing.exists()


def test_containment(store_base):
    store = Store(store_base, Pair)
    store[Pair("x", 1)].write(ordered_on="t", df=_df())
    assert Pair("x", 1) in store
    assert Pair("x", 2) not in store
    assert StrPair("x", "1") not in store
    assert "x-1" not in store


def test_looking_creates_nothing(tmp_path):
    base = tmp_path / "st"
    store = Store(base, Two)
    key = Two("p", Sub("x", 1))
    assert key not in store
    assert len(store) == 0
    ds = store[key]
    assert ds.is_newly_initialized
    assert ds.to_pandas() is None
    assert list(store.iter_intersections([key])) == []
    del ds
    assert not base.exists()


def test_get_write_and_refresh(tmp_path):
    base = tmp_path / "st"
    store = Store(base, Two)
    key = Two("p", Sub("x", 1))
    ds = store[key]
    assert key not in store
    ds.write(ordered_on="t", df=_df())
    assert key in store  # no stale cache
    assert store.keys == [key]
    ds.close()
    assert _all_paths(base) == [
        "p",
        "p/.x-1.oups",
        "p/.x-1.oups/files",
        "p/.x-1.oups/files/file_0000000000.parquet",
        "p/.x-1.oups/versions",
        "p/.x-1.oups/versions/v_00000000000000000001",
        "p/x-1",
        "p/x-1/file_0000000000.parquet",
        "p/x-1_opdmd",
    ]
    # Written by other means: another Store, write() on a path, another process.
    Store(base, Two)[Two("q", Sub("y", 2))].write(ordered_on="t", df=_df())
    write(base / "r" / "z-3", ordered_on="t", df=_df())
    code = (
        "import pandas as pd, sys; from oups import write; "
        "write(sys.argv[1], ordered_on='t', df=pd.DataFrame({'t': [1]}))"
    )
    subprocess.run([sys.executable, "-c", code, str(base / "s" / "w-4")], check=True)
    assert [str(k) for k in store] == ["p-x-1", "q-y-2", "r-z-3", "s-w-4"]
    with pytest.raises(ValueError):
        store.get(key, ordered_on="zz")
    with pytest.raises(OrderedOnMismatchError):
        store.get(key, ordered_on="zz")
    with pytest.raises(TypeError):
        store.get(key, unknown=1)
    with pytest.raises(TypeError, match="'Two' instances"):
        store[Pair("x", 1)]


def test_get_kwargs_lock_timeout(tmp_path):
    store = Store(tmp_path, Pair)
    key = Pair("x", 1)
    store[key].write(ordered_on="t", df=_df())
    held = store.get(key)
    code = (
        "import sys; import pandas as pd; from oups import Store, toplevel\n"
        "@toplevel\nclass Pair:\n    a: str\n    b: int\n"
        "ds = Store(sys.argv[1], Pair).get(Pair('x', 1), lock_timeout=0.2)\n"
        "ds.write(df=pd.DataFrame({'t': [9], 'v': [9.0]}))\n"
    )
    cmd = [sys.executable, "-c", code, str(tmp_path)]
    with held.lock():
        out = subprocess.run(cmd, capture_output=True, text=True)
    assert "LockTimeoutError" in out.stderr
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
    assert issubclass(LockTimeoutError, TimeoutError)


def test_delete(tmp_path):
    base = tmp_path / "st"
    store = Store(base, Two)
    k1, k2 = Two("p", Sub("x", 1)), Two("p", Sub("y", 2))
    for k in (k1, k2):
        store[k].write(ordered_on="t", df=_df())
    del store[k1]
    assert store.keys == [k2]
    assert [p for p in _all_paths(base) if ".oups" not in p] == [
        "p",
        "p/y-2",
        "p/y-2/file_0000000000.parquet",
        "p/y-2_opdmd",
    ]
    assert not (base / "p" / ".x-1.oups").exists()
    del store[k2]
    assert store.keys == []
    assert base.exists() and _all_paths(base) == []  # parents removed, never the base
    with pytest.raises(KeyError, match="key 'p-x-1' not found in store"):
        del store[k1]


def test_delete_while_open_elsewhere_in_process(tmp_path):
    store = Store(tmp_path, Pair)
    key = Pair("x", 1)
    store[key].write(ordered_on="t", df=_df())
    other = store[key]
    del store[key]
    assert key not in store
    # Its version went with the dataset: a clear error, then the latest state.
    with pytest.raises(VersionNotFoundError, match="call refresh"):
        other.to_pandas()
    assert other.refresh().to_pandas() is None
    other.close()


def test_delete_keeps_other_files(tmp_path):
    store = Store(tmp_path, Two)
    k = Two("p", Sub("x", 1))
    store[k].write(ordered_on="t", df=_df())
    _touch(tmp_path / "p" / "notes.txt")
    del store[k]
    assert _all_paths(tmp_path) == ["p", "p/notes.txt"]


def test_failed_get_leaves_disk_unchanged(tmp_path):
    store = Store(tmp_path, Pair)
    store[Pair("x", 1)].write(ordered_on="t", df=_df())
    before = dir_digest(tmp_path)
    with pytest.raises(ValueError):
        store.get(Pair("x", 1), ordered_on="other")
    with pytest.raises(ValueError):
        store.get(Pair("x", 1), lock_timeout=-1)
    assert dir_digest(tmp_path) == before


def test_discovery_of_many_keys(tmp_path):
    store = Store(tmp_path, Pair)
    n = 2000
    for i in range(n):
        name = tmp_path / f"k-{i}_opdmd"
        name.write_bytes(b"")
    keys = store.keys
    assert len(keys) == n
    assert keys == sorted(keys)
    assert keys[:3] == [Pair("k", 0), Pair("k", 1), Pair("k", 2)]  # numeric order


def test_symlinked_store(tmp_path):
    real = tmp_path / "real"
    write(real / "x-1", ordered_on="t", df=_df())
    link = tmp_path / "link"
    os.symlink(real, link)
    assert Store(link, Pair).keys == [Pair("x", 1)]


def test_dataset_from_store_matches_direct(store_base):
    store = Store(store_base, Pair)
    store[Pair("x", 1)].write(ordered_on="t", df=_df(range(10)), row_group_target_size=4)
    direct = OrderedParquetDataset(under(store_base, "x-1"))
    pd.testing.assert_frame_equal(store[Pair("x", 1)].to_pandas(), direct.to_pandas())


@toplevel
class Checked:
    name: str

    def __post_init__(self) -> None:
        if self.name == "forbidden":
            raise ValueError("forbidden name")


def test_discovery_applies_user_post_init(tmp_path):
    _touch(tmp_path / "ok_opdmd")
    _touch(tmp_path / "forbidden_opdmd")
    # A name the class refuses is skipped, like any name that does not parse.
    assert Store(tmp_path, Checked).keys == [Checked("ok")]
    assert len(Store(tmp_path, Checked)) == 1
    assert Checked.from_str("forbidden") is None


def test_discovery_write_and_delete_on_both_backends(store_base):
    store = Store(store_base, Two)
    k1, k2, k3 = Two("p", Sub("x", 1)), Two("p", Sub("y", 2)), Two("q", Sub("z", 3))
    assert store.keys == [] and len(store) == 0 and k1 not in store
    for k in (k2, k1):
        store[k].write(ordered_on="t", df=_df())
    write(under(store_base, "q", "z-3"), ordered_on="t", key_value_metadata={"m": 1})
    # Names that do not spell a key of this layout are not keys.
    write(under(store_base, "p-x", "1"), ordered_on="t", df=_df())
    write(under(store_base, "p", "deeper", "r-1"), ordered_on="t", df=_df())
    write(under(store_base, "top"), ordered_on="t", df=_df())
    assert store.keys == [k1, k2, k3] and len(store) == 3 and list(store) == [k1, k2, k3]
    assert k1 in store and Two("p", Sub("x", 9)) not in store
    assert store[k1].to_pandas().equals(_df())
    assert store[k3].key_value_metadata == {"m": 1}
    assert str(store_base) in repr(store)
    del store[k1]
    assert store.keys == [k2, k3] and k1 not in store
    with pytest.raises(KeyError, match="key 'p-x-1' not found in store"):
        del store[k1]
