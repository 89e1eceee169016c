"""Bad input at every public entry point: each case raises the documented
exception (a subclass of the matching builtin) and leaves every file on disk
byte for byte as it was."""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from oups import (
    AsofMerger,
    OrderedParquetDataset,
    StatefulLoop,
    Store,
    sublevel,
    toplevel,
    write,
)
from oups.exceptions import (
    ColumnNotFoundError,
    InvalidParameterError,
    OrderedOnMismatchError,
    OupsError,
    ParameterTypeError,
    SchemaMismatchError,
    UnsortedError,
)

pytestmark = pytest.mark.slow


@toplevel
class Key:
    name: str


@toplevel
class Other:
    name: str


@dataclass
class Ctx:
    root: Path
    ds: Path  # an existing dataset (int key 't', float 'v')
    tsds: Path  # an existing dataset (timestamp key 'ts')
    store: Store
    state: Path  # an existing StatefulLoop state file


def _frame(t, v=None) -> pd.DataFrame:
    t = np.asarray(t)
    return pd.DataFrame({"t": t, "v": np.zeros(len(t)) if v is None else v})


@pytest.fixture
def ctx(tmp_path) -> Ctx:
    store = Store(tmp_path / "store", Key)
    store[Key("a")].write(ordered_on="t", df=_frame(range(10)), row_group_target_size=4)
    ds = tmp_path / "store" / "a"
    tsds = tmp_path / "ts"
    write(
        tsds,
        ordered_on="ts",
        df=pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=5, freq="D"), "x": 1.0}),
    )
    state = tmp_path / "loop.state"
    loop = StatefulLoop(state)
    for item_ctx in loop.iterate([1]):
        with item_ctx:
            pass
    return Ctx(tmp_path, ds, tsds, store, state)


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _loop_body(ctx: Ctx, body: Callable[[StatefulLoop], Any]) -> None:
    loop = StatefulLoop(ctx.state)
    for item_ctx in loop.iterate([1, 2]):
        with item_ctx:
            body(loop)


def _merge(**kwargs: Any) -> Callable[[Ctx], Any]:
    frames = [pd.DataFrame({"t": [1, 2, 3], "v": [1.0, 2.0, 3.0]})]
    call = {"main": np.array([1, 2, 3]), "df_groups": frames, **kwargs}
    return lambda c: AsofMerger("t", n_dfs_per_group=1).merge(**call)


def _bad_key_class(c: Ctx) -> Any:
    @toplevel
    class F:
        x: float  # only int and str fields

    return F


def _bad_sublevel_position(c: Ctx) -> Any:
    @sublevel
    class S:
        s: str

    @toplevel
    class K:
        sub: S  # a sublevel must come last
        name: str

    return K


