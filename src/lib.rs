//! oups: ordered, updatable Parquet datasets.
//!
//! The engine (`dataset`) is free of Python; `python` (behind the `python`
//! feature) is the thin PyO3 layer that converts at the boundary.

pub mod asof;
pub mod cores;
pub mod dataset;
pub mod dictionaries;
pub mod durable;
pub mod error;
pub mod failpoint;
pub mod segments;
pub mod stateful_loop;
pub mod storage;
pub mod store;

#[cfg(feature = "python")]
mod python;
