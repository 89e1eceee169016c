"""StatefulLoop through its public API: the behaviour docs/stateful_loop.md
describes, with the pure-Python reference's defects fixed."""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oups import StatefulLoop
from oups._oups import RawStateObject, load_state
from oups.exceptions import CorruptStateError, InvalidParameterError, ParameterTypeError
from oups.stateful_loop import _codec
from oups.stateful_loop._frames import frame_bytes
from oups.stateful_loop.stateful_loop import Skip


def _count(x, *, acc):
    acc["n"] += x
    return acc["n"]


def _df1(values, start):
    return pd.DataFrame(
        {"v": np.array(values, dtype="int64")},
        index=pd.RangeIndex(start, start + len(values)),
    )


PER = int(_df1([0], 0).memory_usage(deep=True).sum())


def _mb(nbytes):
    return nbytes / 1024 / 1024


def _raw_state(path):
    """The manifest and sections of a state file, local or at a URL."""
    if isinstance(path, str) and "://" in path:
        loaded = RawStateObject(path).load()
        assert loaded is not None, f"no state at {path}"
        return loaded
    return load_state(path)


def _states(path):
    manifest, sections = _raw_state(path)
    return _codec.decode(manifest, sections, path)


def _save(path, states):
    """Saves as a loop does: at a URL, over the state it found there."""
    if isinstance(path, str) and "://" in path:
        target = RawStateObject(path)
        target.load()
        _codec.save(target, states)
    else:
        _codec.save(path, states)


# -- construction (L1) -----------------------------------------------------------


def test_constructor_defaults(tmp_path):
    p = tmp_path / "state.bin"
    loop = StatefulLoop(str(p))
    assert loop.iteration_count == -1
    assert loop.is_last_iteration is False
    assert loop.default_memory_limit_mb == 300.0
    assert loop.default_memory_limit_bytes == 314572800
    assert loop.filepath == str(p) and isinstance(loop.filepath, str)
    assert repr(loop) == f"StatefulLoop(filepath={p}, default_memory_limit_mb=300.0)"
    assert not p.exists()
    odd = StatefulLoop(p, default_memory_limit_mb=1.3)
    assert odd.default_memory_limit_bytes == 1363148
    assert odd.default_memory_limit_mb == 1.2999992370605469
    assert odd.filepath == p
    assert StatefulLoop(p, default_memory_limit_mb=1e-7).default_memory_limit_bytes == 0
    with pytest.raises(TypeError):
        StatefulLoop(p, 1.0)


def test_constructor_rejects_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="filepath"):
        StatefulLoop(12)
    with pytest.raises(TypeError, match="default_memory_limit_mb"):
        StatefulLoop(tmp_path / "s", default_memory_limit_mb="big")
    with pytest.raises(ValueError, match="default_memory_limit_mb"):
        StatefulLoop(tmp_path / "s", default_memory_limit_mb=float("nan"))
    with pytest.raises(IsADirectoryError):
        StatefulLoop(tmp_path)


# -- iteration (L2, L3, L9, L14, Q-L1, Q-L2) -----------------------------------------


def test_counters_and_file_written_after_last_item(state_at):
    p = state_at("state.bin")
    loop = StatefulLoop(p)
    seen = []
    for ctx in loop.iterate([10, 20, 30]):
        with ctx as item:
            seen.append((item, loop.iteration_count, loop.is_last_iteration, p.exists()))
    assert seen == [(10, 0, False, False), (20, 1, False, False), (30, 2, True, False)]
    assert _states(p) == {}
    assert loop.iteration_count == 2 and loop.is_last_iteration is True


def test_empty_iterable_writes_nothing(state_at):
    p = state_at("state.bin")
    loop = StatefulLoop(p)
    for _ctx in loop.iterate([], check_loop_usage=False):
        raise AssertionError("no body may run")
    assert not p.exists()
    assert loop.iteration_count == -1 and loop.is_last_iteration is False


def test_iterate_is_lazy_and_a_generator(tmp_path):
    loop = StatefulLoop(tmp_path / "s")
    pulled = []

    def source():
        pulled.append("pull")
        yield 1

    gen = loop.iterate(source())
    assert inspect.isgenerator(gen)
    assert pulled == []


def test_resume_function_state(state_at):
    p = state_at("state.bin")
    loop = StatefulLoop(p)
    count = loop.bind_function_state(_count, state={"acc": {"n": 0}})
    out = []
    for ctx in loop.iterate([1, 2, 3]):
        with ctx as item:
            out.append(count(item))
    assert out == [1, 3, 6]
    assert _states(p) == {"func:_count#1": {"acc": {"n": 6}}}

    loop = StatefulLoop(p)
    acc = {"n": 1000}
    count = loop.bind_function_state(_count, state={"acc": acc})
    out = []
    for ctx in loop.iterate([4, 5]):
        with ctx as item:
            out.append(count(item))
    assert out == [10, 15]
    assert count.keywords["acc"] == {"n": 15}
    assert acc == {"n": 1000}, "stored state wins over the initial value in code"
    assert _states(p) == {"func:_count#1": {"acc": {"n": 15}}}


