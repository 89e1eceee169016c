//! Producing the new row groups of one merge region (docs/dataset.md, "How new
//! rows are placed" and "Duplicates"): existing rows then new rows, stably
//! merged on the ordered key, stored rows replaced by the new rows they
//! duplicate, and split by row count or by period.

use std::collections::HashSet;

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_row::{RowConverter, SortField};

use crate::dataset::plan::Target;
use crate::dictionaries;
use crate::error::Result;

/// Rows of one side of a merge with their keys.
pub struct Side<'a> {
    pub batch: &'a RecordBatch,
    pub keys: &'a [u64],
}

/// A finished row group: its rows, as slices of one schema laid end to end
/// (written one after the other, never concatenated), and its key range.
pub struct Chunk {
    pub pieces: Vec<RecordBatch>,
    pub min: u64,
    pub max: u64,
}

impl Chunk {
    pub fn num_rows(&self) -> usize {
        self.pieces.iter().map(RecordBatch::num_rows).sum()
    }
}

/// Which columns define a duplicate; `None` means no deduplication.
pub type Subset<'a> = Option<&'a [usize]>;

/// Merged row order as (side, row) pairs: existing (side 0) before new (side 1)
/// on equal keys, which is what a stable sort of "existing then new" gives.
fn merge_order(existing: &[u64], new: &[u64]) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(existing.len() + new.len());
    let (mut i, mut j) = (0, 0);
    while i < existing.len() && j < new.len() {
        if existing[i] <= new[j] {
            out.push((0, i));
            i += 1;
        } else {
            out.push((1, j));
            j += 1;
        }
    }
    out.extend((i..existing.len()).map(|r| (0, r)));
    out.extend((j..new.len()).map(|r| (1, r)));
    out
}

/// The `duplicates_on` values of one side's rows, comparable across sides;
/// `None` when the ordered key alone defines duplicates.
fn subset_rows(
    sides: &[&Side],
    subset: &[usize],
    ordered_col: usize,
) -> Result<Option<Vec<arrow_row::Rows>>> {
    if subset.iter().all(|&c| c == ordered_col) {
        return Ok(None);
    }
    let fields = subset
        .iter()
        .map(|&c| SortField::new(sides[0].batch.column(c).data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields)?;
    let mut per_side = Vec::with_capacity(sides.len());
    for side in sides {
        let cols: Vec<ArrayRef> = subset
            .iter()
            .map(|&c| side.batch.column(c).clone())
            .collect();
        per_side.push(converter.convert_columns(&cols)?);
    }
    Ok(Some(per_side))
}

/// Runs of equal ordered keys in `order` that hold more than one row.
fn tie_runs(
    order: &[(usize, usize)],
    key_of: impl Fn(&(usize, usize)) -> u64,
) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let k = key_of(&order[start]);
        let mut end = start + 1;
        while end < order.len() && key_of(&order[end]) == k {
            end += 1;
        }
        if end - start > 1 {
            runs.push(start..end);
        }
        start = end;
    }
    runs
}

fn kept(order: Vec<(usize, usize)>, keep: Vec<bool>) -> Vec<(usize, usize)> {
    order
        .into_iter()
        .zip(keep)
        .filter_map(|(o, k)| k.then_some(o))
        .collect()
}

/// Drops duplicate rows among the rows of one batch, keeping the last of each
/// set. Duplicates always share their ordered key, so only runs of equal keys
/// are examined.
fn dedup_within(
    order: Vec<(usize, usize)>,
    side: &Side,
    subset: &[usize],
    ordered_col: usize,
) -> Result<Vec<(usize, usize)>> {
    let runs = tie_runs(&order, |o| side.keys[o.1]);
    if runs.is_empty() {
        return Ok(order);
    }
    let rows = subset_rows(&[side], subset, ordered_col)?;
    let mut keep = vec![true; order.len()];
    for run in runs {
        match &rows {
            None => keep[run.start..run.end - 1].fill(false),
            Some(rows) => {
                let mut seen = HashSet::new();
                for pos in run.rev() {
                    if !seen.insert(rows[0].row(order[pos].1)) {
                        keep[pos] = false;
                    }
                }
            }
        }
    }
    Ok(kept(order, keep))
}

