//! A dataset's versions as the user sees them: listing, restoring one,
//! vacuuming those retention no longer keeps.

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray, TimestampNanosecondArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, TimeUnit};

use super::history::{self, link_or_copy, Busy};
use super::metadata::RetentionDoc;
use super::retention::{self, Retention, VacuumReport};
use super::state::State;
use super::{metadata, Dataset};
use crate::error::{OupsError, Result};

/// One kept version, as `versions()` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionInfo {
    pub version: u64,
    pub committed_at: Option<i64>,
    pub operation: Option<String>,
    pub n_rows: u64,
    pub n_row_groups: u64,
    pub writer: Option<String>,
}

impl Dataset {
    /// The versions a vacuum keeps by default: the most recent ones.
    /// The versions vacuums keep: the dataset's setting, or the default
    /// (the most recent ones). Snapshot pins and leases come on top.
    pub(super) fn retention(&self) -> Retention {
        Retention::of(self.state.retention.as_ref())
    }

    /// The dataset's retention: `(keep_versions, keep_seconds)`.
    pub fn retention_setting(&self) -> (Option<u64>, Option<f64>) {
        let r = self.retention();
        (r.keep_versions, r.keep_seconds)
    }

    /// Sets the retention of every later vacuum (both `None`: keep every
    /// version); commits a version that records it, then vacuums by it.
    pub fn set_retention(
        &mut self,
        keep_versions: Option<u64>,
        keep_seconds: Option<f64>,
    ) -> Result<()> {
        self.refuse_fixed("set the retention of")?;
        check_retention(keep_versions, keep_seconds)?;
        if !self.layout.meta.exists() {
            return Err(OupsError::InvalidArgument(format!(
                "dataset '{}' has no version yet: write it first, then set its retention",
                self.layout.dir.display()
            )));
        }
        self.with_lock(|ds| {
            history::upgrade(&ds.layout, &ds.state)?;
            let _busy = Busy::mark(&ds.layout)?;
            let mut next = ds.state.clone();
            next.retention = Some(RetentionDoc {
                keep_versions,
                keep_seconds,
            });
            ds.publish(next, "set_retention", None, None, &[])
        })
    }

    /// Every kept version, oldest first, read from the disk now.
    pub fn versions(&self) -> Result<Vec<VersionInfo>> {
        // A removed dataset keeps the versions snapshots pin: no head then.
        let head = metadata::read(&self.layout)?;
        let latest = head.as_ref().map_or(u64::MAX, |h| h.version);
        let mut out = Vec::new();
        for v in history::list(&self.layout, latest) {
            if v == latest {
                continue;
            }
            if let Some(doc) = history::read_version(&self.layout, v)? {
                let state = State::from_doc(doc, &self.layout.version_path(v))?;
                out.push(info(&state));
            }
        }
        if let Some(head) = head {
            out.push(info(&State::from_doc(head, &self.layout.meta)?));
        }
        Ok(out)
    }

    /// Commits a new version equal to `version` (its rows and metadata).
    pub fn restore(&mut self, version: u64, writer: Option<String>) -> Result<()> {
        self.refuse_fixed("restore")?;
        self.with_lock(|ds| {
            let target = ds.state_of(version)?;
            history::upgrade(&ds.layout, &ds.state)?;
            let _busy = Busy::mark(&ds.layout)?;
            std::fs::create_dir_all(&ds.layout.dir)
                .map_err(|e| OupsError::io("cannot create dataset directory", &ds.layout.dir, e))?;
            let mut created = Vec::new();
            for rg in &target.row_groups {
                let main = ds.layout.file_path(rg.file_id);
                if !main.exists() {
                    link_or_copy(&ds.layout.data_path(rg.file_id, target.format), &main)?;
                    created.push(main);
                }
            }
            crate::durable::sync_dir(&ds.layout.dir)?;
            let mut next = ds.state.clone();
            next.exists = true;
            next.row_groups = target.row_groups.clone();
            next.key_value_metadata = target.key_value_metadata.clone();
            next.ordered_field = target.ordered_field.clone().or(next.ordered_field);
            next.ordered_type = target.ordered_type.clone().or(next.ordered_type);
            ds.publish(next, "restore", Some(version), writer, &created)
        })
    }

    /// Deletes the versions `retention` does not keep (the default
    /// retention when it sets no limit) and the files only they list. The
    /// latest version is always kept.
    pub fn vacuum(&mut self, mut retention: Retention) -> Result<VacuumReport> {
        self.refuse_fixed("vacuum")?;
        if !self.layout.meta.exists() {
            return Ok(VacuumReport::default());
        }
        self.with_lock(|ds| {
            if retention.keep_versions.is_none() && retention.keep_seconds.is_none() {
                let own = ds.retention();
                retention.keep_versions = own.keep_versions;
                retention.keep_seconds = own.keep_seconds;
            }
            retention::vacuum(&ds.layout, ds.state.version, &retention)
        })
    }

