//! The as-of join engine behind `AsofMerger`.
//!
//! For every output row, each join position picks one group of frames; for
//! each frame of that group the engine selects the last row whose key is
//! before (strict) or at (exact) the row's `main` key, then reads that row and
//! the `n_prev` rows before it. Rows before a chunk's first row come from the
//! frame's *carry window*: the last `n_prev + 1` rows seen by the previous
//! call (or fill values on the first call), so that processing a stream chunk
//! by chunk gives the result of one call on the whole stream.
//!
//! The selection is one merge pass per (position, frame) over sorted keys;
//! values are gathered per output column with typed loops for primitive
//! types and Arrow's `interleave` for the others, on both cores.

pub mod gather;
pub mod keys;
pub mod merge;
pub mod select;

pub use gather::OutSlot;
pub use merge::{merge, AsofInput, AsofOutput, FrameChunk};
