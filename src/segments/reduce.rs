//! Pass 2: the running aggregates of every slot, one struct-of-arrays per
//! aggregation. They follow pandas' groupby kernels (Kahan sums, Welford
//! variance, NaN and nulls skipped), and a slot's accumulator sees its values
//! in row order whether they arrive in one call or many, so chunked and
//! one-shot results are identical.

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::builder::Int64Builder;
use arrow_array::ArrayRef;

use crate::segments::segment::NO_SLOT;
use crate::segments::spec::{AggKind, AggSpec, FloatsOut, Values};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pick {
    First,
    Last,
    Min,
    Max,
}

#[derive(Clone, Debug)]
pub enum Acc {
    PickF64 {
        pick: Pick,
        v: Vec<f64>,
        has: Vec<bool>,
    },
    PickI64 {
        pick: Pick,
        v: Vec<i64>,
        has: Vec<bool>,
    },
    SumF64 {
        s: Vec<f64>,
        c: Vec<f64>,
    },
    SumI64 {
        s: Vec<i64>,
    },
    Mean {
        s: Vec<f64>,
        c: Vec<f64>,
        n: Vec<i64>,
    },
    Count {
        n: Vec<i64>,
    },
    Var {
        n: Vec<i64>,
        mean: Vec<f64>,
        m2: Vec<f64>,
        ddof: u32,
        sqrt: bool,
    },
    WeightedMean {
        sv: Vec<f64>,
        cv: Vec<f64>,
        sw: Vec<f64>,
        cw: Vec<f64>,
    },
    Nunique {
        sets: Vec<HashSet<u64>>,
    },
}

/// Kahan's step, as pandas' `group_sum` takes it (an infinite value makes
/// the compensation NaN, which is reset so that the sum stays infinite).
#[inline]
fn kahan(sum: &mut f64, comp: &mut f64, x: f64) {
    let y = x - *comp;
    let t = *sum + y;
    *comp = t - *sum - y;
    if comp.is_nan() {
        *comp = 0.0;
    }
    *sum = t;
}

/// Calls `f(slot, value)` for every row with a slot and a valid value.
#[inline]
fn each_f64(row_slot: &[u32], values: Values<'_>, mut f: impl FnMut(usize, f64)) {
    match values {
        Values::F64(v, None) => {
            for (s, x) in row_slot.iter().zip(v) {
                if *s != NO_SLOT && !x.is_nan() {
                    f(*s as usize, *x);
                }
            }
        }
        Values::I64(v, None) => {
            for (s, x) in row_slot.iter().zip(v) {
                if *s != NO_SLOT {
                    f(*s as usize, *x as f64);
                }
            }
        }
        _ => {
            for (i, s) in row_slot.iter().enumerate() {
                if *s != NO_SLOT {
                    if let Some(x) = values.f64_at(i) {
                        f(*s as usize, x);
                    }
                }
            }
        }
    }
}

#[inline]
fn each_i64(
    row_slot: &[u32],
    values: &[i64],
    nulls: Option<&arrow_buffer::NullBuffer>,
    mut f: impl FnMut(usize, i64),
) {
    match nulls {
        None => {
            for (s, x) in row_slot.iter().zip(values) {
                if *s != NO_SLOT {
                    f(*s as usize, *x);
                }
            }
        }
        Some(n) => {
            for (i, (s, x)) in row_slot.iter().zip(values).enumerate() {
                if *s != NO_SLOT && n.is_valid(i) {
                    f(*s as usize, *x);
                }
            }
        }
    }
}

/// Float bits for sets of distinct values: -0.0 and 0.0 are one value.
#[inline]
fn distinct_bits(x: f64) -> u64 {
    if x == 0.0 {
        0
    } else {
        x.to_bits()
    }
}

fn pick_of(kind: AggKind) -> Option<Pick> {
    Some(match kind {
        AggKind::First => Pick::First,
        AggKind::Last => Pick::Last,
        AggKind::Min => Pick::Min,
        AggKind::Max => Pick::Max,
        _ => return None,
    })
}

