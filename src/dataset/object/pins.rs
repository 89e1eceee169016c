//! Named pins on object storage: versions that vacuums keep (the dataset
//! side of a store snapshot and of an exactly-once loop).
//!
//! Locally a pin is a file written under the lock, which vacuums also take.
//! Object storage has no lock, and a vacuum that lists pins could miss one
//! created just after its listing. So a pin is part of the state: pinning
//! commits a version whose record adds the name, pinned to the version it
//! was planned on (the latest). Every vacuum plans from a record, and
//!
//! - a vacuum planned from that record or a later one sees the pin;
//! - one planned from an earlier record deletes only versions below its own
//!   (and below the pointer it saw, `commit.rs`), which the pinned version
//!   is not: it was the latest when the pin was planned on it. (Below the
//!   pointer alone would not do: a writer whose pointer swap failed may
//!   have seen the pointer at the pin's record, newer than its own.)
//!
//! Unpinning commits a version without the name.

use std::collections::BTreeMap;

use super::ObjectDataset;
use crate::dataset::pins::check_name;
use crate::error::{OupsError, Result};

impl ObjectDataset {
    /// Pins the latest version under `name` (replacing a pin of that name)
    /// and returns it; `None` when the dataset has no version. `version`,
    /// when given, must be the latest: an older one may be vacuumed by a
    /// writer that does not see the pin yet.
    pub fn pin(&mut self, name: &str, version: Option<u64>) -> Result<Option<u64>> {
        self.refuse_fixed("pin")?;
        check_name(name)?;
        self.refresh()?;
        if !self.state.exists {
            return Ok(None);
        }
        if let Some(v) = version.filter(|&v| v != self.state.version) {
            return Err(OupsError::InvalidArgument(format!(
                "on object storage only the latest version can be pinned: '{}' is at version \
                 {}, not {v}; pin without a version",
                self.url(),
                self.state.version
            )));
        }
        if self.state.pins.get(name) == Some(&self.state.version) {
            return Ok(Some(self.state.version));
        }
        let name = name.to_string();
        self.retry_commit("pin", None, None, |ds| {
            let mut next = ds.state.clone();
            next.pins.insert(name.clone(), ds.state.version);
            Ok((next, ds.files.clone()))
        })?;
        Ok(self.state.pins.get(&name).copied())
    }

    /// Removes the pin `name`; false if the dataset had none.
    pub fn unpin(&mut self, name: &str) -> Result<bool> {
        self.refuse_fixed("unpin")?;
        check_name(name)?;
        self.refresh()?;
        if !self.state.pins.contains_key(name) {
            return Ok(false);
        }
        self.retry_commit("unpin", None, None, |ds| {
            let mut next = ds.state.clone();
            next.pins.remove(name);
            Ok((next, ds.files.clone()))
        })?;
        Ok(true)
    }

    /// Every pin of the version this object reads: name -> version.
    pub fn pins(&self) -> BTreeMap<String, u64> {
        self.state.pins.clone()
    }
}
