"""Engine errors reach Python as the classes of oups.exceptions."""

from __future__ import annotations

import oups.exceptions as exc
from oups import _oups


def test_every_class_the_engine_raises_exists_in_oups_exceptions():
    raised = set(_oups._check_exception_classes())
    # OupsError is the base, never raised itself; ConcurrentWriteError comes from
    # the StatefulLoop (Python).
    assert raised == set(exc.__all__) - {"OupsError", "ConcurrentWriteError"}
    for name in raised:
        assert issubclass(getattr(exc, name), exc.OupsError)
