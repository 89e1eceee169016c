"""Optional progress bars: tqdm when it is installed, nothing otherwise."""

from __future__ import annotations

from typing import Any

from oups.exceptions import ParameterTypeError


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
        return None
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, dynamic_ncols=True)
