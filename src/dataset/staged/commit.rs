//! The commit of a staged write: checks, final names, one version.

use std::fs;
use std::path::PathBuf;

use super::{check_tag, remove_staged_files, StagedCommit, StagedRowGroup};
use crate::dataset::commit::merge_metadata;
use crate::dataset::file_ids;
use crate::dataset::history::{self, link_or_copy, Busy};
use crate::dataset::layout::Layout;
use crate::dataset::metadata;
use crate::dataset::parquet_io;
use crate::dataset::state::RowGroup;
use crate::dataset::Dataset;
use crate::error::{IoContext, OupsError, Result};

impl Dataset {
    /// Commits the units of a staged write as one version, under the lock,
    /// after checking that they cover this version's row groups, that every
    /// staged file is the row group it claims to be, and that the whole
    /// sequence is sorted.
    pub fn commit_staged(&mut self, commit: StagedCommit) -> Result<()> {
        self.refuse_fixed("write")?;
        check_tag(&commit.tag)?;
        let tag = commit.tag.clone();
        let result = self.with_lock(|ds| ds.commit_staged_locked(commit));
        remove_staged_files(&self.layout, &tag);
        let _ = fs::remove_file(self.layout.staging_marker());
        result
    }

    fn commit_staged_locked(&mut self, commit: StagedCommit) -> Result<()> {
        if self.state.version != commit.version {
            return Err(OupsError::InvalidArgument(format!(
                "dataset '{}' moved from version {} to {} during the staged write; nothing was \
                 committed, write again",
                self.layout.dir.display(),
                commit.version,
                self.state.version
            )));
        }
        self.check_ordered_on(&commit.ordered_on)?;
        let old = self.state.row_groups.clone();
        // The final sequence: kept row groups by id, staged ones as None.
        let mut seq: Vec<Option<u64>> = Vec::new();
        let mut bounds: Vec<(u64, u64)> = Vec::new();
        let mut staged: Vec<(PathBuf, u64)> = Vec::new();
        let mut unit_starts = Vec::new();
        let mut covered = 0;
        for unit in &commit.units {
            if unit.rgs.start != covered || unit.rgs.end > old.len() {
                return Err(OupsError::InvalidArgument(
                    "the staged units do not cover the dataset's row groups in order".into(),
                ));
            }
            covered = unit.rgs.end;
            let stretch: Vec<u64> = old[unit.rgs.clone()].iter().map(|r| r.file_id).collect();
            let mut next_kept = 0;
            unit_starts.push(seq.len());
            for rg in &unit.row_groups {
                match rg {
                    StagedRowGroup::Kept(id) => {
                        let Some(at) = stretch[next_kept..].iter().position(|s| s == id) else {
                            return Err(OupsError::InvalidArgument(format!(
                                "staged unit keeps row group {id}, which is not in its stretch"
                            )));
                        };
                        next_kept += at + 1;
                        let r = old[unit.rgs.start + next_kept - 1];
                        seq.push(Some(*id));
                        bounds.push((r.min, r.max));
                    }
                    StagedRowGroup::New {
                        name,
                        n_rows,
                        min,
                        max,
                    } => {
                        if !name.starts_with(&Layout::staged_prefix(&commit.tag))
                            || name.contains('/')
                        {
                            return Err(OupsError::InvalidArgument(format!(
                                "{name:?} is not a staged file of this write"
                            )));
                        }
                        seq.push(None);
                        bounds.push((*min, *max));
                        staged.push((self.layout.dir.join(name), *n_rows));
                    }
                }
            }
        }
        if covered != old.len() {
            return Err(OupsError::InvalidArgument(
                "the staged units do not cover the dataset's row groups".into(),
            ));
        }
        self.check_staged_order(&bounds, &unit_starts)?;
        let schema = self.check_staged_files(&staged)?;
        if super::changes_nothing(&self.state, &seq, staged.len(), &commit.key_value_metadata) {
            return Ok(());
        }
        history::upgrade(&self.layout, &self.state)?;
        if self.state.exists {
            self.state.format = metadata::FORMAT_VERSION;
        }
        let busy = Busy::mark(&self.layout)?;
        let mut taken = history::kept_ids(&self.layout);
        taken.extend(old.iter().map(|rg| rg.file_id));
        let (ids, relink) = file_ids::assign(&seq, &taken)?;
        let kept_dir = self.layout.files_dir();
        fs::create_dir_all(&kept_dir).at("cannot create history directory", &kept_dir)?;
        let mut created: Vec<PathBuf> = Vec::new();
        let moved = self.place_staged(&seq, &ids, relink, &staged, &mut created);
        if let Err(e) = moved {
            parquet_io::remove_quietly(&created);
            return Err(e);
        }
        let mut next = self.state.clone();
        let mut staged_rows = staged.iter();
        next.row_groups = seq
            .iter()
            .zip(&ids)
            .zip(&bounds)
            .map(|((kept, &id), &(min, max))| {
                let n_rows = match kept {
                    Some(old_id) => old
                        .iter()
                        .find(|rg| rg.file_id == *old_id)
                        .map_or(0, |rg| rg.n_rows),
                    None => staged_rows.next().map_or(0, |(_, n)| *n),
                };
                RowGroup {
                    file_id: id,
                    n_rows,
                    min,
                    max,
                }
            })
            .collect();
        next.exists = true;
        next.ordered_on = commit.ordered_on.clone();
        if let Some(schema) = schema {
            next.ordered_field = Some(commit.ordered_field.clone());
            next.ordered_type = Some(
                schema
                    .field_with_name(&commit.ordered_field)?
                    .data_type()
                    .clone(),
            );
        }
        merge_metadata(&mut next, &commit.key_value_metadata);
        self.publish(next, "write", None, commit.writer.clone(), &created)?;
        drop(busy);
        Ok(())
    }

