//! Collections of datasets: key schemas, discovery, synchronised reads.

pub mod discover;
pub mod intersections;
pub mod key_schema;
pub mod snapshot_base;
pub mod snapshots;
pub mod sources;
