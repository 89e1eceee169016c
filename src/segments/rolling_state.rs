//! The Arrow form of the rolling state (two record batches), which the Python
//! layer persists without pickle, and its checks on the way back.

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, UInt32Array, UInt64Array,
};

use crate::error::{OupsError, Result};
use crate::segments::lane::{Entry, KahanPair, Lane, Welford};
use crate::segments::rolling::{RollSpec, RollState};
use crate::segments::spec::AggKind;

fn bad(what: &str) -> OupsError {
    OupsError::InvalidArgument(format!(
        "'state' is not the state of a rolling SegmentedAggregator ({what}); pass the \
         'state' attribute of an aggregator built with the same arguments, or None"
    ))
}

impl RollState {
    /// `(lanes, rows)`: one row per (aggregation, group) with its
    /// accumulators, one row per window row (`pending` for a row waiting to
    /// enter). Min/max candidates are rebuilt from the rows on restore.
    pub fn to_batches(&self) -> Result<(RecordBatch, RecordBatch)> {
        let mut l: [Vec<f64>; 10] = Default::default();
        let (mut agg, mut group, mut seen, mut nobs, mut neg) =
            (vec![], vec![], vec![], vec![], vec![]);
        let (mut r_agg, mut r_group, mut r_key, mut r_pos, mut r_v, mut r_w, mut r_pending) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        for (j, lanes) in self.lanes.iter().enumerate() {
            for (g, lane) in lanes.iter().enumerate() {
                agg.push(j as u32);
                group.push(g as u32);
                seen.push(lane.seen);
                nobs.push(lane.nobs);
                neg.push(lane.negatives);
                let fields = [
                    lane.sum.sum,
                    lane.sum.add,
                    lane.sum.remove,
                    lane.weights.sum,
                    lane.weights.add,
                    lane.weights.remove,
                    lane.var.mean,
                    lane.var.m2,
                    lane.var.add,
                    lane.var.remove,
                ];
                for (k, x) in fields.into_iter().enumerate() {
                    l[k].push(x);
                }
                let pending = lane.pending.iter().map(|e| (e, true));
                for (e, p) in lane.rows.iter().map(|e| (e, false)).chain(pending) {
                    r_agg.push(j as u32);
                    r_group.push(g as u32);
                    r_key.push(e.key);
                    r_pos.push(e.pos);
                    r_v.push(e.v);
                    r_w.push(e.w);
                    r_pending.push(Some(p));
                }
            }
        }
        let mut columns: Vec<(String, ArrayRef)> = vec![
            ("agg".into(), Arc::new(UInt32Array::from(agg))),
            ("group".into(), Arc::new(UInt32Array::from(group))),
            ("seen".into(), Arc::new(UInt64Array::from(seen))),
            ("nobs".into(), Arc::new(UInt64Array::from(nobs))),
            ("negatives".into(), Arc::new(UInt64Array::from(neg))),
        ];
        for (k, x) in l.into_iter().enumerate() {
            columns.push((format!("f{k}"), Arc::new(Float64Array::from(x))));
        }
        let lanes = RecordBatch::try_from_iter(columns)?;
        let rows = RecordBatch::try_from_iter([
            ("agg", Arc::new(UInt32Array::from(r_agg)) as ArrayRef),
            ("group", Arc::new(UInt32Array::from(r_group))),
            ("key", Arc::new(Int64Array::from(r_key))),
            ("pos", Arc::new(UInt64Array::from(r_pos))),
            ("v", Arc::new(Float64Array::from(r_v))),
            ("w", Arc::new(Float64Array::from(r_w))),
            ("pending", Arc::new(BooleanArray::from(r_pending))),
        ])?;
        Ok((lanes, rows))
    }

