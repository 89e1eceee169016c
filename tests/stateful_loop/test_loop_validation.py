"""Loop-usage validation (docs/stateful_loop.md, "Loop usage validation"):
source through linecache, wrappers and attribute receivers
accepted, truth-tested ``check_loop_usage``, a warning when no source exists."""

from __future__ import annotations

import importlib.util
import linecache
import textwrap
import uuid

import pandas as pd
import pytest

from oups import StatefulLoop

HEADER = """\
import pandas as pd

def df(i):
    return pd.DataFrame({"v": [i]})

"""


def _load(tmp_path, body):
    """Write a module holding ``run(loop, items)`` and import it from disk."""
    name = f"loopshape_{uuid.uuid4().hex}"
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + textwrap.dedent(body))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, path


def _line_of(path, needle):
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


ACCEPTED = {
    "plain": """
        def run(loop, items):
            out = []
            for ctx in loop.iterate(items):
                with ctx as item:
                    res = loop.buffer({"k": df(item)}, memory_limit_mb=0)
                    out.append(res["k"]["v"].tolist())
            return out
    """,
    "enumerate": """
        def run(loop, items):
            out = []
            for i, ctx in enumerate(loop.iterate(items), 1):
                with ctx as item:
                    out.append((i, item))
            return out
    """,
    "with_without_as": """
        def run(loop, items):
            out = []
            for ctx in loop.iterate(items):
                with ctx:
                    out.append(loop.iteration_count)
            return out
    """,
    "multiline_header": """
        def run(loop, items):
            out = []
            for ctx in loop.iterate(
                items,
                check_loop_usage=True,
            ):
                with ctx as item:
                    out.append(item)
            return out
    """,
    "statements_after_with": """
        def run(loop, items):
            out = []
            for ctx in loop.iterate(items):
                # comments are fine
                with ctx as item:
                    loop.buffer({"k": df(item)}, memory_limit_mb=0)
                out.append(item)
            return out
    """,
    "generator_wrapper": """
        def progress(iterable):
            for x in iterable:
                yield x

        def run(loop, items):
            out = []
            for ctx in progress(loop.iterate(items)):
                with ctx as item:
                    out.append(loop.buffer({"k": df(item)}, memory_limit_mb=0)["k"]["v"][0])
            return out
    """,
    "attribute_receiver": """
        class Job:
            def __init__(self, loop):
                self.loop = loop

            def run(self, items):
                out = []
                for ctx in self.loop.iterate(items):
                    with ctx as item:
                        res = self.loop.buffer({"k": df(item)}, memory_limit_mb=0)
                        out.append(res["k"]["v"][0])
                return out

        def run(loop, items):
            return Job(loop).run(items)
    """,
    "nested_with_and_conditional_expression": """
        import contextlib

        def run(loop, items):
            out = []
            for ctx in loop.iterate(items):
                with ctx as item:
                    with contextlib.nullcontext():
                        loop.buffer({"k": df(item)}, memory_limit_mb=0)
                    x = loop.buffer({"k": df(item)}, memory_limit_mb=0) if item else None
                    out.append(item)
            return out
    """,
}


@pytest.mark.parametrize("shape", list(ACCEPTED))
def test_accepted_shapes(tmp_path, shape):
    module, _ = _load(tmp_path, ACCEPTED[shape])
    p = tmp_path / "state.bin"
    out = module.run(StatefulLoop(p), [1, 2])
    assert len(out) == 2
    assert p.exists()


REJECTED = {
    "list_call": (
        """
        def run(loop, items):
            return list(loop.iterate(items))
        """,
        "could not locate the 'for' statement at the call site",
        "return list(",
    ),
    "prebuilt_iterator": (
        """
        def run(loop, items):
            it = loop.iterate(items)
            for ctx in it:
                with ctx as item:
                    pass
        """,
        "expected '<name>.iterate(...)' in the for header",
        None,
    ),
    "enumerate_keyword": (
        """
        def run(loop, items):
            for i, ctx in enumerate(iterable=loop.iterate(items)):
                with ctx as item:
                    pass
        """,
        "expected '<name>.iterate(...)' in the for header",
        None,
    ),
    "attribute_target": (
        """
        class H:
            pass

        def run(loop, items):
            h = H()
            for h.ctx in loop.iterate(items):
                with h.ctx as item:
                    pass
        """,
        "requires binding the iteration context to a simple name",
        None,
    ),
    "assignment_first": (
        """
        def run(loop, items):
            for ctx in loop.iterate(items):
                x = 1
                with ctx as item:
                    pass
        """,
        "using a with statement is compulsory immediately inside the iterate-for body",
        None,
    ),
    "docstring_first": (
        """
        def run(loop, items):
            for ctx in loop.iterate(items):
                "a string expression"
                with ctx as item:
                    pass
        """,
        "using a with statement is compulsory immediately inside the iterate-for body",
        None,
    ),
    "if_first": (
        """
        def run(loop, items):
            for ctx in loop.iterate(items):
                if True:
                    with ctx as item:
                        pass
        """,
        "using a with statement is compulsory immediately inside the iterate-for body",
        None,
    ),
    "two_managers": (
        """
        import contextlib

        def run(loop, items):
            for ctx in loop.iterate(items):
                with ctx as item, contextlib.nullcontext():
                    pass
        """,
        "the first with statement must have a single context manager",
        None,
    ),
    "other_manager": (
        """
        import contextlib

        def run(loop, items):
            for ctx in loop.iterate(items):
                with contextlib.nullcontext() as item:
                    pass
        """,
        "must use the iteration context variable",
        None,
    ),
}
NESTED = {
    "if": "if item:\n    {call}",
    "for": "for _ in [0]:\n    {call}",
    "while": "while True:\n    {call}\n    break",
    "try": "try:\n    {call}\nexcept KeyError:\n    pass",
    "def": "def inner():\n    {call}\ninner()",
    "lambda": "f = lambda: {call}",
    "listcomp": "[{call} for _ in [0]]",
    "setcomp": "{{id({call}) for _ in [0]}}",
    "dictcomp": "{{0: {call} for _ in [0]}}",
    "genexp": "list({call} for _ in [0])",
    "class": "class C:\n    x = {call}",
    "match": "match item:\n    case _:\n        {call}",
}
CALL = 'loop.buffer({"k": df(item)}, memory_limit_mb=0)'
for _name, _snippet in NESTED.items():
    REJECTED[f"buffer_in_{_name}"] = (
        "\n        def run(loop, items):\n            for ctx in loop.iterate(items):\n"
        "                with ctx as item:\n"
        + textwrap.indent(_snippet.format(call=CALL), " " * 20)
        + "\n",
        "must be at the same indentation level as other top-level statements inside the "
        "'with item_ctx as ...:' block",
        "loop.buffer(",
    )
