//! Rolling windows: at every row, an aggregate of the rows of its group in a
//! trailing window (a duration or a row count), as pandas' `rolling`.
//!
//! Every aggregation runs as its own lane: per group, the rows in the window
//! (key, position in the group, value) and the running accumulators, updated
//! by adding the rows that enter and removing those that leave, with Kahan
//! compensation as pandas does (one compensation for additions, one for
//! removals). The lanes are the state: a chunked run continues the same
//! additions and removals in the same order as one call, so the results are
//! identical, and a restored state gives them too.

use std::collections::VecDeque;

use arrow_array::ArrayRef;

use crate::cores::cores;
use crate::error::{OupsError, Result};
use crate::segments::segment::NO_GROUP;
use crate::segments::spec::{AggKind, AggSpec, FloatsOut, Values};

/// Which ends of the window `(t - w, t]` are closed, as pandas' `closed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    Right,
    Left,
    Both,
    Neither,
}

impl Closed {
    /// The current row is in its own window.
    fn has_current(self) -> bool {
        matches!(self, Closed::Right | Closed::Both)
    }

    /// The window's far end is included.
    fn has_start(self) -> bool {
        matches!(self, Closed::Left | Closed::Both)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// A duration, in the key's unit.
    Span(i64),
    /// A number of rows of the group.
    Rows(u64),
}

#[derive(Clone, Debug)]
pub struct RollSpec {
    pub window: Window,
    pub closed: Closed,
    pub min_periods: u64,
    pub aggs: Vec<AggSpec>,
}

impl RollSpec {
    pub fn validate(&self, n_columns: usize) -> Result<()> {
        match self.window {
            Window::Span(w) if w <= 0 => {
                return Err(OupsError::InvalidArgument(format!(
                    "'window' must be a positive duration, not {w}"
                )))
            }
            Window::Rows(0) => {
                return Err(OupsError::InvalidArgument(
                    "'window' must be at least 1 row".into(),
                ))
            }
            _ => {}
        }
        for a in &self.aggs {
            if a.column >= n_columns || a.weight.is_some_and(|w| w >= n_columns) {
                return Err(OupsError::Internal(
                    "aggregation column out of range".into(),
                ));
            }
            if matches!(a.kind, AggKind::First | AggKind::Last | AggKind::Nunique) {
                return Err(OupsError::Internal(
                    "aggregation without a rolling form".into(),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Entry {
    pub(super) key: i64,
    pub(super) pos: u64,
    pub(super) v: f64,
    pub(super) w: f64,
}

impl Entry {
    /// Rows with a missing value (or weight) take part in windows but in no
    /// aggregate.
    pub(super) fn valid(&self) -> bool {
        !self.v.is_nan() && !self.w.is_nan()
    }
}

/// A Kahan sum with pandas' separate compensations for additions and removals.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct KahanPair {
    pub(super) sum: f64,
    pub(super) add: f64,
    pub(super) remove: f64,
}

impl KahanPair {
    #[inline]
    fn push(&mut self, x: f64) {
        let y = x - self.add;
        let t = self.sum + y;
        self.add = t - self.sum - y;
        self.sum = t;
    }

    #[inline]
    fn pull(&mut self, x: f64) {
        let y = -x - self.remove;
        let t = self.sum + y;
        self.remove = t - self.sum - y;
        self.sum = t;
    }
}

/// Welford's running variance with compensation, as pandas' `roll_var`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Welford {
    pub(super) mean: f64,
    pub(super) m2: f64,
    pub(super) add: f64,
    pub(super) remove: f64,
}

impl Welford {
    #[inline]
    fn push(&mut self, x: f64, nobs: u64) {
        let prev = self.mean - self.add;
        let y = x - self.add;
        let t = y - self.mean;
        self.add = t + self.mean - y;
        self.mean += t / nobs as f64;
        self.m2 += (x - prev) * (x - self.mean);
    }

    #[inline]
    fn pull(&mut self, x: f64, nobs: u64) {
        if nobs == 0 {
            self.mean = 0.0;
            self.m2 = 0.0;
            return;
        }
        let prev = self.mean - self.remove;
        let y = x - self.remove;
        let t = y - self.mean;
        self.remove = t + self.mean - y;
        self.mean -= t / nobs as f64;
        self.m2 -= (x - prev) * (x - self.mean);
    }
}

/// One group's window for one aggregation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lane {
    /// The rows in the window, oldest first.
    pub(super) rows: VecDeque<Entry>,
    /// Rows seen but not yet in any window, when a row is not in its own
    /// window (`closed` "left" or "neither"): the previous row for a row
    /// count, the rows of the latest key for a duration.
    pub(super) pending: VecDeque<Entry>,
    /// Rows seen of this group: the position of the next one.
    pub(super) seen: u64,
    pub(super) nobs: u64,
    pub(super) sum: KahanPair,
    pub(super) weights: KahanPair,
    pub(super) var: Welford,
    pub(super) negatives: u64,
    /// Min/max candidates: positions and values, oldest first.
    pub(super) extremes: VecDeque<(u64, f64)>,
}

impl Lane {
    fn add(&mut self, kind: AggKind, e: Entry) {
        self.rows.push_back(e);
        if !e.valid() {
            return;
        }
        self.nobs += 1;
        match kind {
            AggKind::Sum | AggKind::Mean => {
                self.sum.push(e.v);
                self.negatives += e.v.is_sign_negative() as u64;
            }
            AggKind::WeightedMean => {
                self.sum.push(e.v * e.w);
                self.weights.push(e.w);
            }
            AggKind::Var { .. } | AggKind::Std { .. } => self.var.push(e.v, self.nobs),
            AggKind::Min | AggKind::Max => {
                let max = kind == AggKind::Max;
                while let Some(&(_, back)) = self.extremes.back() {
                    if (max && back <= e.v) || (!max && back >= e.v) {
                        self.extremes.pop_back();
                    } else {
                        break;
                    }
                }
                self.extremes.push_back((e.pos, e.v));
            }
            _ => {}
        }
    }

    fn remove_front(&mut self, kind: AggKind) {
        let Some(e) = self.rows.pop_front() else {
            return;
        };
        if !e.valid() {
            return;
        }
        self.nobs -= 1;
        match kind {
            AggKind::Sum | AggKind::Mean => {
                self.sum.pull(e.v);
                self.negatives -= e.v.is_sign_negative() as u64;
            }
            AggKind::WeightedMean => {
                self.sum.pull(e.v * e.w);
                self.weights.pull(e.w);
            }
            AggKind::Var { .. } | AggKind::Std { .. } => self.var.pull(e.v, self.nobs),
            AggKind::Min | AggKind::Max
                if self.extremes.front().is_some_and(|(p, _)| *p == e.pos) =>
            {
                self.extremes.pop_front();
            }
            _ => {}
        }
    }

    /// The window's result, pandas' way: missing below `min_periods`
    /// values; a sum of no value is 0 (with `min_periods=0`).
    fn value(&self, kind: AggKind, min_periods: u64) -> Option<f64> {
        let n = self.nobs;
        if kind == AggKind::Count {
            // pandas counts the rows of the window against min_periods.
            return (self.rows.len() as u64 >= min_periods).then_some(n as f64);
        }
        if n < min_periods {
            return None;
        }
        match kind {
            AggKind::Sum => Some(if n == 0 { 0.0 } else { self.sum.sum }),
            _ if n == 0 => None,
            AggKind::Mean => {
                let m = self.sum.sum / n as f64;
                // pandas: the mean of values of one sign keeps that sign.
                let clipped = (self.negatives == 0 && m < 0.0) || (self.negatives == n && m > 0.0);
                Some(if clipped { 0.0 } else { m })
            }
            AggKind::WeightedMean => {
                (self.weights.sum != 0.0).then(|| self.sum.sum / self.weights.sum)
            }
            AggKind::Var { ddof } | AggKind::Std { ddof } => {
                if n <= ddof as u64 {
                    return None;
                }
                let var = if n == 1 {
                    0.0
                } else {
                    (self.var.m2 / (n - ddof as u64) as f64).max(0.0)
                };
                Some(if matches!(kind, AggKind::Std { .. }) {
                    var.sqrt()
                } else {
                    var
                })
            }
            AggKind::Min | AggKind::Max => self.extremes.front().map(|(_, v)| *v),
            _ => None,
        }
    }
}

/// Moves one group's window to row `e` (its next row) and returns the value
/// of the window of `e`.
fn step(lane: &mut Lane, spec: &RollSpec, kind: AggKind, e: Entry) -> Option<f64> {
    // Rows before the window's far end leave first, then the rows that enter.
    let leaves = |r: &Entry| match spec.window {
        Window::Span(w) => {
            let bound = e.key.saturating_sub(w);
            if spec.closed.has_start() {
                r.key < bound
            } else {
                r.key <= bound
            }
        }
        Window::Rows(n) => {
            // Positions `pos > e.pos - n` (`>=` when the far end is closed).
            let reach = n + spec.closed.has_start() as u64;
            r.pos + reach <= e.pos
        }
    };
    while lane.rows.front().is_some_and(leaves) {
        lane.remove_front(kind);
    }
    if spec.closed.has_current() {
        lane.add(kind, e);
    } else {
        // pandas keeps a row out of the windows of the rows of its own key.
        let enters = |p: &Entry| match spec.window {
            Window::Span(_) => p.key < e.key,
            Window::Rows(_) => true,
        };
        while lane.pending.front().is_some_and(enters) {
            if let Some(p) = lane.pending.pop_front() {
                if !leaves(&p) {
                    lane.add(kind, p);
                }
            }
        }
        lane.pending.push_back(e);
    }
    lane.value(kind, spec.min_periods)
}

/// One aggregation over all rows of the chunk, continuing `lanes`.
#[allow(clippy::too_many_arguments)]
fn run_lane(
    spec: &RollSpec,
    agg: &AggSpec,
    keys: &[i64],
    groups: Option<&[u32]>,
    values: Values<'_>,
    weight: Option<Values<'_>>,
    lanes: &mut Vec<Lane>,
    n_groups: usize,
) -> ArrayRef {
    lanes.resize_with(n_groups.max(1), Lane::default);
    let mut out = FloatsOut::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        let g = groups.map_or(0, |g| g[i]);
        if g == NO_GROUP {
            continue;
        }
        let lane = &mut lanes[g as usize];
        let e = Entry {
            key: *key,
            pos: lane.seen,
            v: values.f64_at(i).unwrap_or(f64::NAN),
            w: weight.map_or(0.0, |w| w.f64_at(i).unwrap_or(f64::NAN)),
        };
        lane.seen += 1;
        out.push(step(lane, spec, agg.kind, e));
    }
    out.finish()
}

/// The rolling state: per aggregation, per group, its lane.
#[derive(Clone, Debug, Default)]
pub struct RollState {
    pub last_key: Option<i64>,
    pub lanes: Vec<Vec<Lane>>,
}

pub struct RollOutput {
    /// Positions in the chunk of the rows with a result (all but null groups).
    pub rows: Vec<u32>,
    pub columns: Vec<ArrayRef>,
    pub state: RollState,
}

/// Rolls one chunk on top of `state`; the state is returned, never changed in
/// place, so that an error leaves the caller's as it was.
pub fn roll(
    spec: &RollSpec,
    keys: &[i64],
    groups: Option<&[u32]>,
    n_groups: usize,
    columns: &[Values<'_>],
    state: &RollState,
) -> Result<RollOutput> {
    spec.validate(columns.len())?;
    crate::segments::run::check_keys(keys, state.last_key)?;
    let mut lanes = if state.lanes.is_empty() {
        vec![Vec::new(); spec.aggs.len()]
    } else {
        state.lanes.clone()
    };
    if lanes.len() != spec.aggs.len() {
        return Err(OupsError::InvalidArgument(
            "'state' holds other aggregations; pass the state of an aggregator built with the \
             same arguments, or None"
                .into(),
        ));
    }
    let mut results: Vec<Option<ArrayRef>> = vec![None; spec.aggs.len()];
    let jobs: Vec<(usize, &mut Vec<Lane>)> = lanes.iter_mut().enumerate().collect();
    let work = |(j, lane): (usize, &mut Vec<Lane>)| {
        let a = &spec.aggs[j];
        let w = a.weight.map(|w| columns[w]);
        (
            j,
            run_lane(spec, a, keys, groups, columns[a.column], w, lane, n_groups),
        )
    };
    if jobs.len() < 2 || keys.len() < 100_000 || cores() < 2 {
        for job in jobs {
            let (j, r) = work(job);
            results[j] = Some(r);
        }
    } else {
        let (even, odd) = crate::cores::halves(jobs);
        let done = std::thread::scope(|scope| {
            let other = scope.spawn(|| odd.into_iter().map(&work).collect::<Vec<_>>());
            let mut mine: Vec<_> = even.into_iter().map(&work).collect();
            mine.extend(other.join().unwrap_or_default());
            mine
        });
        for (j, r) in done {
            results[j] = Some(r);
        }
    }
    let rows = (0..keys.len() as u32)
        .filter(|i| groups.is_none_or(|g| g[*i as usize] != NO_GROUP))
        .collect();
    let columns = results
        .into_iter()
        .map(|r| r.ok_or_else(|| OupsError::Internal("a rolling lane did not run".into())))
        .collect::<Result<_>>()?;
    Ok(RollOutput {
        rows,
        columns,
        state: RollState {
            last_key: keys.last().copied().or(state.last_key),
            lanes,
        },
    })
}
