"""Translation between bound state values and the state file's manifest and
binary sections.

Plain values (None, bool, int, float, str) are stored in the JSON manifest;
lists, tuples, sets and dicts are stored structurally; bytes and numpy arrays
as raw sections; pandas, pyarrow and polars frames as Arrow IPC sections.
Nothing of that is ever unpickled. Any other object is pickled (with
cloudpickle when plain pickle refuses it and cloudpickle is installed), and a
pickle is only loaded after the file's header and checksum have verified.
The container itself (header, checksum, atomic replace) is written by the Rust
engine (``oups._oups.save_state`` / ``load_state``).
"""

from __future__ import annotations

import json
import pickle
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from oups._oups import RawStateObject, load_state, save_state
from oups.exceptions import CorruptStateError, ParameterTypeError

FORMAT = "oups.stateful_loop"
CODEC_VERSION = 1
_PLAIN = (type(None), bool, int, float, str)
_SERIES_COLUMN = "__oups_series__"


class _Cycle(Exception):
    """A container refers to itself; the whole value is pickled instead."""


def _u8(buffer: Any) -> pa.Array:
    """A zero-copy uint8 Arrow view over any contiguous buffer."""
    return pa.array(np.frombuffer(buffer, dtype=np.uint8))


def _frame_is_arrow_safe(df: pd.DataFrame) -> bool:
    columns = df.columns
    return (
        not df.attrs
        and not isinstance(columns, pd.MultiIndex)
        and columns.is_unique
        and all(type(c) is str for c in columns)
        and _SERIES_COLUMN not in columns
    )


def _pandas_to_arrow(df: pd.DataFrame) -> pa.Table:
    """``pa.Table.from_pandas(df)``, without its copy for plain numeric frames.

    ``from_pandas`` copies numeric columns (~20 ms for 48 MB here); numpy
    arrays convert to Arrow without a copy. The pandas metadata that restores
    dtypes and index is taken from the empty frame, with the RangeIndex bounds
    set to the real ones.
    """
    index = df.index
    try:
        blocks = df._mgr.blocks
    except AttributeError:  # pragma: no cover - pandas internals changed
        return pa.Table.from_pandas(df)
    plain = type(index) is pd.RangeIndex and all(
        isinstance(b.values, np.ndarray)
        and (b.values.dtype.kind in "biu" or b.values.dtype in (np.float32, np.float64))
        for b in blocks
    )
    if not plain:
        return pa.Table.from_pandas(df)
    schema = pa.Table.from_pandas(df.iloc[:0]).schema
    meta = json.loads(schema.metadata[b"pandas"])
    for entry in meta["index_columns"]:
        if isinstance(entry, dict) and entry.get("kind") == "range":
            span: Any = index
            entry.update(start=span.start, stop=span.stop, step=span.step)
    schema = schema.with_metadata({**schema.metadata, b"pandas": json.dumps(meta).encode()})
    arrays = [pa.array(df[c].to_numpy()) for c in df.columns]
    return pa.Table.from_arrays(arrays, schema=schema)


