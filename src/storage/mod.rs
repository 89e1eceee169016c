//! Object storage (S3, GCS, Azure, in-memory): where a dataset lives when its
//! location is a URL rather than a path.
//!
//! The engine is synchronous; the `object_store` crate is async. Every call
//! here blocks on one process-wide runtime, which is rebuilt after a fork
//! (a runtime's threads do not survive one, and Dask and multiprocessing fork).

mod location;
mod object;

pub use location::{is_url, Location};
pub use object::{Created, ObjectStorage, Requests};