    pub fn from_batches(
        spec: &RollSpec,
        last_key: Option<i64>,
        lanes_batch: &RecordBatch,
        rows_batch: &RecordBatch,
    ) -> Result<RollState> {
        fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> Result<&'a T> {
            b.column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<T>())
                .ok_or_else(|| bad(&format!("column '{name}' is missing or of the wrong type")))
        }
        let agg = col::<UInt32Array>(lanes_batch, "agg")?;
        let group = col::<UInt32Array>(lanes_batch, "group")?;
        let seen = col::<UInt64Array>(lanes_batch, "seen")?;
        let nobs = col::<UInt64Array>(lanes_batch, "nobs")?;
        let neg = col::<UInt64Array>(lanes_batch, "negatives")?;
        let f: Vec<&Float64Array> = (0..10)
            .map(|k| col::<Float64Array>(lanes_batch, &format!("f{k}")))
            .collect::<Result<_>>()?;
        let mut lanes: Vec<Vec<Lane>> = vec![Vec::new(); spec.aggs.len()];
        for r in 0..lanes_batch.num_rows() {
            let (j, g) = (agg.value(r) as usize, group.value(r) as usize);
            let per_agg = lanes
                .get_mut(j)
                .ok_or_else(|| bad("an aggregation out of range"))?;
            if per_agg.len() != g {
                return Err(bad("groups out of order"));
            }
            per_agg.push(Lane {
                seen: seen.value(r),
                nobs: nobs.value(r),
                negatives: neg.value(r),
                sum: KahanPair {
                    sum: f[0].value(r),
                    add: f[1].value(r),
                    remove: f[2].value(r),
                },
                weights: KahanPair {
                    sum: f[3].value(r),
                    add: f[4].value(r),
                    remove: f[5].value(r),
                },
                var: Welford {
                    mean: f[6].value(r),
                    m2: f[7].value(r),
                    add: f[8].value(r),
                    remove: f[9].value(r),
                },
                ..Lane::default()
            });
        }
        let r_agg = col::<UInt32Array>(rows_batch, "agg")?;
        let r_group = col::<UInt32Array>(rows_batch, "group")?;
        let r_key = col::<Int64Array>(rows_batch, "key")?;
        let r_pos = col::<UInt64Array>(rows_batch, "pos")?;
        let r_v = col::<Float64Array>(rows_batch, "v")?;
        let r_w = col::<Float64Array>(rows_batch, "w")?;
        let r_pending = col::<BooleanArray>(rows_batch, "pending")?;
        for r in 0..rows_batch.num_rows() {
            let (j, g) = (r_agg.value(r) as usize, r_group.value(r) as usize);
            let lane = lanes
                .get_mut(j)
                .and_then(|l| l.get_mut(g))
                .ok_or_else(|| bad("a window row of no group"))?;
            let e = Entry {
                key: r_key.value(r),
                pos: r_pos.value(r),
                v: r_v.value(r),
                w: r_w.value(r),
            };
            if e.pos >= lane.seen || lane.pending.back().is_some_and(|p| p.pos >= e.pos) {
                return Err(bad("a window row after the group's last row"));
            }
            if r_pending.value(r) {
                lane.pending.push_back(e);
                continue;
            }
            if !lane.pending.is_empty() {
                return Err(bad("a window row after a pending one"));
            }
            if lane.rows.back().is_some_and(|b| b.pos >= e.pos) {
                return Err(bad("window rows out of order"));
            }
            lane.rows.push_back(e);
            let kind = spec.aggs[j].kind;
            if matches!(kind, AggKind::Min | AggKind::Max) && e.valid() {
                let max = kind == AggKind::Max;
                while lane
                    .extremes
                    .back()
                    .is_some_and(|(_, b)| (max && *b <= e.v) || (!max && *b >= e.v))
                {
                    lane.extremes.pop_back();
                }
                lane.extremes.push_back((e.pos, e.v));
            }
        }
        for (j, per_agg) in lanes.iter().enumerate() {
            for lane in per_agg {
                let valid = lane.rows.iter().filter(|e| e.valid()).count() as u64;
                if valid != lane.nobs {
                    return Err(bad(&format!(
                        "aggregation {j}: counts do not match the rows"
                    )));
                }
            }
        }
        Ok(RollState { last_key, lanes })
    }
}
