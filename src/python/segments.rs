//! `oups._oups.segment_aggregate`: the binding of the segmentation engine.
//! Arrays cross as Arrow; the Python layer has already turned keys into
//! int64, groups into dictionary codes and value columns into int64 or
//! float64.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int16Type, Int32Type, Int64Type, Int8Type, UInt32Type};
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, UInt32Array};
use arrow_schema::DataType;
use pyo3::prelude::*;
use pyo3_arrow::{PyArray, PyRecordBatch};

use crate::error::OupsError;
use crate::python::errors::run;
use crate::python::handover::{with_columns, Handed};
use crate::python::segment_state::{live, Live, SegmentState};
use crate::segments::run::ready_rows;
use crate::segments::segment::NO_GROUP;
use crate::segments::{aggregate, AggKind, AggSpec, Bins, Chunk, Side, Spec, State, Values};

/// `(rows_seen, last_key, cur_bin, groups, slots)`.
type StateIn = (u64, Option<i64>, Option<i64>, PyRecordBatch, PyRecordBatch);
type AggOut = (Py<PyAny>, Handed, Py<SegmentState>, usize, Option<i64>);

pub(super) fn invalid(msg: impl Into<String>) -> PyErr {
    OupsError::InvalidArgument(msg.into()).into()
}

fn side(name: &str, what: &str) -> PyResult<Side> {
    match name {
        "left" => Ok(Side::Left),
        "right" => Ok(Side::Right),
        other => Err(invalid(format!(
            "'{what}' must be 'left' or 'right', not {other:?}"
        ))),
    }
}

fn int64s(a: &ArrayRef, what: &str) -> PyResult<Vec<i64>> {
    let a = a
        .as_any()
        .downcast_ref::<Int64Array>()
        .filter(|a| a.null_count() == 0)
        .ok_or_else(|| OupsError::Internal(format!("{what} must be int64 without nulls")))?;
    Ok(a.values().to_vec())
}

fn bins(spec: &Bound<'_, PyAny>) -> PyResult<Bins> {
    let kind: String = spec.get_item(0)?.extract()?;
    Ok(match kind.as_str() {
        "fixed" => Bins::Fixed {
            origin: spec.get_item(1)?.extract()?,
            step: spec.get_item(2)?.extract()?,
        },
        "edges" => {
            let edges: PyArray = spec.get_item(1)?.extract()?;
            let labels: PyArray = spec.get_item(2)?.extract()?;
            let (edges, labels) = (edges.into_inner().0, labels.into_inner().0);
            Bins::Edges {
                edges: int64s(&edges, "edges")?,
                labels: int64s(&labels, "labels")?,
                bounded: spec.get_item(3)?.extract()?,
                base: spec.get_item(4)?.extract()?,
                hold: spec.get_item(5)?.extract()?,
            }
        }
        "rows" => Bins::Rows(spec.get_item(1)?.extract()?),
        "threshold" => Bins::Threshold {
            column: spec.get_item(1)?.extract()?,
            threshold: spec.get_item(2)?.extract()?,
        },
        other => return Err(OupsError::Internal(format!("unknown bins kind {other}")).into()),
    })
}

fn agg_kind(name: &str, ddof: u32) -> PyResult<AggKind> {
    Ok(match name {
        "first" => AggKind::First,
        "last" => AggKind::Last,
        "min" => AggKind::Min,
        "max" => AggKind::Max,
        "sum" => AggKind::Sum,
        "mean" => AggKind::Mean,
        "count" => AggKind::Count,
        "var" => AggKind::Var { ddof },
        "std" => AggKind::Std { ddof },
        "wmean" => AggKind::WeightedMean,
        "nunique" => AggKind::Nunique,
        other => return Err(OupsError::Internal(format!("unknown aggregation {other}")).into()),
    })
}

/// The engine's aggregation specs from `(kind, column, weight, ddof)`.
pub(super) fn agg_specs(aggs: &[(String, usize, Option<usize>, u32)]) -> PyResult<Vec<AggSpec>> {
    aggs.iter()
        .map(|(kind, column, weight, ddof)| {
            Ok(AggSpec {
                kind: agg_kind(kind, *ddof)?,
                column: *column,
                weight: *weight,
            })
        })
        .collect()
}

/// The `on` keys, int64 without nulls (NaT).
pub(super) fn key_values(keys: &ArrayRef) -> PyResult<&Int64Array> {
    let keys = keys
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| OupsError::Internal("keys must be int64".into()))?;
    if keys.null_count() > 0 {
        return Err(OupsError::Unsorted(
            "the 'on' column holds nulls (NaT); drop or fill them before aggregating".into(),
        )
        .into());
    }
    Ok(keys)
}

pub(super) fn values(a: &ArrayRef) -> Result<Values<'_>, OupsError> {
    if let Some(f) = a.as_any().downcast_ref::<Float64Array>() {
        return Ok(Values::F64(f.values(), f.nulls()));
    }
    if let Some(i) = a.as_any().downcast_ref::<Int64Array>() {
        return Ok(Values::I64(i.values(), i.nulls()));
    }
    Err(OupsError::Internal(format!(
        "value column of type {}",
        a.data_type()
    )))
}

