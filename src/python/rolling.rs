//! `oups._oups.segment_roll` and `segment_join`: the bindings of the rolling
//! windows, at every row and at query keys. Inputs arrive converted as for
//! `segment_aggregate`.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, UInt32Array};
use pyo3::prelude::*;
use pyo3_arrow::{PyArray, PyRecordBatch};

use crate::error::OupsError;
use crate::python::errors::run;
use crate::python::handover::{with_columns, Handed};
use crate::python::segment_state::{live, Live, SegmentState};
use crate::python::segments::{agg_specs, groups_of, invalid, key_values, values};
use crate::segments::rolling::{roll, Closed, RollSpec, RollState, Window};
use crate::segments::segment::NO_GROUP;
use crate::segments::window_join::{join, JoinChunk, JoinState};

/// `(last_key, lanes, rows)`.
type RollStateIn = (Option<i64>, PyRecordBatch, PyRecordBatch);
/// `(last_key, lanes, rows, pending queries, last query key)`.
type JoinStateIn = (
    Option<i64>,
    PyRecordBatch,
    PyRecordBatch,
    PyRecordBatch,
    Option<i64>,
);
type Aggs = Vec<(String, usize, Option<usize>, u32)>;

fn roll_spec(
    window: (String, i64),
    closed: &str,
    min_periods: u64,
    aggs: &Aggs,
) -> PyResult<RollSpec> {
    let window = match (window.0.as_str(), window.1) {
        ("span", w) => Window::Span(w),
        ("rows", n) if n > 0 => Window::Rows(n as u64),
        (_, n) => return Err(invalid(format!("'window' must be at least 1 row, not {n}"))),
    };
    let closed = match closed {
        "right" => Closed::Right,
        "left" => Closed::Left,
        "both" => Closed::Both,
        "neither" => Closed::Neither,
        other => {
            return Err(invalid(format!(
                "'closed' must be 'right', 'left', 'both' or 'neither', not {other:?}"
            )))
        }
    };
    Ok(RollSpec {
        window,
        closed,
        min_periods,
        aggs: agg_specs(aggs)?,
    })
}

/// Rolls one chunk; returns a batch of the rows with a result (`row`: their
/// position in the chunk, then the aggregations not handed to numpy), those
/// handed, and the next state.
#[pyfunction]
#[pyo3(signature = (window, closed, min_periods, aggs, keys, groups, n_groups, columns, state, numpy_out))]
#[allow(clippy::too_many_arguments)]
pub fn segment_roll(
    py: Python<'_>,
    window: (String, i64),
    closed: &str,
    min_periods: u64,
    aggs: Aggs,
    keys: PyArray,
    groups: Option<(PyArray, Option<Vec<u32>>)>,
    n_groups: usize,
    columns: Vec<PyArray>,
    state: Option<Bound<'_, PyAny>>,
    numpy_out: bool,
) -> PyResult<(Py<PyAny>, Handed, Py<SegmentState>)> {
    let spec = roll_spec(window, closed, min_periods, &aggs)?;
    let keys = keys.into_inner().0;
    let keys = key_values(&keys)?;
    let group_ids = groups_of(groups, n_groups)?;
    let columns: Vec<ArrayRef> = columns.into_iter().map(|c| c.into_inner().0).collect();
    let values = columns.iter().map(values).collect::<Result<Vec<_>, _>>()?;
    let state = match (live(state.as_ref()), state) {
        (Some(Live::Roll(s)), _) => s,
        (_, None) => RollState::default(),
        (_, Some(arrow)) => {
            let (last_key, lanes, rows) = arrow.extract::<RollStateIn>()?;
            RollState::from_batches(&spec, last_key, &lanes.into_inner(), &rows.into_inner())?
        }
    };
    let out = run(py, || {
        roll(
            &spec,
            keys.values(),
            group_ids.as_deref(),
            n_groups,
            &values,
            &state,
        )
    })?;
    let rows: ArrayRef = Arc::new(UInt32Array::from(out.rows));
    let (batch, handed) = with_columns(py, vec![("row".into(), rows)], out.columns, numpy_out)?;
    let state = Py::new(py, SegmentState(Live::Roll(out.state)))?;
    Ok((batch, handed, state))
}

