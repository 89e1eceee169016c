"""Store.iter_intersections (docs/store.md, "Synchronised iteration")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from oups import Store, toplevel
from oups.exceptions import OrderedOnMismatchError


@toplevel
class K:
    name: str


A, B, C, D, N, E, U, ZZ = (K(n) for n in ["A", "B", "C", "D", "N", "E", "U", "ZZ"])


@pytest.fixture
def store(store_base):
    """The same datasets on local disk and on the local S3 server."""
    st = Store(store_base, K)

    def put(key, values, on="t"):
        df = pd.DataFrame({on: values, "v": [float(x) * 10 for x in values]})
        st[key].write(ordered_on=on, df=df, row_group_target_size=2)

    put(A, [1, 2, 3, 4, 5, 6])
    put(B, [2, 3, 4, 7])
    put(C, [1, 2, 2, 3, 4, 5])
    put(D, [1, 5])
    put(N, [-5, -3, -1, 1, 3, 8])
    st[E].write(ordered_on="t", key_value_metadata={"m": "1"})
    put(U, [1, 2], on="u")
    return st


def run(store, keys, **kwargs):
    out = []
    for chunk in store.iter_intersections(keys, **kwargs):
        out.append({k.name: df.iloc[:, 0].tolist() for k, df in chunk.items()})
    return out


def test_row_groups_as_specified(store):
    stats = store[C].row_group_stats
    assert stats["ordered_on_mins"].tolist() == [1, 2, 4]
    assert stats["ordered_on_maxs"].tolist() == [2, 3, 5]


def test_no_bounds(store):
    assert run(store, [A, B]) == [
        {"A": [1, 2], "B": [2]},
        {"A": [3], "B": [3]},
        {"A": [4], "B": [4]},
        {"A": [5, 6], "B": [7]},
    ]
    assert run(store, [A]) == [{"A": [1, 2]}, {"A": [3, 4]}, {"A": [5, 6]}]
    chunks = list(store.iter_intersections([B, A]))
    assert list(chunks[0]) == [B, A]
    df = chunks[0][A]
    assert list(df.columns) == ["t", "v"]
    assert df["v"].tolist() == [10.0, 20.0]
    assert df.index.tolist() == [0, 1]
    assert df.dtypes.tolist() == [np.dtype("int64"), np.dtype("float64")]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"start": 3}, [{"A": [3], "B": [3]}, {"A": [4], "B": [4]}, {"A": [5, 6], "B": [7]}]),
        ({"start": 4}, [{"A": [4], "B": [4]}, {"A": [5, 6], "B": [7]}]),
        ({"start": 2.5}, [{"A": [3], "B": [3]}, {"A": [4], "B": [4]}, {"A": [5, 6], "B": [7]}]),
        ({"end_excl": 4}, [{"A": [1, 2], "B": [2]}, {"A": [3], "B": [3]}]),
        (
            {"end_excl": 5},
            [{"A": [1, 2], "B": [2]}, {"A": [3], "B": [3]}, {"A": [4], "B": [4]}],
        ),
        (
            {"end_excl": 4.5},
            [{"A": [1, 2], "B": [2]}, {"A": [3], "B": [3]}, {"A": [4], "B": [4]}],
        ),
        ({"start": 3, "end_excl": 5}, [{"A": [3], "B": [3]}, {"A": [4], "B": [4]}]),
        ({"start": 100}, []),
        ({"end_excl": 1}, []),
        ({"start": 6, "end_excl": 7}, [{"A": [6], "B": []}]),
        ({"start": 7}, [{"B": [7]}]),
        (
            {"start": np.int64(3), "end_excl": np.float64(5)},
            [{"A": [3], "B": [3]}, {"A": [4], "B": [4]}],
        ),
    ],
)
def test_bounds(store, kwargs, expected):
    assert run(store, [A, B], **kwargs) == expected


def test_empty_datasets_and_degenerate_intervals(store):
    assert run(store, [A, E]) == [{"A": [1, 2]}, {"A": [3, 4]}, {"A": [5, 6]}]
    assert run(store, [E]) == []
    assert run(store, [A, B], start=4, end_excl=4) == [{"A": []}]
    assert run(store, [D], start=5, end_excl=3) == [{"D": []}]
    assert run(store, [A], start=5, end_excl=3) == []
    assert run(store, [N], start=-0.5) == [{"N": [1]}, {"N": [3, 8]}]
    assert run(store, [N], end_excl=2) == [{"N": [-5, -3]}, {"N": [-1, 1]}]


def test_zero_is_a_real_bound(store):
    # The reference treated 0 as "no bound" and leaked rows outside the range.
    assert run(store, [N], start=0) == [{"N": [1]}, {"N": [3, 8]}]
    assert run(store, [N], end_excl=0) == [{"N": [-5, -3]}, {"N": [-1]}]
    assert run(store, [A, B], end_excl=0) == []


def test_collapsed_groups(store):
    assert run(store, [C]) == [{"C": [1, 2, 2, 3]}, {"C": [4, 5]}]
    assert run(store, [C, D]) == [{"C": [1, 2, 2, 3], "D": [1]}, {"C": [4, 5], "D": [5]}]
    assert run(store, [C], start=3, n_prev=2) == [{"C": [2, 2, 3]}, {"C": [4, 5]}]
    assert run(store, [C], start=4, n_prev=3) == [{"C": [2, 2, 3, 4, 5]}]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"start": 3, "n_prev": 1},
            [{"A": [2, 3], "B": [2, 3]}, {"A": [4], "B": [4]}, {"A": [5, 6], "B": [7]}],
        ),
        ({"start": 5, "n_prev": 3}, [{"A": [2, 3, 4, 5, 6], "B": [2, 3, 4, 7]}]),
        ({"start": 5, "n_prev": [3, 1]}, [{"A": [2, 3, 4, 5, 6], "B": [4, 7]}]),
        ({"start": 5, "n_prev": (3, np.int64(1))}, [{"A": [2, 3, 4, 5, 6], "B": [4, 7]}]),
        ({"start": 5, "n_prev": 10}, [{"A": [1, 2, 3, 4, 5, 6], "B": [2, 3, 4, 7]}]),
        # n_prev aligns with keys, even when an earlier key does not participate.
        ({"start": 7, "n_prev": [0, 1]}, [{"B": [4, 7]}]),
        ({"start": 7, "n_prev": [1, 0]}, [{"B": [7]}]),
    ],
)
def test_n_prev(store, kwargs, expected):
    assert run(store, [A, B], **kwargs) == expected


def test_n_prev_without_start_is_ignored(store):
    assert run(store, [A, B], n_prev=5) == run(store, [A, B])


@pytest.mark.parametrize(
    ("n_prev", "exc"),
    [
        (-1, ValueError),
        ([1], ValueError),
        ([1, 1, 1], ValueError),
        (None, TypeError),
        (1.5, TypeError),
        ([1, -2], ValueError),
        (True, TypeError),
    ],
)
def test_n_prev_errors(store, n_prev, exc):
    with pytest.raises(exc):
        run(store, [A, B], start=3, n_prev=n_prev)


def test_errors_and_locks(store):
    gen = store.iter_intersections([A, U])
    msg = "inconsistent 'ordered_on' columns. 'A' has 't', but 'U' has 'u'"
    with pytest.raises(ValueError, match=msg):
        next(gen)
    with pytest.raises(OrderedOnMismatchError):
        next(store.iter_intersections([A, U]))
    local_only(store)
    # An iteration takes no lock: another process can lock at any time.
    _assert_free(store, A)
    gen = store.iter_intersections([A, B])
    next(gen)
    _assert_free(store, A)
    gen.close()
    _assert_free(store, A)


def test_an_iteration_reads_the_versions_of_its_start(store):
    gen = store.iter_intersections([A, B])
    first = next(gen)
    # Another process rewrites both datasets: the iteration does not see it.
    t = list(range(1, 8))
    store[A].write(df=pd.DataFrame({"t": t, "v": [-1.0] * 7}), duplicates_on="t")
    store[B].write(df=pd.DataFrame({"t": [2, 3, 4, 7], "v": [0.0] * 4}), duplicates_on="t")
    seen = [first, *gen]
    assert [x for c in seen for x in c[A]["v"]] == [10.0 * x for x in range(1, 7)]
    assert [x for c in seen for x in c[B]["v"]] == [20.0, 30.0, 40.0, 70.0]
    after = list(store.iter_intersections([A, B]))
    assert [x for c in after for x in c[A]["v"]] == [-1.0] * 7
    assert [x for c in after for x in c[B]["v"]] == [0.0] * 4


def _probe(store, key, timeout):
    import subprocess
    import sys

    code = (
        "import sys; from oups import OrderedParquetDataset\n"
        "ds = OrderedParquetDataset(sys.argv[1])\n"
        "with ds.lock(timeout=float(sys.argv[2])): pass\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(store.basepath / key.to_path()), str(timeout)],
        capture_output=True,
        text=True,
    )


def _assert_free(store, key):
    out = _probe(store, key, 0)
    assert out.returncode == 0, out.stderr


def local_only(store) -> None:
    """Skips a test of locks, which object storage does not have."""
    if not isinstance(store.basepath, Path):
        pytest.skip("object storage has no locks: commits are conditional writes")


def test_unknown_duplicate_and_empty_keys(store):
    def entries():
        if isinstance(store.basepath, Path):
            return sorted(p.name for p in store.basepath.iterdir())
        return list(store)

    before = entries()
    assert run(store, [ZZ]) == []
    assert run(store, [A, ZZ]) == [{"A": [1, 2]}, {"A": [3, 4]}, {"A": [5, 6]}]
    # Reading an unknown key creates nothing.
    assert entries() == before
    assert ZZ not in store
    assert run(store, []) == []
    with pytest.raises(ValueError, match="more than once"):
        run(store, [A, B, A])
    with pytest.raises(TypeError):
        run(store, ["A"])
    with pytest.raises(TypeError):
        run(store, "A")


def test_bound_type_errors(store):
    with pytest.raises(TypeError):
        run(store, [A], start=pd.Timestamp("2024-01-01"))
    with pytest.raises(TypeError):
        run(store, [A], start="3")
    with pytest.raises(ValueError):
        run(store, [A], start=float("nan"))
    assert run(store, [A], start=-np.inf, end_excl=np.inf) == run(store, [A])
    assert run(store, [A], start=2**70) == []
    assert run(store, [A], end_excl=-(2**70)) == []


def test_readers_elsewhere_never_block_an_iteration(store):
    local_only(store)
    import subprocess
    import sys

    code = (
        "import sys, time; from oups import OrderedParquetDataset\n"
        "ds = OrderedParquetDataset(sys.argv[1])\n"
        "with ds.lock():\n"
        "    print('held', flush=True); time.sleep(30)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(store.basepath / "A")], stdout=subprocess.PIPE, text=True
    )
    try:
        # Even a writer holding the lock does not delay a read.
        assert holder.stdout.readline().strip() == "held"
        assert run(store, [B, A], lock_timeout=0) == run(store, [B, A])
        _assert_free(store, B)
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


TS = {
    "k1": [
        "08:00",
        "09:00",
        "10:00",
        "10:00",
        "10:00",
        "10:00",
        "14:00",
        "14:15",
        "18:15",
        "18:15",
    ],
    "k2": [
        "08:35",
        "08:35",
        "08:35",
        "10:00",
        "12:10",
        "12:10",
        "12:10",
        "12:10",
        "14:00",
        "15:15",
        "18:00",
        "19:15",
    ],
    "k3": ["15:15", "16:00", "18:15", "19:00", "22:00", "22:05", "22:05", "22:05"],
}
DAY = "2024-03-01 "
CHUNKS = [
    {"k1": ["08:00", "09:00"], "k2": ["08:35"] * 3, "k3": []},
    {"k1": ["10:00"] * 4, "k2": ["10:00"], "k3": []},
    {"k1": [], "k2": ["12:10"] * 4, "k3": []},
    {"k1": ["14:00", "14:15"], "k2": ["14:00", "15:15"], "k3": ["15:15", "16:00"]},
    {"k1": [], "k2": ["18:00"], "k3": []},
    {"k1": ["18:15"] * 2, "k2": ["19:15"], "k3": ["18:15", "19:00"]},
    {"k1": [], "k2": [], "k3": ["22:00", "22:05", "22:05", "22:05"]},
]


@pytest.fixture
def ts_store(store_base):
    st = Store(store_base, K)
    for name, times in TS.items():
        df = pd.DataFrame({"ts": pd.to_datetime([DAY + t for t in times]), "v": range(len(times))})
        st[K(name)].write(ordered_on="ts", df=df, row_group_target_size=2)
    return st


def run_ts(store, **kwargs):
    keys = [K("k1"), K("k2"), K("k3")]
    return [
        {k.name: df["ts"].dt.strftime("%H:%M").tolist() for k, df in chunk.items()}
        for chunk in store.iter_intersections(keys, **kwargs)
    ]


def _drop(chunks, name):
    return [{k: v for k, v in c.items() if k != name} for c in chunks]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, CHUNKS),
        ({"start": pd.Timestamp(DAY + "10:00")}, CHUNKS[1:]),
        ({"start": DAY + "10:05"}, CHUNKS[2:]),  # string bounds work
        ({"start": np.datetime64(DAY.strip() + "T10:05")}, CHUNKS[2:]),
        (
            {"start": DAY + "15:15"},
            [{"k1": [], "k2": ["15:15"], "k3": ["15:15", "16:00"]}] + CHUNKS[4:],
        ),
        ({"end_excl": DAY + "10:00"}, _drop(CHUNKS[:1], "k3")),
        ({"end_excl": DAY + "10:05"}, _drop(CHUNKS[:2], "k3")),
        ({"start": DAY + "14:00", "end_excl": DAY + "14:05"}, [{"k1": ["14:00"], "k2": ["14:00"]}]),
        ({"start": DAY + "10:10", "end_excl": DAY + "10:20"}, []),
        (
            {"start": DAY + "12:10", "n_prev": [5, 1, 3]},
            [{"k1": ["09:00"] + ["10:00"] * 4, "k2": ["10:00"] + ["12:10"] * 4, "k3": []}]
            + CHUNKS[3:],
        ),
    ],
)
def test_timestamps(ts_store, kwargs, expected):
    assert run_ts(ts_store, **kwargs) == expected


def test_timestamp_bound_errors(ts_store):
    with pytest.raises(TypeError, match="timezone-aware"):
        run_ts(ts_store, start=pd.Timestamp(DAY + "10:00", tz="UTC"))
    with pytest.raises(TypeError):
        run_ts(ts_store, start=3)
    with pytest.raises(ValueError):
        run_ts(ts_store, start="not a date")


def test_every_row_once_on_random_data(store_base):
    rng = np.random.default_rng(7)
    st = Store(store_base, K)
    frames = {}
    for i in range(4):
        t = np.sort(rng.integers(0, 200, size=rng.integers(1, 120)))
        frames[K(f"d{i}")] = pd.DataFrame({"t": t, "row": np.arange(len(t))})
        st[K(f"d{i}")].write(
            ordered_on="t", df=frames[K(f"d{i}")], row_group_target_size=int(rng.integers(1, 20))
        )
    for start, end in [(None, None), (50, None), (None, 120), (30, 170), (0, 1)]:
        got = {k: [] for k in frames}
        for chunk in st.iter_intersections(list(frames), start=start, end_excl=end):
            lo = min((df["t"].min() for df in chunk.values() if len(df)), default=None)
            for k, df in chunk.items():
                got[k].extend(df["row"].tolist())
                assert df["t"].is_monotonic_increasing
            assert lo is None or start is None or lo >= start
        for k, df in frames.items():
            lo_ok = df["t"] >= (start if start is not None else -1)
            sel = df[lo_ok & (df["t"] < (end if end is not None else 10**9))]
            if got[k] or len(sel):
                assert got[k] == sel["row"].tolist()
