//! What to segment by and what to compute: the configuration of an
//! aggregator, fixed at its construction.

use arrow_buffer::NullBuffer;

use crate::error::{OupsError, Result};

/// Which end of a bin is closed, or which end labels it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

#[derive(Clone, Debug)]
pub enum Bins {
    /// Bins `[origin + b * step, origin + (b + 1) * step)` for every integer b.
    Fixed { origin: i64, step: i64 },
    /// Bins between consecutive edges, labelled by `labels` (the edges
    /// themselves, except for pandas' end-of-period frequencies, whose right
    /// edges are the last instant of the labelled day). `bounded`: rows
    /// outside the edges belong to no bin (user edges); otherwise the caller
    /// guarantees that the edges cover every key (calendar frequencies,
    /// extended chunk by chunk).
    Edges {
        edges: Vec<i64>,
        labels: Vec<i64>,
        bounded: bool,
        /// The stream index of `edges[0]`: bins are numbered over all the
        /// edges of a stream, of which the caller passes the ones still needed.
        base: i64,
        /// Streamed edges: rows past the last edge wait for the next edges
        /// (their bin is not known yet) instead of belonging to no bin.
        hold: bool,
    },
    /// A bin every `n` rows of a group.
    Rows(u64),
    /// A bin closes at the row that brings the running sum of `column` to
    /// `threshold` or more; that row belongs to it, and the sum restarts at 0.
    Threshold { column: usize, threshold: f64 },
}

impl Bins {
    /// Time-like bins are shared by all groups and close when the key passes
    /// their end; the others close at a row of their own group.
    pub fn time_like(&self) -> bool {
        matches!(self, Bins::Fixed { .. } | Bins::Edges { .. })
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AggKind {
    First,
    Last,
    Min,
    Max,
    Sum,
    Mean,
    Count,
    Var {
        ddof: u32,
    },
    Std {
        ddof: u32,
    },
    /// Mean of `column` weighted by `weight`.
    WeightedMean,
    Nunique,
}

#[derive(Clone, Debug)]
pub struct AggSpec {
    pub kind: AggKind,
    pub column: usize,
    pub weight: Option<usize>,
}

#[derive(Clone, Debug)]
pub struct Spec {
    pub bins: Bins,
    pub closed: Side,
    pub label: Side,
    /// Emit the empty time bins between two bins of a group (pandas'
    /// `resample`), or leave them out.
    pub keep_empty: bool,
    pub aggs: Vec<AggSpec>,
}

impl Spec {
    pub fn validate(&self, n_columns: usize) -> Result<()> {
        let bad = |m: String| Err(OupsError::InvalidArgument(m));
        match &self.bins {
            Bins::Fixed { step, .. } if *step <= 0 => {
                return bad(format!(
                    "'bins': the bin width must be positive, not {step}"
                ))
            }
            Bins::Edges { edges, labels, .. } => {
                if labels.len() != edges.len() {
                    return Err(OupsError::Internal(
                        "edges and labels differ in length".into(),
                    ));
                }
                if let Some(w) = edges.windows(2).position(|w| w[0] >= w[1]) {
                    return bad(format!(
                        "edges must be strictly increasing, and each call's after the earlier \
                         ones: {} does not come after {}",
                        edges[w + 1],
                        edges[w]
                    ));
                }
            }
            Bins::Rows(0) => return bad("'bins': a row count must be at least 1".into()),
            Bins::Threshold { threshold, column } => {
                if !(threshold.is_finite() && *threshold > 0.0) {
                    return bad(format!(
                        "'bins': the threshold must be a positive number, not {threshold}"
                    ));
                }
                if *column >= n_columns {
                    return Err(OupsError::Internal("threshold column out of range".into()));
                }
            }
            _ => {}
        }
        for a in &self.aggs {
            if a.column >= n_columns || a.weight.is_some_and(|w| w >= n_columns) {
                return Err(OupsError::Internal(
                    "aggregation column out of range".into(),
                ));
            }
            if (a.kind == AggKind::WeightedMean) != a.weight.is_some() {
                return Err(OupsError::Internal(
                    "weight given to the wrong aggregation".into(),
                ));
            }
        }
        Ok(())
    }
}

/// One input column, as the engine reads it: nulls (and NaN, for floats)
/// are skipped by every aggregation.
#[derive(Clone, Copy)]
pub enum Values<'a> {
    F64(&'a [f64], Option<&'a NullBuffer>),
    I64(&'a [i64], Option<&'a NullBuffer>),
}

impl Values<'_> {
    pub fn len(&self) -> usize {
        match self {
            Values::F64(v, _) => v.len(),
            Values::I64(v, _) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of row `i` as a float, `None` for null or NaN.
    #[inline]
    pub fn f64_at(&self, i: usize) -> Option<f64> {
        match self {
            Values::F64(v, n) => {
                let x = v[i];
                (!x.is_nan() && n.is_none_or(|n| n.is_valid(i))).then_some(x)
            }
            Values::I64(v, n) => n.is_none_or(|n| n.is_valid(i)).then_some(v[i] as f64),
        }
    }
}

/// Float results, missing ones null *and* NaN in the values buffer: the
/// Python layer then hands the buffer to pandas (which knows only NaN)
/// without pyarrow's conversion of nulls, a pass and a copy per column.
#[derive(Default)]
pub struct FloatsOut {
    values: Vec<f64>,
    valid: Vec<bool>,
    nulls: usize,
}

impl FloatsOut {
    pub fn with_capacity(n: usize) -> Self {
        FloatsOut {
            values: Vec::with_capacity(n),
            valid: Vec::with_capacity(n),
            nulls: 0,
        }
    }

    #[inline]
    pub fn push(&mut self, x: Option<f64>) {
        self.values.push(x.unwrap_or(f64::NAN));
        self.valid.push(x.is_some());
        self.nulls += x.is_none() as usize;
    }

    pub fn finish(self) -> arrow_array::ArrayRef {
        let nulls = (self.nulls > 0).then(|| NullBuffer::from(self.valid));
        std::sync::Arc::new(arrow_array::Float64Array::new(self.values.into(), nulls))
    }
}
