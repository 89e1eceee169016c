"""Static check of the for statement that drives a ``StatefulLoop``.

``buffer()`` works by raising ``Skip`` out of the item's ``with`` block, so it
must sit at the top level of that block: inside a conditional it would skip
nothing on some items, and after the block the ``Skip`` would escape the loop.
The check reads the caller's source through :mod:`linecache` (which also
knows notebook cells) and parses it; it never changes runtime behaviour.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import textwrap
import warnings
from types import FrameType
from typing import Any

ITERATE_PREFIX = "StatefulLoop.iterate() usage validation failed: "
BUFFER_PREFIX = "StatefulLoop.buffer() placement validation failed: "
# Wrappers such as tqdm run their own for statement over ours; walk past a few.
_MAX_FRAMES = 8
_NESTING = tuple(
    getattr(ast, name)
    for name in (
        "If",
        "For",
        "While",
        "AsyncFor",
        "Try",
        "Match",
        "FunctionDef",
        "AsyncFunctionDef",
        "ClassDef",
        "Lambda",
        "ListComp",
        "SetComp",
        "DictComp",
        "GeneratorExp",
    )
    if hasattr(ast, name)
)
_TREES: dict[tuple[str, int], ast.Module] = {}


def _tree(frame: FrameType) -> ast.Module | None:
    filename = frame.f_code.co_filename
    linecache.checkcache(filename)
    lines = linecache.getlines(filename, frame.f_globals)
    if not lines:
        return None
    source = "".join(lines)
    key = (filename, hash(source))
    tree = _TREES.get(key)
    if tree is None:
        try:
            tree = ast.parse(source, filename)
        except SyntaxError:
            return None
        if len(_TREES) > 64:
            _TREES.clear()
        _TREES[key] = tree
    return tree


def _for_at(tree: ast.Module, line: int) -> ast.For | None:
    """The for statement whose header spans ``line``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.For):
            end = max(node.iter.end_lineno or node.lineno, node.target.end_lineno or node.lineno)
            if node.lineno <= line <= end:
                return node
    return None


def _iterate_receiver(expr: ast.expr) -> ast.expr | None:
    """``loop`` in ``loop.iterate(...)``, also under wrappers such as
    ``enumerate(...)`` or ``tqdm(...)`` taking it as first argument."""
    while isinstance(expr, ast.Call):
        func = expr.func
        if isinstance(func, ast.Attribute) and func.attr == "iterate":
            return func.value
        if not expr.args or isinstance(expr.args[0], ast.Starred):
            return None
        expr = expr.args[0]
    return None


def validate_loop_usage(frame: FrameType | None) -> None:
    """Raise ``ValueError`` if the for statement running at ``frame`` misuses the loop."""
    saw_for = False
    first = frame
    for _ in range(_MAX_FRAMES):
        if frame is None:
            break
        tree = _tree(frame)
        if tree is None:
            where = frame.f_code.co_filename
            warnings.warn(
                f"StatefulLoop.iterate(): no source code available for {where!r}, loop usage "
                "is not validated; pass check_loop_usage=False to silence this warning",
                UserWarning,
                stacklevel=4,
            )
            return
        node = _for_at(tree, frame.f_lineno)
        if node is None:
            if frame.f_code.co_flags & inspect.CO_GENERATOR:
                # A wrapper generator driving ours with `yield from` (tqdm).
                frame = frame.f_back
                continue
            break
        saw_for = True
        receiver = _iterate_receiver(node.iter)
        if receiver is not None:
            _check_for(node, receiver, frame.f_code.co_filename)
            return
        frame = frame.f_back
    where = f"{first.f_code.co_filename}:{first.f_lineno}" if first is not None else "?"
    if not saw_for:
        raise ValueError(
            ITERATE_PREFIX + f"could not locate the 'for' statement at the call site ({where}). "
            "Drive the loop with 'for item_ctx in loop.iterate(...):', or pass "
            "check_loop_usage=False."
        )
    raise ValueError(
        ITERATE_PREFIX + f"expected '<name>.iterate(...)' in the for header ({where}), possibly "
        "wrapped as enumerate(...) or tqdm(...). Pass check_loop_usage=False to iterate a "
        "pre-built iterator."
    )


