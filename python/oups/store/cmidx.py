"""Column MultiIndex helpers: names and labels must be strings to be stored."""

from __future__ import annotations

from typing import Any

import pandas as pd

from oups.exceptions import InvalidParameterError, ParameterTypeError


def check_cmidx(chmidx: pd.Index) -> None:
    """Check that a column MultiIndex can be written.

    Parameters
    ----------
    chmidx : pandas.MultiIndex
        The columns of a DataFrame.

    Raises
    ------
    oups.exceptions.InvalidParameterError (a ValueError)
        If a level name is ``None``.
    oups.exceptions.ParameterTypeError (a TypeError)
        If a level holds a value that is not a ``str``.

    Examples
    --------
    >>> import pandas as pd
    >>> check_cmidx(pd.MultiIndex.from_tuples([("x", "a")], names=["l0", "l1"]))
    """
    if any(name is None for name in chmidx.names):
        raise InvalidParameterError(
            "not possible to have level name set to None; name the column levels, or call "
            "oups.conform_cmidx(df) to name them and turn their values into strings."
        )
    levels = chmidx.levels if isinstance(chmidx, pd.MultiIndex) else [chmidx]
    for level in levels:
        for value in level:
            if not isinstance(value, str):
                raise ParameterTypeError(
                    f"name {value} has to be of type 'string', not '{type(value).__name__}'; "
                    "oups.conform_cmidx(df) turns column level values into strings."
                )


def conform_cmidx(df: pd.DataFrame) -> None:
    """Make a DataFrame's column MultiIndex writable, in place.

    ``None`` level names become ``""`` and non-string labels become their
    ``str()``. Missing labels stay missing.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)]))
    >>> conform_cmidx(df)
    >>> list(df.columns)
    [('a', '1'), ('b', '2')]
    """
    columns = df.columns
    if not isinstance(columns, pd.MultiIndex):
        raise ValueError("'conform_cmidx' needs a DataFrame whose columns are a MultiIndex.")
    names = ["" if name is None else name for name in columns.names]
    levels: list[Any] = []
    changed = names != list(columns.names)
    for level in columns.levels:
        if all(isinstance(v, str) for v in level):
            levels.append(level)
        else:
            levels.append(pd.Index([v if isinstance(v, str) else str(v) for v in level]))
            changed = True
    if changed:
        codes: Any = columns.codes
        df.columns = pd.MultiIndex(levels=levels, codes=codes, names=names)
