//! Choosing file ids for a write.
//!
//! A write never reuses a name that the committed metadata refers to, so the
//! old state stays intact on disk until the metadata rename commits the new
//! one. Ids are spaced (`STEP` apart) so that row groups inserted in the middle
//! usually fit between their neighbours' ids; when they do not, every row group
//! gets a fresh id and kept files are hard-linked under their new name.

use std::collections::BTreeSet;

use crate::dataset::layout::ID_LIMIT;
use crate::error::{OupsError, Result};

pub const STEP: u64 = 1000;

/// Final ids for a sequence of row groups, `Some(id)` for kept row groups and
/// `None` for new ones. Returns ids and whether a kept file must be relinked.
pub fn assign(seq: &[Option<u64>], old: &BTreeSet<u64>) -> Result<(Vec<u64>, bool)> {
    if let Some(ids) = fill_gaps(seq, old) {
        return Ok((ids, false));
    }
    renumber(seq.len(), old).map(|ids| (ids, true))
}

fn fill_gaps(seq: &[Option<u64>], old: &BTreeSet<u64>) -> Option<Vec<u64>> {
    let mut ids = Vec::with_capacity(seq.len());
    let mut i = 0;
    while i < seq.len() {
        if let Some(id) = seq[i] {
            ids.push(id);
            i += 1;
            continue;
        }
        let end = seq[i..]
            .iter()
            .position(Option::is_some)
            .map_or(seq.len(), |p| i + p);
        let count = (end - i) as u64;
        let lo = ids.last().copied();
        let hi = seq.get(end).copied().flatten();
        let run = match (lo, hi) {
            (lo, None) => {
                // Above every old id, so nothing rewritten at the tail is reused.
                let floor = old.iter().next_back().copied().max(lo);
                let base = floor.map_or(0, |f| (f / STEP + 1) * STEP);
                let last = base.checked_add((count - 1) * STEP)?;
                (last < ID_LIMIT).then(|| (0..count).map(|k| base + k * STEP).collect())
            }
            (lo, Some(hi)) => between(lo, hi, count, old),
        }?;
        ids.extend(run);
        i = end;
    }
    Some(ids)
}

/// `count` increasing ids strictly inside (lo, hi), none of them in `old`.
fn between(lo: Option<u64>, hi: u64, count: u64, old: &BTreeSet<u64>) -> Option<Vec<u64>> {
    let start = lo.map_or(0, |l| l + 1);
    if hi <= start {
        return None;
    }
    let taken = old.range(start..hi).count() as u64;
    if hi - start - taken < count {
        return None;
    }
    let gap = (hi - start) / (count + 1);
    let spaced: Vec<u64> = (1..=count).map(|k| start + k * gap - 1).collect();
    let fits = gap > 0
        && spaced.windows(2).all(|w| w[0] < w[1])
        && spaced
            .iter()
            .all(|id| !old.contains(id) && *id < hi && *id >= start);
    if fits {
        return Some(spaced);
    }
    Some(
        (start..hi)
            .filter(|id| !old.contains(id))
            .take(count as usize)
            .collect(),
    )
}

fn renumber(n: usize, old: &BTreeSet<u64>) -> Result<Vec<u64>> {
    let n = n as u64;
    let span = n.saturating_sub(1) * STEP;
    let above = old.iter().next_back().map_or(0, |m| (m / STEP + 1) * STEP);
    let base = if above + span < ID_LIMIT {
        above
    } else if old.iter().next().is_none_or(|&m| span < m) {
        0
    } else {
        return Err(OupsError::InvalidArgument(format!(
            "the dataset has too many row groups ({n}) for its file id space; \
             rewrite it with a larger 'row_group_target_size'"
        )));
    };
    Ok((0..n).map(|k| base + k * STEP).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[u64]) -> BTreeSet<u64> {
        v.iter().copied().collect()
    }

    #[test]
    fn appends_step_after_the_last_id() {
        let (ids, relink) = assign(&[Some(0), Some(1000), None, None], &set(&[0, 1000])).unwrap();
        assert_eq!(ids, vec![0, 1000, 2000, 3000]);
        assert!(!relink);
    }

    #[test]
    fn rewritten_tail_never_reuses_ids() {
        let (ids, _) = assign(&[Some(0), None], &set(&[0, 1000])).unwrap();
        assert_eq!(ids, vec![0, 2000]);
    }

    #[test]
    fn inserts_fit_between_neighbours() {
        let (ids, relink) = assign(&[Some(0), None, Some(1000)], &set(&[0, 1000])).unwrap();
        assert!(!relink);
        assert!(ids[0] < ids[1] && ids[1] < ids[2]);
    }

    #[test]
    fn full_gaps_force_a_renumbering() {
        let (ids, relink) = assign(&[Some(0), None, Some(1)], &set(&[0, 1])).unwrap();
        assert!(relink);
        assert_eq!(ids, vec![1000, 2000, 3000]);
    }

    #[test]
    fn new_ids_avoid_replaced_ones_in_the_middle() {
        let old = set(&[0, 1, 2, 3]);
        let (ids, relink) = assign(&[Some(0), None, None, Some(3)], &old).unwrap();
        assert!(relink || (ids[1] != 1 && ids[1] != 2 && ids[2] != 1 && ids[2] != 2));
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }
}