def _is_buffer_call(node: ast.AST, receiver: str) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "buffer"
        and ast.dump(node.func.value) == receiver
    )


def _check_for(node: ast.For, receiver_node: ast.expr, filename: str) -> None:
    receiver = ast.dump(receiver_node)
    at = f"{filename}:{node.lineno}"
    target = node.target
    if isinstance(target, ast.Tuple) and len(target.elts) == 2:
        target = target.elts[1]
    if not isinstance(target, ast.Name):
        raise ValueError(
            ITERATE_PREFIX + "requires binding the iteration context to a simple name, as in "
            f"'for item_ctx in loop.iterate(...):' ({at})."
        )
    context = target.id
    first = node.body[0]
    if not isinstance(first, ast.With):
        raise ValueError(
            ITERATE_PREFIX + "using a with statement is compulsory immediately inside the "
            f"iterate-for body: start it with 'with {context} as item:' ({at})."
        )
    if len(first.items) != 1:
        raise ValueError(
            ITERATE_PREFIX + "the first with statement must have a single context manager, "
            f"'with {context} as item:' ({filename}:{first.lineno})."
        )
    expr = first.items[0].context_expr
    if not (isinstance(expr, ast.Name) and expr.id == context):
        raise ValueError(
            ITERATE_PREFIX + f"the first with statement must use the iteration context variable "
            f"'{context}' ({filename}:{first.lineno})."
        )
    for statement in node.body[1:]:
        for child in ast.walk(statement):
            if _is_buffer_call(child, receiver):
                raise ValueError(
                    BUFFER_PREFIX + "must be called directly inside the first 'with item_ctx as "
                    f"...:' block (offending call at {filename}:{getattr(child, 'lineno', '?')})."
                )
    for statement in first.body:
        _check_nesting(statement, receiver, filename, False)


def _check_nesting(node: ast.AST, receiver: str, filename: str, nested: bool) -> None:
    nested = nested or isinstance(node, _NESTING)
    if nested and _is_buffer_call(node, receiver):
        raise ValueError(
            BUFFER_PREFIX + "must be at the same indentation level as other top-level statements "
            "inside the 'with item_ctx as ...:' block (offending call at "
            f"{filename}:{getattr(node, 'lineno', '?')}). Avoid conditionals/loops/nested blocks."
        )
    for child in ast.iter_child_nodes(node):
        _check_nesting(child, receiver, filename, nested)


def warn_rebound(func: Any, names: list[str], label: str) -> None:
    """Warns when ``func`` assigns to one of its bound state parameters
    (``n = n + x``): the new value lives in a local variable and is never
    saved, so the state silently stays at its initial value."""
    try:
        source = textwrap.dedent(inspect.getsource(func))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return  # no source (builtins, C functions, some notebooks): nothing to check
    target = next(
        (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))),
        None,
    )
    if target is None:
        return
    wanted = set(names)
    rebound: list[tuple[str, int]] = []
    pending: list[ast.AST] = list(target.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue  # their own scopes
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        while targets:
            t = targets.pop()
            # Only plain names rebind; `acc["n"] += x` or `obj.n = ...` mutate.
            if isinstance(t, (ast.Tuple, ast.List)):
                targets.extend(t.elts)
            elif isinstance(t, ast.Starred):
                targets.append(t.value)
            elif isinstance(t, ast.Name) and t.id in wanted:
                rebound.append((t.id, getattr(node, "lineno", 0)))
        pending.extend(ast.iter_child_nodes(node))
    for name, line in sorted(set(rebound), key=lambda x: x[1]):
        warnings.warn(
            f"state '{name}' of {label!r} is assigned inside it (line {line} of its source): "
            "the new value is a local variable and is never saved. Mutate the bound object "
            "in place (a list, dict or array), or keep the value on an object bound with "
            "bind_object_state().",
            UserWarning,
            stacklevel=4,
        )