@pytest.mark.parametrize("how", ["break", "raise"])
@pytest.mark.parametrize("at", [1, 2], ids=["middle", "last"])
def test_break_or_error_leaves_previous_file_untouched(state_at, how, at):
    p = state_at("state.bin")
    loop = StatefulLoop(p)
    count = loop.bind_function_state(_count, state={"acc": {"n": 0}})
    for ctx in loop.iterate([100]):
        with ctx as item:
            count(item)
    before = p.read_bytes()

    loop = StatefulLoop(p)
    count = loop.bind_function_state(_count, state={"acc": {"n": 0}})
    out = []

    def run():
        for ctx in loop.iterate([1, 2, 3]):
            with ctx as item:
                if loop.iteration_count == at:
                    if how == "break":
                        break
                    raise RuntimeError("boom")
                out.append(count(item))

    if how == "raise":
        with pytest.raises(RuntimeError, match="boom"):
            run()
    else:
        run()
    assert out == [101, 103][:at]
    assert p.read_bytes() == before
    assert _states(p) == {"func:_count#1": {"acc": {"n": 100}}}


def test_break_or_error_on_first_run_writes_no_file(state_at):
    p = state_at("state.bin")
    loop = StatefulLoop(p)
    for ctx in loop.iterate([1, 2, 3]):
        with ctx as item:
            if item == 2:
                break
    assert not p.exists()
    with pytest.raises(KeyError):
        for ctx in loop.iterate([1, 2, 3]):
            with ctx:
                raise KeyError("x")
    assert not p.exists()


def test_error_after_the_with_block_of_last_item_saves_nothing(state_at):
    p = state_at("state.bin")
    loop = StatefulLoop(p)
    with pytest.raises(ZeroDivisionError):
        for ctx in loop.iterate([1, 2]):
            with ctx:
                pass
            if loop.is_last_iteration:
                1 / 0  # noqa: B018
    assert not p.exists()


def test_lookahead_order_and_source_errors(tmp_path):
    log = []

    def source():
        for i in range(3):
            log.append(f"pull{i}")
            yield i
        log.append("exhausted")

    loop = StatefulLoop(tmp_path / "a")
    for ctx in loop.iterate(source()):
        with ctx as item:
            log.append(f"body{item}")
    assert log == ["pull0", "pull1", "body0", "pull2", "body1", "exhausted", "body2"]

    def failing():
        yield 0
        yield 1
        raise OSError("source broke")

    processed = []
    p = tmp_path / "b"
    loop = StatefulLoop(p)
    with pytest.raises(OSError, match="source broke"):
        for ctx in loop.iterate(failing()):
            with ctx as item:
                processed.append(item)
    assert processed == [0]
    assert not p.exists()


def test_reused_instance_starts_fresh(tmp_path):
    p = tmp_path / "state.bin"
    loop = StatefulLoop(p)
    for ctx in loop.iterate([1, 2, 3, 4]):
        with ctx:
            pass
    p.unlink()
    seen = []
    for ctx in loop.iterate([5, 6]):
        with ctx as item:
            seen.append((item, loop.iteration_count, loop.is_last_iteration))
            out = loop.buffer({"k": _df1([item], item)})
            # A fresh run flushes on its own last item only.
            assert loop.is_last_iteration and out["k"]["v"].tolist() == [5, 6]
    assert seen == [(5, 0, False), (6, 1, True)]
    p.unlink()
    for _ctx in loop.iterate([], check_loop_usage=False):
        pass
    assert not p.exists(), "an empty run on a reused instance writes nothing"
    assert loop.iteration_count == -1 and not loop.is_last_iteration


def test_reused_instance_snapshots_bound_objects_again(tmp_path):
    p = tmp_path / "state.bin"

    class Acc:
        total = 0

    acc = Acc()
    loop = StatefulLoop(p)
    loop.bind_object_state(acc, state=["total"])
    for run in ([1, 2], [10]):
        for ctx in loop.iterate(run):
            with ctx as item:
                acc.total += item
    assert _states(p) == {"obj:Acc#1": {"total": 13}}


def test_save_failure_surfaces_from_the_for_statement(tmp_path):
    loop = StatefulLoop(tmp_path / "missing" / "state.bin")
    with pytest.raises(FileNotFoundError, match="missing"):
        for ctx in loop.iterate([1]):
            with ctx:
                pass
    assert list(tmp_path.iterdir()) == []


# -- binding (L5-L8, Q-L4) -----------------------------------------------------------


