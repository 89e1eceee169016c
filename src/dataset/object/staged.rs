//! Distributed (staged) writes on object storage: workers merge their units
//! and upload the new files under the write's tag; the client commits them
//! as one version with the conditional create of the next record.
//!
//! As on local disk ([`crate::dataset::staged`]), no version lists a staged
//! file before the commit. There is no lock to hold meanwhile: if another
//! writer commits first, the write's plan (made against the older version)
//! no longer holds, so the commit fails with a conflict and deletes the
//! uploads. Files of a worker that died are left to the vacuums (the grace
//! period), as those of any writer that never committed.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::PathBuf;

use arrow_array::Array;
use bytes::Bytes;

use super::commit::Commit;
use super::ObjectDataset;
use crate::dataset::commit::merge_metadata;
use crate::dataset::file_ids;
use crate::dataset::parquet_io::{self, parallel_map, writer_properties};
use crate::dataset::splice::NewRowGroup;
use crate::dataset::staged::{
    changes_nothing, check_order, check_stretch, check_tag, plan_against, staged_row_groups,
    StagedCommit, StagedRowGroup, Unit,
};
use crate::dataset::state::RowGroup;
use crate::dataset::write::{prepare, validate_data, WriteRequest};
use crate::error::{OupsError, Result};

/// The name prefix of the data files of staged write `tag`.
fn staged_prefix(tag: &str) -> String {
    format!("file_stage_{tag}-")
}

impl ObjectDataset {
    /// The version a staged write plans against: this object's.
    pub fn begin_staged(&mut self) -> Result<u64> {
        self.refuse_fixed("write")?;
        Ok(self.state.version)
    }

    /// The units of a staged write (see [`plan_against`]).
    pub fn plan_staged(
        &self,
        lows: &dyn Array,
        highs: &dyn Array,
        exclusive: bool,
    ) -> Result<Vec<Unit>> {
        plan_against(&self.state, lows, highs, exclusive)
    }

    /// On a worker: merges `req`'s rows into the row groups `rgs` of this
    /// object's version, as a write of them would, and uploads the new row
    /// groups as files named after `tag` (unique to this attempt).
    pub fn stage(
        &mut self,
        req: WriteRequest,
        rgs: Range<usize>,
        tag: &str,
    ) -> Result<Vec<StagedRowGroup>> {
        check_tag(tag)?;
        check_stretch(&rgs, self.state.row_groups.len())?;
        let new = validate_data(&req)?;
        let stored = self.schema()?;
        let mut stretch = self.state.clone();
        stretch.row_groups = self.state.row_groups[rgs].to_vec();
        let prepared = prepare(&stretch, stored, &*self, &req, new)?;
        let (out, jobs) = staged_row_groups(&prepared, &stretch.row_groups, &staged_prefix(tag));
        let props = writer_properties(req.compression);
        let started = parallel_map(&jobs, |(name, chunk, before)| {
            let NewRowGroup::Encoded(chunk) = chunk else {
                return Err(OupsError::Internal(
                    "a spliced row group on object storage".into(),
                ));
            };
            let key = self.data_key(name);
            let mut bytes = Vec::new();
            let path = PathBuf::from(self.storage.url(&key));
            parquet_io::encode_pieces(&mut bytes, &path, &chunk.pieces, &props, *before)?;
            Ok(self.storage.start_put(key, Bytes::from(bytes)))
        })?;
        self.storage.finish_puts(started)?;
        Ok(out)
    }

    /// Deletes the files of staged write `tag` (all its attempts).
    pub fn discard_staged(&mut self, tag: &str) -> Result<()> {
        check_tag(tag)?;
        let keys = self.staged_keys(tag)?;
        self.storage.delete_many(&keys)
    }

    fn staged_keys(&self, tag: &str) -> Result<Vec<String>> {
        let prefix = format!("{}/{}", self.name, staged_prefix(tag));
        Ok(self
            .storage
            .list(&format!("{}/", self.name), None)?
            .iter()
            .map(|m| self.storage.key_of(m))
            .filter(|k| k.starts_with(&prefix))
            .collect())
    }

    /// Commits the units' row groups as one version after this object's,
    /// which must be the one they were planned against. Another writer's
    /// commit in between is a conflict: nothing is committed.
    pub fn commit_staged(&mut self, commit: StagedCommit) -> Result<()> {
        self.refuse_fixed("write")?;
        check_tag(&commit.tag)?;
        let result = self.commit_staged_units(&commit);
        if result.is_err() {
            let _ = self.discard_staged(&commit.tag);
        }
        result
    }

