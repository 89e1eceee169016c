//! Producing the new row groups of one merge region (docs/dataset.md, "How new
//! rows are placed" and "Duplicates"): existing rows then new rows, stably
//! merged on the ordered key, stored rows replaced by the new rows they
//! duplicate, and split by row count or by period.

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchOptions};
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

/// A run of rows of one side of a merge: (side, first row, row count).
type Run = (usize, usize, usize);

/// How many leading values of `keys` satisfy `below` (which holds for a
/// prefix): exponential probing, then a binary search, so that short runs
/// cost a few comparisons and long ones a logarithm.
fn gallop(keys: &[u64], below: impl Fn(u64) -> bool) -> usize {
    let mut hi = 1;
    while hi <= keys.len() && below(keys[hi - 1]) {
        hi *= 2;
    }
    let lo = hi / 2;
    let hi = hi.min(keys.len() + 1);
    lo + keys[lo..hi - 1].partition_point(|&k| below(k))
}

fn push_run(runs: &mut Vec<Run>, side: usize, start: usize, len: usize) {
    match runs.last_mut() {
        Some((s, at, n)) if *s == side && *at + *n == start => *n += len,
        _ if len == 0 => {}
        _ => runs.push((side, start, len)),
    }
}

/// The merged order of stored (side 0) and new (side 1) keys as runs: stored
/// rows first on equal keys, or with `dedup` (duplicates defined by the
/// ordered key alone; `new` free of them) without the stored rows whose key
/// a new row has.
fn merge_runs(existing: &[u64], new: &[u64], dedup: bool) -> Vec<Run> {
    let mut runs = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < existing.len() && j < new.len() {
        let (e, n) = (existing[i], new[j]);
        if e < n || (e == n && !dedup) {
            let len = gallop(&existing[i..], |k| k < n || (k == n && !dedup));
            push_run(&mut runs, 0, i, len);
            i += len;
        } else if e == n {
            i += gallop(&existing[i..], |k| k == n);
        } else {
            let len = gallop(&new[j..], |k| k < e);
            push_run(&mut runs, 1, j, len);
            j += len;
        }
    }
    push_run(&mut runs, 0, i, existing.len() - i);
    push_run(&mut runs, 1, j, new.len() - j);
    runs
}

/// Rows of several batches addressed as one sequence, without concatenating.
struct Sequence<'a> {
    batches: &'a [RecordBatch],
    /// Where each batch's rows end in the sequence.
    ends: Vec<usize>,
}

impl<'a> Sequence<'a> {
    fn new(batches: &'a [RecordBatch]) -> Self {
        let ends = batches
            .iter()
            .scan(0, |at, b| {
                *at += b.num_rows();
                Some(*at)
            })
            .collect();
        Sequence { batches, ends }
    }

    /// Slices holding rows `start..start + len`, appended to `out`.
    fn slices(&self, mut start: usize, mut len: usize, out: &mut Vec<RecordBatch>) {
        let mut b = self.ends.partition_point(|&e| e <= start);
        while len > 0 && b < self.batches.len() {
            let offset = start - (self.ends[b] - self.batches[b].num_rows());
            let take = (self.ends[b] - start).min(len);
            if take > 0 {
                out.push(self.batches[b].slice(offset, take));
            }
            start += take;
            len -= take;
            b += 1;
        }
    }
}

