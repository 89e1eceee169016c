//! The one place where engine errors become Python exceptions.
//!
//! Exception classes live in `oups.exceptions` (Python), where each can also
//! derive from the matching builtin (`ValueError`, `KeyError`, ...).

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::error::OupsError;

fn class_name(e: &OupsError) -> &'static str {
    match e {
        OupsError::InvalidArgument(_) => "InvalidParameterError",
        OupsError::InvalidType(_) => "ParameterTypeError",
        OupsError::Unsorted(_) => "UnsortedError",
        OupsError::SchemaMismatch(_) => "SchemaMismatchError",
        OupsError::ColumnNotFound(_) => "ColumnNotFoundError",
        OupsError::OrderedOnMismatch(_) => "OrderedOnMismatchError",
        OupsError::Corrupt { .. } => "CorruptDatasetError",
        OupsError::CorruptState { .. } => "CorruptStateError",
        OupsError::LockTimeout { .. } => "LockTimeoutError",
        OupsError::Io { source, .. } => match source.kind() {
            std::io::ErrorKind::NotFound => "DatasetFileNotFoundError",
            std::io::ErrorKind::PermissionDenied => "DatasetPermissionError",
            _ => "DatasetIOError",
        },
        OupsError::Arrow(_) | OupsError::Parquet(_) => "DatasetIOError",
        OupsError::Internal(_) => "InternalError",
    }
}

pub fn to_pyerr(e: OupsError) -> PyErr {
    Python::attach(|py| {
        let message = e.to_string();
        let class = py
            .import("oups.exceptions")
            .and_then(|m| m.getattr(class_name(&e)))
            .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
        match class {
            Ok(class) => PyErr::from_type(class, message),
            Err(_) => PyRuntimeError::new_err(message),
        }
    })
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

/// Runs engine work with the GIL released; errors and panics become Python
/// exceptions (a panic is an `oups.exceptions.InternalError`, never a crash).
pub fn run<T: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> crate::error::Result<T> + Send,
) -> PyResult<T> {
    let out = py.detach(|| catch_unwind(AssertUnwindSafe(f)));
    match out {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(to_pyerr(e)),
        Err(payload) => Err(to_pyerr(OupsError::Internal(panic_message(payload)))),
    }
}
