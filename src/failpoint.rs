//! Test hooks that stop the process at named points of the commit protocol.
//!
//! Set `OUPS_FAILPOINT=<name>` (optionally `<name>:<n>` to fire on the n-th
//! hit) and the process aborts when it reaches that point, as a crash would.
//! `OUPS_FAILPOINT=panic:<name>` panics instead, to test panic conversion;
//! `OUPS_FAILPOINT=sleep=<ms>:<name>` pauses there, so that a test can let
//! another process act in between.
//!
//! Only with the `failpoints` cargo feature (the test build); otherwise
//! `hit` is an empty inline function and the variable is never read.

/// Whether this build has the hooks (tests that need them skip otherwise).
pub const ENABLED: bool = cfg!(feature = "failpoints");

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}

#[cfg(feature = "failpoints")]
pub use hooks::hit;

#[cfg(feature = "failpoints")]
mod hooks {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    enum Action {
        Abort,
        Panic,
        Sleep(u64),
    }

    static SPEC: OnceLock<Option<(Action, String, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);

    fn spec() -> &'static Option<(Action, String, u64)> {
        SPEC.get_or_init(|| {
            let raw = std::env::var("OUPS_FAILPOINT").ok()?;
            let (action, rest) = if let Some(rest) = raw.strip_prefix("panic:") {
                (Action::Panic, rest.to_string())
            } else if let Some((ms, rest)) =
                raw.strip_prefix("sleep=").and_then(|r| r.split_once(':'))
            {
                (Action::Sleep(ms.parse().ok()?), rest.to_string())
            } else {
                (Action::Abort, raw)
            };
            let (name, nth) = match rest.split_once(':') {
                Some((n, k)) => (n.to_string(), k.parse().unwrap_or(1)),
                None => (rest, 1),
            };
            Some((action, name, nth))
        })
    }

    pub fn hit(name: &str) {
        if let Some((action, target, nth)) = spec() {
            if target == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
                match action {
                    Action::Panic => panic!("failpoint '{name}' triggered"),
                    Action::Sleep(ms) => std::thread::sleep(std::time::Duration::from_millis(*ms)),
                    Action::Abort => std::process::abort(),
                }
            }
        }
    }
}