impl Acc {
    /// An empty accumulator for `spec` over a column like `values`.
    pub fn new(spec: &AggSpec, values: &Values<'_>) -> Acc {
        let int = matches!(values, Values::I64(..));
        if let Some(pick) = pick_of(spec.kind) {
            return if int {
                Acc::PickI64 {
                    pick,
                    v: vec![],
                    has: vec![],
                }
            } else {
                Acc::PickF64 {
                    pick,
                    v: vec![],
                    has: vec![],
                }
            };
        }
        match spec.kind {
            AggKind::Sum if int => Acc::SumI64 { s: vec![] },
            AggKind::Sum => Acc::SumF64 {
                s: vec![],
                c: vec![],
            },
            AggKind::Mean => Acc::Mean {
                s: vec![],
                c: vec![],
                n: vec![],
            },
            AggKind::Count => Acc::Count { n: vec![] },
            AggKind::Var { ddof } | AggKind::Std { ddof } => Acc::Var {
                n: vec![],
                mean: vec![],
                m2: vec![],
                ddof,
                sqrt: matches!(spec.kind, AggKind::Std { .. }),
            },
            AggKind::WeightedMean => Acc::WeightedMean {
                sv: vec![],
                cv: vec![],
                sw: vec![],
                cw: vec![],
            },
            _ => Acc::Nunique { sets: vec![] },
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Acc::PickF64 { has, .. } | Acc::PickI64 { has, .. } => has.len(),
            Acc::SumF64 { s, .. } | Acc::Mean { s, .. } => s.len(),
            Acc::SumI64 { s } => s.len(),
            Acc::Count { n } | Acc::Var { n, .. } => n.len(),
            Acc::WeightedMean { sw, .. } => sw.len(),
            Acc::Nunique { sets } => sets.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Grows to `n` slots; new slots hold no value.
    pub fn resize(&mut self, n: usize) {
        match self {
            Acc::PickF64 { v, has, .. } => {
                v.resize(n, 0.0);
                has.resize(n, false);
            }
            Acc::PickI64 { v, has, .. } => {
                v.resize(n, 0);
                has.resize(n, false);
            }
            Acc::SumF64 { s, c } => {
                s.resize(n, 0.0);
                c.resize(n, 0.0);
            }
            Acc::SumI64 { s } => s.resize(n, 0),
            Acc::Mean { s, c, n: cnt } => {
                s.resize(n, 0.0);
                c.resize(n, 0.0);
                cnt.resize(n, 0);
            }
            Acc::Count { n: cnt } => cnt.resize(n, 0),
            Acc::Var {
                n: cnt, mean, m2, ..
            } => {
                cnt.resize(n, 0);
                mean.resize(n, 0.0);
                m2.resize(n, 0.0);
            }
            Acc::WeightedMean { sv, cv, sw, cw } => {
                for x in [sv, cv, sw, cw] {
                    x.resize(n, 0.0);
                }
            }
            Acc::Nunique { sets } => sets.resize_with(n, HashSet::new),
        }
    }

    /// Adds the rows of one chunk.
    pub fn update(&mut self, row_slot: &[u32], values: Values<'_>, weight: Option<Values<'_>>) {
        match self {
            Acc::PickF64 { pick, v, has } => {
                let pick = *pick;
                each_f64(row_slot, values, |s, x| {
                    let keep = match pick {
                        Pick::First => !has[s],
                        Pick::Last => true,
                        Pick::Min => !has[s] || x < v[s],
                        Pick::Max => !has[s] || x > v[s],
                    };
                    if keep {
                        v[s] = x;
                        has[s] = true;
                    }
                });
            }
            Acc::PickI64 { pick, v, has } => {
                let Values::I64(data, nulls) = values else {
                    return;
                };
                let pick = *pick;
                each_i64(row_slot, data, nulls, |s, x| {
                    let keep = match pick {
                        Pick::First => !has[s],
                        Pick::Last => true,
                        Pick::Min => !has[s] || x < v[s],
                        Pick::Max => !has[s] || x > v[s],
                    };
                    if keep {
                        v[s] = x;
                        has[s] = true;
                    }
                });
            }
            Acc::SumF64 { s, c } => {
                each_f64(row_slot, values, |k, x| kahan(&mut s[k], &mut c[k], x))
            }
            Acc::SumI64 { s } => {
                if let Values::I64(data, nulls) = values {
                    each_i64(row_slot, data, nulls, |k, x| s[k] = s[k].wrapping_add(x));
                }
            }
            Acc::Mean { s, c, n } => each_f64(row_slot, values, |k, x| {
                n[k] += 1;
                kahan(&mut s[k], &mut c[k], x);
            }),
            Acc::Count { n } => each_f64(row_slot, values, |k, _| n[k] += 1),
            Acc::Var { n, mean, m2, .. } => each_f64(row_slot, values, |k, x| {
                n[k] += 1;
                let old = mean[k];
                mean[k] += (x - old) / n[k] as f64;
                m2[k] += (x - mean[k]) * (x - old);
            }),
            Acc::WeightedMean { sv, cv, sw, cw } => {
                let Some(w) = weight else { return };
                for (i, k) in row_slot.iter().enumerate() {
                    if *k == NO_SLOT {
                        continue;
                    }
                    if let (Some(x), Some(wi)) = (values.f64_at(i), w.f64_at(i)) {
                        let k = *k as usize;
                        kahan(&mut sv[k], &mut cv[k], x * wi);
                        kahan(&mut sw[k], &mut cw[k], wi);
                    }
                }
            }
            Acc::Nunique { sets } => match values {
                Values::I64(data, nulls) => each_i64(row_slot, data, nulls, |k, x| {
                    sets[k].insert(x as u64);
                }),
                Values::F64(..) => each_f64(row_slot, values, |k, x| {
                    sets[k].insert(distinct_bits(x));
                }),
            },
        }
    }

    /// The results of the slots in `order`.
    pub fn output(&self, order: &[u32]) -> ArrayRef {
        let float = |f: &dyn Fn(usize) -> Option<f64>| -> ArrayRef {
            let mut b = FloatsOut::with_capacity(order.len());
            for s in order {
                b.push(f(*s as usize));
            }
            b.finish()
        };
        let int = |f: &dyn Fn(usize) -> Option<i64>| -> ArrayRef {
            let mut b = Int64Builder::with_capacity(order.len());
            for s in order {
                b.append_option(f(*s as usize));
            }
            Arc::new(b.finish())
        };
        match self {
            Acc::PickF64 { v, has, .. } => float(&|s| has[s].then(|| v[s])),
            Acc::PickI64 { v, has, .. } => int(&|s| has[s].then(|| v[s])),
            Acc::SumF64 { s, .. } => float(&|k| Some(s[k])),
            Acc::SumI64 { s } => int(&|k| Some(s[k])),
            Acc::Mean { s, n, .. } => float(&|k| (n[k] > 0).then(|| s[k] / n[k] as f64)),
            Acc::Count { n } => int(&|k| Some(n[k])),
            Acc::Var {
                n, m2, ddof, sqrt, ..
            } => float(&|k| {
                (n[k] > *ddof as i64).then(|| {
                    let var = m2[k] / (n[k] - *ddof as i64) as f64;
                    if *sqrt {
                        var.sqrt()
                    } else {
                        var
                    }
                })
            }),
            Acc::WeightedMean { sv, sw, .. } => float(&|k| (sw[k] != 0.0).then(|| sv[k] / sw[k])),
            Acc::Nunique { sets } => int(&|k| Some(sets[k].len() as i64)),
        }
    }
}
