"""Dataclass keys that name the datasets of a :class:`~oups.store.Store`.

A ``@toplevel`` class describes the first directory level of a store; a
``@sublevel`` class in the last field of a level adds one level below it::

    @sublevel
    class Sampling:
        frequency: str

    @toplevel
    class Measure:
        quantity: str
        city: str
        sampling: Sampling

    Measure("temperature", "berlin", Sampling("1D")).to_path()
    # PosixPath('temperature-berlin/1D')

Fields are ``int`` or ``str``. The decorator compiles the class into a Rust key
schema that spells keys as strings and paths, parses them back strictly and
discovers them on disk, so that ``Key.from_str(str(key)) == key`` for every key
and no other string parses.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from oups._oups import RawKeySchema
from oups.exceptions import ParameterTypeError

__all__ = ["is_toplevel", "sublevel", "toplevel"]

T = TypeVar("T")

_INT, _STR = "int", "str"


class _LevelSpec:
    """One directory level: its own fields, and the sublevel class below it."""

    __slots__ = ("cls", "kinds", "names", "sub", "sub_field")

    def __init__(self, cls: type, names: list[str], kinds: list[str], sub: type | None) -> None:
        self.cls = cls
        self.names = names
        self.kinds = kinds
        self.sub = sub
        self.sub_field = dataclasses.fields(cls)[-1].name if sub is not None else ""


def _compile_levels(cls: type, localns: dict[str, Any]) -> list[_LevelSpec]:
    """Walks ``cls`` and the sublevel in the last field of each level."""
    levels: list[_LevelSpec] = []
    current: type | None = cls
    while current is not None:
        try:
            hints = typing.get_type_hints(current, localns=localns)
        except Exception as err:  # unresolved forward references and the like
            raise ParameterTypeError(
                f"cannot resolve the field annotations of '{current.__name__}': {err}. "
                "Define sublevel classes before the classes that use them."
            ) from err
        fields = dataclasses.fields(current)
        if not fields:
            raise ParameterTypeError(
                f"'{current.__name__}' has no field; a key level needs at least one int or "
                "str field."
            )
        names: list[str] = []
        kinds: list[str] = []
        sub: type | None = None
        for pos, field in enumerate(fields):
            annotation = hints.get(field.name, field.type)
            last = pos == len(fields) - 1
            if annotation is int:
                kinds.append(_INT)
            elif annotation is str:
                kinds.append(_STR)
            elif isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
                if pos == 0:
                    raise ParameterTypeError(
                        f"field '{field.name}' of '{current.__name__}': a dataclass instance "
                        "cannot be the only field of a level."
                    )
                if not last:
                    raise ParameterTypeError(
                        f"field '{field.name}' of '{current.__name__}': a dataclass instance is "
                        "only possible in last position."
                    )
                sub = annotation
                continue
            else:
                raise ParameterTypeError(
                    f"field '{field.name}' of '{current.__name__}' is annotated "
                    f"{annotation!r}; key fields must be int or str (or a @sublevel class in "
                    "last position)."
                )
            names.append(field.name)
        levels.append(_LevelSpec(current, names, kinds, sub))
        current = sub
        if len(levels) > 64:
            raise ParameterTypeError(f"'{cls.__name__}' nests more than 64 levels.")
    return levels


class _ToplevelMeta(type):
    """Gives key classes read-only class properties ``field_sep`` and ``depth``."""

    @property
    def field_sep(cls) -> str:
        return cls._oups_field_sep  # type: ignore[attr-defined,no-any-return]

    @property
    def depth(cls) -> int:
        return len(cls._oups_levels)  # type: ignore[attr-defined]


def _flat_values(key: Any, levels: list[_LevelSpec]) -> list[Any]:
    """Field values of every level, in order (sublevel instances unrolled)."""
    values: list[Any] = []
    obj = key
    for depth, level in enumerate(levels):
        if type(obj) is not level.cls:
            raise ParameterTypeError(
                f"the last field of '{levels[depth - 1].cls.__name__}' must be a "
                f"'{level.cls.__name__}' instance, got {type(obj).__name__}."
            )
        for name, kind in zip(level.names, level.kinds, strict=True):
            value = getattr(obj, name)
            expected = int if kind == _INT else str
            if type(value) is not expected:
                raise ParameterTypeError(
                    f"field '{name}' of '{level.cls.__name__}' must be {kind}, got "
                    f"{value!r} ({type(value).__name__}): field type "
                    f"{type(value)} not possible."
                )
            values.append(value)
        if level.sub is not None:
            obj = getattr(obj, dataclasses.fields(level.cls)[-1].name)
    return values


def _build(cls: Any, values: list[Any]) -> Any:
    """A key from flat field values already validated by the schema; None when
    a user ``__post_init__`` refuses them (like any name that does not parse)."""
    try:
        return _build_checked(cls, values)
    except (TypeError, ValueError):
        return None


def _build_checked(cls: Any, values: list[Any]) -> Any:
    levels: list[_LevelSpec] = cls._oups_levels
    pos = sum(len(level.names) for level in levels)
    nested: Any = None
    for level in reversed(levels):
        n = len(level.names)
        args = values[pos - n : pos]
        pos -= n
        if level.sub is not None:
            args.append(nested)
        nested = cls(*args, check=False) if level.cls is cls else level.cls(*args)
    return nested


def _install_methods(cls: Any) -> None:
    original_init = cls.__init__

    def __init__(self: Any, *args: Any, check: bool = True, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if check:
            cls._oups_schema.validate(_flat_values(self, cls._oups_levels))

    __init__.__doc__ = original_init.__doc__
    __init__.__wrapped__ = original_init  # type: ignore[attr-defined]
    cls.__init__ = __init__

    def __str__(self: Any) -> str:
        return str(cls._oups_schema.to_str(_flat_values(self, cls._oups_levels)))

    def to_path(self: Any) -> Path:
        """The dataset's directory relative to the store: one part per level."""
        return Path(*cls._oups_schema.parts(_flat_values(self, cls._oups_levels)))

    def from_str(klass: Any, text: str) -> Any:
        """The key spelled ``text`` (as made by ``str(key)``), or None if it is not one."""
        if not isinstance(text, str):
            raise ParameterTypeError(
                f"'from_str' takes a str, got {type(text).__name__}; use 'from_path' for paths."
            )
        values = klass._oups_schema.parse_str(text)
        return None if values is None else _build(klass, values)

    def from_path(klass: Any, path: str | os.PathLike[str]) -> Any:
        """The key whose ``to_path()`` is ``path`` (relative, one part per level), or None."""
        if not isinstance(path, (str, os.PathLike)):
            raise ParameterTypeError(
                f"'from_path' takes a str or a Path, got {type(path).__name__}."
            )
        values = klass._oups_schema.parse_parts(list(Path(path).parts))
        return None if values is None else _build(klass, values)

    def __reduce__(self: Any) -> tuple[Any, tuple[Any, ...]]:
        # Rebuilding through the constructor re-validates the values.
        return (type(self), tuple(getattr(self, f.name) for f in dataclasses.fields(self)))

    cls.__str__ = __str__
    cls.__repr__ = _key_repr
    cls.to_path = to_path
    cls.from_str = classmethod(from_str)
    cls.from_path = classmethod(from_path)
    cls.__reduce__ = __reduce__