/// In a merged order of stored (side 0) and new (side 1, already free of
/// duplicates) rows, drops the stored rows that a new row duplicates. Stored
/// rows are never compared with each other: which stored rows survive must
/// not depend on how they happen to be split into row groups.
fn drop_replaced(
    order: Vec<(usize, usize)>,
    sides: &[&Side; 2],
    subset: &[usize],
    ordered_col: usize,
) -> Result<Vec<(usize, usize)>> {
    let key_of = |o: &(usize, usize)| sides[o.0].keys[o.1];
    let runs: Vec<_> = tie_runs(&order, key_of)
        .into_iter()
        .filter(|r| {
            let sides_in = |s| order[r.clone()].iter().any(|o| o.0 == s);
            sides_in(0) && sides_in(1)
        })
        .collect();
    if runs.is_empty() {
        return Ok(order);
    }
    let rows = subset_rows(&[sides[0], sides[1]], subset, ordered_col)?;
    let mut keep = vec![true; order.len()];
    for run in runs {
        match &rows {
            None => {
                for pos in run {
                    keep[pos] = order[pos].0 == 1;
                }
            }
            Some(rows) => {
                let new: HashSet<_> = order[run.clone()]
                    .iter()
                    .filter(|o| o.0 == 1)
                    .map(|o| rows[1].row(o.1))
                    .collect();
                for pos in run {
                    let (s, r) = order[pos];
                    if s == 0 && new.contains(&rows[0].row(r)) {
                        keep[pos] = false;
                    }
                }
            }
        }
    }
    Ok(kept(order, keep))
}

/// Deduplicates one sorted batch on its own (the new rows before planning).
pub fn dedup_batch(
    side: &Side,
    subset: &[usize],
    ordered_col: usize,
) -> Result<Option<(RecordBatch, Vec<u64>)>> {
    // Duplicates share their ordered key: without equal keys there are none.
    if side.keys.windows(2).all(|w| w[0] != w[1]) {
        return Ok(None);
    }
    let order: Vec<(usize, usize)> = (0..side.keys.len()).map(|r| (0, r)).collect();
    let kept = dedup_within(order, side, subset, ordered_col)?;
    if kept.len() == side.keys.len() {
        return Ok(None);
    }
    let keys = kept.iter().map(|o| side.keys[o.1]).collect();
    Ok(Some((gather(&[side], &kept)?, keys)))
}