CASES: list[tuple[str, Callable[[Ctx], Any], type[BaseException], str]] = [
    # write(): the data
    ("write df list", lambda c: write(c.ds, ordered_on="t", df=[1, 2]), ParameterTypeError, "df"),
    (
        "write df ndarray",
        lambda c: write(c.ds, ordered_on="t", df=np.arange(3)),
        ParameterTypeError,
        "df",
    ),
    (
        "write unsorted",
        lambda c: write(c.ds, ordered_on="t", df=_frame([3, 1, 2])),
        UnsortedError,
        "sorted",
    ),
    (
        "write NaN key",
        lambda c: write(c.ds, ordered_on="t", df=_frame([1.0, np.nan])),
        (UnsortedError, SchemaMismatchError),
        "",
    ),
    (
        "write NaT key",
        lambda c: write(
            c.tsds,
            ordered_on="ts",
            df=pd.DataFrame({"ts": pd.to_datetime(["2024-02-01", None]), "x": 1.0}),
        ),
        UnsortedError,
        "missing",
    ),
    (
        "write extra column",
        lambda c: write(c.ds, ordered_on="t", df=_frame([20]).assign(w=1)),
        SchemaMismatchError,
        "w",
    ),
    (
        "write missing column",
        lambda c: write(c.ds, ordered_on="t", df=pd.DataFrame({"t": [20]})),
        SchemaMismatchError,
        "v",
    ),
    (
        "write dtype change",
        lambda c: write(c.ds, ordered_on="t", df=_frame([20], ["a"])),
        SchemaMismatchError,
        "v",
    ),
    (
        "write missing ordered column",
        lambda c: write(c.ds, ordered_on="u", df=_frame([20])),
        (ColumnNotFoundError, OrderedOnMismatchError),
        "",
    ),
    (
        "write ordered_on mismatch",
        lambda c: write(c.ds, ordered_on="v", df=_frame([20])),
        OrderedOnMismatchError,
        "",
    ),
    (
        "write non-string MultiIndex level",
        lambda c: write(
            c.root / "mi",
            ordered_on=("a", 1),
            df=pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)])),
        ),
        (ParameterTypeError, InvalidParameterError),
        "",
    ),
    # write(): the parameters
    *[
        (
            f"write target {size!r}",
            (
                lambda s: (
                    lambda c: write(c.ds, ordered_on="t", df=_frame([20]), row_group_target_size=s)
                )
            )(size),
            exc,
            "row_group_target_size",
        )
        for size, exc in [
            (0, InvalidParameterError),
            (-3, InvalidParameterError),
            (1.5, ParameterTypeError),
            (True, ParameterTypeError),
            ("bogus", InvalidParameterError),
            ("1D", ParameterTypeError),  # a period on an int column
        ]
    ],
    (
        "write duplicates_on int",
        lambda c: write(c.ds, ordered_on="t", df=_frame([20]), duplicates_on=3),
        ParameterTypeError,
        "duplicates_on",
    ),
    (
        "write duplicates_on missing",
        lambda c: write(c.ds, ordered_on="t", df=_frame([20]), duplicates_on=["zz"]),
        ColumnNotFoundError,
        "zz",
    ),
    (
        "write max_n negative",
        lambda c: write(c.ds, ordered_on="t", df=_frame([20]), max_n_off_target_rgs=-1),
        InvalidParameterError,
        "max_n_off_target_rgs",
    ),
    (
        "write max_n str",
        lambda c: write(c.ds, ordered_on="t", df=_frame([20]), max_n_off_target_rgs="2"),
        ParameterTypeError,
        "max_n_off_target_rgs",
    ),
    (
        "write metadata not dict",
        lambda c: write(c.ds, ordered_on="t", df=_frame([20]), key_value_metadata=[1]),
        ParameterTypeError,
        "key_value_metadata",
    ),
    (
        "write metadata not JSON",
        lambda c: write(c.ds, ordered_on="t", df=_frame([20]), key_value_metadata={"k": object()}),
        (ParameterTypeError, InvalidParameterError),
        "key_value_metadata",
    ),
    (
        "write compression",
        lambda c: write(c.ds, ordered_on="t", df=_frame([20]), compression="bzip9"),
        InvalidParameterError,
        "compression",
    ),
    (
        "write lock_timeout",
        lambda c: write(c.ds, ordered_on="t", df=_frame([20]), lock_timeout=-1),
        InvalidParameterError,
        "lock_timeout",
    ),
    (
        "write dirpath",
        lambda c: write(3, ordered_on="t", df=_frame([20])),
        ParameterTypeError,
        "dirpath",
    ),
    # OrderedParquetDataset
    ("dataset dirpath", lambda c: OrderedParquetDataset(None), ParameterTypeError, "dirpath"),
    (
        "dataset ordered_on mismatch",
        lambda c: OrderedParquetDataset(c.ds, ordered_on="v"),
        OrderedOnMismatchError,
        "",
    ),
    (
        "dataset lock_timeout",
        lambda c: OrderedParquetDataset(c.ds, lock_timeout="1"),
        ParameterTypeError,
        "lock_timeout",
    ),
    ("dataset index str", lambda c: OrderedParquetDataset(c.ds)["a"], ParameterTypeError, ""),
    ("dataset index range", lambda c: OrderedParquetDataset(c.ds)[99], IndexError, ""),
    (
        "dataset columns str",
        lambda c: OrderedParquetDataset(c.ds).to_pandas(columns="v"),
        ParameterTypeError,
        "columns",
    ),
    (
        "dataset columns missing",
        lambda c: OrderedParquetDataset(c.ds).to_pandas(columns=["zz"]),
        ColumnNotFoundError,
        "zz",
    ),
    (
        "dataset bound type",
        lambda c: OrderedParquetDataset(c.ds).to_pandas(start="2024-01-01"),
        (ParameterTypeError, TypeError),
        "",
    ),
    (
        "dataset timestamp bound tz",
        lambda c: OrderedParquetDataset(c.tsds).to_pandas(start=pd.Timestamp("2024", tz="UTC")),
        TypeError,
        "",
    ),
    # Store and keys
    ("store basepath", lambda c: Store(3, Key), ParameterTypeError, ""),
    ("store indexer", lambda c: Store(c.root, dict), (ParameterTypeError, TypeError), ""),
    ("store other key class", lambda c: c.store[Other("a")], TypeError, ""),
    ("store key str", lambda c: c.store["a"], TypeError, ""),
    ("key forbidden sep", lambda c: Key("a-b"), ValueError, ""),
    ("key forbidden slash", lambda c: Key("a/b"), ValueError, ""),
    ("key forbidden colon", lambda c: Key("a:b"), ValueError, "forbidden character"),
    ("key reserved suffix", lambda c: Key("a_opdmd"), ValueError, "reserves"),
    ("key dot dot", lambda c: Key("..", check=False).to_path(), ValueError, "begins with"),
    ("key empty", lambda c: Key(""), ValueError, ""),
    ("key wrong type", lambda c: Key(3), TypeError, ""),
    ("key float field", _bad_key_class, TypeError, ""),
    ("key sublevel not last", _bad_sublevel_position, (TypeError, ValueError), ""),
    (
        "iter keys str",
        lambda c: list(c.store.iter_intersections("a")),
        ParameterTypeError,
        "keys",
    ),
    (
        "iter n_prev negative",
        lambda c: list(c.store.iter_intersections([Key("a")], start=3, n_prev=-1)),
        InvalidParameterError,
        "n_prev",
    ),
    (
        "iter n_prev length",
        lambda c: list(c.store.iter_intersections([Key("a")], start=3, n_prev=[1, 2])),
        InvalidParameterError,
        "n_prev",
    ),
    (
        "iter duplicate keys",
        lambda c: list(c.store.iter_intersections([Key("a"), Key("a")])),
        InvalidParameterError,
        "more than once",
    ),
    (
        "iter bound type",
        lambda c: list(c.store.iter_intersections([Key("a")], start="x")),
        (ParameterTypeError, TypeError),
        "",
    ),
    # StatefulLoop
    ("loop filepath", lambda c: StatefulLoop(3), ParameterTypeError, "filepath"),
    (
        "loop memory limit",
        lambda c: StatefulLoop(c.state, default_memory_limit_mb="x"),
        ParameterTypeError,
        "default_memory_limit_mb",
    ),
    (
        "loop memory limit NaN",
        lambda c: StatefulLoop(c.state, default_memory_limit_mb=float("nan")),
        InvalidParameterError,
        "NaN",
    ),
    (
        "loop bind non-callable",
        lambda c: StatefulLoop(c.state).bind_function_state(3, state={}),
        (ParameterTypeError, TypeError),
        "",
    ),
    (
        "loop bind state not dict",
        lambda c: StatefulLoop(c.state).bind_function_state(lambda *, a: a, state=["a"]),
        (ParameterTypeError, TypeError),
        "",
    ),
    (
        "loop bind unknown parameter",
        lambda c: StatefulLoop(c.state).bind_function_state(lambda *, a: a, state={"b": 1}),
        (InvalidParameterError, ValueError),
        "",
    ),
    (
        "loop bind object state str",
        lambda c: StatefulLoop(c.state).bind_object_state(object(), state="x"),
        ParameterTypeError,
        "",
    ),
    (
        "loop buffer non-dict",
        lambda c: _loop_body(c, lambda loop: loop.buffer([1])),
        ParameterTypeError,
        "dict",
    ),
    (
        "loop buffer non-frame",
        lambda c: _loop_body(c, lambda loop: loop.buffer({"k": [1, 2]})),
        ParameterTypeError,
        "'k'",
    ),
    # AsofMerger
    (
        "asof n_prev negative",
        lambda c: AsofMerger("t", n_dfs_per_group=1, n_prev=[-1]),
        (InvalidParameterError, ValueError),
        "n_prev",
    ),
    (
        "asof n_dfs_per_group",
        lambda c: AsofMerger("t", n_dfs_per_group=0),
        (InvalidParameterError, ValueError),
        "n_dfs_per_group",
    ),
    ("asof unsorted main", _merge(main=np.array([3, 1, 2])), UnsortedError, "main"),
    (
        "asof combinations 1-D",
        _merge(combinations=np.array([0, 0, 0])),
        (InvalidParameterError, ValueError),
        "combinations",
    ),
    (
        "asof combinations length",
        _merge(combinations=np.zeros((2, 1), dtype=int)),
        (InvalidParameterError, ValueError),
        "combinations",
    ),
    (
        "asof combinations negative",
        _merge(combinations=np.array([[0], [-1], [0]])),
        (InvalidParameterError, ValueError),
        "combinations",
    ),
    (
        "asof combinations out of range",
        _merge(combinations=np.array([[0], [1], [0]])),
        (InvalidParameterError, ValueError),
        "combinations",
    ),
    ("asof df_groups type", _merge(df_groups="x"), InvalidParameterError, "df_groups"),
    (
        "asof missing on column",
        _merge(df_groups=[pd.DataFrame({"u": [1], "v": [1.0]})]),
        (ColumnNotFoundError, InvalidParameterError, KeyError, ValueError),
        "t",
    ),
]


@pytest.mark.parametrize(("name", "call", "exc", "match"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_and_changes_nothing(ctx, name, call, exc, match):
    before = _snapshot(ctx.root)
    with pytest.raises(exc) as info:
        call(ctx)
    error = info.value
    assert match in str(error), f"{name}: {error}"
    if isinstance(error, OupsError):
        # Our exceptions also derive from the builtin users would catch.
        assert isinstance(error, (ValueError, TypeError, KeyError, OSError, LookupError))
    # Dataset objects made by the call hold their lock (a lock file) until
    # they are collected; the traceback keeps them alive.
    error.__traceback__ = None
    del info, error
    gc.collect()
    assert _snapshot(ctx.root) == before, f"{name} changed files on disk"