class _Encoder:
    def __init__(self) -> None:
        self.sections: list[tuple[str, Any]] = []
        self._active: set[int] = set()
        self._where = "a value"

    def _section(self, kind: str, payload: Any) -> int:
        self.sections.append((kind, payload))
        return len(self.sections) - 1

    def top(self, value: Any, where: str) -> Any:
        mark = len(self.sections)
        self._where = where
        try:
            return self.node(value)
        except _Cycle:
            del self.sections[mark:]
            self._active.clear()
            return self._pickle(value)

    def node(self, value: Any) -> Any:
        cls = type(value)
        if cls in _PLAIN:
            return value
        if cls in (list, tuple, set, frozenset, dict):
            return self._container(cls, value)
        if cls is bytes or cls is bytearray:
            return {"$": cls.__name__, "s": self._section("raw", _u8(value))}
        if cls is np.ndarray and self._raw_dtype(value.dtype):
            # ascontiguousarray would turn a 0-d array into a 1-d one.
            array = value if value.flags.c_contiguous else np.ascontiguousarray(value)
            flat = array.reshape(-1).view(np.uint8)
            return {
                "$": "ndarray",
                "dtype": array.dtype.str,
                "shape": list(array.shape),
                "s": self._section("raw", pa.array(flat)),
            }
        if isinstance(value, np.generic) and self._raw_dtype(value.dtype):
            raw = np.asarray(value).reshape(-1).view(np.uint8)
            return {
                "$": "npscalar",
                "dtype": value.dtype.str,
                "s": self._section("raw", pa.array(raw)),
            }
        table = self._as_table(value)
        if table is not None:
            return table
        return self._pickle(value)

    @staticmethod
    def _raw_dtype(dtype: np.dtype) -> bool:
        return not dtype.hasobject and dtype.fields is None and dtype.subdtype is None

    def _container(self, cls: type, value: Any) -> dict[str, Any]:
        key = id(value)
        if key in self._active:
            raise _Cycle
        self._active.add(key)
        try:
            if cls is dict:
                return {
                    "$": "dict",
                    "k": [self.node(k) for k in value],
                    "v": [self.node(v) for v in value.values()],
                }
            return {"$": cls.__name__, "v": [self.node(v) for v in value]}
        finally:
            self._active.discard(key)

    def _as_table(self, value: Any) -> dict[str, Any] | None:
        try:
            if type(value) is pd.DataFrame and _frame_is_arrow_safe(value):
                table = _pandas_to_arrow(value)
                return {"$": "pandas", "s": self._section("arrow", table)}
            if type(value) is pd.Series and type(value.name) in _PLAIN:
                table = pa.Table.from_pandas(value.to_frame(name=_SERIES_COLUMN))
                return {"$": "series", "name": value.name, "s": self._section("arrow", table)}
        except (pa.ArrowException, TypeError, ValueError):
            return None  # e.g. mixed-type object columns: pickle keeps them exact
        if isinstance(value, pa.Table):
            return {"$": "arrow_table", "s": self._section("arrow", value)}
        if isinstance(value, pa.RecordBatch):
            table = pa.Table.from_batches([value])
            return {"$": "arrow_batch", "s": self._section("arrow", table)}
        cls = type(value)
        if cls.__name__ == "DataFrame" and cls.__module__.startswith("polars"):
            return {"$": "polars", "s": self._section("arrow", value.to_arrow())}
        return None

    def _pickle(self, value: Any) -> dict[str, Any]:
        try:
            payload = pickle.dumps(value, protocol=5)
        except Exception as pickle_error:
            error: Exception = pickle_error
            try:
                import cloudpickle

                payload = cloudpickle.dumps(value, protocol=5)
            except ImportError:
                pass
            except Exception as cloudpickle_error:
                error = cloudpickle_error
            else:
                return {"$": "pickle", "s": self._section("raw", _u8(payload))}
            raise ParameterTypeError(
                f"cannot persist {self._where}: a {type(value).__name__!r} cannot be "
                f"pickled ({error}). Keep plain values, containers, numpy arrays or frames "
                "in bound state, or install cloudpickle for lambdas and local classes."
            ) from error
        return {"$": "pickle", "s": self._section("raw", _u8(payload))}


def save(path: Any, states: dict[str, dict[str, Any]]) -> None:
    """Encode ``states`` and write them atomically to ``path`` (a local path,
    or the ``RawStateObject`` of a URL)."""
    encoder = _Encoder()
    body = {
        key: {
            name: encoder.top(value, f"state {key!r}, entry {name!r}")
            for name, value in entries.items()
        }
        for key, entries in states.items()
    }
    manifest = json.dumps(
        {"format": FORMAT, "codec": CODEC_VERSION, "states": body}, separators=(",", ":")
    )
    if isinstance(path, RawStateObject):
        path.save(manifest, encoder.sections)
    else:
        save_state(path, manifest, encoder.sections)


