//! The engine's single error type. The binding maps each variant to one Python
//! exception class of `oups.exceptions` (see `src/python/errors.rs`).

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum OupsError {
    /// A parameter has a wrong value (maps to a `ValueError` subclass).
    #[error("{0}")]
    InvalidArgument(String),
    /// A parameter or column has a wrong type (maps to a `TypeError` subclass).
    #[error("{0}")]
    InvalidType(String),
    /// The ordered column is not sorted, or holds NaN/null values.
    #[error("{0}")]
    Unsorted(String),
    /// New data does not match the schema stored with the dataset.
    #[error("{0}")]
    SchemaMismatch(String),
    /// A named column is absent (maps to a `KeyError` subclass).
    #[error("{0}")]
    ColumnNotFound(String),
    /// `ordered_on` differs from the one recorded with the dataset.
    #[error("{0}")]
    OrderedOnMismatch(String),
    /// Files on disk are unreadable or disagree with each other.
    #[error("dataset file '{path}' is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// A stateful-loop state file is damaged, truncated or not an oups file.
    #[error("state file '{path}' cannot be loaded: {reason}")]
    CorruptState { path: PathBuf, reason: String },
    /// A requested version does not exist, or was vacuumed under a reader.
    #[error("{0}")]
    VersionNotFound(String),
    /// A write through an object that reads a fixed version.
    #[error("{0}")]
    ReadOnly(String),
    /// The dataset lock was not acquired within the timeout.
    #[error("failed to acquire lock for dataset '{path}' within {seconds} seconds; another process or object may be using this dataset")]
    LockTimeout { path: PathBuf, seconds: f64 },
    /// An I/O error, with the path it happened on.
    #[error("{op} '{path}': {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// An object-storage request failed (after the client's own retries).
    #[error("{op} '{url}': {message}")]
    Storage {
        op: &'static str,
        url: String,
        kind: StorageFailure,
        message: String,
    },
    /// Another writer committed the version this write was to commit, and the
    /// two writes overlap (or the retries ran out).
    #[error("{0}")]
    CommitConflict(String),
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("parquet error: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// A bug in oups (a caught panic, a broken invariant).
    #[error("internal error in oups (please report it): {0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, OupsError>;

/// What kind of object-storage failure an [`OupsError::Storage`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFailure {
    /// The bucket or object does not exist.
    NotFound,
    /// Missing or refused credentials.
    Denied,
    /// Anything else: the network, throttling, the server.
    Other,
}

impl OupsError {
    pub fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        OupsError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn corrupt_state(path: &Path, reason: impl Into<String>) -> Self {
        OupsError::CorruptState {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    pub fn corrupt(path: &Path, reason: impl Into<String>) -> Self {
        OupsError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// Attaches a path and an operation name to `std::io::Result`s.
pub trait IoContext<T> {
    fn at(self, op: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, op: &'static str, path: &Path) -> Result<T> {
        self.map_err(|e| OupsError::io(op, path, e))
    }
}