    /// Pins `version` (the latest when `None`) under `name`: vacuums keep it
    /// until [`Self::unpin`]. `None` for a dataset without versions.
    pub fn pin(&mut self, name: &str, version: Option<u64>) -> Result<Option<u64>> {
        self.refuse_fixed("pin")?;
        super::pins::check_name(name)?;
        if !self.layout.meta.exists() {
            return Ok(None);
        }
        self.with_lock(|ds| {
            if !ds.state.exists {
                return Ok(None);
            }
            history::upgrade(&ds.layout, &ds.state)?;
            ds.state.format = metadata::FORMAT_VERSION;
            let _busy = Busy::mark(&ds.layout)?;
            let version = match version {
                None => ds.state.version,
                Some(v) => ds.state_of(v)?.version,
            };
            super::pins::write(&ds.layout, name, version)?;
            Ok(Some(version))
        })
    }

    /// Every pin of the dataset: name -> version.
    pub fn pins(&self) -> Result<std::collections::BTreeMap<String, u64>> {
        super::pins::all(&self.layout)
    }

    /// Removes the pin `name`; false if the dataset had none.
    pub fn unpin(&mut self, name: &str) -> Result<bool> {
        super::pins::check_name(name)?;
        if !self.layout.history.exists() {
            return Ok(false);
        }
        self.with_lock(|ds| super::pins::remove(&ds.layout, name))
    }

    /// The state of a kept version (the latest included).
    fn state_of(&self, version: u64) -> Result<State> {
        if self.state.exists && self.state.version == version {
            return Ok(self.state.clone());
        }
        match history::read_version(&self.layout, version)? {
            Some(doc) => State::from_doc(doc, &self.layout.version_path(version)),
            None => Err(OupsError::VersionNotFound(format!(
                "version {version} of dataset '{}' does not exist or was vacuumed; \
                 ds.versions() lists the kept versions",
                self.layout.dir.display()
            ))),
        }
    }
}

/// Refuses a retention that would drop the latest version or is no duration.
pub(crate) fn check_retention(keep_versions: Option<u64>, keep_seconds: Option<f64>) -> Result<()> {
    if keep_versions == Some(0) {
        return Err(OupsError::InvalidArgument(
            "'keep_versions' must be >= 1 (the latest version is always kept), or None".into(),
        ));
    }
    if let Some(s) = keep_seconds {
        if s.is_nan() || s < 0.0 {
            return Err(OupsError::InvalidArgument(format!(
                "'older_than' must be a duration >= 0, got {s} seconds"
            )));
        }
    }
    Ok(())
}

pub(crate) fn info(state: &State) -> VersionInfo {
    VersionInfo {
        version: state.version,
        committed_at: state.committed_at,
        operation: state.operation.clone(),
        n_rows: state.n_rows(),
        n_row_groups: state.row_groups.len() as u64,
        writer: state.writer.clone(),
    }
}

/// `versions()` as a table: version, committed_at (UTC), operation, n_rows,
/// n_row_groups.
pub fn versions_batch(versions: &[VersionInfo]) -> Result<RecordBatch> {
    let col = |f: &dyn Fn(&VersionInfo) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from_iter_values(versions.iter().map(f)))
    };
    let committed: ArrayRef = Arc::new(
        TimestampNanosecondArray::from(versions.iter().map(|v| v.committed_at).collect::<Vec<_>>())
            .with_timezone("UTC"),
    );
    let strings = |f: &dyn Fn(&VersionInfo) -> Option<&str>| -> ArrayRef {
        Arc::new(StringArray::from(
            versions.iter().map(f).collect::<Vec<_>>(),
        ))
    };
    let operation = strings(&|v| v.operation.as_deref());
    let writer = strings(&|v| v.writer.as_deref());
    let schema = Schema::new(vec![
        Field::new("version", DataType::UInt64, false),
        Field::new(
            "committed_at",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            true,
        ),
        Field::new("operation", DataType::Utf8, true),
        Field::new("n_rows", DataType::UInt64, false),
        Field::new("n_row_groups", DataType::UInt64, false),
        Field::new("writer", DataType::Utf8, true),
    ]);
    Ok(RecordBatch::try_new(
        Arc::new(schema),
        vec![
            col(&|v| v.version),
            committed,
            operation,
            col(&|v| v.n_rows),
            col(&|v| v.n_row_groups),
            writer,
        ],
    )?)
}
