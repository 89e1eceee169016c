"""Exactly-once writes of a ``StatefulLoop`` to a ``Store``.

Every version the loop's body commits to a dataset of the store is recorded
with the loop's tag. Before its first write to a dataset after a checkpoint,
the loop pins the dataset's latest version under ``<tag>-<checkpoint>``: that
is the state to go back to. A resumed loop finds, for each dataset, the versions
committed after that pin: if they are all its own, it restores the pinned
version (its re-run then writes those batches again, once); if any is not, it
refuses with :class:`~oups.exceptions.ConcurrentWriteError` and changes nothing.
A dataset the loop created after the checkpoint is removed. Pins of older
checkpoints are dropped once the next checkpoint is saved.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oups._writer import Writer
from oups.exceptions import ConcurrentWriteError

if TYPE_CHECKING:
    from oups.store.ordered_parquet_dataset import OrderedParquetDataset
    from oups.store.store import Store

#: State-file entry: the loop's tag, checkpoint number and the version of
#: each dataset it wrote, as of the checkpoint.
STATE_KEY = "loop:exactly_once"
#: Operations that commit a version without changing its rows.
_ROWLESS = ("pin", "unpin")


class ExactlyOnce:
    def __init__(self, store: Store, saved: dict[str, Any] | None) -> None:
        self._store = store
        if saved:
            self.tag = str(saved["tag"])
            self.checkpoint = int(saved["checkpoint"])
            self._ledger = {str(k): int(v) for k, v in saved["datasets"].items()}
        else:
            self.tag = f"loop-{uuid.uuid4().hex[:16]}"
            self.checkpoint = 0
            self._ledger = {}
        self.writer = Writer(self.tag, store.basepath, before_write=self._before_write)
        # Datasets pinned in this checkpoint interval (their pins go at the next).
        self._pinned: set[Path | str] = set()

    def entry(self) -> dict[str, Any]:
        return {"tag": self.tag, "checkpoint": self.checkpoint, "datasets": dict(self._ledger)}

    def _relative(self, dirpath: Path | str) -> str:
        base = self._store.basepath
        if isinstance(dirpath, Path) and isinstance(base, Path):
            return dirpath.relative_to(base).as_posix()
        return str(dirpath).removeprefix(str(base).rstrip("/") + "/")

    def _pin_name(self) -> str:
        return f"{self.tag}-{self.checkpoint}"

    def _before_write(self, ds: OrderedParquetDataset) -> None:
        """Pins what a resume would go back to, before the first write of the
        interval to `ds` (nothing for a dataset that does not exist yet)."""
        where = ds.dirpath
        if where in self._pinned:
            return
        ds._pin(self._pin_name())
        self._pinned.add(where)

    def checkpointed(self) -> dict[str, Any]:
        """The entry to save with a checkpoint; call :meth:`saved` once it is."""
        for dirpath, version in self.writer.written.items():
            self._ledger[self._relative(dirpath)] = version
        self.writer.written.clear()
        self.checkpoint += 1
        return self.entry()

    def saved(self) -> None:
        """Drops the pins of the interval the saved checkpoint closed."""
        previous = f"{self.tag}-{self.checkpoint - 1}"
        for dirpath in self._pinned:
            ds = self._open(dirpath)
            if ds is not None:
                ds._unpin(previous)
        self._pinned.clear()

    def _open(self, dirpath: Path | str) -> OrderedParquetDataset | None:
        from oups.store.ordered_parquet_dataset import OrderedParquetDataset

        options = self._store._options
        ds = OrderedParquetDataset(dirpath, storage_options=options or None)
        return None if ds.version is None else ds

    def resume(self) -> None:
        """Undoes, in every dataset of the store, this loop's versions after
        its last checkpoint; refuses if another writer committed since."""
        plans = []
        for key in self._store.keys:
            ds = self._store[key]
            plan = self._plan(str(key), ds)
            if plan is not None:
                plans.append((ds, plan))
        # Checked everywhere first: a refusal leaves every dataset as it was.
        for ds, (action, version) in plans:
            if action == "remove" or version is None:
                ds.remove_from_disk()
            else:
                ds._restore(version, writer=self.tag)
        for key in self._store.keys:
            ds = self._store[key]
            for name in ds._pins():
                if name.startswith(f"{self.tag}-") and name != self._pin_name():
                    ds._unpin(name)

    def _plan(self, key: str, ds: OrderedParquetDataset) -> tuple[str, int | None] | None:
        """("restore", version), ("remove", None), or None for nothing to undo."""
        versions = ds.versions()
        numbers = [int(v) for v in versions["version"]]
        # On object storage pinning commits a version (docs/storage.md); such
        # versions change no rows, so whoever made them, undoing is safe.
        writers = [
            self.tag if op in _ROWLESS else w
            for w, op in zip(versions["writer"], versions["operation"], strict=True)
        ]
        base = ds._pins().get(self._pin_name())
        known = self._ledger.get(self._relative(ds.dirpath))
        if base is None and known is not None:
            return None  # not written since the checkpoint
        mine = [w == self.tag for w in writers]
        if base is None:
            # Unknown at the checkpoint: the loop created it since, or never wrote it.
            if not any(mine):
                return None
            if not all(mine):
                raise self._conflict(key, numbers, writers)
            return ("remove", None)
        after = [(v, w) for v, w in zip(numbers, writers, strict=True) if v > base]
        if not after:
            return None
        if any(w != self.tag for _, w in after) or [v for v, _ in after] != list(
            range(base + 1, base + 1 + len(after))
        ):
            raise self._conflict(key, numbers, writers)
        return ("restore", base)

    def _conflict(self, key: str, numbers: list[int], writers: list[Any]) -> ConcurrentWriteError:
        others = [v for v, w in zip(numbers, writers, strict=True) if w != self.tag]
        return ConcurrentWriteError(
            f"cannot resume the loop exactly once: dataset '{key}' has versions {others} "
            f"committed by another writer (or vacuumed) after the loop's last checkpoint, and "
            f"undoing the loop's own writes would undo them too. Resolve it by hand, for "
            f"example with restore() (see versions()), then remove the pins named "
            f"'{self.tag}-*' or start the loop afresh by deleting its state file."
        )
