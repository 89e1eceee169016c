"""Vectorised operations designed for repeated calls on consecutive chunks."""

from oups.stateful_ops._segment_bins import Threshold
from oups.stateful_ops.asof_merger import AsofMerger
from oups.stateful_ops.segmented_aggregator import SegmentedAggregator

__all__ = ["AsofMerger", "SegmentedAggregator", "Threshold"]
