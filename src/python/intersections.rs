//! `oups._oups.RawIntersections`: the native iterator behind
//! `Store.iter_intersections`, and bound conversion shared with range reads.

use std::sync::Mutex;

use arrow_schema::DataType;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3_arrow::PyRecordBatch;

use crate::dataset::ordered_key::{encode_f64, encode_i64, key_kind, KeyKind};
use crate::dataset::range_read::KeyRange;
use crate::error::{OupsError, Result};
use crate::python::dataset::RawDataset;
use crate::python::errors::run;
use crate::python::handover::{split, Split};
use crate::store::intersections::Intersections;

/// A bound already converted by Python into the column's physical value
/// (an int for integer and temporal columns, a float for float columns).
#[derive(Clone, Copy, FromPyObject)]
pub enum PhysicalBound {
    Int(i128),
    Float(f64),
}

fn bound_key(kind: KeyKind, b: PhysicalBound) -> Result<u64> {
    let bad = || OupsError::InvalidType("a range bound does not match the ordered column".into());
    Ok(match (kind, b) {
        (KeyKind::Signed, PhysicalBound::Int(v)) => {
            encode_i64(i64::try_from(v).map_err(|_| bad())?)
        }
        (KeyKind::Unsigned, PhysicalBound::Int(v)) => u64::try_from(v).map_err(|_| bad())?,
        (KeyKind::Float, PhysicalBound::Float(v)) => encode_f64(v),
        (KeyKind::Float, PhysicalBound::Int(v)) => encode_f64(v as f64),
        _ => return Err(bad()),
    })
}

pub fn key_range(
    dt: &DataType,
    start: Option<PhysicalBound>,
    end_excl: Option<PhysicalBound>,
) -> Result<KeyRange> {
    let kind = key_kind(dt, "")?;
    Ok(KeyRange {
        start: start.map(|b| bound_key(kind, b)).transpose()?,
        end_excl: end_excl.map(|b| bound_key(kind, b)).transpose()?,
    })
}

/// Types whose keys compare meaningfully with each other.
fn domain(dt: &DataType) -> String {
    match dt {
        d if d.is_signed_integer() => "signed integer".into(),
        d if d.is_unsigned_integer() => "unsigned integer".into(),
        d if d.is_floating() => "floating point".into(),
        other => other.to_string(),
    }
}

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
        datasets: Vec<Option<PyRef<'_, RawDataset>>>,
        names: Vec<String>,
        n_prev: Vec<usize>,
        start: Option<PhysicalBound>,
        end_excl: Option<PhysicalBound>,
    ) -> PyResult<Self> {
        let raws: Vec<Option<&RawDataset>> = datasets.iter().map(|d| d.as_deref()).collect();
        let inner = run(py, || {
            let mut snaps = Vec::with_capacity(raws.len());
            for raw in &raws {
                snaps.push(match raw {
                    Some(raw) => raw.snapshot()?,
                    None => None,
                });
            }
            let mut first: Option<(usize, &DataType)> = None;
            for (i, s) in snaps.iter().enumerate() {
                let Some(s) = s else { continue };
                match first {
                    None => first = Some((i, &s.ordered_type)),
                    Some((j, dt)) if domain(dt) != domain(&s.ordered_type) => {
                        return Err(OupsError::SchemaMismatch(format!(
                            "the ordered columns cannot be compared: '{}' is {dt}, but '{}' is {}",
                            names[j], names[i], s.ordered_type
                        )));
                    }
                    _ => {}
                }
            }
            let range = match first {
                Some((_, dt)) => key_range(dt, start, end_excl)?,
                None => KeyRange::default(),
            };
            Ok(Intersections::new(snaps, range, n_prev))
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