/// Rows of `sides` in `order`. Sorted merges are mostly long runs from one
/// side: those are copied as slices in one concat, which is far cheaper than
/// gathering row by row; finely interleaved orders use `interleave`.
fn gather(sides: &[&Side], order: &[(usize, usize)]) -> Result<RecordBatch> {
    let schema = sides[0].batch.schema();
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    for &(side, row) in order {
        match runs.last_mut() {
            Some((s, start, len)) if *s == side && *start + *len == row => *len += 1,
            _ => runs.push((side, row, 1)),
        }
    }
    if runs.len() * 32 <= order.len() {
        let slices: Vec<RecordBatch> = runs
            .iter()
            .map(|&(side, start, len)| sides[side].batch.slice(start, len))
            .collect();
        return Ok(arrow_select::concat::concat_batches(&schema, &slices)?);
    }
    let mut columns = Vec::with_capacity(schema.fields().len());
    for c in 0..schema.fields().len() {
        let arrays: Vec<&dyn Array> = sides.iter().map(|s| s.batch.column(c).as_ref()).collect();
        columns.push(dictionaries::interleave(&arrays, order)?);
    }
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// Merges `existing` and `new` and splits the result into row groups. With a
/// `subset`, `new` must already be free of duplicates ([`dedup_batch`]): a
/// stored row is dropped only when a new row has the same `duplicates_on`
/// values, and stored rows are never deduplicated among themselves.
pub fn merge_region(
    existing: Option<&Side>,
    new: Option<&Side>,
    subset: Subset,
    ordered_col: usize,
    target: &Target,
) -> Result<Vec<Chunk>> {
    let existing = existing.filter(|s| !s.keys.is_empty());
    let new = new.filter(|s| !s.keys.is_empty());
    let (batch, keys): (RecordBatch, Vec<u64>) = match (existing, new) {
        (Some(e), Some(n)) => {
            // One dictionary per categorical column for both sides.
            let (_, unified) = dictionaries::unify_batches(&[e.batch.clone(), n.batch.clone()])?;
            let (ue, un) = (
                Side {
                    batch: &unified[0],
                    keys: e.keys,
                },
                Side {
                    batch: &unified[1],
                    keys: n.keys,
                },
            );
            let sides = [&ue, &un];
            let key_of = |o: &(usize, usize)| sides[o.0].keys[o.1];
            let mut order = merge_order(e.keys, n.keys);
            if let Some(subset) = subset {
                order = drop_replaced(order, &sides, subset, ordered_col)?;
            }
            let keys = order.iter().map(key_of).collect();
            (gather(&sides, &order)?, keys)
        }
        // The common bulk write and coalescing: no copy at all, row groups are slices.
        (Some(only), None) | (None, Some(only)) => return Ok(split(only.batch, only.keys, target)),
        (None, None) => return Ok(Vec::new()),
    };
    Ok(split(&batch, &keys, target))
}

/// Cuts a sorted batch into row groups: fixed row counts, or one per period.
pub fn split(batch: &RecordBatch, keys: &[u64], target: &Target) -> Vec<Chunk> {
    split_bounds(keys, target)
        .into_iter()
        .map(|r| Chunk {
            pieces: vec![batch.slice(r.start, r.len())],
            min: keys[r.start],
            max: keys[r.end - 1],
        })
        .collect()
}

/// The row ranges of the row groups [`split`] cuts sorted `keys` into.
pub fn split_bounds(keys: &[u64], target: &Target) -> Vec<std::ops::Range<usize>> {
    split_bounds_n(keys.len(), target, keys)
}

/// [`split_bounds`] of `total` rows: `keys` (all of them) are looked at for
/// periods only.
pub(crate) fn split_bounds_n(
    total: usize,
    target: &Target,
    keys: &[u64],
) -> Vec<std::ops::Range<usize>> {
    let mut bounds = Vec::new();
    match target {
        Target::Rows(n) => {
            let n = (*n).max(1) as usize;
            let mut s = 0;
            while s < total {
                bounds.push(s..(s + n).min(total));
                s += n;
            }
        }
        Target::Periods(periods) => {
            let mut s = 0;
            while s < keys.len() {
                let p = periods.of_key(keys[s]);
                // Keys are sorted, so the period index never decreases.
                let len = keys[s..].partition_point(|&k| periods.of_key(k) == p);
                bounds.push(s..s + len);
                s += len;
            }
        }
    }
    bounds
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use arrow_array::{Int64Array, RecordBatch};
    use std::sync::Arc;

    pub(crate) fn batch(a: &[i64], b: &[i64]) -> RecordBatch {
        RecordBatch::try_from_iter([
            ("a", Arc::new(Int64Array::from(a.to_vec())) as ArrayRef),
            ("b", Arc::new(Int64Array::from(b.to_vec())) as ArrayRef),
        ])
        .unwrap()
    }

    pub(crate) fn col(chunk: &Chunk, c: usize) -> Vec<i64> {
        chunk
            .pieces
            .iter()
            .flat_map(|b| {
                b.column(c)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect()
    }

    #[test]
    fn stable_merge_puts_existing_first_and_dedup_keeps_last() {
        let e = batch(&[1, 2, 3], &[0, 0, 0]);
        let n = batch(&[3, 4], &[1, 1]);
        let (ek, nk) = ([1u64, 2, 3], [3u64, 4]);
        let chunks = merge_region(
            Some(&Side {
                batch: &e,
                keys: &ek,
            }),
            Some(&Side {
                batch: &n,
                keys: &nk,
            }),
            None,
            0,
            &Target::Rows(10),
        )
        .unwrap();
        assert_eq!(col(&chunks[0], 1), vec![0, 0, 0, 1, 1]);
        let chunks = merge_region(
            Some(&Side {
                batch: &e,
                keys: &ek,
            }),
            Some(&Side {
                batch: &n,
                keys: &nk,
            }),
            Some(&[0]),
            0,
            &Target::Rows(10),
        )
        .unwrap();
        assert_eq!(col(&chunks[0], 1), vec![0, 0, 1, 1]);
    }

    #[test]
    fn stored_rows_are_only_replaced_by_new_ones() {
        // Stored ties among themselves survive; the new row replaces only its key.
        let e = batch(&[1, 2, 2, 3], &[0, 0, 0, 0]);
        let n = batch(&[3], &[1]);
        let (ek, nk) = ([1u64, 2, 2, 3], [3u64]);
        let side = |b, k| Some(Side { batch: b, keys: k });
        let chunks = merge_region(
            side(&e, &ek).as_ref(),
            side(&n, &nk).as_ref(),
            Some(&[0]),
            0,
            &Target::Rows(10),
        )
        .unwrap();
        assert_eq!(col(&chunks[0], 0), vec![1, 2, 2, 3]);
        assert_eq!(col(&chunks[0], 1), vec![0, 0, 0, 1]);
        // On a subset, only the stored row with the same values goes.
        let e = batch(&[5, 5, 5], &[1, 2, 1]);
        let n = batch(&[5], &[1]);
        let (ek, nk) = ([5u64, 5, 5], [5u64]);
        let chunks = merge_region(
            side(&e, &ek).as_ref(),
            side(&n, &nk).as_ref(),
            Some(&[0, 1]),
            0,
            &Target::Rows(10),
        )
        .unwrap();
        assert_eq!(col(&chunks[0], 1), vec![2, 1]);
    }

    #[test]
    fn split_by_rows_leaves_remainder_last() {
        let b = batch(&[1, 2, 3, 4, 5], &[0; 5]);
        let chunks = split(&b, &[1, 2, 3, 4, 5], &Target::Rows(2));
        let sizes: Vec<usize> = chunks.iter().map(Chunk::num_rows).collect();
        assert_eq!(sizes, vec![2, 2, 1]);
    }
}