class _Decoder:
    def __init__(self, path: Any, sections: list[tuple[str, Any]]) -> None:
        self.path = path
        self.sections = sections

    def _section(self, node: dict[str, Any], kind: str) -> Any:
        index = node["s"]
        got, payload = self.sections[index]
        if got != kind:
            raise CorruptStateError(
                f"state file '{self.path}' cannot be loaded: section {index} has kind {got!r}, "
                f"expected {kind!r}"
            )
        return payload

    def _raw(self, node: dict[str, Any]) -> np.ndarray[Any, Any]:
        raw: np.ndarray[Any, Any] = self._section(node, "raw").to_numpy(zero_copy_only=True)
        return raw

    def node(self, node: Any) -> Any:
        if not isinstance(node, dict):
            if isinstance(node, list):
                raise ValueError("bare JSON array")
            return node
        tag = node["$"]
        if tag == "list":
            return [self.node(v) for v in node["v"]]
        if tag == "tuple":
            return tuple(self.node(v) for v in node["v"])
        if tag == "set":
            return {self.node(v) for v in node["v"]}
        if tag == "frozenset":
            return frozenset(self.node(v) for v in node["v"])
        if tag == "dict":
            return {self.node(k): self.node(v) for k, v in zip(node["k"], node["v"], strict=True)}
        if tag == "bytes":
            return self._raw(node).tobytes()
        if tag == "bytearray":
            return bytearray(self._raw(node))
        if tag == "ndarray":
            dtype = np.dtype(node["dtype"])
            return self._raw(node).view(dtype).reshape(tuple(node["shape"])).copy()
        if tag == "npscalar":
            return self._raw(node).view(np.dtype(node["dtype"]))[0].copy()
        if tag == "pandas":
            return _writable(self._section(node, "arrow").to_pandas())
        if tag == "series":
            frame = _writable(self._section(node, "arrow").to_pandas())
            return frame[_SERIES_COLUMN].rename(node["name"])
        if tag == "arrow_table":
            return self._section(node, "arrow")
        if tag == "arrow_batch":
            table = self._section(node, "arrow").combine_chunks()
            batches = table.to_batches()
            return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=table.schema)
        if tag == "polars":
            import polars as pl

            return pl.from_arrow(self._section(node, "arrow"))
        if tag == "pickle":
            try:
                return pickle.loads(self._raw(node).data)
            except Exception as exc:
                raise CorruptStateError(
                    f"state file '{self.path}' cannot be loaded: a pickled value cannot be "
                    f"restored ({type(exc).__name__}: {exc}); its class must be importable "
                    "under the same name as when it was saved"
                ) from exc
        raise ValueError(f"unknown value tag {tag!r}")


def _writable(df: pd.DataFrame) -> pd.DataFrame:
    """Arrow hands some columns to pandas without a copy (categorical codes,
    masked arrays), read-only; restored state must be mutable like the
    original, so such frames are copied once."""
    copy: pd.DataFrame
    try:
        blocks = df._mgr.blocks
    except AttributeError:  # pragma: no cover - pandas internals changed
        copy = df.copy(deep=True)
        return copy
    for block in blocks:
        values = block.values
        if not isinstance(values, np.ndarray) or not values.flags.writeable:
            copy = df.copy(deep=True)
            return copy
    return df


def load(path: Any) -> dict[str, dict[str, Any]]:
    """Read, verify and decode the state file at ``path``."""
    manifest_text, sections = load_state(path)
    return decode(manifest_text, sections, path)


def decode(manifest_text: str, sections: list[Any], path: Any) -> dict[str, dict[str, Any]]:
    """The states of a verified state file (``path`` names it in errors)."""
    try:
        manifest = json.loads(manifest_text)
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError("not a StatefulLoop manifest")
        if manifest.get("codec") != CODEC_VERSION:
            raise CorruptStateError(
                f"state file '{path}' cannot be loaded: value encoding version "
                f"{manifest.get('codec')!r} is not supported by this oups (version "
                f"{CODEC_VERSION}); it was written by a different oups release"
            )
        decoder = _Decoder(path, sections)
        return {
            key: {name: decoder.node(node) for name, node in entries.items()}
            for key, entries in manifest["states"].items()
        }
    except CorruptStateError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise CorruptStateError(
            f"state file '{path}' cannot be loaded: malformed manifest ({exc})"
        ) from exc
