//! Bindings for the StatefulLoop engine parts: the state-file codec
//! (`save_state` / `load_state`).
//!
//! Sections cross as Arrow through the C data interface: tables as
//! `pyarrow.Table`, raw bytes as a `pyarrow` uint8 array (zero-copy views of
//! numpy buffers or pickles on the way in, of the file image on the way out).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arrow_array::{Array, RecordBatch, UInt8Array};
use arrow_buffer::ScalarBuffer;
use arrow_schema::SchemaRef;
use pyo3::prelude::*;
use pyo3_arrow::{PyArray, PyTable};

use crate::error::OupsError;
use crate::python::errors::run;
use crate::stateful_loop::state_file::{self, SectionIn, SectionOut, StateFile};
use crate::stateful_loop::state_object::{Expect, StateObject};

/// A section as Python sees it: its kind and its pyarrow object.
type Section = (&'static str, Py<PyAny>);

enum OwnedSection {
    Raw(UInt8Array),
    Arrow(SchemaRef, Vec<RecordBatch>),
}

/// Takes over the sections Python hands in: `("raw", uint8 pyarrow array)`
/// or `("arrow", table)` pairs.
fn owned_sections(sections: Vec<(String, Bound<'_, PyAny>)>) -> PyResult<Vec<OwnedSection>> {
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
    Ok(owned)
}

fn section_refs(owned: &[OwnedSection]) -> Vec<SectionOut<'_>> {
    owned
        .iter()
        .map(|s| match s {
            OwnedSection::Raw(a) => SectionOut::Raw(a.values().inner().as_slice()),
            OwnedSection::Arrow(schema, batches) => SectionOut::Arrow {
                schema: schema.clone(),
                batches,
            },
        })
        .collect()
}

/// The manifest and the sections as `("raw", pyarrow uint8 array)` /
/// `("arrow", pyarrow.Table)` pairs.
fn py_state(py: Python<'_>, loaded: StateFile) -> PyResult<(String, Vec<Section>)> {
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

/// Writes a state file atomically. `sections` is a list of `("raw", uint8
/// pyarrow array)` or `("arrow", table)` pairs.
#[pyfunction]
pub fn save_state(
    py: Python<'_>,
    path: PathBuf,
    manifest: String,
    sections: Vec<(String, Bound<'_, PyAny>)>,
) -> PyResult<()> {
    let owned = owned_sections(sections)?;
    run(py, move || {
        state_file::save(&path, &manifest, &section_refs(&owned))
    })
}

/// Reads and verifies a state file; returns the manifest and the sections
/// as `("raw", pyarrow uint8 array)` / `("arrow", pyarrow.Table)` pairs.
#[pyfunction]
pub fn load_state(py: Python<'_>, path: PathBuf) -> PyResult<(String, Vec<Section>)> {
    let loaded = run(py, move || state_file::load(&path))?;
    py_state(py, loaded)
}

/// A state file at an object-storage URL; each save is conditional on what
/// the loop last loaded or saved (see `stateful_loop/state_object.rs`).
#[pyclass(frozen, module = "oups._oups")]
pub struct RawStateObject {
    inner: StateObject,
    expect: Mutex<Expect>,
}

#[pymethods]
impl RawStateObject {
    #[new]
    #[pyo3(signature = (url, storage_options=None))]
    fn new(
        py: Python<'_>,
        url: String,
        storage_options: Option<BTreeMap<String, String>>,
    ) -> PyResult<Self> {
        let options = storage_options.unwrap_or_default();
        let inner = run(py, || StateObject::open(&url, &options))?;
        Ok(RawStateObject {
            inner,
            expect: Mutex::new(Expect::Absent),
        })
    }

    /// The manifest and sections, as `load_state` gives them; None when
    /// there is no state yet.
    fn load(&self, py: Python<'_>) -> PyResult<Option<(String, Vec<Section>)>> {
        let Some((loaded, expect)) = run(py, || self.inner.load())? else {
            return Ok(None);
        };
        *self.expect.lock().unwrap_or_else(|p| p.into_inner()) = expect;
        py_state(py, loaded).map(Some)
    }

    fn save(
        &self,
        py: Python<'_>,
        manifest: String,
        sections: Vec<(String, Bound<'_, PyAny>)>,
    ) -> PyResult<()> {
        let owned = owned_sections(sections)?;
        run(py, || {
            let mut expect = self.expect.lock().unwrap_or_else(|p| p.into_inner());
            *expect = self.inner.save(&manifest, &section_refs(&owned), &expect)?;
            Ok(())
        })
    }
}
