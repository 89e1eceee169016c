//! One `SegmentedAggregator.agg` call: checks, segmentation, parallel
//! reductions, the emitted bins and the next state.

use arrow_array::ArrayRef;

use crate::cores::cores;
use crate::error::{OupsError, Result};
use crate::segments::reduce::Acc;
use crate::segments::segment::{segment, GroupCursor, Slot, NO_GROUP, OPEN};
use crate::segments::spec::{Bins, Side, Spec, Values};
use crate::segments::state::State;

pub struct Chunk<'a> {
    /// The `on` keys, sorted.
    pub keys: &'a [i64],
    /// Per row its group id (`NO_GROUP` for none); `None` when ungrouped.
    pub groups: Option<&'a [u32]>,
    /// How many group ids exist, counting those first seen in this chunk.
    pub n_groups: usize,
    pub columns: Vec<Values<'a>>,
}

#[derive(Debug)]
pub struct Output {
    pub groups: Vec<u32>,
    pub labels: Vec<i64>,
    /// One array per aggregation, in the order of `Spec::aggs`.
    pub columns: Vec<ArrayRef>,
    pub state: State,
}

pub(crate) fn check_keys(keys: &[i64], last: Option<i64>) -> Result<()> {
    if let Some(i) = keys.windows(2).position(|w| w[0] > w[1]) {
        return Err(OupsError::Unsorted(format!(
            "the 'on' column is not sorted: row {} ({}) comes after row {i} ({}); sort each \
             chunk on it",
            i + 1,
            keys[i + 1],
            keys[i]
        )));
    }
    if let (Some(last), Some(first)) = (last, keys.first()) {
        if *first < last {
            return Err(OupsError::Unsorted(format!(
                "this chunk starts at key {first}, before the end of the previous chunk \
                 ({last}): pass chunks in key order, each once, or start over with a new \
                 aggregator (or 'state' set to None)"
            )));
        }
    }
    Ok(())
}

fn label(spec: &Spec, slot: &Slot) -> Result<i64> {
    let right = spec.label == Side::Right;
    Ok(match &spec.bins {
        Bins::Fixed { origin, step } => (slot.bin + right as i64)
            .checked_mul(*step)
            .and_then(|x| x.checked_add(*origin))
            .ok_or_else(|| {
                OupsError::InvalidArgument("a bin label overflows the key type".into())
            })?,
        Bins::Edges { labels, base, .. } => usize::try_from(slot.bin - base + right as i64)
            .ok()
            .and_then(|i| labels.get(i).copied())
            .ok_or_else(|| OupsError::Internal("a bin's edge was dropped".into()))?,
        Bins::Rows(_) | Bins::Threshold { .. } => {
            if right {
                slot.last_key
            } else {
                slot.first_key
            }
        }
    })
}

/// How many leading rows of a chunk can be binned now: with streamed edges,
/// the rows past the last edge wait for the edges that will place them.
/// Checks the order of all keys, those that wait included.
pub fn ready_rows(spec: &Spec, keys: &[i64], state: &State) -> Result<usize> {
    check_keys(keys, state.last_key)?;
    Ok(match &spec.bins {
        Bins::Edges {
            edges, hold: true, ..
        } => match (edges.last(), spec.closed) {
            (None, _) => 0,
            (Some(last), Side::Left) => keys.partition_point(|k| k < last),
            (Some(last), Side::Right) => keys.partition_point(|k| k <= last),
        },
        _ => keys.len(),
    })
}

