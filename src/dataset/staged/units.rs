//! Planning a staged write: which partitions go together, and which
//! existing row groups each group of them may rewrite.

use super::Unit;
use crate::dataset::state::RowGroup;
use crate::error::{OupsError, Result};

/// Groups partitions (inclusive key ranges `lows[p]..=highs[p]`, in order)
/// into units. Partitions that share a value, or that a row group overlaps,
/// are joined; a row
/// group overlapping none goes with the next partition (so that the
/// coalescing of small row groups before new data sees them), or with the
/// last one.
pub fn plan_units(rgs: &[RowGroup], lows: &[u64], highs: &[u64]) -> Result<Vec<Unit>> {
    let n = lows.len();
    if n == 0 || highs.len() != n {
        return Err(OupsError::InvalidArgument(
            "a staged write needs one low and one high bound per partition, and a partition".into(),
        ));
    }
    for p in 0..n {
        if lows[p] > highs[p] {
            return Err(OupsError::Unsorted(format!(
                "partition {p} has a lower bound above its upper bound: the divisions must \
                 increase"
            )));
        }
        if p > 0 && highs[p - 1] > lows[p] {
            return Err(OupsError::Unsorted(format!(
                "partitions {} and {p} overlap: each partition's values must lie below the \
                 next one's (sort the frame, e.g. with set_index)",
                p - 1
            )));
        }
    }
    // Partitions that share a value are written together.
    let mut joined: Vec<bool> = (0..n).map(|p| p > 0 && highs[p - 1] == lows[p]).collect();
    let mut owner = Vec::with_capacity(rgs.len());
    for rg in rgs {
        let first = highs.partition_point(|&h| h < rg.min);
        let last = lows.partition_point(|&l| l <= rg.max);
        for flag in joined.iter_mut().take(last).skip(first + 1) {
            *flag = true;
        }
        owner.push(first.min(n - 1));
    }
    let mut units: Vec<Unit> = Vec::new();
    let mut unit_of = vec![0usize; n];
    for p in 0..n {
        if p > 0 && joined[p] {
            units.last_mut().expect("a unit").parts.end = p + 1;
        } else {
            units.push(Unit {
                parts: p..p + 1,
                rgs: 0..0,
            });
        }
        unit_of[p] = units.len() - 1;
    }
    // Owners never decrease along the row groups: each unit's are a stretch.
    let mut start = 0;
    for (u, unit) in units.iter_mut().enumerate() {
        let end = start
            + owner[start..]
                .iter()
                .take_while(|&&o| unit_of[o] == u)
                .count();
        unit.rgs = start..end;
        start = end;
    }
    debug_assert_eq!(start, rgs.len());
    Ok(units)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::staged::Unit;

    fn rg(min: u64, max: u64) -> RowGroup {
        RowGroup {
            file_id: min,
            n_rows: 1,
            min,
            max,
        }
    }

    #[test]
    fn units_join_partitions_that_share_a_row_group() {
        // Partitions [0,9] [10,19] [20,29]; a row group 8..12 joins the first two.
        let rgs = [rg(1, 2), rg(8, 12), rg(14, 15), rg(21, 22), rg(40, 41)];
        let units = plan_units(&rgs, &[0, 10, 20], &[9, 19, 29]).unwrap();
        assert_eq!(
            units,
            vec![
                Unit {
                    parts: 0..2,
                    rgs: 0..3
                },
                Unit {
                    parts: 2..3,
                    rgs: 3..5
                }
            ]
        );
    }

    #[test]
    fn row_groups_between_partitions_go_with_the_next() {
        let rgs = [rg(1, 2), rg(12, 13), rg(50, 60)];
        let units = plan_units(&rgs, &[5, 20], &[9, 30]).unwrap();
        assert_eq!(units[0].rgs, 0..1);
        assert_eq!(units[1].rgs, 1..3);
    }

    #[test]
    fn overlapping_partitions_are_refused() {
        let err = plan_units(&[], &[0, 5], &[6, 9]).unwrap_err();
        assert!(matches!(err, OupsError::Unsorted(_)));
        // Touching (a value at both ends) joins instead.
        assert_eq!(plan_units(&[], &[0, 6], &[6, 9]).unwrap().len(), 1);
        assert!(plan_units(&[], &[3], &[2]).is_err());
        assert!(plan_units(&[], &[], &[]).is_err());
    }
}
