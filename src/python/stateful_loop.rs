//! Bindings for the StatefulLoop engine parts: the state-file codec
//! (`save_state` / `load_state`).
//!
//! Sections cross as Arrow through the C data interface: tables as
//! `pyarrow.Table`, raw bytes as a `pyarrow` uint8 array (zero-copy views of
//! numpy buffers or pickles on the way in, of the file image on the way out).

use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{Array, RecordBatch, UInt8Array};
use arrow_buffer::ScalarBuffer;
use arrow_schema::SchemaRef;
use pyo3::prelude::*;
use pyo3_arrow::{PyArray, PyTable};

use crate::error::OupsError;
use crate::python::errors::run;
use crate::stateful_loop::state_file::{self, SectionIn, SectionOut};

/// A section as Python sees it: its kind and its pyarrow object.
type Section = (&'static str, Py<PyAny>);

enum OwnedSection {
    Raw(UInt8Array),
    Arrow(SchemaRef, Vec<RecordBatch>),
}

/// Writes a state file atomically. `sections` is a list of `("raw", uint8
/// pyarrow array)` or `("arrow", table)` pairs.
#[pyfunction]
pub fn save_state(
    py: Python<'_>,
    path: PathBuf,
    manifest: String,
    sections: Vec<(String, Bound<'_, PyAny>)>,
) -> PyResult<()> {
    let mut owned = Vec::with_capacity(sections.len());
    for (kind, obj) in sections {
        owned.push(match kind.as_str() {
            "raw" => {
                let (array, _) = obj.extract::<PyArray>()?.into_inner();
                let bytes = array
                    .as_any()
                    .downcast_ref::<UInt8Array>()
                    .ok_or_else(|| {
                        OupsError::InvalidType("a raw section must be a uint8 array".into())
                    })?
                    .clone();
                OwnedSection::Raw(bytes)
            }
            "arrow" => {
                let (batches, schema) = obj.extract::<PyTable>()?.into_inner();
                OwnedSection::Arrow(schema, batches)
            }
            other => {
                return Err(
                    OupsError::InvalidArgument(format!("unknown section kind '{other}'")).into(),
                )
            }
        });
    }
    run(py, move || {
        let refs: Vec<SectionOut> = owned
            .iter()
            .map(|s| match s {
                OwnedSection::Raw(a) => SectionOut::Raw(a.values().inner().as_slice()),
                OwnedSection::Arrow(schema, batches) => SectionOut::Arrow {
                    schema: schema.clone(),
                    batches,
                },
            })
            .collect();
        state_file::save(&path, &manifest, &refs)
    })
}

/// Reads and verifies a state file; returns the manifest and the sections
/// as `("raw", pyarrow uint8 array)` / `("arrow", pyarrow.Table)` pairs.
#[pyfunction]
pub fn load_state(py: Python<'_>, path: PathBuf) -> PyResult<(String, Vec<Section>)> {
    let loaded = run(py, move || state_file::load(&path))?;
    let mut out = Vec::with_capacity(loaded.sections.len());
    for section in loaded.sections {
        out.push(match section {
            SectionIn::Raw(buffer) => {
                let len = buffer.len();
                let array = UInt8Array::new(ScalarBuffer::new(buffer, 0, len), None);
                let py_array = PyArray::from_array_ref(Arc::new(array));
                let exported = py_array.to_pyarrow(py)?.unbind();
                ("raw", exported)
            }
            SectionIn::Arrow { schema, batches } => (
                "arrow",
                PyTable::try_new(batches, schema)?
                    .into_pyarrow(py)?
                    .unbind(),
            ),
        });
    }
    Ok((loaded.manifest, out))
}
