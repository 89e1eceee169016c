//! Versions of a dataset on object storage: listing, restoring, retention.

use std::path::PathBuf;

use super::ObjectDataset;
use crate::dataset::metadata::RetentionDoc;
use crate::dataset::state::State;
use crate::dataset::versions::{check_retention, info, VersionInfo};
use crate::error::{OupsError, Result};

impl ObjectDataset {
    /// Every kept version, oldest first: one listing, then each record.
    pub fn versions(&self) -> Result<Vec<VersionInfo>> {
        let mut out = Vec::new();
        for listed in self.listed_records()? {
            if let Some(doc) = self.read_listed(&listed)? {
                let path = PathBuf::from(self.storage.url(&listed.key));
                out.push(info(&State::from_doc(doc, &path)?));
            }
        }
        Ok(out)
    }

    /// The dataset's retention: `(keep_versions, keep_seconds)`.
    pub fn retention_setting(&self) -> (Option<u64>, Option<f64>) {
        let r = self.retention();
        (r.keep_versions, r.keep_seconds)
    }

    /// Commits a version that records the retention of later vacuums.
    pub fn set_retention(
        &mut self,
        keep_versions: Option<u64>,
        keep_seconds: Option<f64>,
    ) -> Result<()> {
        self.refuse_fixed("set the retention of")?;
        check_retention(keep_versions, keep_seconds)?;
        self.refresh()?;
        self.retry_commit("set_retention", None, None, |ds| {
            if !ds.state.exists {
                return Err(OupsError::InvalidArgument(format!(
                    "dataset '{}' has no version yet: write it first, then set its retention",
                    ds.url()
                )));
            }
            let mut next = ds.state.clone();
            next.retention = Some(RetentionDoc {
                keep_versions,
                keep_seconds,
            });
            Ok((next, ds.files.clone()))
        })
    }

    /// Commits a new version equal to `version` (its rows and metadata).
    pub fn restore(&mut self, version: u64, writer: Option<String>) -> Result<()> {
        self.refuse_fixed("restore")?;
        self.refresh()?;
        self.retry_commit("restore", Some(version), writer, |ds| {
            let doc = ds
                .read_record(version)?
                .ok_or_else(|| ds.no_version(&format!("version {version}")))?;
            let files: Vec<String> = doc
                .row_groups
                .iter()
                .map(|r| {
                    r.file
                        .clone()
                        .unwrap_or_else(|| crate::dataset::layout::file_name(r.file_id))
                })
                .collect();
            let path = PathBuf::from(ds.storage.url(&ds.record_key(version)));
            let target = State::from_doc(doc, &path)?;
            let mut next = ds.state.clone();
            next.exists = true;
            next.row_groups = target.row_groups;
            next.key_value_metadata = target.key_value_metadata;
            next.ordered_field = target.ordered_field.or(next.ordered_field);
            next.ordered_type = target.ordered_type.or(next.ordered_type);
            Ok((next, files))
        })
    }

    /// Commits what `make` builds from this object's version (the caller
    /// refreshes it first), again on the newer version when another writer
    /// commits first: these operations replace the whole state, whatever it
    /// was.
    pub(super) fn retry_commit(
        &mut self,
        operation: &str,
        restored_from: Option<u64>,
        writer: Option<String>,
        make: impl Fn(&Self) -> Result<(State, Vec<String>)>,
    ) -> Result<()> {
        for _ in 0..super::MAX_ATTEMPTS {
            let (next, files) = make(self)?;
            let how = super::commit::Commit {
                operation,
                restored_from,
                writer: writer.clone(),
                uploaded: Vec::new(),
                span: None,
            };
            if self.commit_state(next, files, how)? {
                return Ok(());
            }
            let _ = self.load_after()?;
        }
        Err(OupsError::CommitConflict(format!(
            "'{}' is busy: {} attempts to commit each lost to another writer",
            self.url(),
            super::MAX_ATTEMPTS
        )))
    }
}
