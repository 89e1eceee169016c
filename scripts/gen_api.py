"""Writes docs/api.md from the docstrings and signatures of the public API.

    python scripts/gen_api.py          # rewrite docs/api.md
    python scripts/gen_api.py --check  # exit 1 when docs/api.md is stale

``tests/test_api_doc.py`` runs the check, so a docstring change without a
regenerated page fails the suite.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

import oups
import oups.dask
import oups.exceptions

OUT = Path(__file__).resolve().parents[1] / "docs" / "api.md"

HEADER = """# API reference

Generated from the docstrings by `python scripts/gen_api.py`; do not edit by hand.
The guides ([dataset.md](dataset.md), [store.md](store.md),
[stateful_loop.md](stateful_loop.md), [asof_merger.md](asof_merger.md),
[segmented_aggregator.md](segmented_aggregator.md), [dask.md](dask.md)) explain the
behaviour; this page lists every public name with its signature.
"""


def _annotation(a: Any) -> str:
    return a if isinstance(a, str) else repr(a)


def _signature(obj: Any) -> str:
    """``(a: int, *, b: str = "x") -> None``, annotations as written in the source."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return ""
    parts = []
    star_done = False
    for p in sig.parameters.values():
        if p.kind is p.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        if p.kind is p.VAR_POSITIONAL:
            star_done = True
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        text = prefix + p.name
        if p.annotation is not p.empty:
            text += f": {_annotation(p.annotation)}"
        if p.default is not p.empty:
            text += f" = {p.default!r}"
        parts.append(text)
        if p.kind is p.POSITIONAL_ONLY and all(
            q.kind is not q.POSITIONAL_ONLY
            for q in list(sig.parameters.values())[list(sig.parameters).index(p.name) + 1 :]
        ):
            parts.append("/")
    out = f"({', '.join(parts)})"
    if sig.return_annotation is not sig.empty:
        out += f" -> {_annotation(sig.return_annotation)}"
    return out


def _doc(obj: Any) -> str:
    return inspect.cleandoc(obj.__doc__ or "(no docstring)")


def _is_mixin(klass: type) -> bool:
    """A part of a public class kept in a private module (``oups.store._versioned``)."""
    module = klass.__module__
    return module.startswith("oups.") and module.rsplit(".", 1)[-1].startswith("_")


def _members(cls: type) -> list[tuple[str, Any]]:
    """The class's members, those of the oups mixins it is made of included."""
    merged: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass is cls or _is_mixin(klass):
            merged.update(vars(klass))
    out = []
    for name, member in merged.items():
        if name.startswith("_") and name not in ("__init__", "__getitem__", "__len__"):
            continue
        if name in ("__init__",) or not (
            inspect.isfunction(member) or isinstance(member, (property, classmethod))
        ):
            continue
        out.append((name, member))
    return sorted(out)


def _class(name: str, cls: type) -> list[str]:
    lines = [f"## `{name}{_signature(cls)}`", "", "```text", _doc(cls), "```", ""]
    for member_name, member in _members(cls):
        if isinstance(member, property):
            lines += [f"### `{name}.{member_name}` (property)", ""]
            target = member.fget
        else:
            func = member.__func__ if isinstance(member, classmethod) else member
            lines += [f"### `{name}.{member_name}{_signature(func)}`", ""]
            target = func
        lines += ["```text", _doc(target), "```", ""]
    return lines


def render() -> str:
    lines = [HEADER]
    for name in sorted(n for n in oups.__all__ if n not in ("exceptions", "__version__")):
        obj = getattr(oups, name)
        if inspect.isclass(obj):
            lines += _class(name, obj)
        else:
            lines += [f"## `{name}{_signature(obj)}`", "", "```text", _doc(obj), "```", ""]
    lines += ["## `oups.dask` (`pip install oups[dask]`)", ""]
    for name in oups.dask.__all__:
        obj = getattr(oups.dask, name)
        lines += [f"### `oups.dask.{name}{_signature(obj)}`", "", "```text", _doc(obj), "```", ""]
    lines += ["## Exceptions (`oups.exceptions`)", ""]
    for name in oups.exceptions.__all__:
        cls = getattr(oups.exceptions, name)
        bases = ", ".join(b.__name__ for b in cls.__bases__)
        summary = _doc(cls).splitlines()[0]
        lines.append(f"- `{name}({bases})`: {summary}")
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is stale: run python scripts/gen_api.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
