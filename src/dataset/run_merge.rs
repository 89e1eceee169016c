//! Merging stored and new rows as runs (docs/dataset.md, "How new rows are
//! placed"), when duplicates are defined by the ordered key alone or not at
//! all: the merged order is a list of runs of each side, and each new row group
//! a list of slices of the stored files and of the new batch, which the writer
//! writes one after the other. Nothing is concatenated or gathered; the row
//! path ([`crate::dataset::merge::merge_region`]) handles the other cases.

use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchOptions};

use crate::dataset::merge::{split_bounds, split_bounds_n, Chunk, Side};
use crate::dataset::plan::Target;
use crate::error::Result;

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

/// [`crate::dataset::merge::merge_region`] for stored rows given file by file, when duplicates are
/// defined by the ordered key alone (`dedup`) or not at all: the order is
/// found as runs of each side and the row groups are slices of the stored
/// files (mapped) and of the new batch, so that no row is copied before it
/// is written. Batches must share their column types, without dictionaries;
/// the row groups take the schema of the first stored file, as
/// [`crate::dataset::merge::merge_region`]'s do.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::merge::merge_region;
    use crate::dataset::merge::tests::{batch, col};

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