def _key_repr(self: Any) -> str:
    """``Name(field=value, ...)``: the dataclass repr with the plain class name,
    also for classes defined inside a function (whose qualname has ``<locals>``)."""
    fields = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self))
    return f"{type(self).__name__}({fields})"


def _instance_class_property(self: Any, name: str) -> Any:
    """``key.field_sep`` and ``key.depth``, the class properties seen from an instance.

    Served by ``__getattr__`` rather than by properties in the class: a class
    pickled by value (one defined in ``__main__`` or in a function, sent to Dask
    workers) is rebuilt by setting each entry of its ``__dict__``, and the
    metaclass's read-only properties of the same names would refuse that.
    """
    if name in ("field_sep", "depth"):
        return getattr(type(self), name)
    raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")


def _make_toplevel(cls: type, field_sep: str, localns: dict[str, Any]) -> type:
    if not isinstance(field_sep, str):
        raise ParameterTypeError(f"'field_sep' must be a str, got {type(field_sep).__name__}.")
    if isinstance(cls, _ToplevelMeta):
        raise ParameterTypeError(f"'{cls.__name__}' is already '@toplevel' decorated.")
    namespace = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
    if "__getattr__" not in namespace:
        namespace["__getattr__"] = _instance_class_property
    rebuilt = _ToplevelMeta(cls.__name__, cls.__bases__, namespace)
    rebuilt.__qualname__ = cls.__qualname__
    rebuilt.__module__ = cls.__module__
    key_cls: Any = dataclasses.dataclass(order=True, frozen=True)(rebuilt)
    levels = _compile_levels(key_cls, localns)
    schema = RawKeySchema(
        key_cls.__name__, field_sep, [(level.names, level.kinds) for level in levels]
    )
    type.__setattr__(key_cls, "_oups_field_sep", field_sep)
    type.__setattr__(key_cls, "_oups_levels", levels)
    type.__setattr__(key_cls, "_oups_schema", schema)
    _install_methods(key_cls)
    return key_cls  # type: ignore[no-any-return]


