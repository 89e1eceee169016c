//! The one place where engine errors become Python exceptions.
//!
//! Exception classes live in `oups.exceptions` (Python), where each can also
//! derive from the matching builtin (`ValueError`, `KeyError`, ...).

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::prelude::*;

use crate::error::{OupsError, StorageFailure};

// The classes are imported by handle: a name that is not one of these Rust
// types does not compile, and `_check_exception_classes` (run by the tests)
// resolves every one against `oups.exceptions`.
pyo3::import_exception!(oups.exceptions, InvalidParameterError);
pyo3::import_exception!(oups.exceptions, ParameterTypeError);
pyo3::import_exception!(oups.exceptions, UnsortedError);
pyo3::import_exception!(oups.exceptions, SchemaMismatchError);
pyo3::import_exception!(oups.exceptions, ColumnNotFoundError);
pyo3::import_exception!(oups.exceptions, OrderedOnMismatchError);
pyo3::import_exception!(oups.exceptions, CorruptDatasetError);
pyo3::import_exception!(oups.exceptions, CorruptStateError);
pyo3::import_exception!(oups.exceptions, LockTimeoutError);
pyo3::import_exception!(oups.exceptions, VersionNotFoundError);
pyo3::import_exception!(oups.exceptions, ReadOnlyError);
pyo3::import_exception!(oups.exceptions, DatasetIOError);
pyo3::import_exception!(oups.exceptions, DatasetFileNotFoundError);
pyo3::import_exception!(oups.exceptions, DatasetPermissionError);
pyo3::import_exception!(oups.exceptions, InternalError);
pyo3::import_exception!(oups.exceptions, StorageError);
pyo3::import_exception!(oups.exceptions, StorageNotFoundError);
pyo3::import_exception!(oups.exceptions, StoragePermissionError);
pyo3::import_exception!(oups.exceptions, CommitConflictError);

impl From<OupsError> for PyErr {
    fn from(e: OupsError) -> PyErr {
        let message = e.to_string();
        match e {
            OupsError::InvalidArgument(_) => InvalidParameterError::new_err(message),
            OupsError::InvalidType(_) => ParameterTypeError::new_err(message),
            OupsError::Unsorted(_) => UnsortedError::new_err(message),
            OupsError::SchemaMismatch(_) => SchemaMismatchError::new_err(message),
            OupsError::ColumnNotFound(_) => ColumnNotFoundError::new_err(message),
            OupsError::OrderedOnMismatch(_) => OrderedOnMismatchError::new_err(message),
            OupsError::Corrupt { .. } => CorruptDatasetError::new_err(message),
            OupsError::CorruptState { .. } => CorruptStateError::new_err(message),
            OupsError::LockTimeout { .. } => LockTimeoutError::new_err(message),
            OupsError::VersionNotFound(_) => VersionNotFoundError::new_err(message),
            OupsError::ReadOnly(_) => ReadOnlyError::new_err(message),
            OupsError::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => DatasetFileNotFoundError::new_err(message),
                std::io::ErrorKind::PermissionDenied => DatasetPermissionError::new_err(message),
                _ => DatasetIOError::new_err(message),
            },
            OupsError::Storage { kind, .. } => match kind {
                StorageFailure::NotFound => StorageNotFoundError::new_err(message),
                StorageFailure::Denied => StoragePermissionError::new_err(message),
                StorageFailure::Other => StorageError::new_err(message),
            },
            OupsError::CommitConflict(_) => CommitConflictError::new_err(message),
            OupsError::Arrow(_) | OupsError::Parquet(_) => DatasetIOError::new_err(message),
            OupsError::Internal(_) => InternalError::new_err(message),
        }
    }
}

pub fn to_pyerr(e: OupsError) -> PyErr {
    e.into()
}

/// The names of every exception class the binding raises, each resolved in
/// `oups.exceptions` (an import failure raises here, in the tests).
#[pyfunction]
pub fn _check_exception_classes(py: Python<'_>) -> PyResult<Vec<String>> {
    let types = [
        py.get_type::<InvalidParameterError>(),
        py.get_type::<ParameterTypeError>(),
        py.get_type::<UnsortedError>(),
        py.get_type::<SchemaMismatchError>(),
        py.get_type::<ColumnNotFoundError>(),
        py.get_type::<OrderedOnMismatchError>(),
        py.get_type::<CorruptDatasetError>(),
        py.get_type::<CorruptStateError>(),
        py.get_type::<LockTimeoutError>(),
        py.get_type::<VersionNotFoundError>(),
        py.get_type::<ReadOnlyError>(),
        py.get_type::<DatasetIOError>(),
        py.get_type::<DatasetFileNotFoundError>(),
        py.get_type::<DatasetPermissionError>(),
        py.get_type::<InternalError>(),
        py.get_type::<StorageError>(),
        py.get_type::<StorageNotFoundError>(),
        py.get_type::<StoragePermissionError>(),
        py.get_type::<CommitConflictError>(),
    ];
    types.iter().map(|t| Ok(t.name()?.to_string())).collect()
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
