//! How many threads the engine's parallel passes use.

use std::sync::OnceLock;

/// The cores available to this process, read once: `available_parallelism`
/// reads the cgroup files on every call (about 50 us), which small chunks of
/// a stream would pay each time.
pub fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Runs `work` on every job on two threads, each taking the next job when it
/// is done with one, so that a thread slowed down (a busy core, a job longer
/// than the others) leaves the rest to the other; results in job order.
pub fn on_two_threads<T: Send, R: Send>(jobs: Vec<T>, work: impl Fn(T) -> R + Sync) -> Vec<R> {
    let n = jobs.len();
    let queue = std::sync::Mutex::new(jobs.into_iter().enumerate());
    let drain = || {
        let mut done = Vec::new();
        loop {
            // A poisoned lock means the other thread panicked: stop taking jobs.
            let next = match queue.lock() {
                Ok(mut q) => q.next(),
                Err(_) => None,
            };
            match next {
                Some((i, job)) => done.push((i, work(job))),
                None => return done,
            }
        }
    };
    let mut all = std::thread::scope(|scope| {
        let other = scope.spawn(drain);
        let mut mine = drain();
        match other.join() {
            Ok(theirs) => mine.extend(theirs),
            // Carried to the caller, whose panic guard reports it.
            Err(panic) => std::panic::resume_unwind(panic),
        }
        mine
    });
    all.sort_unstable_by_key(|(i, _)| *i);
    assert_eq!(all.len(), n, "a job of the two threads did not run");
    all.into_iter().map(|(_, r)| r).collect()
}
