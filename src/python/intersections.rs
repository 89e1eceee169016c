//! `oups._oups.RawIntersections`: the native iterator behind
//! `Store.iter_intersections`.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3_arrow::PyRecordBatch;

use crate::dataset::bounds::PhysicalBound;
use crate::python::any_dataset::{AnyDataset, Native};
use crate::python::convert::PyBound;
use crate::python::errors::run;
use crate::python::handover::{split, Split};
use crate::store::intersections::Intersections;

/// One dataset's rows in a chunk, led by its position in `datasets`.
type Part<'py> = Bound<'py, PyTuple>;

#[pyclass(frozen, module = "oups._oups")]
pub struct RawIntersections {
    inner: Mutex<Intersections>,
}

#[pymethods]
impl RawIntersections {
    #[new]
    #[pyo3(signature = (datasets, names, n_prev, start=None, end_excl=None))]
    fn new(
        py: Python<'_>,
        datasets: Vec<Option<AnyDataset<'_>>>,
        names: Vec<String>,
        n_prev: Vec<usize>,
        start: Option<PyBound>,
        end_excl: Option<PyBound>,
    ) -> PyResult<Self> {
        let natives: Vec<Option<Native<'_>>> = datasets
            .iter()
            .map(|d| d.as_ref().map(AnyDataset::native))
            .collect();
        let inner = run(py, || {
            let mut snaps = Vec::with_capacity(natives.len());
            for raw in &natives {
                snaps.push(match raw {
                    Some(raw) => raw.source()?,
                    None => None,
                });
            }
            Intersections::new(
                snaps,
                &names,
                n_prev,
                start.map(PhysicalBound::from),
                end_excl.map(PhysicalBound::from),
            )
        })?;
        Ok(RawIntersections {
            inner: Mutex::new(inner),
        })
    }

    /// How many chunks the whole iteration yields (for progress bars).
    fn n_chunks(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .plan()
            .n_chunks()
    }

    /// `[(dataset position, pyarrow RecordBatch), ...]`, or None at the end.
    /// With `private`, each entry is `(position, rest, schema, raw)` instead,
    /// as `RawDataset.read_private` returns them: `raw` lists the fixed-width
    /// columns as writable uint8 arrays of the chunk's own private memory,
    /// `rest` the other columns and `schema` that of the whole.
    #[pyo3(signature = (private=false))]
    fn next_chunk<'py>(&self, py: Python<'py>, private: bool) -> PyResult<Option<Vec<Part<'py>>>> {
        let chunk = run(py, || {
            self.inner
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .next_chunk()
        })?;
        let Some(chunk) = chunk else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(chunk.len());
        for part in chunk {
            let item = if private {
                let schema = part.batch.schema();
                let Split { rest, raw } = split(py, part.batch, &schema, &part.private)?;
                PyTuple::new(
                    py,
                    [
                        part.source.into_pyobject(py)?.into_any(),
                        PyRecordBatch::new(rest).into_pyarrow(py)?,
                        pyo3_arrow::PySchema::new(schema).into_pyarrow(py)?,
                        raw.into_pyobject(py)?.into_any(),
                    ],
                )?
            } else {
                PyTuple::new(
                    py,
                    [
                        part.source.into_pyobject(py)?.into_any(),
                        PyRecordBatch::new(part.batch).into_pyarrow(py)?,
                    ],
                )?
            };
            out.push(item);
        }
        Ok(Some(out))
    }
}
