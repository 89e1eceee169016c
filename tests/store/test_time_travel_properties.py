"""Property test: after random sequences of writes, restores and vacuums, every kept
version reads exactly as the model's state after the step that committed it."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oups import OrderedParquetDataset
from tests.store.merge_model import merge_rows

keys = st.lists(st.integers(0, 40), min_size=0, max_size=15).map(sorted)
write_step = st.tuples(
    st.just("write"),
    keys,
    st.fixed_dictionaries(
        {
            "row_group_target_size": st.integers(1, 8),
            "max_n_off_target_rgs": st.one_of(st.none(), st.integers(0, 3)),
            "dedup": st.booleans(),
        }
    ),
)
restore_step = st.tuples(st.just("restore"), st.integers(1, 4), st.just({}))
vacuum_step = st.tuples(st.just("vacuum"), st.integers(1, 5), st.just({}))
steps = st.lists(
    st.one_of(write_step, write_step, write_step, restore_step, vacuum_step),
    min_size=1,
    max_size=16,
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_every_kept_version_reads_as_committed(seq):
    tmp = Path(tempfile.mkdtemp())
    path = tmp / "ds"
    try:
        model: dict[int, pd.DataFrame] = {}  # version -> rows
        state = pd.DataFrame({"k": np.array([], dtype="int64"), "w": np.array([], dtype="int64")})
        for i, (kind, arg, params) in enumerate(seq):
            ds = OrderedParquetDataset(path)
            if kind == "write":
                df = pd.DataFrame({"k": np.array(arg, dtype="int64"), "w": np.full(len(arg), i)})
                dedup = params.pop("dedup")
                before = ds.version
                ds.write(ordered_on="k", df=df, duplicates_on="k" if dedup else None, **params)
                params["dedup"] = dedup
                state = merge_rows(state, df, "k", ["k"] if dedup else None)
            elif kind == "restore":
                before = ds.version
                target = None if before is None else before - arg
                if (
                    target is None
                    or target not in model
                    or target not in set(ds.versions()["version"])
                ):
                    continue
                ds.restore(target)
                state = model[target]
            else:
                ds.vacuum(keep_versions=arg)
                continue
            if ds.version is not None and ds.version != before:
                model[ds.version] = state.reset_index(drop=True)
        if not model:
            return
        kept = OrderedParquetDataset(path).versions()["version"].tolist()
        assert kept and kept[-1] == max(model)
        for v in kept:
            got = OrderedParquetDataset(path, version=v).to_pandas()
            expected = model[v]
            if len(expected) == 0:
                assert got is None or len(got) == 0
            else:
                pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    finally:
        shutil.rmtree(tmp)