def test_binding_keys_follow_bind_order(tmp_path):
    p = tmp_path / "state.bin"

    def f(x, *, s=None):
        return x

    class Counter:
        def __init__(self):
            self.n = 0

    loop = StatefulLoop(p)
    loop.bind_function_state(f, state={"s": [1]})
    loop.bind_function_state(f, state={"s": [2]})
    loop.bind_function_state(f, state={"s": [3]}, name="custom")
    with pytest.raises(ValueError):
        loop.bind_function_state(f, state={"zz": 1})
    loop.bind_function_state(f, state={"s": [4]}, name="")
    loop.bind_object_state(Counter(), state=["n"])
    loop.bind_object_state(Counter(), state=["n"], name="K")
    loop.bind_object_state(Counter(), state=["n"])
    for ctx in loop.iterate([0]):
        with ctx:
            pass
    assert list(_states(p)) == [
        "func:f#1",
        "func:f#2",
        "func:custom#1",
        "func:f#3",
        "obj:Counter#1",
        "obj:K#1",
        "obj:Counter#2",
    ]


def test_bound_function_signature_and_override(tmp_path):
    def f(x, y=1, *, acc, hist=None, **kw):
        acc.append(x)
        return list(acc)

    loop = StatefulLoop(tmp_path / "s")
    g = loop.bind_function_state(f, state={"acc": []})
    assert list(inspect.signature(g).parameters) == ["x", "y", "hist", "kw"]
    assert g(1) == [1]
    assert g(2) == [1, 2]
    assert g(3, acc=["override"]) == ["override", 3]
    assert g(4) == [1, 2, 4]
    h = loop.bind_function_state(f, state={"acc": [], "hist": None})
    assert list(inspect.signature(h).parameters) == ["x", "y", "kw"]
    # A parameter named like **kwargs is accepted, as in the reference.
    loop.bind_function_state(f, state={"kw": {}})


def test_object_state_persists_mutation_and_reassignment(state_at):
    p = state_at("state.bin")

    class Acc:
        def __init__(self):
            self.a = {"n": 0}
            self.b = 0
            self.c = 5

    def run(items, check):
        obj = Acc()
        loop = StatefulLoop(p)
        assert loop.bind_object_state(obj, state=["a", "b"]) is obj
        check(obj)
        for ctx in loop.iterate(items):
            with ctx as item:
                obj.a["n"] += item
                obj.b = item
                obj.c = -1
        return obj

    run([1, 2], lambda o: None)
    assert _states(p) == {"obj:Acc#1": {"a": {"n": 3}, "b": 2}}

    def resumed(o):
        assert (o.a, o.b, o.c) == ({"n": 3}, 2, 5)

    obj = run([3], resumed)
    assert (obj.a, obj.b) == ({"n": 6}, 3)


def test_invalid_binds(tmp_path):
    import functools

    def f(x, *, y=0):
        return x

    class Obj:
        a = 1

    loop = StatefulLoop(tmp_path / "s")
    with pytest.raises(ValueError, match="not present in stateful function/object: aa, zz$"):
        loop.bind_function_state(f, state={"zz": 1, "aa": 2, "y": 0})
    with pytest.raises(ValueError, match="not present in stateful function/object: yy, zz$"):
        loop.bind_object_state(Obj(), state=["zz", "a", "yy"])
    partial = functools.partial(f, 1)
    with pytest.raises(ValueError, match="function has no name"):
        loop.bind_function_state(partial, state={"y": 1})
    assert loop.bind_function_state(partial, state={"y": 1}, name="p")() == 1
    with pytest.raises(TypeError, match="callable"):
        loop.bind_function_state(3, state={})
    with pytest.raises(TypeError, match="state must be a dict"):
        loop.bind_function_state(f, state=[("y", 1)])
    with pytest.raises(TypeError, match="list of attribute names"):
        loop.bind_object_state(Obj(), state="a")
    with pytest.raises(ValueError, match="positional-only"):
        loop.bind_function_state(lambda a, /, b=0: a, state={"a": 1})
    assert isinstance(
        pytest.raises(ValueError, loop.bind_object_state, Obj(), state=["q"]).value,
        InvalidParameterError,
    )


def test_resume_initialises_new_state_from_code(state_at):
    p = state_at("state.bin")

    def f(x, *, a, b=None):
        a.append(x)
        if b is not None:
            b.append(-x)

    class Obj:
        def __init__(self):
            self.a = 0

    loop = StatefulLoop(p)
    g = loop.bind_function_state(f, state={"a": []})
    obj = loop.bind_object_state(Obj(), state=["a"])
    for ctx in loop.iterate([1]):
        with ctx as item:
            g(item)
            obj.a += 1

    loop = StatefulLoop(p)
    g = loop.bind_function_state(f, state={"a": [], "b": []})
    obj = Obj()
    obj.b = "from code"
    loop.bind_object_state(obj, state=["a", "b"])
    assert g.keywords == {"a": [1], "b": []}
    assert (obj.a, obj.b) == (1, "from code")
    for ctx in loop.iterate([2]):
        with ctx as item:
            g(item)
    assert _states(p) == {
        "func:f#1": {"a": [1, 2], "b": [-2]},
        "obj:Obj#1": {"a": 1, "b": "from code"},
    }


