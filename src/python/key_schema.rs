//! `oups._oups.RawKeySchema`: a compiled `@toplevel` key class.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt, PyList, PyString};

use crate::error::{OupsError, Result};
use crate::python::errors::{run, to_pyerr};
use crate::store::discover::discover;
use crate::store::key_schema::{FieldKind, FieldValue, KeySchema, Level};

#[pyclass(frozen, module = "oups._oups")]
pub struct RawKeySchema {
    inner: KeySchema,
    args: KeySchemaArgs,
}

/// `(class name, field separator, (field names, field kinds) per level)`.
type KeySchemaArgs = (String, String, Vec<(Vec<String>, Vec<String>)>);

fn to_values(items: &Bound<'_, PyList>) -> Result<Vec<FieldValue>> {
    let mut out = Vec::with_capacity(items.len());
    for item in items.iter() {
        if item.is_instance_of::<PyBool>() {
            return Err(OupsError::InvalidType(
                "a key field cannot be a bool; use an int or a str".into(),
            ));
        }
        if item.is_instance_of::<PyInt>() {
            let v: i64 = item.extract().map_err(|_| {
                OupsError::InvalidArgument(format!(
                    "key field value {item} does not fit in a 64-bit signed integer"
                ))
            })?;
            out.push(FieldValue::Int(v));
        } else if let Ok(s) = item.cast::<PyString>() {
            out.push(FieldValue::Str(s.to_string()));
        } else {
            return Err(OupsError::InvalidType(format!(
                "key field values must be int or str, got {}",
                item.get_type()
            )));
        }
    }
    Ok(out)
}

fn to_list<'py>(py: Python<'py>, values: &[FieldValue]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for v in values {
        match v {
            FieldValue::Int(i) => list.append(*i)?,
            FieldValue::Str(s) => list.append(s)?,
        }
    }
    Ok(list)
}

impl RawKeySchema {
    /// Discovered keys as one list per field (ints or strs), for Python.
    fn columns<'py>(
        &self,
        py: Python<'py>,
        found: &[Vec<FieldValue>],
    ) -> PyResult<Vec<Bound<'py, PyList>>> {
        let n_fields = self.inner.n_fields();
        let mut columns: Vec<Bound<'py, PyList>> = Vec::with_capacity(n_fields);
        for f in 0..n_fields {
            let column = match found.first().map(|k| &k[f]) {
                Some(FieldValue::Int(_)) => PyList::new(
                    py,
                    found.iter().map(|k| match &k[f] {
                        FieldValue::Int(i) => *i,
                        FieldValue::Str(_) => 0,
                    }),
                )?,
                _ => PyList::new(
                    py,
                    found.iter().map(|k| match &k[f] {
                        FieldValue::Str(s) => s.as_str(),
                        FieldValue::Int(_) => "",
                    }),
                )?,
            };
            columns.push(column);
        }
        Ok(columns)
    }
}

#[pymethods]
impl RawKeySchema {
    /// `levels`: one `(field names, field kinds)` pair per directory level,
    /// kinds being "int" or "str".
    #[new]
    fn new(
        class_name: String,
        sep: String,
        levels: Vec<(Vec<String>, Vec<String>)>,
    ) -> PyResult<Self> {
        let levels_arg = levels.clone();
        let mut compiled = Vec::with_capacity(levels.len());
        for (names, kinds) in levels {
            let kinds = kinds
                .iter()
                .map(|k| match k.as_str() {
                    "int" => Ok(FieldKind::Int),
                    "str" => Ok(FieldKind::Str),
                    other => Err(to_pyerr(OupsError::InvalidType(format!(
                        "key field kind must be 'int' or 'str', got {other:?}"
                    )))),
                })
                .collect::<PyResult<Vec<_>>>()?;
            compiled.push(Level { names, kinds });
        }
        let args = (class_name.clone(), sep.clone(), levels_arg);
        let inner = KeySchema::new(class_name, sep, compiled).map_err(to_pyerr)?;
        Ok(RawKeySchema { inner, args })
    }

    /// What `__new__` was given: a key class defined in a notebook or a
    /// script is pickled by value (to dask workers), its schema with it.
    fn __getnewargs__(&self) -> KeySchemaArgs {
        self.args.clone()
    }

    #[getter]
    fn depth(&self) -> usize {
        self.inner.depth()
    }

    /// Raises unless `values` (flat, all levels) make a key that round-trips.
    fn validate(&self, values: &Bound<'_, PyList>) -> PyResult<()> {
        let values = to_values(values).map_err(to_pyerr)?;
        self.inner.validate(&values).map_err(to_pyerr)
    }

    fn to_str(&self, values: &Bound<'_, PyList>) -> PyResult<String> {
        let values = to_values(values).map_err(to_pyerr)?;
        Ok(self.inner.to_str(&values))
    }

    /// One directory name per level, validated whatever the key class allowed.
    fn parts(&self, values: &Bound<'_, PyList>) -> PyResult<Vec<String>> {
        let values = to_values(values).map_err(to_pyerr)?;
        self.inner.checked_parts(&values).map_err(to_pyerr)
    }

    fn parse_str<'py>(&self, py: Python<'py>, text: &str) -> PyResult<Option<Bound<'py, PyList>>> {
        self.inner
            .parse_str(text)
            .map(|v| to_list(py, &v))
            .transpose()
    }

    fn parse_parts<'py>(
        &self,
        py: Python<'py>,
        parts: Vec<String>,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        self.inner
            .parse_parts(&parts)
            .map(|v| to_list(py, &v))
            .transpose()
    }

    /// Field values of every dataset under `base`, sorted, as one list per
    /// field (columns convert to Python far faster than one list per key).
    fn discover<'py>(&self, py: Python<'py>, base: PathBuf) -> PyResult<Vec<Bound<'py, PyList>>> {
        let found = run(py, || discover(&self.inner, &base))?;
        self.columns(py, &found)
    }

    /// [`Self::discover`] for a store at an object-storage URL.
    #[pyo3(signature = (url, storage_options=None))]
    fn discover_url<'py>(
        &self,
        py: Python<'py>,
        url: String,
        storage_options: Option<std::collections::BTreeMap<String, String>>,
    ) -> PyResult<Vec<Bound<'py, PyList>>> {
        let found = run(py, || {
            let location = crate::storage::Location::parse(&url)?;
            let storage = crate::storage::ObjectStorage::open(
                location,
                &storage_options.unwrap_or_default(),
            )?;
            crate::store::discover::discover_objects(&self.inner, &storage)
        })?;
        self.columns(py, &found)
    }

    /// How many datasets there are under `base`.
    fn count(&self, py: Python<'_>, base: PathBuf) -> PyResult<usize> {
        Ok(run(py, || discover(&self.inner, &base))?.len())
    }
}
