//! Engine parts of `StatefulLoop`: the persistence file codec and the memory
//! ledger of `buffer()`. The iteration protocol and state binding live in
//! Python, where the user's objects are.

pub mod ledger;
pub mod state_file;
