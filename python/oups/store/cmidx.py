"""Column MultiIndex helpers: names and labels must be strings to be stored."""

from __future__ import annotations

from typing import Any

import pandas as pd


def check_cmidx(chmidx: pd.Index) -> None:
    """Check that a column MultiIndex can be written.

    Parameters
    ----------
    chmidx : pandas.MultiIndex
        The columns of a DataFrame.

    Raises
    ------
    ValueError
        If a level name is ``None``.
    TypeError
        If a level holds a value that is not a ``str``.

    Examples
    --------
    >>> import pandas as pd
    >>> check_cmidx(pd.MultiIndex.from_tuples([("x", "a")], names=["l0", "l1"]))
    """
    if any(name is None for name in chmidx.names):
        raise ValueError("not possible to have level name set to None.")
    levels = chmidx.levels if isinstance(chmidx, pd.MultiIndex) else [chmidx]
    for level in levels:
        for value in level:
            if not isinstance(value, str):
                raise TypeError(
                    f"name {value} has to be of type 'string', not '{type(value).__name__}'."
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
