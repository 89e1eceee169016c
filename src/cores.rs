//! How many threads the engine's parallel passes use.

use std::sync::OnceLock;

/// The cores available to this process, read once: `available_parallelism`
/// reads the cgroup files on every call (about 50 us), which small chunks of
/// a stream would pay each time.
pub fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
