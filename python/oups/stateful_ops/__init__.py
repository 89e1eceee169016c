"""Vectorised operations designed for repeated calls on consecutive chunks."""

from oups.stateful_ops.asof_merger import AsofMerger

__all__ = ["AsofMerger"]
