"""``StatefulLoop``: an iteration context with state binding, resumable
persistence and memory-capped buffering of frames."""

from __future__ import annotations

import functools
import inspect
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from oups._oups import RawStateObject
from oups.exceptions import InvalidParameterError, ParameterTypeError
from oups.stateful_loop import _codec
from oups.stateful_loop import _exactly_once as exactly_once
from oups.stateful_loop._context import IterationContext, Skip
from oups.stateful_loop._frames import DEFAULT_CONCAT, frame_bytes, frame_kind
from oups.stateful_loop._validation import validate_loop_usage, warn_rebound
from oups.store._storage import is_url
from oups.store._storage import storage_options as _storage_options
from oups.store.store import Store

__all__ = ["StatefulLoop", "Skip", "IterationContext"]

_MB = 1024 * 1024
_T = TypeVar("_T")
#: State-file entry of the frames unflushed buffers held at a checkpoint.
_BUFFERS_KEY = "loop:buffers"


def _limit_bytes(value: Any, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterTypeError(
            f"{argument} must be a number of megabytes (int or float), got "
            f"{type(value).__name__} {value!r}"
        )
    if math.isnan(value):
        raise InvalidParameterError(f"{argument} must be a number of megabytes, got NaN")
    if math.isinf(value):
        return sys.maxsize if value > 0 else 0
    return int(value * _MB)


class StatefulLoop:
    """Drive an ordered, chunked computation whose state survives restarts.

    Parameters
    ----------
    filepath : str or os.PathLike
        State file: a local path, or an object-storage URL
        (``s3://bucket/prefix/loop.state``). When it exists, its state is
        loaded at construction and wins over the initial values given in code
        to the ``bind_*`` methods. It is (re)written atomically when a run
        completes its last item. At a URL each save is conditional on the
        object the loop loaded or last saved, so a second loop writing the
        same URL makes the save raise
        :class:`~oups.exceptions.CommitConflictError` instead of being lost.
    default_memory_limit_mb : float, default 300.0
        Limit used by :meth:`buffer` when no ``memory_limit_mb`` is given.
        ``0`` flushes at every call.
    store : Store, optional
        Makes the loop's writes to this store exactly once: the versions the
        loop's bodies commit to its datasets are recorded as the loop's, and a
        loop resumed from its state file first undoes those committed after its
        last checkpoint (or raises :class:`~oups.exceptions.ConcurrentWriteError`
        if another writer committed to such a dataset since), so the resumed
        run's writes never duplicate them.
    storage_options : dict, optional
        Client options for a ``filepath`` URL (credentials, endpoint), named
        as for :class:`~oups.store.ordered_parquet_dataset.OrderedParquetDataset`.

    Examples
    --------
    A running total that survives a restart: the second loop reads the state
    the first one saved.

    >>> import tempfile
    >>> from oups import StatefulLoop
    >>> path = tempfile.mkdtemp() + "/sum.state"
    >>> def add(x, *, acc):
    ...     acc["total"] += x
    ...     return acc["total"]
    >>> for run in ([1, 2], [3]):
    ...     loop = StatefulLoop(path)
    ...     step = loop.bind_function_state(add, state={"acc": {"total": 0}})
    ...     for item_ctx in loop.iterate(run):
    ...         with item_ctx as x:
    ...             total = step(x)
    ...     print(total)
    3
    6
    """

    def __init__(
        self,
        filepath: str | os.PathLike[str],
        *,
        default_memory_limit_mb: float = 300.0,
        store: Store | None = None,
        storage_options: dict[str, Any] | None = None,
    ):
        if store is not None and not isinstance(store, Store):
            raise ParameterTypeError(
                f"'store' must be a oups Store or None, got {type(store).__name__}"
            )
        if not isinstance(filepath, (str, os.PathLike)):
            raise ParameterTypeError(
                f"filepath must be a str or a path-like object, got {type(filepath).__name__}"
            )
        self._filepath = filepath
        self._default_limit = max(
            _limit_bytes(default_memory_limit_mb, "default_memory_limit_mb"), 0
        )
        self._iteration_count = -1
        self._is_last_iteration = False
        self._states: dict[str, dict[str, Any]] = {}
        self._object_bindings: dict[str, tuple[Any, list[str]]] = {}
        self._key_counters: dict[str, int] = {}
        # Bytes buffered since the last flush, per buffer() call position.
        self._pending: list[int] = []
        self._buffers: list[dict[Any, list[Any]]] = []
        self._buffer_iteration: int | None = None
        self._buffer_position = 0
        options = _storage_options(storage_options)
        # A URL's state is one object; its saves are conditional puts.
        self._remote: RawStateObject | None = None
        loaded: dict[str, dict[str, Any]] | None = None
        if isinstance(filepath, str) and is_url(filepath):
            self._remote = RawStateObject(filepath, options)
            raw = self._remote.load()
            if raw is not None:
                loaded = _codec.decode(raw[0], raw[1], filepath)
        else:
            if options:
                raise InvalidParameterError(
                    "'storage_options' is for state files at object-storage URLs (s3://, "
                    f"gs://, az://, memory://); {os.fspath(filepath)!r} is a local path."
                )
            path = Path(filepath)
            if path.is_dir():
                raise IsADirectoryError(
                    21, "StatefulLoop filepath is a directory; pass the path of a file", str(path)
                )
            if path.exists():
                loaded = _codec.load(path)
        self._loaded = loaded is not None
        self._written = False
        self._bound: set[str] = set()
        self._warned = False
        # Frames a checkpoint kept in unflushed buffers, put back by the
        # first run after loading (see _checkpoint).
        self._resumed_buffers: Any = None
        if loaded is not None:
            self._states = loaded
            self._resumed_buffers = self._states.pop(_BUFFERS_KEY, {}).get("buffers")
        saved_once = self._states.pop(exactly_once.STATE_KEY, None)
        self._exactly_once = None if store is None else exactly_once.ExactlyOnce(store, saved_once)
        if self._exactly_once is not None:
            if saved_once is not None:
                self._exactly_once.resume()
            else:
                # The tag must be on disk before the first write it marks.
                self._exactly_once.writer.before_first_write = self._save_tag

    # -- read-only attributes -------------------------------------------------

    @property
    def filepath(self) -> str | os.PathLike[str]:
        """The state file path, as given."""
        return self._filepath

    @property
    def default_memory_limit_bytes(self) -> int:
        """Default :meth:`buffer` limit, in bytes."""
        return self._default_limit

    @property
    def default_memory_limit_mb(self) -> float:
        """Default :meth:`buffer` limit, in megabytes (derived from the byte value)."""
        return self._default_limit / _MB

    @property
    def iteration_count(self) -> int:
        """0-based index of the current item; -1 before the first item."""
        return self._iteration_count

    @property
    def is_last_iteration(self) -> bool:
        """True from the start of the last item's body (found by one-item lookahead)."""
        return self._is_last_iteration

    def __repr__(self) -> str:
        return (
            f"StatefulLoop(filepath={self._filepath!s}, "
            f"default_memory_limit_mb={self.default_memory_limit_mb})"
        )

    # -- iteration ------------------------------------------------------------

    def iterate(
        self, iterable: Iterable[_T], *, check_loop_usage: Any = None
    ) -> Iterator[IterationContext]:
        """Yield one :class:`IterationContext` per item of ``iterable``.

        Use as ``for item_ctx in loop.iterate(source): with item_ctx as item: ...``.
        The state is saved once the last item's body has completed without an
        exception, and also after the body of every item during which a
        :meth:`buffer` flushed (a checkpoint: a resume continues from the last
        completed flush, see the docs for the exact guarantee). ``break`` or
        an exception leave the state file as the last save left it.

        ``check_loop_usage``: None validates the loop's shape (see the docs)
        unless a state file was loaded; otherwise its truth value decides.

        Examples
        --------
        >>> import tempfile
        >>> from oups import StatefulLoop
        >>> loop = StatefulLoop(tempfile.mkdtemp() + "/loop.state")
        >>> for item_ctx in loop.iterate("abc"):
        ...     with item_ctx as letter:
        ...         print(loop.iteration_count, letter, loop.is_last_iteration)
        0 a False
        1 b False
        2 c True
        """
        # Nothing below runs until the for statement first advances the generator.
        validate = (not self._loaded) if check_loop_usage is None else bool(check_loop_usage)
        if validate:
            validate_loop_usage(sys._getframe(1))
        self._start_run()
        self._warn_unbound()
        iterator = iter(iterable)
        try:
            upcoming = next(iterator)
        except StopIteration:
            return
        count = -1
        last = False
        while not last:
            item = upcoming
            try:
                upcoming = next(iterator)
            except StopIteration:
                last = True
                self._is_last_iteration = True
            count += 1
            self._iteration_count = count
            self._flushed = False
            yield IterationContext(
                item, None if self._exactly_once is None else self._exactly_once.writer
            )
            # The body completed (an exception would have closed the generator
            # at `yield`): the consumer of any flush of this item has returned.
            if self._flushed and not last:
                self._checkpoint()
        # Reached only when the for statement asks for an item after the last
        # body completed: break and exceptions close the generator at `yield`.
        self._save()

    def _start_run(self) -> None:
        self._iteration_count = -1
        self._is_last_iteration = False
        self._flushed = False
        self._pending = []
        self._buffers = []
        self._buffer_iteration = None
        self._buffer_position = 0
        resumed, self._resumed_buffers = self._resumed_buffers, None
        for frames_by_key, nbytes in resumed or []:
            self._buffers.append({key: list(frames) for key, frames in frames_by_key})
            self._pending.append(int(nbytes))

    def _warn_unbound(self) -> None:
        stale = sorted(k for k in self._states if k not in self._bound)
        if stale and self._loaded and not self._warned:
            self._warned = True
            warnings.warn(
                f"the state file {os.fspath(self._filepath)!r} holds state for "
                f"{', '.join(stale)}, which this run did not bind: it is kept but unused, and "
                "the renamed or removed binding starts from its initial values. Bind in the "
                "same order and with the same names on every run (or pass name=...).",
                UserWarning,
                stacklevel=3,
            )

    def _save(self, buffers: Any = None) -> None:
        for key, (obj, names) in self._object_bindings.items():
            self._states[key] = {name: getattr(obj, name) for name in names}
        states = self._states
        if buffers is not None:
            states = {**states, _BUFFERS_KEY: {"buffers": buffers}}
        once = self._exactly_once
        if once is not None:
            states = {**states, exactly_once.STATE_KEY: once.checkpointed()}
        _codec.save(self._target(), states)
        self._written = True
        if once is not None:
            once.saved()

    def _save_tag(self) -> None:
        """A first run's state file, before its first write: only the loop's
        tag, so that a crash before the first checkpoint is undone too."""
        assert self._exactly_once is not None
        if not self._state_exists():
            _codec.save(self._target(), {exactly_once.STATE_KEY: self._exactly_once.entry()})
            self._written = True

    def _target(self) -> Any:
        """Where saves go: the local path, or the URL's object."""
        return self._filepath if self._remote is None else self._remote

    def _state_exists(self) -> bool:
        if self._remote is None:
            return Path(self._filepath).exists()
        return self._loaded or self._written

    def _checkpoint(self) -> None:
        """Saves the state after an item whose flush was consumed, with the
        frames other buffers still hold: a resume from here loses nothing."""
        held = [
            ([(key, frames) for key, frames in store.items() if frames], self._pending[p])
            for p, store in enumerate(self._buffers)
        ]
        self._save(held if any(frames for frames, _ in held) else None)

    # -- buffering ------------------------------------------------------------

    def buffer(
        self,
        data: Mapping[Any, Any],
        memory_limit_mb: float | None = None,
        concat_func: Callable[[list[Any]], Any] | None = None,
    ) -> dict[Any, Any]:
        """Accumulate frames; return them concatenated when this buffer flushes.

        A buffer is identified by the position of the call among the
        ``buffer()`` calls of the current item. It flushes when its frames
        reach the memory limit, and always on the last item; otherwise
        :class:`Skip` ends the current item's ``with`` block.

        Parameters
        ----------
        data : dict
            ``{key: frame}``; frames are pandas DataFrames, pyarrow Tables or
            RecordBatches, or polars DataFrames.
        memory_limit_mb : float, optional
            Limit for this buffer; defaults to the loop's default limit.
        concat_func : callable, optional
            Called with the list of frames of one key. Defaults to
            ``pandas.concat``, ``pyarrow.concat_tables`` or ``polars.concat``
            according to the frames' type.

        Returns
        -------
        dict
            ``{key: concatenated frame}`` for the keys that received frames
            since the last flush, in first-seen order.

        Examples
        --------
        With a limit of two one-row frames, the buffer hands out a batch at
        every second item, and the rest after the last item. The body stops
        at ``buffer()`` on the other items (it raises :class:`Skip`).

        >>> import tempfile, pandas as pd
        >>> from oups import StatefulLoop
        >>> loop = StatefulLoop(tempfile.mkdtemp() + "/buf.state")
        >>> for item_ctx in loop.iterate(range(5)):
        ...     with item_ctx as i:
        ...         frame = pd.DataFrame({"i": [i]})
        ...         two_frames_mb = 2 * frame.memory_usage(deep=True).sum() / 2**20
        ...         batch = loop.buffer({"out": frame}, memory_limit_mb=two_frames_mb)
        ...         print(batch["out"]["i"].tolist())
        [0, 1]
        [2, 3]
        [4]
        """
        if not isinstance(data, Mapping):
            raise ParameterTypeError(
                f"buffer(): data must be a dict of {{key: frame}}, got {type(data).__name__}"
            )
        nbytes = 0
        for key, frame in data.items():
            kind = frame_kind(frame)
            if kind is None:
                raise ParameterTypeError(
                    f"buffer(): the value for key {key!r} is a {type(frame).__name__}; expected "
                    "a pandas DataFrame, a pyarrow Table or RecordBatch, or a polars DataFrame"
                )
            nbytes += frame_bytes(kind, frame)
        if memory_limit_mb is None:
            limit = self._default_limit
        else:
            limit = _limit_bytes(memory_limit_mb, "memory_limit_mb")
        if concat_func is not None and not callable(concat_func):
            raise ParameterTypeError(
                f"buffer(): concat_func must be callable, got {type(concat_func).__name__}"
            )
        if self._buffer_iteration != self._iteration_count:
            self._buffer_iteration = self._iteration_count
            self._buffer_position = 0
        position = self._buffer_position
        self._buffer_position = position + 1
        buffers = self._buffers
        while len(buffers) <= position:
            buffers.append({})
        store = buffers[position]
        for key, frame in data.items():
            frames = store.get(key)
            if frames is None:
                store[key] = [frame]
            else:
                frames.append(frame)
        pending = self._pending
        while len(pending) <= position:
            pending.append(0)
        pending[position] += nbytes
        if pending[position] < limit and not self._is_last_iteration:
            raise Skip
        out = {}
        for key, frames in store.items():
            if frames:
                # Frames were validated on entry, so their kind is known.
                concat = concat_func or DEFAULT_CONCAT[frame_kind(frames[0]) or "pandas"]
                out[key] = concat(frames)
        # Only forget the frames once every concat succeeded.
        for key in store:
            store[key] = []
        pending[position] = 0
        self._flushed = True
        return out

    # -- state binding --------------------------------------------------------

    def _next_key(self, namespace: str, base: str) -> str:
        prefix = f"{namespace}:{base}"
        n = self._key_counters.get(prefix, 0) + 1
        self._key_counters[prefix] = n
        return f"{prefix}#{n}"

    def bind_function_state(
        self, func: Callable[..., Any], *, state: dict[str, Any], name: str | None = None
    ) -> functools.partial[Any]:
        """Bind persistent keyword arguments to ``func``.

        Returns a ``functools.partial`` whose signature no longer shows the
        bound parameters. State persists through in-place mutation of the
        bound objects (a list, a dict, an array...). On a rerun with an
        existing state file, stored values win over ``state``; parameters
        absent from the file start from ``state``.

        The state key is ``func:<name>#<n>``: ``name`` defaults to
        ``func.__name__`` and ``n`` counts the bindings of that name, so bind
        in the same order on every run.

        Examples
        --------
        >>> import tempfile
        >>> from oups import StatefulLoop
        >>> def count(item, *, seen):
        ...     seen.append(item)
        ...     return len(seen)
        >>> loop = StatefulLoop(tempfile.mkdtemp() + "/count.state")
        >>> step = loop.bind_function_state(count, state={"seen": []})
        >>> step("a"), step("b"), step.keywords["seen"]
        (1, 2, ['a', 'b'])
        """
        if not callable(func):
            raise ParameterTypeError(
                f"bind_function_state(): func must be callable, got {type(func).__name__}"
            )
        if not isinstance(state, dict):
            raise ParameterTypeError(
                "bind_function_state(): state must be a dict mapping parameter names to "
                f"initial values, got {type(state).__name__}"
            )
        base = name or getattr(func, "__name__", None)
        if not base or not isinstance(base, str):
            raise InvalidParameterError(
                "function has no name. Pass name='...' to bind_function_state()."
            )
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError) as exc:
            raise ParameterTypeError(
                f"bind_function_state(): cannot read the signature of {base!r} ({exc})"
            ) from exc
        params = signature.parameters
        unknown = sorted(str(k) for k in state if k not in params)
        if unknown:
            raise InvalidParameterError(
                "state contains keys not present in stateful function/object: " + ", ".join(unknown)
            )
        positional = [
            k
            for k in state
            if params[k].kind
            in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.VAR_POSITIONAL)
        ]
        if positional:
            raise InvalidParameterError(
                f"state names positional-only parameters of {base!r}: {', '.join(positional)}; "
                "only parameters that can be passed by keyword can hold state"
            )
        key = self._next_key("func", base)
        values = dict(state)
        stored = self._states.get(key)
        if stored is not None:
            values.update((k, stored[k]) for k in state if k in stored)
        bound = functools.partial(func, **values)
        bound.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[p for p in params.values() if p.name not in state]
        )
        # Persist the very dict the partial holds, so what is saved is what is bound.
        self._states[key] = bound.keywords
        self._bound.add(key)
        warn_rebound(func, list(state), base)
        return bound

    def bind_object_state(self, obj: _T, *, state: list[str], name: str | None = None) -> _T:
        """Persist attributes ``state`` of ``obj`` across runs; returns ``obj``.

        Listed attributes are read when the state is saved, so both in-place
        mutation and reassignment persist. On a rerun with an existing state
        file, stored values are set on ``obj`` now; attributes absent from the
        file keep their current value. The key is ``obj:<name>#<n>`` where
        ``name`` defaults to ``obj.__name__`` or the class name.

        Examples
        --------
        >>> import tempfile
        >>> from oups import StatefulLoop
        >>> class Peak:
        ...     def __init__(self):
        ...         self.high = float("-inf")
        >>> path = tempfile.mkdtemp() + "/peak.state"
        >>> for run in ([3.0, 7.0], [5.0]):
        ...     loop = StatefulLoop(path)
        ...     peak = loop.bind_object_state(Peak(), state=["high"])
        ...     for item_ctx in loop.iterate(run):
        ...         with item_ctx as x:
        ...             peak.high = max(peak.high, x)
        ...     print(peak.high)
        7.0
        7.0
        """
        if isinstance(state, (str, bytes)) or not isinstance(state, Iterable):
            raise ParameterTypeError(
                "bind_object_state(): state must be a list of attribute names, got "
                f"{type(state).__name__}"
            )
        names = list(dict.fromkeys(state))
        not_str = [n for n in names if not isinstance(n, str)]
        if not_str:
            raise ParameterTypeError(
                f"bind_object_state(): attribute names must be str, got {not_str!r}"
            )
        missing = sorted(n for n in names if not hasattr(obj, n))
        if missing:
            raise InvalidParameterError(
                "state contains keys not present in stateful function/object: " + ", ".join(missing)
            )
        base = name
        if not base:
            own = getattr(obj, "__name__", None)
            base = own if isinstance(own, str) and own else type(obj).__name__
        key = self._next_key("obj", base)
        stored = self._states.get(key)
        if stored is not None:
            for attr in names:
                if attr in stored:
                    setattr(obj, attr, stored[attr])
        self._states[key] = {attr: getattr(obj, attr) for attr in names}
        self._object_bindings[key] = (obj, names)
        self._bound.add(key)
        return obj
