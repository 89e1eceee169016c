"""Stateful property test: random sequences of writes, metadata updates and
resize passes on one dataset, compared after every step with a pure-pandas
model of the documented semantics (merge in order, keep-last duplicates, new
rows after stored ones for equal keys, metadata add/update/remove).

``OUPS_MODEL_EXAMPLES`` sets the number of sequences (500 by default: CI).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from oups import OrderedParquetDataset, write
from tests.store.merge_model import merge_rows

pytestmark = pytest.mark.slow

keys = st.lists(st.integers(0, 40), min_size=0, max_size=20).map(sorted)
targets = st.one_of(st.integers(1, 10), st.sampled_from(["8h", "1D", "2D"]))
max_n = st.one_of(st.none(), st.integers(0, 4))
DAY = pd.Timestamp("2024-01-01")


class DatasetModel(RuleBasedStateMachine):
    """One dataset, each write with or without ``duplicates_on`` (on the key,
    or on the key and a tag): stored rows go only when a new row has their
    values, so the result does not depend on the row-group layout."""

    @initialize()
    def start(self) -> None:
        self.tmp = Path(tempfile.mkdtemp())
        self.path = self.tmp / "ds"
        self.model = pd.DataFrame(
            {
                "t": pd.Series([], dtype="datetime64[ns]"),
                "tag": pd.Series([], dtype="int64"),
                "w": pd.Series([], dtype="int64"),
            }
        )
        self.kvm: dict[str, int] = {}
        self.step = 0

    def teardown(self) -> None:
        shutil.rmtree(getattr(self, "tmp", ""), ignore_errors=True)

    @rule(
        hours=keys,
        tags=st.integers(0, 2),
        size=targets,
        n=max_n,
        mode=st.sampled_from(["keep", "key", "key+tag"]),
    )
    def write_rows(
        self, hours: list[int], tags: int, size: int | str, n: int | None, mode: str
    ) -> None:
        self.step += 1
        ts = DAY + pd.to_timedelta(np.asarray(hours, dtype="int64") * 3, unit="h")
        df = pd.DataFrame(
            {
                "t": ts.astype("datetime64[ns]"),
                "tag": np.arange(len(hours), dtype="int64") % (tags + 1),
                "w": np.arange(len(hours), dtype="int64") + 1000 * self.step,
            }
        )
        subset = {"keep": None, "key": ["t"], "key+tag": ["t", "tag"]}[mode]
        write(
            self.path,
            ordered_on="t",
            df=df,
            row_group_target_size=size,
            max_n_off_target_rgs=n,
            duplicates_on=subset,
        )
        self.model = merge_rows(self.model, df, "t", subset)

    @rule(
        key=st.sampled_from(["a", "b", "c"]),
        value=st.one_of(st.none(), st.integers(-5, 5)),
        size=targets,
        n=st.integers(0, 3),
        subset=st.sampled_from([None, ["t"], ["t", "tag"]]),
    )
    def metadata_and_resize(
        self, key: str, value: int | None, size: int | str, n: int, subset: list[str] | None
    ) -> None:
        if not self.path.with_name("ds_opdmd").exists() and not len(self.model):
            return  # a dataset is created by its first write of rows
        write(
            self.path,
            ordered_on="t",
            df=None,
            row_group_target_size=size,
            max_n_off_target_rgs=n,
            key_value_metadata={key: value},
            duplicates_on=subset,
        )
        if value is None:
            self.kvm.pop(key, None)
        else:
            self.kvm[key] = value

    @invariant()
    def matches_model(self) -> None:
        if not hasattr(self, "path"):
            return
        with OrderedParquetDataset(self.path) as ds:
            out = ds.to_pandas()
            stats = ds.row_group_stats
            kvm = ds.key_value_metadata
        if len(self.model) == 0:
            assert out is None or len(out) == 0
        else:
            assert out is not None
            pd.testing.assert_frame_equal(out, self.model)
            assert stats["n_rows"].sum() == len(out)
            mins, maxs = stats["ordered_on_mins"].tolist(), stats["ordered_on_maxs"].tolist()
            assert all(a <= b for a, b in zip(mins, maxs, strict=True))
            assert all(a <= b for a, b in zip(maxs[:-1], mins[1:], strict=True))
        assert kvm == self.kvm


DatasetModel.TestCase.settings = settings(
    max_examples=int(os.environ.get("OUPS_MODEL_EXAMPLES", "500")),
    stateful_step_count=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_dataset_matches_model = DatasetModel.TestCase
