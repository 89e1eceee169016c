"""Object-storage locations: telling URLs from paths, and the client options."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from oups.exceptions import ParameterTypeError

# Any "<scheme>://": the engine refuses the schemes it does not know, which is
# better than reading "ftp://host/x" as a relative local path.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(location: str) -> bool:
    """Whether ``location`` is a URL (``s3://bucket/key``) rather than a path."""
    return bool(_URL.match(location))


def storage_options(options: Mapping[str, Any] | None) -> dict[str, str]:
    """``storage_options`` as the engine takes them: text keys and values
    (booleans as ``"true"``/``"false"``, as delta-rs and obstore accept them)."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ParameterTypeError(
            f"'storage_options' must be a dict of str to str, got {type(options).__name__}."
        )
    out: dict[str, str] = {}
    for key, value in options.items():
        if not isinstance(key, str):
            raise ParameterTypeError(
                f"'storage_options' keys must be str, got {key!r} ({type(key).__name__})."
            )
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            out[key] = str(value)
        else:
            raise ParameterTypeError(
                f"'storage_options' value of {key!r} must be a str, bool or number, got "
                f"{type(value).__name__}."
            )
    return out