/// The pending queries of a join state, as `(key, group)` columns.
pub(super) fn queries_batch(keys: Vec<i64>, groups: Vec<u32>) -> PyResult<RecordBatch> {
    Ok(RecordBatch::try_from_iter([
        ("key", Arc::new(Int64Array::from(keys)) as ArrayRef),
        ("group", Arc::new(UInt32Array::from(groups))),
    ])
    .map_err(OupsError::from)?)
}

fn pending_queries(batch: &RecordBatch) -> PyResult<(Vec<i64>, Vec<u32>)> {
    let bad = || {
        invalid(
            "'state' holds no valid pending queries; pass the 'state' of an aggregator built \
             with the same arguments, or None",
        )
    };
    let keys = batch
        .column_by_name("key")
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
        .ok_or_else(bad)?;
    let groups = batch
        .column_by_name("group")
        .and_then(|c| c.as_any().downcast_ref::<UInt32Array>())
        .ok_or_else(bad)?;
    if keys.null_count() + groups.null_count() > 0 {
        return Err(bad());
    }
    Ok((keys.values().to_vec(), groups.values().to_vec()))
}

/// Rolls one chunk and answers the queries it completes (all of them when
/// `is_final`); returns a batch of the answered queries (`group`, null for a
/// null group, `key`, then one column per aggregation) and the next state.
#[pyfunction]
#[pyo3(signature = (window, closed, min_periods, aggs, keys, groups, n_groups, columns, query_keys, query_groups, state, is_final, numpy_out))]
#[allow(clippy::too_many_arguments)]
pub fn segment_join(
    py: Python<'_>,
    window: (String, i64),
    closed: &str,
    min_periods: u64,
    aggs: Aggs,
    keys: PyArray,
    groups: Option<(PyArray, Option<Vec<u32>>)>,
    n_groups: usize,
    columns: Vec<PyArray>,
    query_keys: PyArray,
    query_groups: Option<(PyArray, Option<Vec<u32>>)>,
    state: Option<Bound<'_, PyAny>>,
    is_final: bool,
    numpy_out: bool,
) -> PyResult<(Py<PyAny>, Handed, Py<SegmentState>)> {
    let spec = roll_spec(window, closed, min_periods, &aggs)?;
    let keys = keys.into_inner().0;
    let keys = key_values(&keys)?;
    let query_keys = query_keys.into_inner().0;
    let query_keys = key_values(&query_keys)?;
    let group_ids = groups_of(groups, n_groups)?;
    let query_group_ids = groups_of(query_groups, n_groups)?;
    let columns: Vec<ArrayRef> = columns.into_iter().map(|c| c.into_inner().0).collect();
    let values = columns.iter().map(values).collect::<Result<Vec<_>, _>>()?;
    let state = match (live(state.as_ref()), state) {
        (Some(Live::Join(s)), _) => s,
        (_, None) => JoinState::default(),
        (_, Some(arrow)) => {
            let (last_key, lanes, rows, queries, last_query) = arrow.extract::<JoinStateIn>()?;
            let (pending_keys, pending_groups) = pending_queries(queries.as_ref())?;
            let roll =
                RollState::from_batches(&spec, last_key, &lanes.into_inner(), &rows.into_inner())?;
            JoinState {
                roll,
                pending_keys,
                pending_groups,
                last_query,
            }
        }
    };
    let out = run(py, || {
        let chunk = JoinChunk {
            keys: keys.values(),
            groups: group_ids.as_deref(),
            columns: &values,
            query_keys: query_keys.values(),
            query_groups: query_group_ids.as_deref(),
        };
        join(&spec, &chunk, n_groups, &state, is_final)
    })?;
    let groups: ArrayRef = Arc::new(
        out.groups
            .iter()
            .map(|g| (*g != NO_GROUP).then_some(*g))
            .collect::<UInt32Array>(),
    );
    let keys: ArrayRef = Arc::new(Int64Array::from(out.keys));
    let fields = vec![("group".into(), groups), ("key".into(), keys)];
    let (batch, handed) = with_columns(py, fields, out.columns, numpy_out)?;
    let state = Py::new(py, SegmentState(Live::Join(out.state)))?;
    Ok((batch, handed, state))
}
