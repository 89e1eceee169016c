"""Type stubs of the native extension ``oups._oups`` (checked by mypy.stubtest).

These are internal building blocks; the public API lives in the ``oups``
package. Arrow data crosses as pyarrow objects through the C data interface.
"""

from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Literal, final, overload

import numpy as np
import numpy.typing as npt
import pyarrow as pa

__all__ = [
    "__version__",
    "DEBUG_BUILD",
    "FAILPOINTS",
    "RawDataset",
    "RawInfo",
    "RawObjectDataset",
    "RawKeySchema",
    "RawIntersections",
    "save_state",
    "load_state",
    "RawStateObject",
    "asof_merge",
    "segment_aggregate",
    "segment_roll",
    "segment_join",
    "SegmentState",
    "_debug_panic",
    "_forget_objects",
    "_check_exception_classes",
    "metadata_path",
    "find_datasets",
    "find_datasets_url",
    "create_snapshot",
    "read_snapshot",
    "list_snapshots",
    "delete_snapshot",
    "staged_begin",
    "staged_plan",
    "staged_write",
    "staged_discard",
    "staged_commit",
]

__version__: str
DEBUG_BUILD: bool
FAILPOINTS: bool

_Path = str | PathLike[str]
#: A bound already converted to the ordered column's physical value.
_Bound = int | float

