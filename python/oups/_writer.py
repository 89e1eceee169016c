"""Who is writing: a ``StatefulLoop`` with a store tags the versions its body
commits, so that a resumed run can tell its own uncheckpointed writes from
anyone else's and undo exactly those."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Writer:
    """A writer's tag and what it wrote since its last checkpoint."""

    tag: str
    #: Datasets below this directory (or URL) are tracked.
    base: Path | str
    #: Called with the dataset before each tracked write (pins what to go back to).
    before_write: Callable[[Any], None] | None = None
    #: Called once, before the first tracked write (persists the tag).
    before_first_write: Callable[[], None] | None = None
    #: Dataset directory (or URL) -> version the writer's last write committed.
    written: dict[Path | str, int] = field(default_factory=dict)

    def covers(self, dirpath: Path | str) -> bool:
        if isinstance(dirpath, Path) and isinstance(self.base, Path):
            return dirpath.is_relative_to(self.base)
        if isinstance(dirpath, str) and isinstance(self.base, str):
            return dirpath.startswith(self.base.rstrip("/") + "/")
        return False

    def starting(self, ds: Any) -> str:
        """The tag to record with a tracked write to `ds` about to happen."""
        if self.before_first_write is not None:
            first, self.before_first_write = self.before_first_write, None
            first()
        if self.before_write is not None:
            self.before_write(ds)
        return self.tag


_CURRENT: ContextVar[Writer | None] = ContextVar("oups_writer", default=None)


def current_writer() -> Writer | None:
    return _CURRENT.get()


@contextmanager
def writing_as(writer: Writer | None) -> Iterator[None]:
    token = _CURRENT.set(writer)
    try:
        yield
    finally:
        _CURRENT.reset(token)
