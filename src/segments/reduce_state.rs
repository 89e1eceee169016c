//! The accumulators of open slots as state columns, and back: what an
//! aggregator carries from one call to the next.

use std::sync::Arc;

use arrow_array::types::Int64Type;
use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray};

use crate::error::{OupsError, Result};
use crate::segments::reduce::Acc;

/// State column `k`, of type `A`, `n` long and without nulls.
fn field<A: Array + 'static>(columns: &[ArrayRef], k: usize, n: usize) -> Option<&A> {
    let a = columns.get(k)?.as_any().downcast_ref::<A>()?;
    (a.len() == n && a.null_count() == 0).then_some(a)
}

impl Acc {
    /// How many state columns [`Acc::carry`] gives.
    pub fn n_fields(&self) -> usize {
        match self {
            Acc::PickF64 { .. } | Acc::PickI64 { .. } | Acc::SumF64 { .. } => 2,
            Acc::SumI64 { .. } | Acc::Count { .. } | Acc::Nunique { .. } => 1,
            Acc::Mean { .. } | Acc::Var { .. } => 3,
            Acc::WeightedMean { .. } => 4,
        }
    }

    /// The accumulators of the slots in `open`, as state columns.
    pub fn carry(&self, open: &[u32]) -> Vec<ArrayRef> {
        let f = |x: &[f64]| -> ArrayRef {
            Arc::new(Float64Array::from_iter_values(
                open.iter().map(|s| x[*s as usize]),
            ))
        };
        let i = |x: &[i64]| -> ArrayRef {
            Arc::new(Int64Array::from_iter_values(
                open.iter().map(|s| x[*s as usize]),
            ))
        };
        let b = |x: &[bool]| -> ArrayRef {
            Arc::new(BooleanArray::from_iter(
                open.iter().map(|s| Some(x[*s as usize])),
            ))
        };
        match self {
            Acc::PickF64 { v, has, .. } => vec![f(v), b(has)],
            Acc::PickI64 { v, has, .. } => vec![i(v), b(has)],
            Acc::SumF64 { s, c } => vec![f(s), f(c)],
            Acc::SumI64 { s } => vec![i(s)],
            Acc::Mean { s, c, n } => vec![f(s), f(c), i(n)],
            Acc::Count { n } => vec![i(n)],
            Acc::Var { n, mean, m2, .. } => vec![i(n), f(mean), f(m2)],
            Acc::WeightedMean { sv, cv, sw, cw } => vec![f(sv), f(cv), f(sw), f(cw)],
            Acc::Nunique { sets } => {
                let lists = open.iter().map(|s| {
                    let mut values: Vec<i64> =
                        sets[*s as usize].iter().map(|x| *x as i64).collect();
                    values.sort_unstable();
                    Some(values.into_iter().map(Some).collect::<Vec<_>>())
                });
                vec![Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(
                    lists,
                ))]
            }
        }
    }

    /// Restores the slots of [`Acc::carry`] columns, after an empty `self`.
    pub fn restore(&mut self, columns: &[ArrayRef]) -> Result<()> {
        let n = columns.first().map_or(0, |c| c.len());
        let bad = || {
            OupsError::InvalidArgument(
                "'state' does not match this aggregator's aggregations; pass the state of an \
             aggregator built with the same arguments, or None"
                    .into(),
            )
        };
        let f = |k: usize| field::<Float64Array>(columns, k, n).map(|a| a.values().to_vec());
        let i = |k: usize| field::<Int64Array>(columns, k, n).map(|a| a.values().to_vec());
        let b =
            |k: usize| field::<BooleanArray>(columns, k, n).map(|a| a.values().iter().collect());
        if columns.len() != self.n_fields() {
            return Err(bad());
        }
        match self {
            Acc::PickF64 { v, has, .. } => {
                *v = f(0).ok_or_else(bad)?;
                *has = b(1).ok_or_else(bad)?;
            }
            Acc::PickI64 { v, has, .. } => {
                *v = i(0).ok_or_else(bad)?;
                *has = b(1).ok_or_else(bad)?;
            }
            Acc::SumF64 { s, c } => {
                *s = f(0).ok_or_else(bad)?;
                *c = f(1).ok_or_else(bad)?;
            }
            Acc::SumI64 { s } => *s = i(0).ok_or_else(bad)?,
            Acc::Mean { s, c, n } => {
                *s = f(0).ok_or_else(bad)?;
                *c = f(1).ok_or_else(bad)?;
                *n = i(2).ok_or_else(bad)?;
            }
            Acc::Count { n } => *n = i(0).ok_or_else(bad)?,
            Acc::Var { n, mean, m2, .. } => {
                *n = i(0).ok_or_else(bad)?;
                *mean = f(1).ok_or_else(bad)?;
                *m2 = f(2).ok_or_else(bad)?;
            }
            Acc::WeightedMean { sv, cv, sw, cw } => {
                *sv = f(0).ok_or_else(bad)?;
                *cv = f(1).ok_or_else(bad)?;
                *sw = f(2).ok_or_else(bad)?;
                *cw = f(3).ok_or_else(bad)?;
            }
            Acc::Nunique { sets } => {
                let lists = columns[0]
                    .as_any()
                    .downcast_ref::<ListArray>()
                    .ok_or_else(bad)?;
                *sets = (0..lists.len())
                    .map(|k| {
                        let values = lists.value(k);
                        let values = values
                            .as_any()
                            .downcast_ref::<Int64Array>()
                            .ok_or_else(bad)?;
                        Ok(values.values().iter().map(|x| *x as u64).collect())
                    })
                    .collect::<Result<_>>()?;
            }
        }
        if self.len() != n {
            return Err(bad());
        }
        Ok(())
    }
}