/// Group ids from dictionary codes (pandas categorical codes, -1 for missing,
/// or Arrow dictionary indices, null for missing) through `remap` (code to
/// group id; `None` when they are equal).
fn group_ids(codes: &ArrayRef, remap: Option<&[u32]>, n_groups: usize) -> PyResult<Vec<u32>> {
    fn map<T: Copy + TryInto<usize>>(
        codes: &[T],
        valid: impl Fn(usize) -> bool,
        remap: Option<&[u32]>,
        n_groups: usize,
    ) -> PyResult<Vec<u32>> {
        let mut out = Vec::with_capacity(codes.len());
        for (i, c) in codes.iter().enumerate() {
            let id = match (*c).try_into() {
                Ok(c) if valid(i) => match remap {
                    Some(r) => r.get(c).copied(),
                    None => (c < n_groups).then_some(c as u32),
                },
                _ => Some(NO_GROUP),
            };
            out.push(id.ok_or_else(|| OupsError::Internal("group code out of range".into()))?);
        }
        Ok(out)
    }
    let valid = |i: usize| codes.is_valid(i);
    match codes.data_type() {
        DataType::Int8 => map(
            codes.as_primitive::<Int8Type>().values(),
            valid,
            remap,
            n_groups,
        ),
        DataType::Int16 => map(
            codes.as_primitive::<Int16Type>().values(),
            valid,
            remap,
            n_groups,
        ),
        DataType::Int32 => map(
            codes.as_primitive::<Int32Type>().values(),
            valid,
            remap,
            n_groups,
        ),
        DataType::Int64 => map(
            codes.as_primitive::<Int64Type>().values(),
            valid,
            remap,
            n_groups,
        ),
        DataType::UInt32 => map(
            codes.as_primitive::<UInt32Type>().values(),
            valid,
            remap,
            n_groups,
        ),
        other => Err(OupsError::Internal(format!("group codes of type {other}")).into()),
    }
}

/// The group ids of a chunk's `(codes, remap)`, if grouped.
pub(super) fn groups_of(
    groups: Option<(PyArray, Option<Vec<u32>>)>,
    n_groups: usize,
) -> PyResult<Option<Vec<u32>>> {
    groups
        .map(|(codes, remap)| group_ids(&codes.into_inner().0, remap.as_deref(), n_groups))
        .transpose()
}

/// Aggregates one chunk; returns a batch of the emitted bins (`group`,
/// `label`, then one column per aggregation), the next state, how many
/// leading rows were binned (the others wait for streamed edges) and the
/// first bin whose edges the next call still needs.
#[pyfunction]
#[pyo3(signature = (bins_spec, closed, label, keep_empty, aggs, keys, groups, n_groups, columns, state, is_final, numpy_out))]
#[allow(clippy::too_many_arguments)]
pub fn segment_aggregate(
    py: Python<'_>,
    bins_spec: &Bound<'_, PyAny>,
    closed: &str,
    label: &str,
    keep_empty: bool,
    aggs: Vec<(String, usize, Option<usize>, u32)>,
    keys: PyArray,
    groups: Option<(PyArray, Option<Vec<u32>>)>,
    n_groups: usize,
    columns: Vec<PyArray>,
    state: Option<Bound<'_, PyAny>>,
    is_final: bool,
    numpy_out: bool,
) -> PyResult<AggOut> {
    let spec = Spec {
        bins: bins(bins_spec)?,
        closed: side(closed, "closed")?,
        label: side(label, "label")?,
        keep_empty,
        aggs: agg_specs(&aggs)?,
    };
    let keys = keys.into_inner().0;
    let keys = key_values(&keys)?;
    let group_ids = groups_of(groups, n_groups)?;
    let columns: Vec<ArrayRef> = columns.into_iter().map(|c| c.into_inner().0).collect();
    let state = match (live(state.as_ref()), state) {
        (Some(Live::Bins(s)), _) => s,
        (_, None) => State::default(),
        (_, Some(arrow)) => {
            let (rows_seen, last_key, cur_bin, groups, slots) = arrow.extract::<StateIn>()?;
            let mut empty = Vec::with_capacity(spec.aggs.len());
            for a in &spec.aggs {
                let column = columns
                    .get(a.column)
                    .ok_or_else(|| OupsError::Internal("aggregation column out of range".into()))?;
                empty.push(crate::segments::reduce::Acc::new(a, &values(column)?));
            }
            let (groups, slots) = (groups.into_inner(), slots.into_inner());
            State::from_batches(rows_seen, last_key, cur_bin, &groups, &slots, empty)?
        }
    };
    let out = run(py, || {
        let ready = ready_rows(&spec, keys.values(), &state)?;
        // Zero-copy views of the rows binned now.
        let parts: Vec<ArrayRef> = columns.iter().map(|c| c.slice(0, ready)).collect();
        let chunk = Chunk {
            keys: &keys.values()[..ready],
            groups: group_ids.as_deref().map(|g| &g[..ready]),
            n_groups,
            columns: parts.iter().map(values).collect::<Result<_, _>>()?,
        };
        let out = aggregate(&spec, &chunk, &state, is_final)?;
        Ok((out, ready))
    })?;
    let (out, ready) = out;
    let needed = out.state.first_needed_bin(keep_empty);
    // One batch for all outputs: each object crossing to pyarrow costs
    // about 15 us, which small chunks would pay a dozen times.
    let fields: Vec<(String, ArrayRef)> = vec![
        ("group".into(), Arc::new(UInt32Array::from(out.groups))),
        ("label".into(), Arc::new(Int64Array::from(out.labels))),
    ];
    let (batch, handed) = with_columns(py, fields, out.columns, numpy_out)?;
    let state = Py::new(py, SegmentState(Live::Bins(out.state)))?;
    Ok((batch, handed, state, ready, needed))
}
