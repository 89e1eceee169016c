//! Opening a dataset at a version: the latest (leased, re-read if a vacuum
//! took it first), a version by number, or the last one committed by a time.

use std::path::Path;

use serde_json::Value;

use super::layout::Layout;
use super::state::State;
use super::{check_lock_timeout, history, lease, lock, metadata, ordered_on_mismatch, retention};
use super::{vacuumed_error, Dataset, Pin};
use crate::error::{OupsError, Result};

impl Dataset {
    /// Opens a dataset at a version, without locking it. A missing dataset
    /// is not created until it is first written. If an interrupted write left
    /// files behind and no writer holds the lock, they are deleted first.
    pub fn open(
        dir: &Path,
        ordered_on: Value,
        lock_timeout: Option<f64>,
        pin: Pin,
    ) -> Result<Self> {
        check_lock_timeout(lock_timeout)?;
        let layout = Layout::new(dir)?;
        let mut ds = Dataset {
            layout,
            lock_timeout,
            held: None,
            state: State::new(ordered_on.clone()),
            fixed: pin != Pin::Latest,
            lease: None,
            record: None,
            stamp: None,
            schema: None,
        };
        ds.recover_if_free();
        match pin {
            Pin::Latest => ds.load_latest()?,
            Pin::Version(v) => ds.load_version(v)?,
            Pin::AsOf(t) => {
                let v = ds.version_as_of(t)?;
                ds.load_version(v)?
            }
        }
        if ds.state.exists && !ordered_on.is_null() && ds.state.ordered_on != ordered_on {
            return Err(ordered_on_mismatch(&ordered_on, &ds.state.ordered_on));
        }
        Ok(ds)
    }

    /// Recovery without waiting: only when what a crash leaves is there and
    /// no writer holds the lock (a writer's own files look the same).
    fn recover_if_free(&mut self) {
        if !retention::needs_recovery(&self.layout, self.layout.meta.exists(), false) {
            return;
        }
        if let Ok(lock) = lock::acquire(&self.layout.lock, Some(0.0)) {
            // A writer of this process holds the mutex: its files are no litter.
            if let Ok(_writer) = lock.writer.try_lock() {
                // What was seen may have been a writer that just finished.
                if retention::needs_recovery(&self.layout, self.layout.meta.exists(), true) {
                    let _ = retention::recover(&self.layout);
                }
            }
        }
    }

    /// Loads the latest version and leases it. A vacuum may delete it
    /// between the read and the lease only if newer versions were committed
    /// meanwhile: the newest is then read again.
    pub(super) fn load_latest(&mut self) -> Result<()> {
        for _ in 0..1000 {
            self.load_head()?;
            if self.lease_loaded() {
                return Ok(());
            }
            self.stamp = None;
        }
        Err(vacuumed_error(&self.layout, self.state.version))
    }

    /// Takes a lease on the loaded version; false if the version was
    /// vacuumed before the lease existed.
    fn lease_loaded(&mut self) -> bool {
        if !self.state.exists {
            self.lease = None;
            self.record = None;
            return true;
        }
        self.lease = lease::take(&self.layout, self.state.version);
        self.record = history::record_id(&self.layout.version_path(self.state.version));
        history::alive(&self.layout, self.state.version, self.record.as_ref())
    }

    /// Reads `<name>_opdmd` unless it is unchanged.
    fn load_head(&mut self) -> Result<()> {
        let stamp = history::record_id(&self.layout.meta);
        if stamp.is_some() && stamp == self.stamp {
            return Ok(());
        }
        match metadata::read(&self.layout)? {
            Some(doc) => self.state = State::from_doc(doc, &self.layout.meta)?,
            None => {
                if self.state.exists {
                    self.state.row_groups.clear();
                    self.state.key_value_metadata.clear();
                    self.state.exists = false;
                    self.state.version = 0;
                }
            }
        }
        self.stamp = stamp;
        Ok(())
    }

    fn load_version(&mut self, version: u64) -> Result<()> {
        let head = metadata::read(&self.layout)?;
        // A removed dataset keeps the versions snapshots pin: no head is needed.
        let doc = match head {
            Some(head) if head.version == version => head,
            head => match (history::read_version(&self.layout, version)?, head) {
                (Some(doc), _) => doc,
                (None, Some(head)) => {
                    let kept = history::list(&self.layout, head.version);
                    return Err(self.no_such_version(version, &kept_versions(&kept, head.version)));
                }
                (None, None) => {
                    return Err(self.no_such_version(version, "the dataset has no version yet"))
                }
            },
        };
        let path = self.layout.version_path(version);
        self.state = State::from_doc(doc, &path)?;
        if !self.lease_loaded() {
            return Err(self.no_such_version(version, "it was vacuumed as it was opened"));
        }
        Ok(())
    }

    /// The last version committed at or before `t` (ns since the epoch).
    fn version_as_of(&self, t: i64) -> Result<u64> {
        let Some(head) = metadata::read(&self.layout)? else {
            return Err(OupsError::VersionNotFound(format!(
                "dataset '{}' has no version yet",
                self.layout.dir.display()
            )));
        };
        match history::version_as_of(&self.layout, &head, t)? {
            Some(v) => Ok(v),
            None => Err(OupsError::VersionNotFound(format!(
                "dataset '{}' has no kept version committed at or before the 'as_of' time",
                self.layout.dir.display(),
            ))),
        }
    }

    fn no_such_version(&self, version: u64, detail: &str) -> OupsError {
        OupsError::VersionNotFound(format!(
            "version {version} of dataset '{}' does not exist or was vacuumed: {detail}",
            self.layout.dir.display()
        ))
    }
}

fn kept_versions(kept: &[u64], latest: u64) -> String {
    match (kept.first(), kept.last()) {
        (Some(first), Some(last)) if first != last => {
            format!("kept versions run from {first} to {last} (latest {latest})")
        }
        _ => format!("the only kept version is {latest}"),
    }
}