@final
class RawInfo:
    @property
    def ordered_on_json(self) -> str: ...
    @property
    def ordered_field(self) -> str | None: ...
    @property
    def is_newly_initialized(self) -> bool: ...
    @property
    def key_value_metadata_json(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def n_row_groups(self) -> int: ...
    @property
    def max_file_id(self) -> int: ...
    @property
    def locked(self) -> bool: ...
    @property
    def read_only(self) -> bool: ...

@final
class RawDataset:
    def __new__(
        cls,
        dirpath: _Path,
        ordered_on_json: str,
        lock_timeout: float | None = None,
        version: int | None = None,
        as_of_ns: int | None = None,
    ) -> RawDataset: ...
    @property
    def dirpath(self) -> str: ...
    def info(self) -> RawInfo: ...
    def refresh(self) -> None: ...
    def hold_lock(self, timeout: float | None = None) -> None: ...
    def versions(self) -> pa.Table: ...
    def restore(self, version: int, writer: str | None = None) -> None: ...
    def pin(self, name: str, version: int | None = None) -> int | None: ...
    def unpin(self, name: str) -> bool: ...
    def pins(self) -> dict[str, int]: ...
    def retention(self) -> tuple[int | None, float | None]: ...
    def set_retention(
        self, keep_versions: int | None = None, keep_seconds: float | None = None
    ) -> None: ...
    def vacuum(
        self, keep_versions: int | None = None, keep_seconds: float | None = None
    ) -> tuple[list[int], int]: ...
    def file_sizes(self) -> list[int]: ...
    def stats(self) -> pa.Table: ...
    def read(self, file_ids: Sequence[int] | None = None) -> pa.Table | None: ...
    def read_private(
        self, file_ids: Sequence[int] | None = None
    ) -> tuple[pa.Table, pa.Schema, list[tuple[str, np.ndarray]]] | None: ...
    def read_range(
        self,
        file_ids: Sequence[int] | None = None,
        start: _Bound | None = None,
        end_excl: _Bound | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table | None: ...
    def write(
        self,
        data: Any,
        ordered_on_json: str,
        ordered_field: str,
        *,
        target_rows: int | None = None,
        period_ns: int | None = None,
        anchors: npt.NDArray[np.int64] | None = None,
        duplicates_on: Sequence[str] | None = None,
        max_n_off_target_rgs: int | None = None,
        key_value_metadata_json: str = "{}",
        compression: str = "none",
        progress: Callable[[int, int], object] | None = None,
        lock_timeout: float | None = None,
        writer: str | None = None,
    ) -> None: ...
    def remove_from_disk(self, preserve_metadata: bool = False) -> None: ...
    def release(self) -> None: ...

@final
class RawObjectDataset:
    def __new__(
        cls,
        url: str,
        ordered_on_json: str,
        storage_options: Mapping[str, str] | None = None,
        version: int | None = None,
        as_of_ns: int | None = None,
    ) -> RawObjectDataset: ...
    @property
    def dirpath(self) -> str: ...
    @property
    def requests(self) -> int: ...
    def schema(self) -> pa.Schema | None: ...
    def stored_bytes(self) -> int: ...
    def file_sizes(self) -> list[int]: ...
    def info(self) -> RawInfo: ...
    def refresh(self) -> None: ...
    def hold_lock(self, timeout: float | None = None) -> None: ...
    def versions(self) -> pa.Table: ...
    def restore(self, version: int, writer: str | None = None) -> None: ...
    def pin(self, name: str, version: int | None = None) -> int | None: ...
    def unpin(self, name: str) -> bool: ...
    def pins(self) -> dict[str, int]: ...
    def retention(self) -> tuple[int | None, float | None]: ...
    def set_retention(
        self, keep_versions: int | None = None, keep_seconds: float | None = None
    ) -> None: ...
    def vacuum(
        self, keep_versions: int | None = None, keep_seconds: float | None = None
    ) -> tuple[list[int], int]: ...
    def stats(self) -> pa.Table: ...
    def read(self, file_ids: Sequence[int] | None = None) -> pa.Table | None: ...
    def read_private(
        self, file_ids: Sequence[int] | None = None
    ) -> tuple[pa.Table, pa.Schema, list[tuple[str, np.ndarray]]] | None: ...
    def read_range(
        self,
        file_ids: Sequence[int] | None = None,
        start: _Bound | None = None,
        end_excl: _Bound | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table | None: ...
    def write(
        self,
        data: Any,
        ordered_on_json: str,
        ordered_field: str,
        *,
        target_rows: int | None = None,
        period_ns: int | None = None,
        anchors: npt.NDArray[np.int64] | None = None,
        duplicates_on: Sequence[str] | None = None,
        max_n_off_target_rgs: int | None = None,
        key_value_metadata_json: str = "{}",
        compression: str = "none",
        progress: Callable[[int, int], object] | None = None,
        lock_timeout: float | None = None,
        writer: str | None = None,
    ) -> None: ...
    def remove_from_disk(self, preserve_metadata: bool = False) -> None: ...
    def release(self) -> None: ...

@final
class RawKeySchema:
    def __new__(
        cls, class_name: str, sep: str, levels: Sequence[tuple[Sequence[str], Sequence[str]]]
    ) -> RawKeySchema: ...
    def __getnewargs__(self) -> tuple[str, str, list[tuple[list[str], list[str]]]]: ...
    @property
    def depth(self) -> int: ...
    def validate(self, values: list[int | str]) -> None: ...
    def to_str(self, values: list[int | str]) -> str: ...
    def parts(self, values: list[int | str]) -> list[str]: ...
    def parse_str(self, text: str) -> list[int | str] | None: ...
    def parse_parts(self, parts: Sequence[str]) -> list[int | str] | None: ...
    def discover(self, base: _Path) -> list[list[int] | list[str]]: ...
    def discover_url(
        self, url: str, storage_options: Mapping[str, str] | None = None
    ) -> list[list[int] | list[str]]: ...
    def count(self, base: _Path) -> int: ...

@final
class RawIntersections:
    def __new__(
        cls,
        datasets: Sequence[RawDataset | RawObjectDataset | None],
        names: Sequence[str],
        n_prev: Sequence[int],
        start: _Bound | None = None,
        end_excl: _Bound | None = None,
    ) -> RawIntersections: ...
    def n_chunks(self) -> int: ...
    @overload
    def next_chunk(
        self, private: Literal[False] = False
    ) -> list[tuple[int, pa.RecordBatch]] | None: ...
    @overload
    def next_chunk(
        self, private: Literal[True]
    ) -> list[tuple[int, pa.RecordBatch, pa.Schema, list[tuple[str, np.ndarray]]]] | None: ...

def save_state(path: _Path, manifest: str, sections: Sequence[tuple[str, Any]]) -> None: ...
def load_state(path: _Path) -> tuple[str, list[tuple[str, Any]]]: ...

@final
class RawStateObject:
    def __new__(
        cls, url: str, storage_options: Mapping[str, str] | None = None
    ) -> RawStateObject: ...
    def load(self) -> tuple[str, list[tuple[str, Any]]] | None: ...
    def save(self, manifest: str, sections: Sequence[tuple[str, Any]]) -> None: ...

def asof_merge(
    main: Any,
    positions: Sequence[Any],
    chunks: Sequence[Sequence[tuple[Any, Sequence[Any]]]],
    carry: Sequence[Sequence[Sequence[Any]]],
    n_prev: Sequence[int],
    exact: Sequence[bool],
    slots: Sequence[npt.NDArray[np.uint8] | None],
) -> tuple[list[pa.Array | None], list[list[list[pa.Array]]]]: ...

@final
class SegmentState:
    """The engine's live state of a SegmentedAggregator between calls."""

    @property
    def last_key(self) -> int | None: ...
    def export(self) -> tuple[Any, ...]: ...

def segment_aggregate(
    bins_spec: tuple[Any, ...],
    closed: str,
    label: str,
    keep_empty: bool,
    aggs: Sequence[tuple[str, int, int | None, int]],
    keys: pa.Array,
    groups: tuple[pa.Array, Sequence[int] | None] | None,
    n_groups: int,
    columns: Sequence[pa.Array],
    state: SegmentState | tuple[int, int | None, int | None, pa.RecordBatch, pa.RecordBatch] | None,
    is_final: bool,
    numpy_out: bool,
) -> tuple[pa.RecordBatch, list[np.ndarray | None], SegmentState, int, int | None]: ...
def segment_roll(
    window: tuple[str, int],
    closed: str,
    min_periods: int,
    aggs: Sequence[tuple[str, int, int | None, int]],
    keys: pa.Array,
    groups: tuple[pa.Array, Sequence[int] | None] | None,
    n_groups: int,
    columns: Sequence[pa.Array],
    state: SegmentState | tuple[int | None, pa.RecordBatch, pa.RecordBatch] | None,
    numpy_out: bool,
) -> tuple[pa.RecordBatch, list[np.ndarray | None], SegmentState]: ...

_JoinState = tuple[int | None, pa.RecordBatch, pa.RecordBatch, pa.RecordBatch, int | None]

def segment_join(
    window: tuple[str, int],
    closed: str,
    min_periods: int,
    aggs: Sequence[tuple[str, int, int | None, int]],
    keys: pa.Array,
    groups: tuple[pa.Array, Sequence[int] | None] | None,
    n_groups: int,
    columns: Sequence[pa.Array],
    query_keys: pa.Array,
    query_groups: tuple[pa.Array, Sequence[int] | None] | None,
    state: SegmentState | _JoinState | None,
    is_final: bool,
    numpy_out: bool,
) -> tuple[pa.RecordBatch, list[np.ndarray | None], SegmentState]: ...
def _debug_panic() -> None: ...
def _check_exception_classes() -> list[str]: ...
def metadata_path(dirpath: _Path) -> Path: ...
def find_datasets(root: _Path) -> list[Path]: ...
def _forget_objects() -> None: ...
def find_datasets_url(url: str, storage_options: Mapping[str, str] | None = None) -> list[str]: ...
def create_snapshot(
    base: str,
    name: str,
    datasets: Sequence[str],
    storage_options: Mapping[str, str] | None = None,
) -> list[tuple[str, int]]: ...
def read_snapshot(
    base: str, name: str, storage_options: Mapping[str, str] | None = None
) -> tuple[int, list[tuple[str, int]]]: ...
def list_snapshots(base: str, storage_options: Mapping[str, str] | None = None) -> list[str]: ...
def delete_snapshot(
    base: str,
    name: str,
    datasets: Sequence[str],
    storage_options: Mapping[str, str] | None = None,
) -> bool: ...

#: A staged row group: (kept file id, staged file name, n_rows, min key, max key).
_StagedRowGroup = tuple[int | None, str | None, int, int, int]

def staged_begin(raw: RawDataset | RawObjectDataset) -> int: ...
def staged_plan(
    raw: RawDataset | RawObjectDataset, lows: pa.Array, highs: pa.Array, exclusive: bool
) -> list[tuple[int, int, int, int]]: ...
def staged_write(
    raw: RawDataset | RawObjectDataset,
    data: Any,
    ordered_on_json: str,
    ordered_field: str,
    rg_start: int,
    rg_end: int,
    tag: str,
    *,
    target_rows: int | None = None,
    period_ns: int | None = None,
    anchors: npt.NDArray[np.int64] | None = None,
    duplicates_on: Sequence[str] | None = None,
    max_n_off_target_rgs: int | None = None,
    compression: str = "none",
) -> list[_StagedRowGroup]: ...
def staged_discard(raw: RawDataset | RawObjectDataset, tag: str) -> None: ...
def staged_commit(
    raw: RawDataset | RawObjectDataset,
    version: int,
    units: Sequence[tuple[int, int, Sequence[_StagedRowGroup]]],
    ordered_on_json: str,
    ordered_field: str,
    key_value_metadata_json: str,
    tag: str,
    writer: str | None = None,
) -> None: ...