if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
elif sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # pragma: no cover - Python 3.10: the marker only matters to type checkers

    def dataclass_transform(**_: Any) -> Callable[[T], T]:
        return lambda f: f


@overload
def toplevel(cls: type[T], /) -> type[T]: ...
@overload
def toplevel(*, field_sep: str = "-") -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(eq_default=True, order_default=True, frozen_default=True)
def toplevel(cls: Any = None, /, *, field_sep: str = "-") -> Any:
    """Turn a class into a store key: a frozen, ordered dataclass naming a dataset.

    Use as ``@toplevel``, ``@toplevel()`` or ``@toplevel(field_sep="_")``.

    Parameters
    ----------
    field_sep : str, default "-"
        Joins field values in directory names and in ``str(key)``. Str field
        values may not contain it (see the Notes for the other rules).

    Notes
    -----
    Fields are ``int`` or ``str`` (annotations are enforced); the last field
    of a level may be a :func:`sublevel` class, which adds a directory level.
    Keys have ``str(key)``, ``key.to_path()``, ``Key.from_str(s)``,
    ``Key.from_path(p)`` and class properties ``field_sep`` and ``depth``.
    Parsing is strict: ``from_str`` returns None unless the string is exactly
    the spelling of a valid key. A key whose spelling could not be parsed
    back, or could not name a portable directory, is refused at construction:
    str values must be non-empty and hold none of the separator, ``/``, ``\\``, ``: * ?
    " < > |`` and control characters; a level's directory name may not begin
    with ``.``, end with ``.`` or a space, end with ``_opdmd`` or ``.lock``
    (oups' own files), or be a Windows device name (``CON``, ``NUL``,
    ``COM1``...). ``"BRK.B"`` is fine. ``Key(..., check=False)`` skips the
    check at construction, but a :class:`~oups.Store` still refuses such keys.

    Examples
    --------
    >>> from oups import toplevel
    >>> @toplevel
    ... class Pair:
    ...     symbol: str
    ...     year: int
    >>> key = Pair("AAPL", 2024)
    >>> str(key), key.to_path().as_posix(), Pair.depth
    ('AAPL-2024', 'AAPL-2024', 1)
    >>> Pair.from_str("AAPL-2024") == key, Pair.from_str("AAPL-02024")
    (True, None)
    """
    # Names local to the defining scope (a function, a doctest, a notebook
    # cell run with postponed annotations) resolve too, not only module globals.
    caller = dict(sys._getframe(1).f_locals)
    if cls is None:
        return lambda c: _make_toplevel(c, field_sep, {**caller, **sys._getframe(1).f_locals})
    if not isinstance(cls, type):
        raise ParameterTypeError(
            f"'@toplevel' decorates a class, got {type(cls).__name__}; pass the separator "
            "by keyword: @toplevel(field_sep='_')."
        )
    return _make_toplevel(cls, field_sep, caller)


