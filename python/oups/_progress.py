"""Optional progress bars: tqdm when it is installed, nothing otherwise."""

from __future__ import annotations

import warnings
from typing import Any

from oups.exceptions import ParameterTypeError

_warned_no_tqdm = False


def check_progress(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ParameterTypeError(f"'progress' must be True or False, got {type(value).__name__}.")
    return value


def progress_bar(
    enabled: bool, *, total: int | None, desc: str, unit: str, unit_scale: bool = False
) -> Any:
    """A tqdm bar (notebook-aware), or None when disabled or tqdm is missing."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        global _warned_no_tqdm
        if not _warned_no_tqdm:
            _warned_no_tqdm = True
            warnings.warn(
                "progress=True shows nothing because tqdm is not installed; "
                "pip install tqdm to see progress bars.",
                UserWarning,
                stacklevel=3,
            )
        return None
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, dynamic_ncols=True)
