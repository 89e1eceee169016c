//! One group's trailing window for one aggregation: the rows in it and the
//! running accumulators, updated as rows enter and leave. Sums carry Kahan
//! compensation and variances Welford's, with pandas' separate compensations
//! for additions and removals, so that results match its `rolling`.

use std::collections::VecDeque;

use crate::segments::spec::AggKind;

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
    pub(super) fn add(&mut self, kind: AggKind, e: Entry) {
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

    pub(super) fn remove_front(&mut self, kind: AggKind) {
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
    pub(super) fn value(&self, kind: AggKind, min_periods: u64) -> Option<f64> {
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