@dataclass_transform(eq_default=True, order_default=True, frozen_default=True)
def sublevel(cls: type[T]) -> type[T]:
    """Make a class a key sublevel: a frozen, ordered dataclass used in the last
    field of a ``@toplevel`` (or of another sublevel) to add a directory level.

    Examples
    --------
    >>> from oups import sublevel, toplevel
    >>> @sublevel
    ... class Sampling:
    ...     frequency: str
    >>> @toplevel
    ... class Measure:
    ...     quantity: str
    ...     city: str
    ...     sampling: Sampling
    >>> Measure("temperature", "berlin", Sampling("1D")).to_path().as_posix()
    'temperature-berlin/1D'
    """
    if not isinstance(cls, type):
        raise ParameterTypeError(f"'@sublevel' decorates a class, got {type(cls).__name__}.")
    sub: Any = dataclasses.dataclass(order=True, frozen=True, slots=True)(cls)

    def __reduce__(self: Any) -> tuple[Any, tuple[Any, ...]]:
        return (type(self), tuple(getattr(self, f.name) for f in dataclasses.fields(self)))

    sub.__reduce__ = __reduce__
    sub.__repr__ = _key_repr
    return sub  # type: ignore[no-any-return]


def is_toplevel(obj: Any) -> bool:
    """True for a ``@toplevel`` class and its instances.

    Examples
    --------
    >>> from oups import is_toplevel, sublevel, toplevel
    >>> @sublevel
    ... class Freq:
    ...     value: str
    >>> @toplevel
    ... class Bars:
    ...     symbol: str
    ...     freq: Freq
    >>> is_toplevel(Bars), is_toplevel(Bars("AAPL", Freq("1min"))), is_toplevel(Freq)
    (True, True, False)
    """
    return isinstance(obj if isinstance(obj, type) else type(obj), _ToplevelMeta)


def key_class(indexer: Any) -> Any:
    """The key class of an indexer given as a class or an instance."""
    return indexer if isinstance(indexer, type) else type(indexer)


def key_parts(key: Any) -> list[str]:
    """Directory names of ``key``, one per level (validated)."""
    cls = type(key)
    return list(cls._oups_schema.parts(_flat_values(key, cls._oups_levels)))


def keys_from_columns(cls: Any, columns: list[list[Any]]) -> list[Any]:
    """Keys from per-field columns of values the Rust schema already validated.

    Instances are filled in directly rather than through ``__init__`` (ten
    times faster for large stores), unless a class defines ``__post_init__``.
    """
    levels: list[_LevelSpec] = cls._oups_levels
    if not columns:
        return []
    if any(hasattr(level.cls, "__post_init__") for level in levels):
        built = (_build(cls, list(values)) for values in zip(*columns, strict=True))
        return [key for key in built if key is not None]
    new = object.__new__
    put = object.__setattr__
    out = []
    for values in zip(*columns, strict=True):
        pos = len(values)
        nested: Any = None
        for level in reversed(levels):
            obj: Any = new(level.cls)
            start = pos - len(level.names)
            for name, value in zip(level.names, values[start:pos], strict=True):
                put(obj, name, value)
            if level.sub is not None:
                put(obj, level.sub_field, nested)
            pos = start
            nested = obj
        out.append(nested)
    return out


def check_key_class(key: Any, cls: Any, what: str = "key") -> None:
    if type(key) is not cls:
        raise ParameterTypeError(
            f"{what} {key!r} is a {type(key).__name__}, but this store's keys are "
            f"'{cls.__name__}' instances."
        )
