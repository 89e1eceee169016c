//! Producing the new row groups of one merge region (specification §3.5):
//! existing rows then new rows, stably merged on the ordered key, duplicates
//! dropped keeping the last, and split by row count or by period.

use std::collections::HashSet;

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_row::{RowConverter, SortField};
use arrow_select::interleave::interleave;

use crate::dataset::plan::Target;
use crate::error::Result;

/// Rows of one side of a merge with their keys.
pub struct Side<'a> {
    pub batch: &'a RecordBatch,
    pub keys: &'a [u64],
}

/// A finished row group: its rows and its key range.
pub struct Chunk {
    pub batch: RecordBatch,
    pub min: u64,
    pub max: u64,
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

/// Drops duplicate rows in `order`, keeping the last of each set. Duplicates
/// always share their ordered key, so only runs of equal keys are examined.
fn drop_duplicates(
    order: Vec<(usize, usize)>,
    sides: &[&Side],
    key_of: impl Fn(&(usize, usize)) -> u64,
    subset: &[usize],
    ordered_col: usize,
) -> Result<Vec<(usize, usize)>> {
    let has_ties = order.windows(2).any(|w| key_of(&w[0]) == key_of(&w[1]));
    if !has_ties {
        return Ok(order);
    }
    let key_only = subset.iter().all(|&c| c == ordered_col);
    let rows = if key_only {
        None
    } else {
        let fields = subset
            .iter()
            .map(|&c| SortField::new(sides[0].batch.column(c).data_type().clone()))
            .collect();
        let converter = RowConverter::new(fields)?;
        let mut per_side = Vec::new();
        for side in sides {
            let cols: Vec<ArrayRef> = subset
                .iter()
                .map(|&c| side.batch.column(c).clone())
                .collect();
            per_side.push(converter.convert_columns(&cols)?);
        }
        Some(per_side)
    };
    let mut keep = vec![true; order.len()];
    let mut start = 0;
    while start < order.len() {
        let k = key_of(&order[start]);
        let mut end = start + 1;
        while end < order.len() && key_of(&order[end]) == k {
            end += 1;
        }
        if end - start > 1 {
            match &rows {
                None => keep[start..end - 1].iter_mut().for_each(|x| *x = false),
                Some(rows) => {
                    let mut seen = HashSet::new();
                    for pos in (start..end).rev() {
                        let (s, r) = order[pos];
                        if !seen.insert(rows[s].row(r)) {
                            keep[pos] = false;
                        }
                    }
                }
            }
        }
        start = end;
    }
    Ok(order
        .into_iter()
        .zip(keep)
        .filter_map(|(o, k)| k.then_some(o))
        .collect())
}

/// Deduplicates one sorted batch on its own (the new rows before planning).
pub fn dedup_batch(
    side: &Side,
    subset: &[usize],
    ordered_col: usize,
) -> Result<Option<(RecordBatch, Vec<u64>)>> {
    let order: Vec<(usize, usize)> = (0..side.keys.len()).map(|r| (0, r)).collect();
    let kept = drop_duplicates(order, &[side], |o| side.keys[o.1], subset, ordered_col)?;
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
        columns.push(interleave(&arrays, order)?);
    }
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// Merges `existing` and `new` and splits the result into row groups.
pub fn merge_region(
    existing: Option<&Side>,
    new: Option<&Side>,
    subset: Subset,
    ordered_col: usize,
    target: &Target,
) -> Result<Vec<Chunk>> {
    let existing = existing.filter(|s| !s.keys.is_empty());
    let new = new.filter(|s| !s.keys.is_empty());
    let (batch, keys) = match (existing, new) {
        (Some(e), Some(n)) => {
            let sides = [e, n];
            let key_of = |o: &(usize, usize)| sides[o.0].keys[o.1];
            let mut order = merge_order(e.keys, n.keys);
            if let Some(subset) = subset {
                order = drop_duplicates(order, &sides, key_of, subset, ordered_col)?;
            }
            let keys = order.iter().map(key_of).collect();
            (gather(&sides, &order)?, keys)
        }
        (Some(only), None) | (None, Some(only)) => {
            let Some(subset) = subset else {
                // The common bulk write: no copy at all, row groups are slices.
                return Ok(split(only.batch, only.keys, target));
            };
            let order: Vec<(usize, usize)> = (0..only.keys.len()).map(|r| (0, r)).collect();
            let kept = drop_duplicates(order, &[only], |o| only.keys[o.1], subset, ordered_col)?;
            if kept.len() == only.keys.len() {
                return Ok(split(only.batch, only.keys, target));
            }
            let keys: Vec<u64> = kept.iter().map(|o| only.keys[o.1]).collect();
            (gather(&[only], &kept)?, keys)
        }
        (None, None) => return Ok(Vec::new()),
    };
    Ok(split(&batch, &keys, target))
}

/// Cuts a sorted batch into row groups: fixed row counts, or one per period.
pub fn split(batch: &RecordBatch, keys: &[u64], target: &Target) -> Vec<Chunk> {
    let mut bounds = Vec::new();
    match target {
        Target::Rows(n) => {
            let n = (*n).max(1) as usize;
            let mut s = 0;
            while s < keys.len() {
                bounds.push(s..(s + n).min(keys.len()));
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
        .into_iter()
        .map(|r| Chunk {
            batch: batch.slice(r.start, r.len()),
            min: keys[r.start],
            max: keys[r.end - 1],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, RecordBatch};
    use std::sync::Arc;

    fn batch(a: &[i64], b: &[i64]) -> RecordBatch {
        RecordBatch::try_from_iter([
            ("a", Arc::new(Int64Array::from(a.to_vec())) as ArrayRef),
            ("b", Arc::new(Int64Array::from(b.to_vec())) as ArrayRef),
        ])
        .unwrap()
    }

    fn col(b: &RecordBatch, c: usize) -> Vec<i64> {
        b.column(c)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .values()
            .to_vec()
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
        assert_eq!(col(&chunks[0].batch, 1), vec![0, 0, 0, 1, 1]);
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
        assert_eq!(col(&chunks[0].batch, 1), vec![0, 0, 1, 1]);
    }

    #[test]
    fn split_by_rows_leaves_remainder_last() {
        let b = batch(&[1, 2, 3, 4, 5], &[0; 5]);
        let chunks = split(&b, &[1, 2, 3, 4, 5], &Target::Rows(2));
        let sizes: Vec<usize> = chunks.iter().map(|c| c.batch.num_rows()).collect();
        assert_eq!(sizes, vec![2, 2, 1]);
    }
}
