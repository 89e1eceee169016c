//! Engine part of `StatefulLoop`: the persistence file codec, on local disk
//! or at an object-storage URL. The iteration protocol, state binding and
//! the buffers of `buffer()` (frames and their byte counts) live in Python,
//! where the user's objects are.

pub mod state_file;
pub mod state_object;