def test_persisted_state_is_what_is_bound(state_at):
    p = state_at("state.bin")
    state = {"acc": {"n": 0}}
    loop = StatefulLoop(p)
    count = loop.bind_function_state(_count, state=state)
    state["acc"] = {"n": 999}  # rebinding the caller's dict changes nothing
    for ctx in loop.iterate([1, 2]):
        with ctx as item:
            count(item)
    assert _states(p) == {"func:_count#1": {"acc": {"n": 3}}}


def test_stale_states_are_kept(state_at):
    p = state_at("state.bin")
    loop = StatefulLoop(p)
    loop.bind_function_state(_count, state={"acc": {"n": 7}})
    for ctx in loop.iterate([0]):
        with ctx:
            pass
    loop = StatefulLoop(p)
    # A renamed binding would silently restart from scratch: say so, once.
    with pytest.warns(UserWarning, match="holds state for func:_count#1, which this run did not"):
        for ctx in loop.iterate([0]):
            with ctx:
                pass
    assert _states(p) == {"func:_count#1": {"acc": {"n": 7}}}


# -- buffer (L10-L13, L15, Q-L3) -----------------------------------------------------


def _run_buffered(tmp_path, n, data_of, limit, after=None, **kw):
    loop = StatefulLoop(tmp_path / "s")
    flushes = []
    for ctx in loop.iterate(range(n)):
        with ctx as item:
            out = loop.buffer(data_of(item), memory_limit_mb=_mb(limit), **kw)
            flushes.append((item, {k: df["v"].tolist() for k, df in out.items()}, out))
        if after is not None:
            after.append(item)
    return flushes


def test_buffer_flushes_on_limit_and_last_item(tmp_path):
    after = []
    flushes = _run_buffered(
        tmp_path,
        8,
        lambda i: {"k": _df1([i], i), "j": _df1([10 * i], i)},
        3 * PER,
        after=after,
    )
    assert [(i, v) for i, v, _ in flushes] == [
        (1, {"k": [0, 1], "j": [0, 10]}),
        (3, {"k": [2, 3], "j": [20, 30]}),
        (5, {"k": [4, 5], "j": [40, 50]}),
        (7, {"k": [6, 7], "j": [60, 70]}),
    ]
    assert all(list(out) == ["k", "j"] for _, _, out in flushes)
    assert after == list(range(8))

    flushes = _run_buffered(tmp_path, 5, lambda i: {"k": _df1([i], i)}, 2 * PER)
    assert [(i, v) for i, v, _ in flushes] == [
        (1, {"k": [0, 1]}),
        (3, {"k": [2, 3]}),
        (4, {"k": [4]}),
    ]
    assert flushes[0][2]["k"].index.tolist() == [0, 1]
    assert flushes[2][2]["k"].index.tolist() == [4]


def test_chained_buffers(tmp_path):
    loop = StatefulLoop(tmp_path / "s")
    first, second = [], []
    for ctx in loop.iterate(range(7)):
        with ctx as item:
            out = loop.buffer({"k": _df1([item], item)}, memory_limit_mb=_mb(2 * PER))
            first.append(item)
            out = loop.buffer({"k": out["k"]}, memory_limit_mb=1000)
            second.append((item, out["k"]["v"].tolist()))
    assert first == [1, 3, 5, 6]
    assert second == [(6, list(range(7)))]


def test_empty_buffers_and_zero_limits(tmp_path):
    loop = StatefulLoop(tmp_path / "s")
    got = []
    for ctx in loop.iterate(range(3)):
        with ctx:
            got.append(loop.buffer({}, memory_limit_mb=0))
            got.append(loop.buffer({}))
    # The default-limit call skips until the last item, then returns {} too.
    assert got == [{}, {}, {}, {}]
    loop = StatefulLoop(tmp_path / "s2", default_memory_limit_mb=0)
    flushed = []
    for ctx in loop.iterate(range(3)):
        with ctx as item:
            flushed.append(loop.buffer({"k": _df1([item], item)})["k"]["v"].tolist())
    assert flushed == [[0], [1], [2]]


