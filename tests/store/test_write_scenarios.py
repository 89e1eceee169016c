"""The worked merge scenarios of docs/dataset.md, through the public API.

Initial row groups are created by successive appends with a huge target (a
new value never falls inside the previous row group, so each append is one
row group). Each step is then a ``write`` checked row group by row group.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import oups
from oups import OrderedParquetDataset, write
from tests.conftest import rg_values

D1, D2, D3 = "2024-01-01", "2024-01-02", "2024-01-03"


def T(*values: str) -> list[pd.Timestamp]:
    out = []
    for v in values:
        v = v.replace("D1", D1).replace("D2", D2).replace("D3", D3)
        out.append(pd.Timestamp(v))
    return out


def frame(a, **others) -> pd.DataFrame:
    data = {"a": a}
    data.update(others)
    return pd.DataFrame(data)


def build(path, initial, others=None):
    """Write each initial row group as its own append."""
    for i, rg in enumerate(initial):
        cols = {k: v[i] for k, v in (others or {}).items()}
        write(path, ordered_on="a", df=frame(rg, **cols), row_group_target_size=10**9)


# (id, initial rgs, initial other columns per rg, steps)
# step = (write kwargs, expected rgs of 'a', expected full columns or {})
SCENARIOS = [
    (
        "int_new_dataset_split",
        [],
        None,
        [
            (
                dict(df=frame([1, 2, 3, 4, 5], b=[10, 20, 30, 40, 50]), row_group_target_size=2),
                [[1, 2], [3, 4], [5]],
                {"b": [10, 20, 30, 40, 50]},
            )
        ],
    ),
    (
        "int_append_no_coalescing",
        [[0, 1, 2, 3], [4, 5]],
        None,
        [(dict(df=frame([6]), row_group_target_size=4), [[0, 1, 2, 3], [4, 5], [6]], {})],
    ),
    (
        "int_append_coalescing_max1",
        [[0, 1, 2, 3], [4, 5]],
        None,
        [
            (
                dict(df=frame([6]), row_group_target_size=4, max_n_off_target_rgs=1),
                [[0, 1, 2, 3], [4, 5, 6]],
                {},
            )
        ],
    ),
    (
        "int_append_max2_not_triggered",
        [[0, 1, 2, 3], [4, 5]],
        None,
        [
            (
                dict(df=frame([6]), row_group_target_size=4, max_n_off_target_rgs=2),
                [[0, 1, 2, 3], [4, 5], [6]],
                {},
            )
        ],
    ),
    (
        "int_append_max2_triggered_by_size",
        [[0, 1, 2, 3], [4, 5]],
        None,
        [
            (
                dict(df=frame([6, 7]), row_group_target_size=4, max_n_off_target_rgs=2),
                [[0, 1, 2, 3], [4, 5, 6, 7]],
                {},
            )
        ],
    ),
    (
        "int_append_large_df_max1",
        [[0, 1, 2, 3], [4, 5]],
        None,
        [
            (
                dict(
                    df=frame([6, 7, 8, 9, 10, 11]), row_group_target_size=4, max_n_off_target_rgs=1
                ),
                [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]],
                {},
            )
        ],
    ),
    (
        "int_append_large_df_no_max",
        [[0, 1, 2, 3], [4, 5]],
        None,
        [
            (
                dict(df=frame([6, 7, 8, 9, 10, 11]), row_group_target_size=4),
                [[0, 1, 2, 3], [4, 5], [6, 7, 8, 9], [10, 11]],
                {},
            )
        ],
    ),
    (
        "int_max1_successive_small_appends",
        [[0, 1, 2, 3]],
        None,
        [
            (
                dict(df=frame([4]), row_group_target_size=4, max_n_off_target_rgs=1),
                [[0, 1, 2, 3], [4]],
                {},
            ),
            (
                dict(df=frame([5]), row_group_target_size=4, max_n_off_target_rgs=1),
                [[0, 1, 2, 3], [4, 5]],
                {},
            ),
            (
                dict(df=frame([6]), row_group_target_size=4, max_n_off_target_rgs=1),
                [[0, 1, 2, 3], [4, 5, 6]],
                {},
            ),
            (
                dict(df=frame([7]), row_group_target_size=4, max_n_off_target_rgs=1),
                [[0, 1, 2, 3], [4, 5, 6], [7]],
                {},
            ),
        ],
    ),
    (
        "int_max1_off_target_tail_not_completed",
        [list(range(10)), [10]],
        None,
        [
            (
                dict(
                    df=frame(list(range(11, 19))), row_group_target_size=10, max_n_off_target_rgs=1
                ),
                [list(range(10)), [10], list(range(11, 19))],
                {},
            )
        ],
    ),
    (
        "int_gh_coalescing_multiple_rgs",
        [[0, 1, 2, 3], [4], [5, 6, 7, 8], [9]],
        None,
        [
            (
                dict(df=frame([20]), row_group_target_size=4, max_n_off_target_rgs=2),
                [[0, 1, 2, 3], [4], [5, 6, 7, 8], [9], [20]],
                {},
            ),
            (
                dict(df=frame([20]), row_group_target_size=4, max_n_off_target_rgs=2),
                [[0, 1, 2, 3], [4], [5, 6, 7, 8], [9, 20, 20]],
                {},
            ),
        ],
    ),
    (
        "int_insert_middle_no_overlap",
        [[0, 1, 2], [10, 11, 12], [20, 21, 22]],
        None,
        [
            (
                dict(df=frame([5, 6]), row_group_target_size=3),
                [[0, 1, 2], [5, 6], [10, 11, 12], [20, 21, 22]],
                {},
            )
        ],
    ),
    (
        "int_insert_overlapping_one_rg",
        [[0, 2, 4], [10, 12, 14]],
        {"b": [[0] * 3, [0] * 3]},
        [
            (
                dict(df=frame([3], b=[1]), row_group_target_size=3),
                [[0, 2, 3], [4], [10, 12, 14]],
                {"b": [0, 0, 1, 0, 0, 0, 0]},
            )
        ],
    ),
    (
        "int_insert_spanning_two_rgs",
        [[0, 2, 4], [6, 8, 10], [20, 22, 24]],
        None,
        [
            (
                dict(df=frame([3, 7]), row_group_target_size=3),
                [[0, 2, 3], [4, 6, 7], [8, 10], [20, 22, 24]],
                {},
            )
        ],
    ),
    (
        "int_insert_two_separate_regions",
        [[0, 2, 4], [10, 12, 14], [20, 22, 24]],
        None,
        [
            (
                dict(df=frame([3, 21]), row_group_target_size=3),
                [[0, 2, 3], [4], [10, 12, 14], [20, 21, 22], [24]],
                {},
            )
        ],
    ),
    (
        "int_middle_off_target_rgs_coalesced_with_insert",
        [[0, 1, 2, 3], [4], [5], [10, 11, 12, 13]],
        None,
        [
            (
                dict(df=frame([7]), row_group_target_size=4, max_n_off_target_rgs=1),
                [[0, 1, 2, 3], [4, 5, 7], [10, 11, 12, 13]],
                {},
            )
        ],
    ),
    (
        "int_oversized_rg_resplit_on_overlap",
        [list(range(10))],
        {"b": [[0] * 10]},
        [
            (
                dict(df=frame([5], b=[1]), row_group_target_size=4),
                [[0, 1, 2, 3], [4, 5, 5, 6], [7, 8, 9]],
                {"b": [0] * 6 + [1] + [0] * 4},
            )
        ],
    ),
    (
        "int_oversized_tail_rg_coalesced_max1",
        [list(range(10))],
        None,
        [
            (
                dict(df=frame([10]), row_group_target_size=4, max_n_off_target_rgs=1),
                [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10]],
                {},
            )
        ],
    ),
    (
        "tie_at_last_rg_max_no_dedup",
        [[1, 2, 3]],
        {"b": [[0, 0, 0]]},
        [
            (
                dict(df=frame([3, 3], b=[1, 2]), row_group_target_size=10),
                [[1, 2, 3], [3, 3]],
                {"b": [0, 0, 0, 1, 2]},
            )
        ],
    ),
    (
        "tie_inside_rg_no_dedup",
        [[1, 3, 5]],
        {"b": [[0, 0, 0]]},
        [
            (
                dict(df=frame([3], b=[1]), row_group_target_size=10),
                [[1, 3, 3, 5]],
                {"b": [0, 0, 1, 0]},
            )
        ],
    ),
    (
        "tie_at_next_rg_min_no_dedup",
        [[1, 2], [5, 6]],
        {"b": [[0, 0], [0, 0]]},
        [
            (
                dict(df=frame([5], b=[1]), row_group_target_size=10),
                [[1, 2], [5, 5, 6]],
                {"b": [0, 0, 0, 1, 0]},
            )
        ],
    ),
    (
        "tie_shared_boundary_no_dedup",
        [[1, 5], [5, 9]],
        {"b": [[0, 0], [0, 0]]},
        [
            (
                dict(df=frame([5], b=[1]), row_group_target_size=10),
                [[1, 5], [5, 5, 9]],
                {"b": [0, 0, 0, 1, 0]},
            )
        ],
    ),
    (
        "tie_off_target_tail_merge_order",
        [[1, 2]],
        {"b": [[0, 0]]},
        [
            (
                dict(df=frame([2, 3], b=[1, 1]), row_group_target_size=4, max_n_off_target_rgs=1),
                [[1, 2, 2, 3]],
                {"b": [0, 0, 1, 1]},
            )
        ],
    ),
    (
        "equal_values_span_rgs_new_dataset",
        [],
        None,
        [
            (
                dict(df=frame([1, 1, 1], b=[1, 2, 3]), row_group_target_size=2),
                [[1, 1], [1]],
                {"b": [1, 2, 3]},
            )
        ],
    ),
    (
        "dedup_on_ordered_on_overlap_tail",
        [[1, 2, 3]],
        {"b": [[0, 0, 0]]},
        [
            (
                dict(df=frame([3, 4], b=[1, 1]), row_group_target_size=10, duplicates_on="a"),
                [[1, 2, 3, 4]],
                {"b": [0, 0, 1, 1]},
            )
        ],
    ),
    (
        "dedup_shared_boundary_merges_both_rgs",
        [[1, 5], [5, 9]],
        {"b": [[0, 0], [0, 0]]},
        [
            (
                dict(df=frame([5], b=[1]), row_group_target_size=10, duplicates_on="a"),
                [[1, 5, 9]],
                {"b": [0, 1, 0]},
            )
        ],
    ),
    (
        "dedup_other_column_adds_ordered_on",
        [[1, 2, 3]],
        {"b": [[10, 20, 30]], "c": [[0, 0, 0]]},
        [
            (
                dict(
                    df=frame([3, 3, 4], b=[30, 31, 30], c=[1, 1, 1]),
                    row_group_target_size=10,
                    duplicates_on="b",
                ),
                [[1, 2, 3, 3, 4]],
                {"b": [10, 20, 30, 31, 30], "c": [0, 0, 1, 1, 1]},
            )
        ],
    ),
    (
        "dedup_all_columns_empty_list",
        [[1, 2, 3]],
        {"b": [[0, 0, 0]]},
        [
            (
                dict(df=frame([2, 3], b=[0, 1]), row_group_target_size=10, duplicates_on=[]),
                [[1, 2, 3, 3]],
                {"b": [0, 0, 0, 1]},
            )
        ],
    ),
    (
        "dedup_within_new_df_new_dataset",
        [],
        None,
        [
            (
                dict(
                    df=frame([1, 1, 2, 2, 3], b=[1, 2, 3, 4, 5]),
                    row_group_target_size=2,
                    duplicates_on="a",
                ),
                [[1, 2], [3]],
                {"b": [2, 4, 5]},
            )
        ],
    ),
    (
        "dedup_within_new_df_appended",
        [[0, 1]],
        {"b": [[0, 0]]},
        [
            (
                dict(df=frame([5, 5, 6], b=[1, 2, 3]), row_group_target_size=10, duplicates_on="a"),
                [[0, 1], [5, 6]],
                {"b": [0, 0, 2, 3]},
            )
        ],
    ),
    (
        "dedup_existing_dups_untouched_without_overlap",
        [[1, 1, 2]],
        {"b": [[5, 5, 0]]},
        [
            (
                dict(df=frame([10], b=[0]), row_group_target_size=10, duplicates_on=[]),
                [[1, 1, 2], [10]],
                {"b": [5, 5, 0, 0]},
            )
        ],
    ),
    (
        # Stored rows duplicating each other are kept: only a new row with
        # the same values replaces a stored one (unlike the pure-Python oups,
        # whose result depended on the row-group layout).
        "dedup_existing_dups_kept_when_overlapped",
        [[1, 1, 2]],
        {"b": [[5, 5, 0]]},
        [
            (
                dict(df=frame([2], b=[0]), row_group_target_size=10, duplicates_on=[]),
                [[1, 1, 2]],
                {"b": [5, 5, 0]},
            )
        ],
    ),
    (
        "dedup_off_target_neighbour_not_merged",
        [[0, 1, 2, 3, 4], [5], [6]],
        {"b": [[0] * 5, [0], [0]]},
        [
            (
                dict(
                    df=frame([6], b=[1]),
                    row_group_target_size=5,
                    max_n_off_target_rgs=4,
                    duplicates_on="a",
                ),
                [[0, 1, 2, 3, 4], [5], [6]],
                {"b": [0, 0, 0, 0, 0, 0, 1]},
            )
        ],
    ),
    (
        "df_none_no_max_is_noop",
        [[0, 1, 2, 3], [4], [5]],
        None,
        [(dict(df=None, row_group_target_size=4), [[0, 1, 2, 3], [4], [5]], {})],
    ),
    (
        "df_none_coalesce_everywhere",
        [[0, 1, 2, 3], [4], [5], [6, 7, 8, 9], [10]],
        None,
        [
            (
                dict(df=None, row_group_target_size=4, max_n_off_target_rgs=1),
                [[0, 1, 2, 3], [4, 5], [6, 7, 8, 9], [10]],
                {},
            )
        ],
    ),
    (
        "empty_df_existing_dataset_noop",
        [[1, 2], [3]],
        None,
        [
            (
                dict(df=frame(pd.Series([], dtype="int64")), row_group_target_size=3),
                [[1, 2], [3]],
                {},
            )
        ],
    ),
    ("opd_free_multi_day_split", [], None, []),
]

TIME_SCENARIOS = [
    (
        "time_2h_new_dataset",
        [],
        None,
        [
            (
                dict(
                    df=frame(T("D1 08:00", "D1 08:30", "D1 09:59", "D1 10:00", "D1 13:00")),
                    row_group_target_size="2h",
                ),
                [T("D1 08:00", "D1 08:30", "D1 09:59"), T("D1 10:00"), T("D1 13:00")],
                {},
            )
        ],
    ),
    (
        "time_1D_append_same_day_no_max",
        [T("D1 10:00", "D1 11:00")],
        None,
        [
            (
                dict(df=frame(T("D1 15:00")), row_group_target_size="1D"),
                [T("D1 10:00", "D1 11:00"), T("D1 15:00")],
                {},
            )
        ],
    ),
    (
        "time_1D_append_same_day_max1",
        [T("D1 10:00", "D1 11:00")],
        None,
        [
            (
                dict(df=frame(T("D1 15:00")), row_group_target_size="1D", max_n_off_target_rgs=1),
                [T("D1 10:00", "D1 11:00", "D1 15:00")],
                {},
            )
        ],
    ),
    (
        "time_1D_append_same_day_max2",
        [T("D1 10:00", "D1 11:00")],
        None,
        [
            (
                dict(df=frame(T("D1 15:00")), row_group_target_size="1D", max_n_off_target_rgs=2),
                [T("D1 10:00", "D1 11:00"), T("D1 15:00")],
                {},
            )
        ],
    ),
    (
        "time_1D_append_next_day_max1",
        [T("D1 10:00")],
        None,
        [
            (
                dict(df=frame(T("D2 10:00")), row_group_target_size="1D", max_n_off_target_rgs=1),
                [T("D1 10:00"), T("D2 10:00")],
                {},
            )
        ],
    ),
    (
        "time_1D_append_spanning_days_no_max",
        [T("D1 10:00")],
        None,
        [
            (
                dict(df=frame(T("D1 12:00", "D2 09:00")), row_group_target_size="1D"),
                [T("D1 10:00"), T("D1 12:00"), T("D2 09:00")],
                {},
            )
        ],
    ),
    (
        "time_1D_append_spanning_days_max3",
        [T("D1 10:00")],
        None,
        [
            (
                dict(
                    df=frame(T("D1 12:00", "D2 09:00")),
                    row_group_target_size="1D",
                    max_n_off_target_rgs=3,
                ),
                [T("D1 10:00", "D1 12:00"), T("D2 09:00")],
                {},
            )
        ],
    ),
    (
        "time_MS_append_same_month",
        [],
        None,
        [
            (
                dict(
                    df=frame(T("2024-01-05", "2024-01-20", "2024-02-03")),
                    row_group_target_size="MS",
                ),
                [T("2024-01-05", "2024-01-20"), T("2024-02-03")],
                {},
            ),
            (
                dict(df=frame(T("2024-02-10")), row_group_target_size="MS"),
                [T("2024-01-05", "2024-01-20"), T("2024-02-03"), T("2024-02-10")],
                {},
            ),
            (
                dict(df=frame(T("2024-02-20")), row_group_target_size="MS", max_n_off_target_rgs=1),
                [T("2024-01-05", "2024-01-20"), T("2024-02-03", "2024-02-10", "2024-02-20")],
                {},
            ),
        ],
    ),
    (
        "time_1D_insert_between_rgs",
        [T("D1 10:00"), T("D3 10:00")],
        None,
        [
            (
                dict(df=frame(T("D1 12:00", "D2 10:00")), row_group_target_size="1D"),
                [T("D1 10:00"), T("D1 12:00"), T("D2 10:00"), T("D3 10:00")],
                {},
            )
        ],
    ),
    (
        "time_1D_overlap_inside_rg",
        [T("D1 08:00", "D1 16:00"), T("D2 08:00")],
        {"b": [[0, 0], [0]]},
        [
            (
                dict(df=frame(T("D1 12:00"), b=[1]), row_group_target_size="1D"),
                [T("D1 08:00", "D1 12:00", "D1 16:00"), T("D2 08:00")],
                {"b": [0, 1, 0, 0]},
            )
        ],
    ),
    (
        "time_df_none_resize_2h",
        [T("D1 10:00"), T("D1 11:00"), T("D1 12:00"), T("D1 13:00")],
        None,
        [
            (
                dict(df=None, row_group_target_size="2h", max_n_off_target_rgs=1),
                [T("D1 10:00", "D1 11:00"), T("D1 12:00", "D1 13:00")],
                {},
            )
        ],
    ),
    (
        "time_df_none_split_multi_day_rg",
        [T("D1 10:00", "D2 10:00")],
        None,
        [
            (
                dict(df=None, row_group_target_size="1D", max_n_off_target_rgs=5),
                [T("D1 10:00"), T("D2 10:00")],
                {},
            )
        ],
    ),
    (
        "time_2h_dedup_upstream",
        [],
        None,
        [
            (
                dict(
                    df=frame(T("D1 10:00", "D1 11:00", "D1 12:00", "D1 13:00"), v=[1, 2, 3, 4]),
                    row_group_target_size="2h",
                    duplicates_on="a",
                ),
                [T("D1 10:00", "D1 11:00"), T("D1 12:00", "D1 13:00")],
                {},
            ),
            (
                dict(
                    df=frame(
                        T("D1 08:00", "D1 09:00", "D1 09:30", "D1 14:00", "D1 15:00"),
                        v=[5, 6, 7, 8, 9],
                    ),
                    row_group_target_size="2h",
                    duplicates_on="a",
                ),
                [
                    T("D1 08:00", "D1 09:00", "D1 09:30"),
                    T("D1 10:00", "D1 11:00"),
                    T("D1 12:00", "D1 13:00"),
                    T("D1 14:00", "D1 15:00"),
                ],
                {},
            ),
            (
                dict(
                    df=frame(T("D1 14:30", "D1 15:00"), v=[10, 11]),
                    row_group_target_size="2h",
                    duplicates_on="a",
                ),
                [
                    T("D1 08:00", "D1 09:00", "D1 09:30"),
                    T("D1 10:00", "D1 11:00"),
                    T("D1 12:00", "D1 13:00"),
                    T("D1 14:00", "D1 14:30", "D1 15:00"),
                ],
                {"v": [5, 6, 7, 1, 2, 3, 4, 8, 10, 11]},
            ),
        ],
    ),
    (
        "time_dedup_inner_dups_before_overlap",
        [T("D1 08:00"), T("D3 08:00", "D3 12:00")],
        {"b": [[0], [0, 0]]},
        [
            (
                dict(
                    df=frame(T("D2 08:00", "D2 08:00", "D2 08:00", "D3 12:00"), b=[1, 2, 3, 4]),
                    row_group_target_size="1D",
                    duplicates_on="a",
                ),
                [T("D1 08:00"), T("D2 08:00"), T("D3 08:00", "D3 12:00")],
                {"b": [0, 3, 0, 4]},
            )
        ],
    ),
    (
        "time_3D_epoch_aligned",
        [],
        None,
        [
            (
                dict(
                    df=frame(T("2023-12-31 05:00", "D2 23:00", "D3 00:00", "2024-01-05 10:00")),
                    row_group_target_size="3D",
                ),
                [T("2023-12-31 05:00", "D2 23:00"), T("D3 00:00", "2024-01-05 10:00")],
                {},
            )
        ],
    ),
    (
        "time_W_sunday_anchored",
        [],
        None,
        [
            (
                dict(
                    df=frame(
                        T("D1 09:00", "2024-01-06 23:00", "2024-01-07 00:00", "2024-01-13 12:00")
                    ),
                    row_group_target_size="W",
                ),
                [T("D1 09:00", "2024-01-06 23:00"), T("2024-01-07 00:00", "2024-01-13 12:00")],
                {},
            )
        ],
    ),
]

ALL = [s for s in SCENARIOS + TIME_SCENARIOS if s[3]]


@pytest.mark.parametrize("name,initial,others,steps", ALL, ids=[s[0] for s in ALL])
def test_write_scenario(location, name, initial, others, steps):
    build(location, initial, others)
    for kwargs, expected_rgs, expected_cols in steps:
        write(location, ordered_on="a", **kwargs)
        ds = OrderedParquetDataset(location)
        assert rg_values(ds) == expected_rgs
        full = ds.to_pandas()
        for col, values in expected_cols.items():
            assert full[col].tolist() == values
        stats = ds.row_group_stats
        assert stats["n_rows"].tolist() == [len(rg) for rg in expected_rgs]
        assert stats["ordered_on_mins"].tolist() == [rg[0] for rg in expected_rgs]
        assert stats["ordered_on_maxs"].tolist() == [rg[-1] for rg in expected_rgs]
        ids = stats["file_ids"].tolist()
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        if isinstance(location, Path):
            # The directory is exactly the latest version, for other readers.
            files = sorted(p.name for p in location.iterdir()) if location.exists() else []
            assert files == [f"file_{i:010d}.parquet" for i in ids]
            assert (location.parent / "ds_opdmd").exists()
        ds.close()


def test_key_value_metadata_add_update_remove(tmp_ds):
    write(
        tmp_ds,
        ordered_on="a",
        df=frame([1]),
        row_group_target_size=10,
        key_value_metadata={"k1": "v1", "k2": "v2"},
    )
    assert OrderedParquetDataset(tmp_ds).key_value_metadata == {"k1": "v1", "k2": "v2"}
    write(
        tmp_ds,
        ordered_on="a",
        df=frame([2]),
        row_group_target_size=10,
        key_value_metadata={"k1": "x", "k2": None, "k3": "", "k4": None},
    )
    ds = OrderedParquetDataset(tmp_ds)
    # Unlike the reference, a new key with a falsy value other than None is stored.
    assert ds.key_value_metadata == {"k1": "x", "k3": ""}
    assert rg_values(ds) == [[1], [2]]
    ds.close()
    write(tmp_ds, ordered_on="a", df=None, key_value_metadata={"k5": "y"})
    ds = OrderedParquetDataset(tmp_ds)
    assert ds.key_value_metadata == {"k1": "x", "k3": "", "k5": "y"}
    assert rg_values(ds) == [[1], [2]]


def test_df_none_on_new_dataset_writes_metadata_only(tmp_ds):
    write(tmp_ds, ordered_on="a", df=None, key_value_metadata={"k": "v"})
    ds = OrderedParquetDataset(tmp_ds)
    assert not ds.is_newly_initialized
    assert len(ds) == 0 and ds.to_pandas() is None
    assert ds.key_value_metadata == {"k": "v"}
    assert ds.ordered_on == "a"
    assert not tmp_ds.exists()


def test_empty_frame_on_empty_dataset_acts_like_none(tmp_ds):
    # Bug B4 of the reference: this raised. It is now a real no-op, like
    # df=None without metadata: nothing is created on disk.
    for target in (3, "1D"):
        empty = pd.DataFrame({"a": pd.Series([], dtype="datetime64[ns]")})
        write(tmp_ds, ordered_on="a", df=empty, row_group_target_size=target)
        ds = OrderedParquetDataset(tmp_ds)
        assert len(ds) == 0 and ds.to_pandas() is None and ds.is_newly_initialized
        assert not tmp_ds.parent.exists() or list(tmp_ds.parent.iterdir()) == []


def test_opd_method_write(tmp_ds):
    ds = OrderedParquetDataset(tmp_ds)
    ds.write(df=frame([1, 2, 3, 4, 5]), ordered_on="a", row_group_target_size=4)
    assert rg_values(ds) == [[1, 2, 3, 4], [5]]
    ds.write(df=frame([6]), row_group_target_size=4, max_n_off_target_rgs=1)
    assert rg_values(ds) == [[1, 2, 3, 4], [5, 6]]


def test_multiindex_columns_tuple_ordered_on(tmp_ds):
    cols = pd.MultiIndex.from_tuples([("x", "a"), ("x", "b")], names=["l0", "l1"])
    df = pd.DataFrame([[1, 10], [2, 20], [3, 30]], columns=cols)
    write(tmp_ds, ordered_on=("x", "a"), df=df, row_group_target_size=2)
    df2 = pd.DataFrame([[3, 31], [4, 40]], columns=cols)
    write(tmp_ds, ordered_on=("x", "a"), df=df2, row_group_target_size=2, duplicates_on=("x", "a"))
    ds = OrderedParquetDataset(tmp_ds)
    assert ds.ordered_on == ("x", "a")
    out = ds.to_pandas()
    assert isinstance(out.columns, pd.MultiIndex)
    assert list(out.columns) == [("x", "a"), ("x", "b")]
    assert out[("x", "b")].tolist() == [10, 20, 31, 40]
    assert [len(ds[i].to_pandas()) for i in range(len(ds))] == [2, 2]


def test_max_n_zero_means_one(tmp_ds):
    # 0 is accepted and means the same as 1 (the reference raised).
    build(tmp_ds, [[0, 1, 2, 3], [4, 5]])
    write(tmp_ds, ordered_on="a", df=frame([6]), row_group_target_size=4, max_n_off_target_rgs=0)
    assert rg_values(OrderedParquetDataset(tmp_ds)) == [[0, 1, 2, 3], [4, 5, 6]]


def test_numpy_integer_target_is_a_row_count(tmp_ds):
    import numpy as np

    write(tmp_ds, ordered_on="a", df=frame([1, 2, 3]), row_group_target_size=np.int64(2))
    assert rg_values(OrderedParquetDataset(tmp_ds)) == [[1, 2], [3]]


def test_public_surface():
    for name in ("OrderedParquetDataset", "write", "check_cmidx", "conform_cmidx", "exceptions"):
        assert hasattr(oups, name)
