"""Exceptions raised by oups.

Every exception derives from :class:`OupsError` and also from the builtin that
code written against the pure-Python oups expects (``ValueError``,
``TypeError``, ``KeyError``, ``OSError``, ``TimeoutError``...), so both
``except oups.exceptions.UnsortedError`` and ``except ValueError`` work.
"""

from __future__ import annotations

__all__ = [
    "OupsError",
    "InvalidParameterError",
    "ParameterTypeError",
    "UnsortedError",
    "SchemaMismatchError",
    "ColumnNotFoundError",
    "OrderedOnMismatchError",
    "CorruptDatasetError",
    "CorruptStateError",
    "LockTimeoutError",
    "ReadOnlyError",
    "VersionNotFoundError",
    "ConcurrentWriteError",
    "DatasetIOError",
    "DatasetFileNotFoundError",
    "DatasetPermissionError",
    "StorageError",
    "StorageNotFoundError",
    "StoragePermissionError",
    "CommitConflictError",
    "InternalError",
]


class OupsError(Exception):
    """Root of all oups exceptions."""


class InvalidParameterError(OupsError, ValueError):
    """A parameter has an invalid value."""


class ParameterTypeError(OupsError, TypeError):
    """A parameter, or a column, has the wrong type."""


class UnsortedError(OupsError, ValueError):
    """Data is not sorted on the ordered column, or holds NaN/NaT/null keys."""


class SchemaMismatchError(OupsError, ValueError):
    """New data does not have the columns and dtypes stored with the dataset."""


class ColumnNotFoundError(OupsError, KeyError):
    """A column named in a parameter is absent from the data."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class OrderedOnMismatchError(OupsError, ValueError):
    """``ordered_on`` differs from the one recorded with the dataset."""


class CorruptDatasetError(OupsError, OSError):
    """Files of a dataset are damaged, missing or inconsistent."""


class CorruptStateError(OupsError, ValueError):
    """A StatefulLoop state file is truncated, damaged or was not written by oups."""


class LockTimeoutError(OupsError, TimeoutError):
    """The dataset lock was not acquired within ``lock_timeout`` seconds."""


class ReadOnlyError(OupsError, PermissionError):
    """A mutation was attempted on a read-only view or a fixed version."""


class VersionNotFoundError(OupsError, LookupError):
    """A requested version does not exist, or was vacuumed while it was being read."""


class ConcurrentWriteError(OupsError, RuntimeError):
    """A resumed StatefulLoop found versions another writer committed after its
    last checkpoint, which it cannot undo without undoing them."""


class DatasetIOError(OupsError, OSError):
    """An operating-system or file-format error while reading or writing."""


class DatasetFileNotFoundError(DatasetIOError, FileNotFoundError):
    """A file or directory needed by the operation does not exist."""


class DatasetPermissionError(DatasetIOError, PermissionError):
    """The operating system refused access to a dataset file."""


class StorageError(DatasetIOError):
    """An object-storage request failed (network, server, throttling), after
    the client's own retries. The message names the URL."""


class StorageNotFoundError(StorageError, FileNotFoundError):
    """The bucket (or container) of an object-storage URL does not exist."""


class StoragePermissionError(StorageError, PermissionError):
    """Object storage refused the credentials, or none were found."""


class CommitConflictError(ConcurrentWriteError):
    """On object storage, another writer committed the version this write was
    to commit, and its changes overlap this write's rows (or this write's
    retries ran out). Nothing of this write was committed: read the latest
    version and write again."""


class InternalError(OupsError, RuntimeError):
    """A bug in oups (for instance a panic in the Rust engine). Please report it."""
