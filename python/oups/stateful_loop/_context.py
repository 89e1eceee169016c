"""What ``StatefulLoop.iterate`` yields: one context per item, and the
exception that skips the rest of an item's body."""

from __future__ import annotations

from typing import Any

from oups._writer import _CURRENT, Writer


class Skip(Exception):
    """Raised by :meth:`StatefulLoop.buffer` while data is still accumulating.

    Inside ``with item_ctx as item:`` it silently ends the rest of the block
    for the current item; the loop goes on with the next one.
    """


class IterationContext:
    """The per-item context manager yielded by :meth:`StatefulLoop.iterate`."""

    __slots__ = ("item", "_writer", "_token")

    def __init__(self, item: Any, writer: Writer | None = None) -> None:
        self.item = item
        self._writer = writer
        self._token: Any = None

    def __enter__(self) -> Any:
        # The body's writes to the loop's store are the loop's (exactly once).
        if self._writer is not None:
            self._token = _CURRENT.set(self._writer)
        return self.item

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if self._token is not None:
            _CURRENT.reset(self._token)
            self._token = None
        # Only Skip itself ends the block quietly; subclasses are user errors.
        return exc_type is Skip

    def __repr__(self) -> str:
        return f"IterationContext(item={self.item!r})"
