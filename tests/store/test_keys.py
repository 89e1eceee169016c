"""Keys: @toplevel / @sublevel classes (docs/store.md, "Keys")."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oups import is_toplevel, sublevel, toplevel
from oups.exceptions import InvalidParameterError, ParameterTypeError


@toplevel
class Pair:
    a: str
    b: int


@toplevel(field_sep="_")
class UPair:
    a: str
    b: int


@toplevel(field_sep=".")
class DotPair:
    a: str
    b: int


@sublevel
class L3:
    x: int


@sublevel
class L2:
    y: str
    l3: L3


@toplevel
class Three:
    z: str
    w: int
    l2: L2


@sublevel
class Sub:
    x: str
    n: int


@toplevel()
class Two:
    p: str
    sub: Sub


@toplevel(field_sep="--")
class LongSep:
    a: str
    b: int


def test_pair_spelling_and_class_properties():
    k = Pair("x", 3)
    assert str(k) == "x-3"
    assert k.to_path() == Path("x-3")
    assert (Pair.depth, Pair.field_sep, k.depth, k.field_sep) == (1, "-", 1, "-")
    assert repr(k) == "Pair(a='x', b=3)"
    assert str(DotPair("a", 1)) == "a.1"
    assert DotPair.from_str("a.1") == DotPair("a", 1)
    assert [f.name for f in dataclasses.fields(k)] == ["a", "b"]


def test_three_levels_round_trip():
    k = Three("z", 7, L2("y", L3(5)))
    assert Three.depth == 3
    assert str(k) == "z-7-y-5"
    assert k.to_path() == Path("z-7/y/5")
    assert Three.from_path(k.to_path()) == k
    assert Three.from_str(str(k)) == k
    assert Three.from_path("z-7/y/5") == k  # a str is read as a path


def test_two_levels_strict_layout():
    k = Two("p", Sub("x", 1))
    assert str(k) == "p-x-1"
    assert k.to_path() == Path("p/x-1")
    assert Two.from_path(Path("p/x-1")) == k
    assert Two.from_path("p/x-1") == k
    # Strict: directory breaks must be where the levels are.
    assert Two.from_path(Path("p-x/1")) is None
    assert Two.from_str("p-x-y") is None
    assert Two.from_path(Path("/abs/p/x-1")) is None


@pytest.mark.parametrize(
    ("args", "exc"),
    [
        (("a-b", 1), InvalidParameterError),
        (("a/b", 1), InvalidParameterError),
        (("a:b", 1), InvalidParameterError),
        (("x", -1), InvalidParameterError),
        (("x", 1.5), ParameterTypeError),
        (("", 1), InvalidParameterError),
        (("x", True), ParameterTypeError),
        (("x", None), ParameterTypeError),
        (("x", 1e20), ParameterTypeError),
        (("x", [1]), ParameterTypeError),
        ((1, "y"), ParameterTypeError),  # cannot round-trip: annotations are enforced
        (("x", 2**70), InvalidParameterError),
    ],
)
def test_validation(args, exc):
    with pytest.raises(exc):
        Pair(*args)
    assert issubclass(exc, (ValueError, TypeError))


def test_validation_nested_and_exception_bases():
    with pytest.raises(ValueError, match="field separator"):
        Two("p", Sub("x-y", 1))
    with pytest.raises(TypeError):
        Two("p", L3(1))
    assert str(UPair("x", -1)) == "x_-1"
    assert UPair.from_str("x_-1") == UPair("x", -1)
    # A multi-character separator gluing onto a value cannot round-trip.
    with pytest.raises(ValueError, match="cannot be parsed back"):
        LongSep("a-", 1)
    assert LongSep.from_str(str(LongSep("a-b", 1))) == LongSep("a-b", 1)
    # check=False skips validation, as in the reference.
    assert Pair("", 2, check=False).a == ""
    # dataclasses.replace re-validates.
    with pytest.raises(ValueError):
        dataclasses.replace(Pair("x", 1), a="a:b")


def test_declaration_errors():
    with pytest.raises(TypeError, match="only field"):

        @toplevel
        class SubFirst:
            s: Sub

    with pytest.raises(TypeError, match="last position"):

        @toplevel
        class SubMiddle:
            a: str
            s: Sub
            b: int

    with pytest.raises(TypeError, match="no field"):

        @toplevel
        class Empty:
            pass

    with pytest.raises(TypeError, match="must be int or str"):

        @toplevel
        class Floaty:
            a: float

    with pytest.raises(ValueError, match="must not be empty"):

        @toplevel(field_sep="")
        class NoSep:
            a: str

    with pytest.raises(ValueError, match="must not contain"):

        @toplevel(field_sep="/")
        class Slash:
            a: str


@pytest.mark.parametrize(
    "text",
    ["3", "", "x-y", "w-x-3", "x-01", "x- 1", "x-1_000", "x:y-1", ".x-1", "-2", "x-+1", "x_3"],
)
def test_from_str_is_strict(text):
    assert Pair.from_str(text) is None


def test_from_str_type_errors():
    with pytest.raises(TypeError):
        Pair.from_str(3)
    with pytest.raises(TypeError):
        Pair.from_path(3)


def test_ordering_and_hashing():
    keys = [Pair("b", 1), Pair("a", 2), Pair("a", 1)]
    assert sorted(keys) == [Pair("a", 1), Pair("a", 2), Pair("b", 1)]
    assert Three("a", 1, L2("b", L3(2))) < Three("a", 1, L2("b", L3(10)))
    assert Pair("x", 1) != UPair("x", 1)
    with pytest.raises(TypeError):
        _ = Pair("x", 1) < UPair("x", 1)
    assert len({Pair("x", 1), Pair("x", 1), Pair("y", 1)}) == 2


def test_immutability_and_is_toplevel():
    k = Pair("x", 1)
    with pytest.raises(AttributeError):
        k.a = "y"
    with pytest.raises(AttributeError):
        k.field_sep = "_"
    with pytest.raises(AttributeError):
        Pair.field_sep = "_"
    with pytest.raises(AttributeError):
        Pair.depth = 3
    assert is_toplevel(Pair) and is_toplevel(k)
    assert not is_toplevel(Sub) and not is_toplevel(Sub("x", 1))
    assert not is_toplevel(int) and not is_toplevel(None) and not is_toplevel(3)


def test_copy_and_pickle():
    for k in [Pair("x", 1), Three("z", 7, L2("y", L3(5))), Two("p", Sub("x", 1))]:
        assert copy.copy(k) == k
        assert copy.deepcopy(k) == k
        assert pickle.loads(pickle.dumps(k)) == k
        assert pickle.loads(pickle.dumps(type(k))) is type(k)


def test_pickle_class_defined_in_main(tmp_path):
    script = tmp_path / "main_key.py"
    script.write_text(
        "import copy, pickle\n"
        "from oups import toplevel\n"
        "@toplevel\n"
        "class K:\n"
        "    a: str\n"
        "    b: int\n"
        "k = K('x', 1)\n"
        "assert pickle.loads(pickle.dumps(k)) == k\n"
        "assert copy.deepcopy(k) == k\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


_text = st.text(
    alphabet=st.characters(blacklist_characters='-/\\:*?"<>|', blacklist_categories=("Cs", "Cc")),
    min_size=1,
    max_size=12,
)


@given(a=_text, b=st.integers(min_value=0, max_value=2**63 - 1), y=_text, x=st.integers(0, 10**6))
def test_every_valid_key_round_trips(a, b, y, x):
    try:
        k = Three(a, b, L2(y, L3(x)))
    except InvalidParameterError:
        # A directory-name rule (leading '.', trailing '.' or space, a
        # reserved suffix or device name): refused whole, never half-valid.
        assert Three.from_path(Path(f"{a}-{b}", y, str(x))) is None
        return
    assert Three.from_str(str(k)) == k
    assert Three.from_path(k.to_path()) == k


@given(a=st.text(max_size=8), b=st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_construction_accepts_exactly_the_round_trippable(a, b):
    try:
        k = UPair(a, b)
    except ValueError:
        return
    assert UPair.from_str(str(k)) == k