def test_varying_keys_and_custom_concat(tmp_path):
    lengths = []

    def concat(frames):
        assert type(frames) is list
        lengths.append(len(frames))
        return pd.concat(frames)

    def data(i):
        if i == 4:
            return {"c": _df1([4], 4)}
        if i % 2 == 0:
            return {"a": _df1([i], i)}
        return {"b": _df1([i], i), "a": _df1([100 + i], i)}

    flushes = _run_buffered(tmp_path, 6, data, 3 * PER, concat_func=concat)
    assert [(i, v) for i, v, _ in flushes] == [
        (1, {"a": [0, 101], "b": [1]}),
        (3, {"a": [2, 103], "b": [3]}),
        (5, {"a": [105], "b": [5], "c": [4]}),
    ]
    assert [list(out) for _, _, out in flushes][-1] == ["a", "b", "c"]
    assert lengths == [2, 1, 2, 1, 1, 1, 1]


def test_skip_semantics_and_unchecked_conditional_buffer(tmp_path):
    loop = StatefulLoop(tmp_path / "s")
    trace = []
    for ctx in loop.iterate([1, 2, 3], check_loop_usage=False):
        with ctx as item:
            trace.append(item)
            if item == 2:
                loop.buffer({"k": _df1([item], item)})
            trace.append(f"in{item}")
        trace.append(f"after{item}")
    assert trace == [1, "in1", "after1", 2, "after2", 3, "in3", "after3"]
    assert Skip.__name__ == "Skip" and issubclass(Skip, Exception)

    class SubSkip(Skip):
        pass

    with pytest.raises(SubSkip):
        for ctx in StatefulLoop(tmp_path / "t").iterate([1]):
            with ctx:
                raise SubSkip


def test_buffer_outside_the_loop(tmp_path):
    loop = StatefulLoop(tmp_path / "s")
    with pytest.raises(Skip):
        loop.buffer({"k": _df1([1], 0)})
    # Before the loop each call is its own buffer position.
    out = loop.buffer({"k": _df1([2], 1)}, memory_limit_mb=0)
    assert out["k"]["v"].tolist() == [2]


def test_buffer_rejects_non_frames_before_storing(tmp_path):
    loop = StatefulLoop(tmp_path / "s")
    for ctx in loop.iterate(range(3), check_loop_usage=False):
        with ctx as item:
            if item == 1:
                with pytest.raises(TypeError, match="key 'bad' is a Series"):
                    loop.buffer({"k": _df1([99], 99), "bad": pd.Series([1])})
                with pytest.raises(TypeError, match="data must be a dict"):
                    loop.buffer([_df1([1], 1)])
                with pytest.raises(TypeError, match="memory_limit_mb"):
                    loop.buffer({"k": _df1([1], 1)}, memory_limit_mb="1")
            out = loop.buffer({"k": _df1([item], item)})
    assert out["k"]["v"].tolist() == [0, 1, 2], "nothing of the rejected calls was kept"


def test_concat_failure_keeps_frames(tmp_path):
    loop = StatefulLoop(tmp_path / "s")
    calls = []

    def flaky(frames):
        calls.append(len(frames))
        if len(calls) == 1:
            raise RuntimeError("concat failed")
        return pd.concat(frames)

    for ctx in loop.iterate([1, 2], check_loop_usage=False):
        with ctx as item:
            if item == 1:
                with pytest.raises(RuntimeError):
                    loop.buffer({"k": _df1([1], 0)}, memory_limit_mb=0, concat_func=flaky)
                continue
            out = loop.buffer({"k": _df1([2], 1)}, memory_limit_mb=0, concat_func=flaky)
    assert out["k"]["v"].tolist() == [1, 2]


def test_arrow_and_polars_frames(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pl = pytest.importorskip("polars")
    loop = StatefulLoop(tmp_path / "s")
    t = pa.table({"v": [1, 2, 3]})
    b = pa.record_batch({"v": [4]})
    frame = pl.DataFrame({"v": [5, 6]})
    outs = []
    for ctx in loop.iterate(range(2)):
        with ctx:
            out = loop.buffer({"arrow": t, "batch": b})
            out2 = loop.buffer({"polars": frame})
            outs.append((out, out2))
    ((out, out2),) = outs
    assert out["arrow"].column("v").to_pylist() == [1, 2, 3, 1, 2, 3]
    assert out["batch"].column("v").to_pylist() == [4, 4]
    # Item 0 skipped at the first buffer, so the second only saw item 1.
    assert out2["polars"]["v"].to_list() == [5, 6]
    assert frame_bytes("pyarrow", t) == t.nbytes
    assert frame_bytes("polars", frame) == frame.estimated_size()


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"v": [1]}),
        pd.DataFrame({"a": [1.5, 2.5], "b": ["x", "yy"], "c": [True, False]}, index=[3, 4]),
        pd.DataFrame(
            {"s": pd.array(["a", None], dtype="string"), "i": pd.array([1, None], "Int64")}
        ),
        pd.DataFrame(
            {"cat": pd.Categorical(["a", "b"]), "t": pd.to_datetime(["2024", "2025"], utc=True)},
            index=pd.Index(["r1", "r2"]),
        ),
        pd.DataFrame({"o": [{"k": 1}, [1, 2, 3]]}),
        pd.DataFrame(index=pd.RangeIndex(0)),
    ],
)
def test_pandas_memory_matches_memory_usage_deep(frame):
    assert frame_bytes("pandas", frame) == int(frame.memory_usage(deep=True).sum())