/// [`merge_region`] for stored rows given file by file, when duplicates are
/// defined by the ordered key alone (`dedup`) or not at all: the order is
/// found as runs of each side and the row groups are slices of the stored
/// files (mapped) and of the new batch, so that no row is copied before it
/// is written. Batches must share their column types, without dictionaries;
/// the row groups take the schema of the first stored file, as
/// [`merge_region`]'s do.
pub fn merge_runs_region(
    existing: &[RecordBatch],
    existing_keys: &[u64],
    new: Option<&Side>,
    dedup: bool,
    target: &Target,
) -> Result<Vec<Chunk>> {
    let empty: &[u64] = &[];
    let new_keys = new.map_or(empty, |n| n.keys);
    let runs = merge_runs(existing_keys, new_keys, dedup);
    let sides = [existing_keys, new_keys];
    let total: usize = runs.iter().map(|r| r.2).sum();
    // Row counts need no keys; periods look at every merged key.
    let bounds = match target {
        Target::Rows(_) => split_bounds_n(total, target, &[]),
        Target::Periods(_) => {
            let mut keys = Vec::with_capacity(total);
            for &(side, start, len) in &runs {
                keys.extend_from_slice(&sides[side][start..start + len]);
            }
            split_bounds(&keys, target)
        }
    };
    let stored = Sequence::new(existing);
    let fresh: Vec<RecordBatch> = new.map(|n| n.batch.clone()).into_iter().collect();
    let fresh = Sequence::new(&fresh);
    let mut chunks = Vec::new();
    let (mut run, mut used) = (0usize, 0usize);
    for bound in bounds {
        let mut pieces = Vec::new();
        let mut wanted = bound.len();
        let (side, start, _) = runs[run];
        let (min, mut max) = (sides[side][start + used], 0);
        while wanted > 0 {
            let (side, start, len) = runs[run];
            let take = (len - used).min(wanted);
            let source = if side == 0 { &stored } else { &fresh };
            source.slices(start + used, take, &mut pieces);
            wanted -= take;
            used += take;
            max = sides[side][start + used - 1];
            if used == len {
                run += 1;
                used = 0;
            }
        }
        chunks.push(Chunk { pieces, min, max });
    }
    let Some(schema) = existing
        .first()
        .or(new.map(|n| n.batch))
        .map(RecordBatch::schema)
    else {
        return Ok(chunks);
    };
    for chunk in &mut chunks {
        for piece in &mut chunk.pieces {
            if piece.schema() != schema {
                *piece = RecordBatch::try_new_with_options(
                    Arc::clone(&schema),
                    piece.columns().to_vec(),
                    &RecordBatchOptions::new().with_row_count(Some(piece.num_rows())),
                )?;
            }
        }
    }
    Ok(chunks)
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
fn split_bounds_n(total: usize, target: &Target, keys: &[u64]) -> Vec<std::ops::Range<usize>> {
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

    fn col(chunk: &Chunk, c: usize) -> Vec<i64> {
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

    #[test]
    fn gallop_counts_the_prefix() {
        let keys: Vec<u64> = (0..100).collect();
        for cut in [0, 1, 2, 3, 7, 8, 9, 63, 64, 65, 99, 100] {
            assert_eq!(gallop(&keys, |k| k < cut), cut as usize);
        }
        assert_eq!(gallop(&[], |_| true), 0);
    }

    /// The run merge over stored rows split into files gives the rows and row
    /// groups of the row-by-row merge of the concatenated files.
    #[test]
    fn run_merge_matches_the_row_merge() {
        let mut seed = 7u64;
        let mut next = move |m: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % m
        };
        for round in 0..300 {
            let n_files = 1 + next(3) as usize;
            let mut stored: Vec<u64> = (0..next(40)).map(|_| next(30)).collect();
            stored.sort_unstable();
            let mut fresh: Vec<u64> = (0..next(40)).map(|_| next(30)).collect();
            fresh.sort_unstable();
            let dedup = round % 2 == 0;
            if dedup {
                fresh.dedup();
            }
            let as_i64 = |k: &[u64]| k.iter().map(|&k| k as i64).collect::<Vec<_>>();
            let tags = |n: usize, base: i64| (0..n as i64).map(|i| base + i).collect::<Vec<_>>();
            let whole = batch(&as_i64(&stored), &tags(stored.len(), 0));
            let new = batch(&as_i64(&fresh), &tags(fresh.len(), 1000));
            // The stored rows cut into files at arbitrary places.
            let mut files = Vec::new();
            let mut at = 0;
            for f in 0..n_files {
                let len = if f + 1 == n_files {
                    stored.len() - at
                } else {
                    (next(stored.len() as u64 + 1) as usize).min(stored.len() - at)
                };
                files.push(whole.slice(at, len));
                at += len;
            }
            let target = Target::Rows(1 + next(12));
            let new_side = Side {
                batch: &new,
                keys: &fresh,
            };
            let stored_side = Side {
                batch: &whole,
                keys: &stored,
            };
            let subset: Option<&[usize]> = if dedup { Some(&[0]) } else { None };
            let expected =
                merge_region(Some(&stored_side), Some(&new_side), subset, 0, &target).unwrap();
            let got = merge_runs_region(&files, &stored, Some(&new_side), dedup, &target).unwrap();
            assert_eq!(got.len(), expected.len(), "round {round}");
            for (g, e) in got.iter().zip(&expected) {
                assert_eq!(
                    (col(g, 0), col(g, 1)),
                    (col(e, 0), col(e, 1)),
                    "round {round}"
                );
                assert_eq!((g.min, g.max), (e.min, e.max));
            }
        }
    }
}
