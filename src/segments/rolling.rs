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

use arrow_array::ArrayRef;

use crate::cores::cores;
use crate::error::{OupsError, Result};
use crate::segments::lane::{Entry, Lane};
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
    pub(super) fn has_current(self) -> bool {
        matches!(self, Closed::Right | Closed::Both)
    }

    /// The window's far end is included.
    pub(super) fn has_start(self) -> bool {
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

/// Runs `work` on every aggregation's lanes, on both cores when the chunk is
/// large enough to pay for a thread; results in aggregation order.
pub(super) fn per_lane<F>(lanes: &mut [Vec<Lane>], rows: usize, work: F) -> Result<Vec<ArrayRef>>
where
    F: Fn(usize, &mut Vec<Lane>) -> ArrayRef + Sync,
{
    let jobs: Vec<(usize, &mut Vec<Lane>)> = lanes.iter_mut().enumerate().collect();
    if jobs.len() < 2 || rows < 100_000 || cores() < 2 {
        return Ok(jobs.into_iter().map(|(j, l)| work(j, l)).collect());
    }
    Ok(crate::cores::on_two_threads(jobs, |(j, l)| work(j, l)))
}

/// The rolling state: per aggregation, per group, its lane.
#[derive(Clone, Debug, Default)]
pub struct RollState {
    pub last_key: Option<i64>,
    pub lanes: Vec<Vec<Lane>>,
}

impl RollState {
    /// The lanes the next chunk continues, checked against the spec.
    pub(super) fn start_lanes(&self, spec: &RollSpec) -> Result<Vec<Vec<Lane>>> {
        if self.lanes.is_empty() {
            return Ok(vec![Vec::new(); spec.aggs.len()]);
        }
        if self.lanes.len() != spec.aggs.len() {
            return Err(OupsError::InvalidArgument(
                "'state' holds other aggregations; pass the state of an aggregator built with \
                 the same arguments, or None"
                    .into(),
            ));
        }
        Ok(self.lanes.clone())
    }
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
    let mut lanes = state.start_lanes(spec)?;
    let columns = per_lane(&mut lanes, keys.len(), |j, lane| {
        let a = &spec.aggs[j];
        let w = a.weight.map(|w| columns[w]);
        run_lane(spec, a, keys, groups, columns[a.column], w, lane, n_groups)
    })?;
    let rows = (0..keys.len() as u32)
        .filter(|i| groups.is_none_or(|g| g[*i as usize] != NO_GROUP))
        .collect();
    Ok(RollOutput {
        rows,
        columns,
        state: RollState {
            last_key: keys.last().copied().or(state.last_key),
            lanes,
        },
    })
}