# -- persistence file (L16 and the fixed format) --------------------------------------


def test_corrupt_files_raise_clear_errors(state_at):
    p = state_at("state.bin")
    loop = StatefulLoop(p)
    loop.bind_function_state(_count, state={"acc": {"n": np.arange(1000)}})
    for ctx in loop.iterate([0]):
        with ctx:
            pass
    good = p.read_bytes()
    cases = {
        b"": "empty",
        good[:-7]: "truncated",
        good[: len(good) // 2]: "truncated",
        good[:300] + bytes([good[300] ^ 0xFF]) + good[301:]: "checksum",
        pickle.dumps({"id": "stateful_loop", "version": 1, "states": {}}): "not an oups",
        good[:8] + (7).to_bytes(4, "little") + good[12:]: "format version 7",
    }
    for content, reason in cases.items():
        p.write_bytes(content)
        with pytest.raises(CorruptStateError, match=reason) as info:
            StatefulLoop(p)
        assert str(p) in str(info.value)
        assert isinstance(info.value, ValueError)


class Custom:
    def __init__(self, v):
        self.v = v

    def __eq__(self, other):
        return isinstance(other, Custom) and other.v == self.v


def _roundtrip(state_at, value):
    p = state_at("rt.bin")
    _save(p, {"k": {"v": value}})
    return _states(p)["k"]["v"]


def test_plain_values_round_trip_without_pickle(state_at):
    value = {
        "none": None,
        "flags": [True, False],
        "big": 2**80,
        "floats": (1.5, float("inf"), -0.0),
        "text": "héllo",
        3: {"int keys": frozenset({1, 2})},
        (1, "a"): {4, 5},
        "bytes": b"\x00\xff",
        "ba": bytearray(b"xy"),
        "nested": [[1, [2, {"x": ()}]]],
    }
    assert _roundtrip(state_at, value) == value
    manifest, _ = _raw_state(state_at("rt.bin"))
    assert '"pickle"' not in manifest


def test_arrays_and_frames_round_trip(state_at):
    pa = pytest.importorskip("pyarrow")
    pl = pytest.importorskip("polars")
    arrays = [
        np.arange(12, dtype="int32").reshape(3, 4),
        np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        np.array(["2024-01-01", "NaT"], dtype="datetime64[ns]"),
        np.array([1, 2], dtype="timedelta64[s]"),
        np.array(3.5),
        np.array([], dtype="uint8"),
        np.array(["ab", "c"], dtype="U2"),
        np.arange(10)[::3],
    ]
    for a in arrays:
        got = _roundtrip(state_at, a)
        assert got.dtype == a.dtype and got.shape == a.shape
        np.testing.assert_array_equal(got, a)
        assert got.flags.writeable
    scalar = _roundtrip(state_at, np.float32(1.25))
    assert type(scalar) is np.float32 and scalar == 1.25

    frames = [
        pd.DataFrame({"a": np.arange(5), "b": np.linspace(0, 1, 5)}),
        pd.DataFrame(
            {"c": pd.Categorical(["x", "y"]), "n": pd.array([1, None], dtype="Int64")},
            index=pd.DatetimeIndex(["2024-01-01", "2024-01-02"], tz="Europe/Paris", name="ts"),
        ),
        pd.DataFrame({"s": ["u", "v"], "mixed": [1, "two"]}),
        pd.DataFrame({("a", "b"): [1], ("a", "c"): [2]}),
        pd.DataFrame({1: [1.0], 2: [2.0]}),
    ]
    for df in frames:
        got = _roundtrip(state_at, df)
        pd.testing.assert_frame_equal(got, df)
        got.iloc[0, 0] = got.iloc[-1, 0]  # restored frames are writable
    s = pd.Series([1.5, 2.5], index=["a", "b"], name="speed")
    pd.testing.assert_series_equal(_roundtrip(state_at, s), s)
    t = pa.table({"x": [1, 2], "y": ["a", None]})
    assert _roundtrip(state_at, t).equals(t)
    b = pa.record_batch({"x": [1.0]})
    assert _roundtrip(state_at, b).equals(b)
    pf = pl.DataFrame({"x": [1, 2], "y": ["a", "b"]})
    assert _roundtrip(state_at, pf).equals(pf)
    assert _roundtrip(state_at, Custom([1, 2])) == Custom([1, 2])
    cyc = [1]
    cyc.append(cyc)
    got = _roundtrip(state_at, cyc)
    assert got[0] == 1 and got[1] is got


def test_tables_are_stored_as_arrow_not_pickle(tmp_path):
    from oups._oups import load_state

    df = pd.DataFrame({"a": np.arange(3)})
    _codec.save(tmp_path / "s.bin", {"k": {"df": df, "arr": np.arange(4)}})
    manifest, sections = load_state(tmp_path / "s.bin")
    assert '"pickle"' not in manifest
    assert [kind for kind, _ in sections] == ["arrow", "raw"]


def _has_cloudpickle():
    try:
        import cloudpickle  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(_has_cloudpickle(), reason="cloudpickle persists lambdas")
def test_unpicklable_state_is_a_clear_error(tmp_path):
    p = tmp_path / "s.bin"
    loop = StatefulLoop(p)
    loop.bind_function_state(_count, state={"acc": lambda: 1})
    with pytest.raises(
        ParameterTypeError, match=r"cannot persist state 'func:_count#1', entry 'acc'"
    ):
        for ctx in loop.iterate([0]):
            with ctx:
                pass
    assert not p.exists()


def test_missing_class_on_load_is_a_clear_error(tmp_path):
    import sys
    import types

    mod = types.ModuleType("oups_test_ephemeral")

    class Gone:
        pass

    Gone.__module__ = "oups_test_ephemeral"
    Gone.__qualname__ = "Gone"
    mod.Gone = Gone
    sys.modules["oups_test_ephemeral"] = mod
    try:
        _codec.save(tmp_path / "s.bin", {"k": {"v": Gone()}})
    finally:
        del sys.modules["oups_test_ephemeral"]
    with pytest.raises(CorruptStateError, match="pickled value cannot be restored"):
        StatefulLoop(tmp_path / "s.bin")


@pytest.mark.parametrize(
    "df",
    [
        pd.DataFrame({"a": np.arange(5.0), "b": np.arange(5), "c": np.arange(5) > 2}),
        pd.DataFrame({"a": [np.nan, 1.0]}, index=pd.RangeIndex(10, 14, 2, name="r")),
        pd.DataFrame({"i8": np.array([1, -1], "int8"), "u2": np.array([1, 2], "uint16")}),
        pd.DataFrame({"f": np.array([1.5], "float32")}, index=pd.RangeIndex(5, 6)),
        pd.DataFrame({"a": np.array([], "float64")}),
    ],
)
def test_fast_frame_conversion_matches_from_pandas(df):
    pa = pytest.importorskip("pyarrow")
    fast = _codec._pandas_to_arrow(df)
    reference = pa.Table.from_pandas(df)
    assert fast.schema.equals(reference.schema, check_metadata=True)
    pd.testing.assert_frame_equal(fast.to_pandas(), reference.to_pandas())
    pd.testing.assert_frame_equal(fast.to_pandas(), df)


def _frames_variants():
    def consecutive(n, make):
        out, start = [], 0
        for i in range(n):
            f = make(i)
            f.index = pd.RangeIndex(start, start + len(f))
            start += len(f)
            out.append(f)
        return out

    ts = pd.Timestamp("2024-01-01")
    yield "one_row", [pd.DataFrame({"v": [i]}, index=pd.RangeIndex(i, i + 1)) for i in range(5)]
    yield (
        "mixed_blocks",
        consecutive(
            4,
            lambda i: pd.DataFrame(
                {
                    "a": [i, i + 1],
                    "t": [ts + pd.Timedelta(i, "s")] * 2,
                    "b": [0.5 * i, np.nan],
                    "s": ["x", None],
                    "c": [True, False],
                    "d": pd.to_timedelta([i, 2], unit="s"),
                }
            ),
        ),
    )
    yield (
        "gaps",
        [pd.DataFrame({"v": [i]}, index=pd.RangeIndex(2 * i, 2 * i + 1)) for i in range(4)],
    )
    yield (
        "named_index",
        [pd.DataFrame({"v": [i]}, index=pd.RangeIndex(i, i + 1, name="n")) for i in range(3)],
    )
    yield (
        "names_differ",
        [pd.DataFrame({"v": [i]}, index=pd.RangeIndex(i, i + 1, name=str(i))) for i in range(3)],
    )
    yield "fresh_indexes", [pd.DataFrame({"v": [i, i], "w": [0.5, i]}) for i in range(4)]
    yield (
        "descending",
        [pd.DataFrame({"v": [i]}, index=pd.RangeIndex(9 - i, 10 - i)) for i in range(3)],
    )
    yield "same_start", [pd.DataFrame({"v": [i]}, index=pd.RangeIndex(5, 6)) for i in range(3)]
    yield (
        "step_two",
        [pd.DataFrame({"v": [i, i]}, index=pd.RangeIndex(4 * i, 4 * i + 4, 2)) for i in range(3)],
    )
    yield (
        "numeric_datetime",
        [pd.DataFrame({"t": [ts] * 2, "x": [1.0, 2.0], "n": [i, i]}) for i in range(3)],
    )
    yield "int_index", [pd.DataFrame({"v": [i]}, index=[10 - i]) for i in range(3)]
    yield "columns_differ", [pd.DataFrame({"v": [1]}), pd.DataFrame({"w": [2]})]
    yield "dtypes_differ", [pd.DataFrame({"v": [1]}), pd.DataFrame({"v": [2.5]})]
    yield "order_differs", [pd.DataFrame({"v": [1], "w": [2]}), pd.DataFrame({"w": [3], "v": [4]})]
    yield "categorical", [pd.DataFrame({"c": pd.Categorical(["a"])}) for _ in range(3)]
    yield (
        "with_empty",
        [pd.DataFrame({"v": [1]}), pd.DataFrame({"v": pd.Series([], dtype="int64")})],
    )
    yield "tz", [pd.DataFrame({"t": pd.to_datetime(["2024"], utc=True)}) for _ in range(2)]
    named = pd.Index(["p", "q"], name="cols")
    yield (
        "column_index_name",
        [pd.DataFrame([[i, i]], columns=named, index=pd.RangeIndex(i, i + 1)) for i in range(3)],
    )


@pytest.mark.parametrize(
    "frames", [f for _, f in _frames_variants()], ids=[n for n, _ in _frames_variants()]
)
def test_default_pandas_concat_equals_pd_concat(frames):
    from oups.stateful_loop._frames import DEFAULT_CONCAT

    before = [f.copy() for f in frames]
    got = DEFAULT_CONCAT["pandas"](frames)
    expected = pd.concat(frames)
    pd.testing.assert_frame_equal(got, expected, check_index_type=True, check_column_type=True)
    assert type(got.index) is type(expected.index)
    got.iloc[0, 0] = got.iloc[-1, 0]  # a fresh, writable frame
    for frame, copy in zip(frames, before, strict=True):
        pd.testing.assert_frame_equal(frame, copy)


def test_default_pandas_concat_takes_the_fast_path_for_uniform_frames():
    from oups.stateful_loop._frames import _concat_pandas_fast

    variants = dict(_frames_variants())
    for name in ("one_row", "fresh_indexes", "gaps", "step_two", "numeric_datetime"):
        assert _concat_pandas_fast(variants[name]) is not None, name
    for name in ("int_index", "columns_differ", "dtypes_differ", "categorical", "tz"):
        assert _concat_pandas_fast(variants[name]) is None, name


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-3, 8), st.integers(1, 3), st.sampled_from([-2, -1, 1, 2, 3])),
        min_size=2,
        max_size=6,
    )
)
def test_fast_concat_index_rules_match_pandas(specs):
    from oups.stateful_loop._frames import _concat_pandas

    step = specs[0][2]
    frames = [
        pd.DataFrame(
            {"v": np.arange(n, dtype="int64"), "f": np.full(n, 0.5)},
            index=pd.RangeIndex(start, start + n * step, step),
        )
        for start, n, _ in specs
    ]
    got = _concat_pandas(frames)
    expected = pd.concat(frames)
    pd.testing.assert_frame_equal(got, expected, check_index_type=True)
    assert type(got.index) is type(expected.index)


