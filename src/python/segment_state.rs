//! The live state of a SegmentedAggregator between two calls.
//!
//! A stream of chunks hands the engine's state from one call to the next as
//! this object, unconverted; its Arrow form (the batches that persist without
//! pickle) is built only when Python reads the aggregator's `state`. Each
//! crossing in Arrow form cost tens of microseconds, which a stream of small
//! chunks paid twice per call.

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3_arrow::PyRecordBatch;

use crate::python::rolling::queries_batch;
use crate::segments::rolling::RollState;
use crate::segments::window_join::JoinState;
use crate::segments::State;

#[derive(Clone)]
pub enum Live {
    Bins(State),
    Roll(RollState),
    Join(JoinState),
}

#[pyclass(frozen, module = "oups._oups")]
pub struct SegmentState(pub Live);

#[pymethods]
impl SegmentState {
    /// The key of the latest row the engine has taken in.
    #[getter]
    fn last_key(&self) -> Option<i64> {
        match &self.0 {
            Live::Bins(s) => s.last_key,
            Live::Roll(s) => s.last_key,
            Live::Join(s) => s.roll.last_key,
        }
    }

    /// The Arrow form, a tuple the engine takes back as `state`: bins
    /// `(rows_seen, last_key, cur_bin, groups, slots)`, rolling `(last_key,
    /// lanes, rows)`, window joins `(last_key, lanes, rows, queries,
    /// last_query)`.
    fn export<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let batch =
            |b| -> PyResult<Py<PyAny>> { Ok(PyRecordBatch::new(b).into_pyarrow(py)?.unbind()) };
        let items: Vec<Py<PyAny>> = match &self.0 {
            Live::Bins(s) => {
                let (g, slots) = s.to_batches()?;
                vec![
                    s.rows_seen.into_pyobject(py)?.into_any().unbind(),
                    s.last_key.into_pyobject(py)?.into_any().unbind(),
                    s.cur_bin.into_pyobject(py)?.into_any().unbind(),
                    batch(g)?,
                    batch(slots)?,
                ]
            }
            Live::Roll(s) => {
                let (l, r) = s.to_batches()?;
                vec![
                    s.last_key.into_pyobject(py)?.into_any().unbind(),
                    batch(l)?,
                    batch(r)?,
                ]
            }
            Live::Join(s) => {
                let (l, r) = s.roll.to_batches()?;
                let queries = queries_batch(s.pending_keys.clone(), s.pending_groups.clone())?;
                vec![
                    s.roll.last_key.into_pyobject(py)?.into_any().unbind(),
                    batch(l)?,
                    batch(r)?,
                    batch(queries)?,
                    s.last_query.into_pyobject(py)?.into_any().unbind(),
                ]
            }
        };
        PyTuple::new(py, items)
    }
}

/// The state of a call: the live object a previous call returned, if it is
/// of the expected kind, else `None` (the caller then reads the Arrow form).
pub fn live(state: Option<&Bound<'_, PyAny>>) -> Option<Live> {
    let state = state?.cast::<SegmentState>().ok()?;
    Some(state.get().0.clone())
}
