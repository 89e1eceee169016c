//! What an aggregator carries from one call to the next, and its Arrow form
//! (two record batches), which the Python layer persists without pickle.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, UInt64Array};
use arrow_schema::{Field, Schema};

use crate::error::{OupsError, Result};
use crate::segments::reduce::Acc;
use crate::segments::segment::{GroupCursor, Slot, OPEN};

#[derive(Clone, Debug, Default)]
pub struct State {
    /// Rows seen since the start of the stream: the position of the next row.
    pub rows_seen: u64,
    pub last_key: Option<i64>,
    /// Time-like bins: the bin of `last_key`.
    pub cur_bin: Option<i64>,
    /// Per group id.
    pub cursors: Vec<GroupCursor>,
    /// The open slots; `cursors[g].open` indexes them.
    pub open: Vec<Slot>,
    /// Per aggregation, the accumulators of `open`; empty before any row.
    pub accs: Vec<Acc>,
}

fn bad(what: &str) -> OupsError {
    OupsError::InvalidArgument(format!(
        "'state' is not the state of a SegmentedAggregator ({what}); pass the 'state' \
         attribute of an aggregator built with the same arguments, or None"
    ))
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| bad(&format!("column '{name}' is missing or of the wrong type")))
}

impl State {
    /// The first time bin whose edges a later call can still need: the bin
    /// of the latest key (its open slots), and with `keep_empty` the bins
    /// after each group's latest, which its next row fills with empty bins.
    pub fn first_needed_bin(&self, keep_empty: bool) -> Option<i64> {
        let empties = self
            .cursors
            .iter()
            .filter(|_| keep_empty)
            .filter_map(|c| c.last_bin.map(|b| b + 1));
        let open = self.open.iter().map(|s| s.bin);
        self.cur_bin.into_iter().chain(open).chain(empties).min()
    }

    /// `(groups, slots)`: one row per group, one row per open slot followed
    /// by its accumulator columns `a<j>_<k>`.
    pub fn to_batches(&self) -> Result<(RecordBatch, RecordBatch)> {
        let c = &self.cursors;
        let groups = RecordBatch::try_from_iter([
            (
                "last_bin",
                Arc::new(Int64Array::from_iter(c.iter().map(|g| g.last_bin))) as ArrayRef,
            ),
            (
                "open",
                Arc::new(Int64Array::from_iter(
                    c.iter().map(|g| g.open.map(i64::from)),
                )),
            ),
            (
                "running",
                Arc::new(Float64Array::from_iter_values(c.iter().map(|g| g.running))),
            ),
            (
                "n_bins",
                Arc::new(Int64Array::from_iter_values(c.iter().map(|g| g.n_bins))),
            ),
        ])?;
        let o = &self.open;
        let mut fields: Vec<(String, ArrayRef)> = vec![
            (
                "group".into(),
                Arc::new(Int64Array::from_iter_values(
                    o.iter().map(|s| s.group as i64),
                )),
            ),
            (
                "bin".into(),
                Arc::new(Int64Array::from_iter_values(o.iter().map(|s| s.bin))),
            ),
            (
                "first_key".into(),
                Arc::new(Int64Array::from_iter_values(o.iter().map(|s| s.first_key))),
            ),
            (
                "last_key".into(),
                Arc::new(Int64Array::from_iter_values(o.iter().map(|s| s.last_key))),
            ),
            (
                "n_rows".into(),
                Arc::new(UInt64Array::from_iter_values(o.iter().map(|s| s.n_rows))),
            ),
        ];
        let all: Vec<u32> = (0..o.len() as u32).collect();
        for (j, acc) in self.accs.iter().enumerate() {
            for (k, a) in acc.carry(&all).into_iter().enumerate() {
                fields.push((format!("a{j}_{k}"), a));
            }
        }
        let schema = Schema::new(
            fields
                .iter()
                .map(|(n, a)| Field::new(n, a.data_type().clone(), true))
                .collect::<Vec<_>>(),
        );
        let slots = RecordBatch::try_new(
            Arc::new(schema),
            fields.into_iter().map(|(_, a)| a).collect(),
        )?;
        Ok((groups, slots))
    }

    /// The inverse of [`State::to_batches`]; `accs` are empty accumulators
    /// of this aggregator's aggregations, which the slots' columns fill.
    pub fn from_batches(
        rows_seen: u64,
        last_key: Option<i64>,
        cur_bin: Option<i64>,
        groups: &RecordBatch,
        slots: &RecordBatch,
        mut accs: Vec<Acc>,
    ) -> Result<State> {
        let last_bin = column::<Int64Array>(groups, "last_bin")?;
        let open = column::<Int64Array>(groups, "open")?;
        let running = column::<Float64Array>(groups, "running")?;
        let n_bins = column::<Int64Array>(groups, "n_bins")?;
        let n_open = slots.num_rows();
        let mut cursors = Vec::with_capacity(groups.num_rows());
        for g in 0..groups.num_rows() {
            let slot = if open.is_valid(g) {
                let s = open.value(g);
                if s < 0 || s as usize >= n_open {
                    return Err(bad("a group's open slot is out of range"));
                }
                Some(s as u32)
            } else {
                None
            };
            cursors.push(GroupCursor {
                open: slot,
                last_bin: last_bin.is_valid(g).then(|| last_bin.value(g)),
                running: running.value(g),
                n_bins: n_bins.value(g),
            });
        }
        let group = column::<Int64Array>(slots, "group")?;
        let bin = column::<Int64Array>(slots, "bin")?;
        let first_key = column::<Int64Array>(slots, "first_key")?;
        let last = column::<Int64Array>(slots, "last_key")?;
        let n_rows = column::<UInt64Array>(slots, "n_rows")?;
        let mut open_slots = Vec::with_capacity(n_open);
        for s in 0..n_open {
            let g = group.value(s);
            if g < 0 || g as usize >= cursors.len() || cursors[g as usize].open != Some(s as u32) {
                return Err(bad("an open slot does not match its group"));
            }
            open_slots.push(Slot {
                group: g as u32,
                bin: bin.value(s),
                first_key: first_key.value(s),
                last_key: last.value(s),
                n_rows: n_rows.value(s),
                event: OPEN,
            });
        }
        if cursors.iter().filter(|c| c.open.is_some()).count() != n_open {
            return Err(bad("the open slots do not match the groups"));
        }
        if n_open > 0 && last_key.is_none() {
            return Err(bad("open slots without a last key"));
        }
        for (j, acc) in accs.iter_mut().enumerate() {
            let prefix = format!("a{j}_");
            let columns: Vec<ArrayRef> = (0..)
                .map_while(|k| slots.column_by_name(&format!("{prefix}{k}")).cloned())
                .collect();
            acc.restore(&columns)
                .map_err(|_| bad(&format!("aggregation {j} does not match")))?;
        }
        let expected = 5 + accs.iter().map(|a| a.n_fields()).sum::<usize>();
        if slots.num_columns() != expected {
            return Err(bad("it holds other aggregations"));
        }
        Ok(State {
            rows_seen,
            last_key,
            cur_bin,
            cursors,
            open: open_slots,
            accs,
        })
    }
}
