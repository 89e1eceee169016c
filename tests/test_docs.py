"""Every Python code block in README.md and docs/, and every docstring example, runs."""

from __future__ import annotations

import doctest
import importlib
import linecache
import os
import pkgutil
import re
import sys
import types
from pathlib import Path

import pytest

import oups

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def pages():
    for path in DOCS:
        if BLOCK.search(path.read_text()):
            yield pytest.param(path, id=path.name)


@pytest.mark.parametrize("path", list(pages()))
def test_doc_blocks_run(path, tmp_path, monkeypatch):
    """The blocks of a page run in order in one namespace, as a reader would."""
    monkeypatch.chdir(tmp_path)
    # A real module, so that dataclasses defined in the page can find it.
    module = types.ModuleType("oups_doc_page")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for i, match in enumerate(BLOCK.finditer(path.read_text())):
        code = match.group(1).replace("/tmp/oups-readme", str(tmp_path / "readme"))
        filename = f"<{path.name} block {i}>"
        # As a notebook does, so that StatefulLoop's loop validation finds the source.
        lines = code.splitlines(keepends=True)
        monkeypatch.setitem(linecache.cache, filename, (len(code), None, lines, filename))
        exec(compile(code, filename, "exec"), module.__dict__)


def modules():
    for info in pkgutil.walk_packages(oups.__path__, "oups."):
        if info.name != "oups.__main__":
            yield info.name


@pytest.mark.parametrize("name", list(modules()))
def test_docstring_examples(name, tmp_path):
    module = importlib.import_module(name)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    finally:
        os.chdir(cwd)
    assert result.failed == 0


def test_demo_runs(tmp_path, capsys):
    from oups.__main__ import main

    assert main(["demo", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "read back 600,000 rows" in out and "sorted: True" in out


def _public_api():
    for name in oups.__all__:
        obj = getattr(oups, name)
        if name in ("__version__", "exceptions"):
            continue
        yield name, obj
        # The read-only view's methods only refuse (ReadOnlyError).
        if isinstance(obj, type) and obj is not oups.ReadOnlyOrderedParquetDataset:
            # Its own members and those of the oups mixins it is made of.
            members: dict[str, object] = {}
            for klass in reversed(obj.__mro__):
                mixin = klass.__module__.startswith("oups.") and klass.__module__.rsplit(".", 1)[
                    -1
                ].startswith("_")
                if klass is obj or mixin:
                    members.update(vars(klass))
            for attr, value in members.items():
                if not attr.startswith("_") and callable(value):
                    yield f"{name}.{attr}", value


@pytest.mark.parametrize(("name", "obj"), [pytest.param(n, o, id=n) for n, o in _public_api()])
def test_public_api_has_numpy_docstring_with_examples(name, obj):
    doc = obj.__doc__ or ""
    assert "Examples\n" in doc and ">>> " in doc, f"{name} needs an Examples section"