REJECTED["buffer_after_with"] = (
    """
    def run(loop, items):
        for ctx in loop.iterate(items):
            with ctx as item:
                pass
            print([loop.buffer({"k": df(item)})])
    """,
    "must be called directly inside the first 'with item_ctx as ...:' block",
    "loop.buffer(",
)


@pytest.mark.parametrize("shape", list(REJECTED))
def test_rejected_shapes(tmp_path, shape):
    body, fragment, located = REJECTED[shape]
    module, path = _load(tmp_path, body)
    p = tmp_path / "state.bin"
    with pytest.raises(ValueError) as info:
        module.run(StatefulLoop(p), [1, 2])
    message = str(info.value)
    assert fragment in message
    prefix = "buffer()" if "buffer" in shape else "iterate()"
    assert message.startswith(f"StatefulLoop.{prefix} ")
    if located is not None:
        assert f"{path}:{_line_of(path, located)}" in message
    assert not p.exists()


def test_rejection_happens_before_any_item(tmp_path):
    module, _ = _load(tmp_path, REJECTED["buffer_in_if"][0])
    pulled = []

    def source():
        pulled.append(1)
        yield 1

    with pytest.raises(ValueError):
        module.run(StatefulLoop(tmp_path / "s"), source())
    assert pulled == []


def test_check_loop_usage_modes(tmp_path):
    module, _ = _load(
        tmp_path,
        """
        def run(loop, items, **kw):
            out = []
            for ctx in loop.iterate(items, **kw):
                with ctx as item:
                    if item == 2:
                        out.append(loop.buffer({"k": df(item)}, memory_limit_mb=0)["k"]["v"][0])
            return out
        """,
    )
    p = tmp_path / "state.bin"
    with pytest.raises(ValueError):
        module.run(StatefulLoop(p), [1, 2])
    for truthy in (True, 1, "yes"):
        with pytest.raises(ValueError):
            module.run(StatefulLoop(p), [1, 2], check_loop_usage=truthy)
    assert not p.exists()
    assert module.run(StatefulLoop(p), [1, 2], check_loop_usage=0) == [2]
    assert p.exists()
    # A loaded state file means "this ran before": None skips the check.
    assert module.run(StatefulLoop(p), [2]) == [2]
    with pytest.raises(ValueError):
        module.run(StatefulLoop(p), [2], check_loop_usage=True)
    # Creating the generator alone validates nothing.
    StatefulLoop(tmp_path / "other").iterate([1], check_loop_usage=True)


def test_validation_uses_linecache_for_notebook_cells(tmp_path):
    source = textwrap.dedent(
        """
        out = []
        for ctx in loop.iterate([1, 2]):
            with ctx as item:
                if item:
                    loop.buffer({"k": pd.DataFrame({"v": [item]})}, memory_limit_mb=0)
        """
    )
    filename = "<ipython-input-7-0123abcd>"
    lines = source.splitlines(keepends=True)
    linecache.cache[filename] = (len(source), None, lines, filename)
    try:
        code = compile(source, filename, "exec")
        with pytest.raises(ValueError, match=rf"offending call at {filename}:6"):
            exec(code, {"loop": StatefulLoop(tmp_path / "s"), "pd": pd})
    finally:
        linecache.cache.pop(filename, None)


def test_no_source_warns_and_runs(tmp_path):
    source = "for ctx in loop.iterate([1, 2]):\n    with ctx as item:\n        out.append(item)\n"
    code = compile(source, "<no-such-source>", "exec")
    namespace = {"loop": StatefulLoop(tmp_path / "s"), "out": []}
    with pytest.warns(UserWarning, match="no source code available"):
        exec(code, namespace)
    assert namespace["out"] == [1, 2]
    namespace = {"loop": StatefulLoop(tmp_path / "t"), "out": []}
    exec(
        compile(source.replace("[1, 2])", "[1, 2], check_loop_usage=False)"), "<x>", "exec"),
        namespace,
    )
    assert namespace["out"] == [1, 2]


def test_tqdm_wrapper_is_accepted(tmp_path):
    tqdm = pytest.importorskip("tqdm")
    module, _ = _load(
        tmp_path,
        """
        from tqdm import tqdm

        def run(loop, items):
            out = []
            for ctx in tqdm(loop.iterate(items), disable=True):
                with ctx as item:
                    out.append(loop.buffer({"k": df(item)}, memory_limit_mb=0)["k"]["v"][0])
            return out
        """,
    )
    assert tqdm is not None
    assert module.run(StatefulLoop(tmp_path / "s"), [1, 2]) == [1, 2]