    fn commit_staged_units(&mut self, commit: &StagedCommit) -> Result<()> {
        if self.state.version != commit.version {
            return Err(self.moved(commit.version));
        }
        self.check_ordered_on(&commit.ordered_on)?;
        let old = self.state.row_groups.clone();
        let mut seq: Vec<Option<u64>> = Vec::new();
        let mut rows: Vec<(u64, u64, u64)> = Vec::new(); // (n_rows, min, max)
        let mut names: Vec<String> = Vec::new();
        let mut uploaded: Vec<String> = Vec::new();
        let mut unit_starts = Vec::new();
        let mut covered = 0;
        let prefix = staged_prefix(&commit.tag);
        for unit in &commit.units {
            if unit.rgs.start != covered || unit.rgs.end > old.len() {
                return Err(OupsError::InvalidArgument(
                    "the staged units do not cover the dataset's row groups in order".into(),
                ));
            }
            covered = unit.rgs.end;
            unit_starts.push(seq.len());
            let mut next_kept = unit.rgs.start;
            for rg in &unit.row_groups {
                match rg {
                    StagedRowGroup::Kept(id) => {
                        let Some(at) = (next_kept..unit.rgs.end).find(|&i| old[i].file_id == *id)
                        else {
                            return Err(OupsError::InvalidArgument(format!(
                                "staged unit keeps row group {id}, which is not in its stretch"
                            )));
                        };
                        next_kept = at + 1;
                        seq.push(Some(*id));
                        rows.push((old[at].n_rows, old[at].min, old[at].max));
                        names.push(self.files[at].clone());
                    }
                    StagedRowGroup::New {
                        name,
                        n_rows,
                        min,
                        max,
                    } => {
                        if !name.starts_with(&prefix) || name.contains('/') {
                            return Err(OupsError::InvalidArgument(format!(
                                "{name:?} is not a staged file of this write"
                            )));
                        }
                        seq.push(None);
                        rows.push((*n_rows, *min, *max));
                        names.push(name.clone());
                        uploaded.push(self.data_key(name));
                    }
                }
            }
        }
        if covered != old.len() {
            return Err(OupsError::InvalidArgument(
                "the staged units do not cover the dataset's row groups".into(),
            ));
        }
        let bounds: Vec<(u64, u64)> = rows.iter().map(|&(_, lo, hi)| (lo, hi)).collect();
        check_order(&bounds, &unit_starts, &self.url())?;
        let taken: BTreeSet<u64> = old.iter().map(|rg| rg.file_id).collect();
        let (ids, _) = file_ids::assign(&seq, &taken)?;
        let mut next = self.state.clone();
        next.row_groups = ids
            .iter()
            .zip(&rows)
            .map(|(&file_id, &(n_rows, min, max))| RowGroup {
                file_id,
                n_rows,
                min,
                max,
            })
            .collect();
        if changes_nothing(
            &self.state,
            &seq,
            uploaded.len(),
            &commit.key_value_metadata,
        ) {
            return Ok(());
        }
        if !uploaded.is_empty() && self.schema()?.is_none() {
            // A new dataset: each worker took its own partition's dtypes,
            // which must agree; the first file's schema becomes the dataset's.
            let schema = self.staged_schema(&uploaded)?;
            next.ordered_field = Some(commit.ordered_field.clone());
            next.ordered_type = Some(
                schema
                    .field_with_name(&commit.ordered_field)?
                    .data_type()
                    .clone(),
            );
        }
        next.exists = true;
        next.ordered_on = commit.ordered_on.clone();
        merge_metadata(&mut next, &commit.key_value_metadata);
        let span = bounds
            .first()
            .zip(bounds.last())
            .map(|(first, last)| (first.0, last.1));
        let how = Commit {
            operation: "write",
            restored_from: None,
            writer: commit.writer.clone(),
            uploaded,
            span,
        };
        if self.commit_state(next, names, how)? {
            return Ok(());
        }
        let _ = self.load_after();
        Err(self.moved(commit.version))
    }

    /// The schema all the files `keys` share (read from their footers).
    fn staged_schema(&self, keys: &[String]) -> Result<arrow_schema::SchemaRef> {
        let schemas = parallel_map(keys, |key| {
            let tail = super::fetch::tail(&self.storage, key)?;
            super::fetch::schema(&self.storage, key, &tail)
        })?;
        let first = schemas[0].clone();
        if let Some(other) = schemas.iter().find(|s| s.fields() != first.fields()) {
            return Err(OupsError::SchemaMismatch(format!(
                "partitions of the staged write have different schemas: {other} and {first}; \
                 give every partition the same dtypes"
            )));
        }
        Ok(first)
    }

    fn moved(&self, planned: u64) -> OupsError {
        OupsError::CommitConflict(format!(
            "another writer committed to '{}' (now at version {}) while this distributed write, \
             planned on version {planned}, ran; nothing of it was committed: write again",
            self.url(),
            self.state.version
        ))
    }
}