def test_two_loops_on_one_url_never_overwrite_each_other(s3_server, tmp_path):
    from oups.exceptions import CommitConflictError

    url = s3_server.url("shared-state") + "/loop.state"

    def run(loop, items):
        count = loop.bind_function_state(_count, state={"acc": {"n": 0}})
        for ctx in loop.iterate(items):
            with ctx as item:
                count(item)

    first, second = StatefulLoop(url), StatefulLoop(url)
    run(first, [1])
    assert _states(url) == {"func:_count#1": {"acc": {"n": 1}}}
    # The second loop found no state: its save must not replace the first's.
    with pytest.raises(CommitConflictError, match="another process"):
        run(second, [2])
    assert _states(url) == {"func:_count#1": {"acc": {"n": 1}}}
    # A loop resumed from the saved state saves over it; the next one too.
    run(StatefulLoop(url), [10])
    run(StatefulLoop(url), [100])
    assert _states(url) == {"func:_count#1": {"acc": {"n": 111}}}
    with pytest.raises(InvalidParameterError, match="local path"):
        StatefulLoop(tmp_path / "s", storage_options={"aws_region": "us-east-1"})
    # Explicit options reach the client.
    bad = {"aws_endpoint_url": "http://127.0.0.1:9"}
    with pytest.raises(Exception, match="127.0.0.1:9"):
        StatefulLoop(s3_server.url("elsewhere") + "/s", storage_options=bad)
