//! How many threads the engine's parallel passes use.

use std::sync::OnceLock;

/// The cores available to this process, read once: `available_parallelism`
/// reads the cgroup files on every call (about 50 us), which small chunks of
/// a stream would pay each time.
pub fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `jobs` dealt alternately into two lists, for two threads.
pub fn halves<T>(jobs: Vec<T>) -> (Vec<T>, Vec<T>) {
    let (mut even, mut odd) = (Vec::new(), Vec::new());
    for (k, job) in jobs.into_iter().enumerate() {
        if k % 2 == 0 {
            even.push(job);
        } else {
            odd.push(job);
        }
    }
    (even, odd)
}
