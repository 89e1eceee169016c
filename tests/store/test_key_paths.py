"""Keys name directories inside their store, and never each other's files."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oups import Store, sublevel, toplevel
from oups.exceptions import InvalidParameterError, ParameterTypeError


@toplevel
class Sym:
    name: str


@sublevel
class Freq:
    value: str


@toplevel
class Bar:
    symbol: str
    freq: Freq


def _df() -> pd.DataFrame:
    return pd.DataFrame({"ts": [1, 2], "v": [1.0, 2.0]})


@pytest.mark.parametrize(
    "value",
    [
        "../../escaped",
        "..",
        ".",
        "/abs/x",
        "a\\b",
        "x\x00",
        "x\n",
        "a:b",
        "x_opdmd",
        "y.lock",
        "CON",
        "nul.txt",
        "trail.",
        "trail ",
        ".hidden",
    ],
)
def test_store_refuses_keys_that_escape_or_collide_even_unchecked(tmp_path, value):
    base = tmp_path / "store"
    store = Store(base, Sym)
    with pytest.raises(InvalidParameterError):
        Sym(value)
    key = Sym(value, check=False)
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(InvalidParameterError):
        store[key].write(ordered_on="ts", df=_df())
    with pytest.raises(InvalidParameterError):
        key.to_path()
    assert key not in store
    assert list(store) == []
    with pytest.raises(KeyError):
        del store[key]
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_sublevel_values_are_checked_too(tmp_path):
    store = Store(tmp_path, Bar)
    key = Bar(
        "AAPL",
        Freq(
            "..",
        ),
        check=False,
    )  # the sublevel itself is a plain dataclass
    with pytest.raises(InvalidParameterError, match="begins with '.'"):
        store[key].write(ordered_on="ts", df=_df())
    assert not any(tmp_path.iterdir())


def test_tickers_with_dots_are_stored_and_listed(tmp_path):
    store = Store(tmp_path, Sym)
    for name in ["BRK.B", "RDS.A", "X"]:
        store[Sym(name)].write(ordered_on="ts", df=_df())
    assert list(store) == [Sym("BRK.B"), Sym("RDS.A"), Sym("X")]
    assert Sym("BRK.B") in store
    assert store[Sym("BRK.B")].to_pandas()["v"].tolist() == [1.0, 2.0]
    assert Sym.from_str("BRK.B") == Sym("BRK.B")


def test_a_symlinked_level_outside_the_store_is_refused(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    base = tmp_path / "store"
    base.mkdir()
    os.symlink(outside, base / "AAPL")
    store = Store(base, Bar)
    with pytest.raises(InvalidParameterError, match="outside the store"):
        store[Bar("AAPL", Freq("1D"))].write(ordered_on="ts", df=_df())
    assert not any(outside.iterdir())


def test_a_float_given_to_an_int_field_is_a_type_error():
    @toplevel
    class Year:
        year: int

    with pytest.raises(ParameterTypeError, match="must be int, got 1.5"):
        Year(1.5)  # type: ignore[arg-type]


def test_nul_is_reported_with_the_forbidden_characters():
    with pytest.raises(InvalidParameterError, match="control characters") as err:
        Sym("a\x00b")
    assert "'\\0'" in str(err.value) or "\\x00" in str(err.value) or "\\u{0}" in str(err.value)


_names = st.text(alphabet=st.sampled_from(list("abAB01_.-lockpdm ")), min_size=1, max_size=10)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(a=_names, b=_names)
def test_two_valid_keys_never_collide_on_disk(tmp_path_factory, a, b):
    try:
        ka, kb = Sym(a), Sym(b)
    except InvalidParameterError:
        return
    if ka == kb:
        return
    base = tmp_path_factory.mktemp("s")
    store = Store(base, Sym)
    store[ka].write(ordered_on="ts", df=_df())
    store[kb].write(ordered_on="ts", df=_df().assign(v=[3.0, 4.0]))
    assert sorted([ka, kb]) == list(store)
    assert store[ka].to_pandas()["v"].tolist() == [1.0, 2.0]
    assert store[kb].to_pandas()["v"].tolist() == [3.0, 4.0]


def test_key_repr_is_the_plain_dataclass_repr():
    @toplevel
    class Local:
        s: str
        f: Freq

    assert repr(Local("x", Freq("1D"))) == "Local(s='x', f=Freq(value='1D'))"
    assert Sym.from_path("BRK.B") == Sym("BRK.B")
