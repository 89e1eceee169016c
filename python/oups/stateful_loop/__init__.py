"""Resumable, memory-capped iteration: :class:`StatefulLoop`."""

from oups.stateful_loop.stateful_loop import StatefulLoop

__all__ = ["StatefulLoop"]