/// Runs `update` of every accumulator, on two threads when it pays.
fn reduce_all(accs: &mut [Acc], spec: &Spec, row_slot: &[u32], columns: &[Values<'_>]) {
    let jobs: Vec<(&mut Acc, Values<'_>, Option<Values<'_>>)> = accs
        .iter_mut()
        .zip(&spec.aggs)
        .map(|(acc, a)| (acc, columns[a.column], a.weight.map(|w| columns[w])))
        .collect();
    if jobs.len() < 2 || row_slot.len() < 100_000 || cores() < 2 {
        for (acc, v, w) in jobs {
            acc.update(row_slot, v, w);
        }
        return;
    }
    crate::cores::on_two_threads(jobs, |(acc, v, w)| acc.update(row_slot, v, w));
}

/// Aggregates one chunk on top of `state`. On error nothing is changed: the
/// state is taken by reference and the new one returned.
pub fn aggregate(spec: &Spec, chunk: &Chunk<'_>, state: &State, is_final: bool) -> Result<Output> {
    spec.validate(chunk.columns.len())?;
    let n = chunk.keys.len();
    if chunk.columns.iter().any(|c| c.len() != n) || chunk.groups.is_some_and(|g| g.len() != n) {
        return Err(OupsError::Internal("columns differ in length".into()));
    }
    if chunk.n_groups < state.cursors.len()
        || chunk.groups.is_some_and(|g| {
            g.iter()
                .any(|x| *x != NO_GROUP && *x as usize >= chunk.n_groups)
        })
    {
        return Err(OupsError::Internal("group ids out of range".into()));
    }
    check_keys(chunk.keys, state.last_key)?;
    let mut accs: Vec<Acc> = spec
        .aggs
        .iter()
        .map(|a| Acc::new(a, &chunk.columns[a.column]))
        .collect();
    if !state.accs.is_empty() {
        for (j, (new, old)) in accs.iter_mut().zip(&state.accs).enumerate() {
            if std::mem::discriminant(new) != std::mem::discriminant(old) {
                return Err(OupsError::SchemaMismatch(format!(
                    "the column of aggregation {j} changed type since the previous chunk \
                     (integer and float columns are aggregated differently); keep each \
                     column's dtype across chunks"
                )));
            }
            *new = old.clone();
        }
    }
    let mut cursors = state.cursors.clone();
    cursors.resize(chunk.n_groups.max(1), GroupCursor::default());
    let threshold_values = match &spec.bins {
        Bins::Threshold { column, .. } => Some(chunk.columns[*column]),
        _ => None,
    };
    let seg = segment(
        spec,
        chunk.keys,
        chunk.groups,
        threshold_values,
        cursors,
        state.open.clone(),
        state.cur_bin,
        state.rows_seen,
        is_final,
    )?;
    for acc in accs.iter_mut() {
        acc.resize(seg.slots.len());
    }
    reduce_all(&mut accs, spec, &seg.row_slot, &chunk.columns);

    let mut done: Vec<(u64, i64, u32, u32)> = Vec::new();
    let mut open: Vec<u32> = Vec::new();
    for (s, slot) in seg.slots.iter().enumerate() {
        if slot.event == OPEN {
            open.push(s as u32);
        } else {
            done.push((slot.event, label(spec, slot)?, slot.group, s as u32));
        }
    }
    done.sort_unstable();
    let order: Vec<u32> = done.iter().map(|d| d.3).collect();
    let columns = accs.iter().map(|a| a.output(&order)).collect();

    let next = if is_final {
        State::default()
    } else {
        let mut renumber = vec![u32::MAX; seg.slots.len()];
        for (k, s) in open.iter().enumerate() {
            renumber[*s as usize] = k as u32;
        }
        let mut cursors = seg.cursors;
        for c in cursors.iter_mut() {
            c.open = c.open.map(|s| renumber[s as usize]);
        }
        let mut kept = Vec::with_capacity(accs.len());
        for mut acc in accs {
            let columns = acc.carry(&open);
            acc.restore(&columns)?;
            kept.push(acc);
        }
        State {
            rows_seen: state.rows_seen + n as u64,
            last_key: chunk.keys.last().copied().or(state.last_key),
            cur_bin: seg.cur_bin,
            cursors,
            open: open
                .iter()
                .map(|s| seg.slots[*s as usize].clone())
                .collect(),
            accs: kept,
        }
    };
    Ok(Output {
        groups: done.iter().map(|d| d.2).collect(),
        labels: done.iter().map(|d| d.1).collect(),
        columns,
        state: next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segments::spec::{AggKind, AggSpec};
    use arrow_array::{Array, Float64Array, Int64Array};

    fn spec(bins: Bins) -> Spec {
        Spec {
            bins,
            closed: Side::Left,
            label: Side::Left,
            keep_empty: true,
            aggs: vec![
                AggSpec {
                    kind: AggKind::Sum,
                    column: 0,
                    weight: None,
                },
                AggSpec {
                    kind: AggKind::Var { ddof: 1 },
                    column: 0,
                    weight: None,
                },
            ],
        }
    }

    fn sums(out: &Output) -> Vec<f64> {
        let a = out.columns[0]
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        a.values().to_vec()
    }

    #[test]
    fn chunks_through_the_arrow_state_equal_one_call() {
        let spec = spec(Bins::Fixed {
            origin: 0,
            step: 10,
        });
        let keys: Vec<i64> = vec![1, 3, 12, 14, 15, 37, 38, 41];
        let v: Vec<f64> = vec![0.1, 0.2, 0.3, f64::NAN, 0.5, 0.6, 0.7, 0.8];
        let whole = Chunk {
            keys: &keys,
            groups: None,
            n_groups: 1,
            columns: vec![Values::F64(&v, None)],
        };
        let one = aggregate(&spec, &whole, &State::default(), true).unwrap();
        assert_eq!(one.labels, vec![0, 10, 20, 30, 40]);
        let mut state = State::default();
        let mut labels = vec![];
        let mut got = vec![];
        for (lo, hi) in [(0, 3), (3, 3), (3, 6), (6, 8)] {
            let chunk = Chunk {
                keys: &keys[lo..hi],
                groups: None,
                n_groups: 1,
                columns: vec![Values::F64(&v[lo..hi], None)],
            };
            let out = aggregate(&spec, &chunk, &state, hi == 8).unwrap();
            labels.extend(out.labels.iter().copied());
            got.extend(sums(&out));
            if hi == 8 {
                break;
            }
            // Through the Arrow form, as the Python layer keeps it.
            let (g, s) = out.state.to_batches().unwrap();
            let empty = spec
                .aggs
                .iter()
                .map(|a| crate::segments::reduce::Acc::new(a, &chunk.columns[a.column]))
                .collect();
            state = State::from_batches(
                out.state.rows_seen,
                out.state.last_key,
                out.state.cur_bin,
                &g,
                &s,
                empty,
            )
            .unwrap();
        }
        assert_eq!(labels, one.labels);
        assert_eq!(got, sums(&one));
        let var = one.columns[1]
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert!(var.is_null(2), "an empty bin has no variance");
    }

    #[test]
    fn a_chunk_before_the_previous_end_changes_nothing() {
        let spec = spec(Bins::Rows(2));
        let keys = vec![5_i64, 6, 7];
        let v = vec![1.0, 2.0, 3.0];
        let chunk = Chunk {
            keys: &keys,
            groups: None,
            n_groups: 1,
            columns: vec![Values::F64(&v, None)],
        };
        let out = aggregate(&spec, &chunk, &State::default(), false).unwrap();
        let back = Chunk {
            keys: &keys[..1],
            groups: None,
            n_groups: 1,
            columns: vec![Values::F64(&v[..1], None)],
        };
        let err = aggregate(&spec, &back, &out.state, false).unwrap_err();
        assert!(matches!(err, OupsError::Unsorted(_)), "{err}");
        let ints = Int64Array::from(vec![1_i64, 2, 3]);
        let typed = Chunk {
            keys: &[8, 9, 10],
            groups: None,
            n_groups: 1,
            columns: vec![Values::I64(ints.values(), None)],
        };
        let err = aggregate(&spec, &typed, &out.state, false).unwrap_err();
        assert!(matches!(err, OupsError::SchemaMismatch(_)), "{err}");
    }
}