    fn check_staged_order(&self, bounds: &[(u64, u64)], unit_starts: &[usize]) -> Result<()> {
        super::check_order(bounds, unit_starts, &self.layout.dir.display().to_string())
    }

    /// Each staged file holds the rows it claims, with the dataset's
    /// schema (or, for a new dataset, all the same one). The schema, when
    /// some file is staged.
    fn check_staged_files(
        &mut self,
        staged: &[(PathBuf, u64)],
    ) -> Result<Option<arrow_schema::SchemaRef>> {
        let stored = self.schema()?;
        let mut first: Option<arrow_schema::SchemaRef> = None;
        for (path, n_rows) in staged {
            let (schema, rows) = parquet_io::read_footer(path)?;
            if rows != *n_rows {
                return Err(OupsError::corrupt(
                    path,
                    format!("a staged file holds {rows} rows, not the {n_rows} reported"),
                ));
            }
            let expected = stored.as_ref().or(first.as_ref());
            if let Some(expected) = expected {
                if schema.fields() != expected.fields() {
                    return Err(OupsError::SchemaMismatch(format!(
                        "partitions of the staged write have different schemas: {} and {}; \
                         give every partition the same dtypes",
                        schema, expected
                    )));
                }
            }
            first.get_or_insert(schema);
        }
        Ok(stored.or(first))
    }

    /// Gives staged files their final names (and a history link), and
    /// links kept files under new ids where the ids were renumbered.
    fn place_staged(
        &self,
        seq: &[Option<u64>],
        ids: &[u64],
        relink: bool,
        staged: &[(PathBuf, u64)],
        created: &mut Vec<PathBuf>,
    ) -> Result<()> {
        let mut staged = staged.iter();
        for (kept, &id) in seq.iter().zip(ids) {
            match kept {
                Some(old_id) if relink => {
                    let from = self.data_path(*old_id);
                    for to in [self.layout.file_path(id), self.layout.kept_file_path(id)] {
                        link_or_copy(&from, &to)?;
                        created.push(to);
                    }
                }
                Some(_) => {}
                None => {
                    let (path, _) = staged.next().expect("one staged file per new row group");
                    let to = self.layout.file_path(id);
                    fs::rename(path, &to).at("cannot rename staged file", path)?;
                    created.push(to.clone());
                    let kept = self.layout.kept_file_path(id);
                    link_or_copy(&to, &kept)?;
                    created.push(kept);
                }
            }
        }
        for dir in [self.layout.dir.clone(), self.layout.files_dir()] {
            crate::durable::sync_dir(&dir)?;
        }
        Ok(())
    }
}
