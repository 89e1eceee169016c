//! The segmentation engine behind `SegmentedAggregator`.
//!
//! One call takes a chunk of rows sorted on an `i64` key, assigns every row
//! to a *slot* (one bin of one group) in a single pass, reduces every
//! aggregation over the slots (one tight loop per aggregation, on both
//! cores), and emits the slots that can no longer receive rows. The open
//! slots, with their running aggregates, go into a [`State`] that the next
//! call continues from, so that a stream processed chunk by chunk gives
//! bit-for-bit the result of one call on all rows: each accumulator sees the
//! same values in the same order either way. Rolling windows (`rolling`)
//! keep, per group and aggregation, the rows of the current window instead.

pub mod lane;
pub mod reduce;
mod reduce_state;
pub mod rolling;
mod rolling_state;
pub mod run;
pub mod segment;
pub mod spec;
pub mod state;
pub mod window_join;

pub use run::{aggregate, Chunk, Output};
pub use spec::{AggKind, AggSpec, Bins, Side, Spec, Values};
pub use state::State;
