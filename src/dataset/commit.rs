//! The commit of a write or a restore: new files, the version record, the
//! cleanup. Protocol: (1) a busy marker is created; new row groups are written
//! to fresh file names that no retained version uses, fsynced, and
//! hard-linked into the history directory; kept files that need a new id are
//! linked under it. (2) The version record is linked into `versions/` and
//! renamed over `<name>_opdmd`: that rename is the commit point. (3) The
//! dataset directory's files the new version no longer lists are unlinked (the
//! history keeps them for older versions), old versions beyond retention are
//! vacuumed, and the marker removed. A crash leaves the marker, and the next
//! writer (or opener, when no writer holds the lock) deletes every file that
//! no retained version lists (`retention::recover`).

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use super::file_ids;
use super::history::{self, link_or_copy, Busy};
use super::metadata;
use super::parquet_io::{self, parallel_map, writer_properties};
use super::plan::Step;
use super::retention;
use super::splice::{self, NewRowGroup};
use super::state::{RowGroup, State};
use super::write::{NewData, WriteRequest};
use super::Dataset;
use crate::error::{IoContext, Result};
use crate::failpoint;

/// Data files written before their fsyncs are awaited.
const SYNC_WINDOW: usize = 64;

/// The row groups of a planned write, in order: a kept row group by its
/// id, a new one as `None` (its chunk is the next of the returned chunks).
pub(super) fn sequence(
    steps: &[Step],
    outputs: Vec<Vec<NewRowGroup>>,
    old: &[RowGroup],
) -> (Vec<Option<u64>>, Vec<NewRowGroup>) {
    if steps.is_empty() {
        return (old.iter().map(|rg| Some(rg.file_id)).collect(), Vec::new());
    }
    let mut seq: Vec<Option<u64>> = Vec::new();
    let mut chunks: Vec<NewRowGroup> = Vec::new();
    let mut outputs = outputs.into_iter();
    for step in steps {
        match step {
            Step::Keep(i) => seq.push(Some(old[*i].file_id)),
            Step::Merge(_) => {
                for c in outputs.next().unwrap_or_default() {
                    seq.push(None);
                    chunks.push(c);
                }
            }
        }
    }
    (seq, chunks)
}

/// Whether a planned sequence is the stored one.
pub(super) fn is_unchanged(seq: &[Option<u64>], chunks: &[NewRowGroup], old: &[RowGroup]) -> bool {
    chunks.is_empty()
        && seq.len() == old.len()
        && seq.iter().zip(old).all(|(s, rg)| *s == Some(rg.file_id))
}

/// What a write sets in the next version beside its row groups: the ordered
/// column (once data is written) and the key-value metadata.
pub(super) fn apply_write(
    next: &mut State,
    req: &WriteRequest,
    new: Option<&NewData>,
) -> Result<()> {
    next.exists = true;
    next.ordered_on = req.ordered_on.clone();
    if let Some(n) = new {
        next.ordered_field = Some(req.ordered_field.clone());
        next.ordered_type = Some(
            n.batch
                .schema()
                .field_with_name(&req.ordered_field)?
                .data_type()
                .clone(),
        );
    }
    merge_metadata(next, &req.key_value_metadata);
    Ok(())
}

/// Whether the write's key-value metadata changes the stored one.
pub(super) fn changes_metadata(state: &State, req: &WriteRequest) -> bool {
    req.key_value_metadata
        .iter()
        .any(|(k, v)| match state.key_value_metadata.get(k) {
            Some(stored) => stored != v,
            None => !v.is_null(),
        })
}

impl Dataset {
    pub(super) fn commit(
        &mut self,
        steps: Vec<Step>,
        outputs: Vec<Vec<NewRowGroup>>,
        new: Option<&NewData>,
        req: &WriteRequest,
    ) -> Result<()> {
        let old = &self.state.row_groups;
        let (seq, chunks) = sequence(&steps, outputs, old);
        if is_unchanged(&seq, &chunks, old)
            && self.state.exists
            && !changes_metadata(&self.state, req)
        {
            return Ok(()); // nothing to commit: no new version
        }
        // Only a write that got this far changes the disk: a format-1 dataset
        // gets its history first.
        history::upgrade(&self.layout, &self.state)?;
        if self.state.exists {
            self.state.format = metadata::FORMAT_VERSION;
        }
        let busy = Busy::mark(&self.layout)?;
        // Ids no retained version uses: a reader of an old version must
        // never find another file under a name it reads.
        let mut taken = history::kept_ids(&self.layout);
        taken.extend(self.state.row_groups.iter().map(|rg| rg.file_id));
        let (ids, relink) = file_ids::assign(&seq, &taken)?;

        let mut created: Vec<PathBuf> = Vec::new();
        let written = self.write_files(&seq, &ids, relink, &chunks, req, &mut created);
        if let Err(e) = written {
            parquet_io::remove_quietly(&created);
            return Err(e);
        }
        let old = &self.state.row_groups;

        let mut next = self.state.clone();
        let mut chunk_iter = chunks.iter();
        next.row_groups = seq
            .iter()
            .zip(&ids)
            .map(|(kept, &id)| match kept {
                Some(old_id) => {
                    let rg = old.iter().find(|rg| rg.file_id == *old_id).copied();
                    let rg = rg.unwrap_or(RowGroup {
                        file_id: id,
                        n_rows: 0,
                        min: 0,
                        max: 0,
                    });
                    RowGroup { file_id: id, ..rg }
                }
                None => {
                    let c = chunk_iter.next().expect("one chunk per new row group");
                    let (min, max) = c.bounds();
                    RowGroup {
                        file_id: id,
                        n_rows: c.n_rows(),
                        min,
                        max,
                    }
                }
            })
            .collect();
        apply_write(&mut next, req, new)?;
        let operation = if chunks.is_empty() && seq.iter().all(Option::is_some) && !relink {
            "update_metadata"
        } else {
            "write"
        };
        self.publish(next, operation, None, req.writer.clone(), &created)?;
        drop(busy);
        Ok(())
    }

    /// Commits `next` as the version after the latest, then unlinks from the
    /// dataset directory what it no longer lists and vacuums versions beyond
    /// retention. `created` (files of this write) are removed if the commit
    /// fails. Runs under the lock, with a busy marker.
    pub(super) fn publish(
        &mut self,
        mut next: State,
        operation: &str,
        restored_from: Option<u64>,
        writer: Option<String>,
        created: &[PathBuf],
    ) -> Result<()> {
        // A dataset created again after a removal numbers its versions after
        // those snapshots kept.
        let after = if self.state.exists {
            self.state.version
        } else {
            history::list(&self.layout, u64::MAX)
                .last()
                .copied()
                .unwrap_or(0)
        };
        next.version = after + 1;
        next.format = metadata::FORMAT_VERSION;
        next.committed_at = Some(history::commit_time(self.state.committed_at));
        next.operation = Some(operation.to_string());
        next.restored_from = restored_from;
        next.writer = writer;
        if let Err(e) = history::commit(&self.layout, &next.to_doc()) {
            parquet_io::remove_quietly(created);
            return Err(e);
        }
        failpoint::hit("after_commit");
        let keep: BTreeSet<u64> = next.row_groups.iter().map(|rg| rg.file_id).collect();
        let stale: Vec<PathBuf> = self
            .state
            .row_groups
            .iter()
            .filter(|rg| !keep.contains(&rg.file_id))
            .map(|rg| self.layout.file_path(rg.file_id))
            .collect();
        for (i, p) in stale.iter().enumerate() {
            let _ = fs::remove_file(p);
            if i == 0 {
                failpoint::hit("during_cleanup");
            }
        }
        self.state = next;
        self.stamp = history::record_id(&self.layout.meta);
        self.lease = super::lease::take(&self.layout, self.state.version);
        self.record = history::record_id(&self.layout.version_path(self.state.version));
        // The write is committed: a failed vacuum only leaves more history,
        // which the next one removes.
        let _ = retention::vacuum(&self.layout, self.state.version, &self.retention());
        Ok(())
    }

    fn write_files(
        &self,
        seq: &[Option<u64>],
        ids: &[u64],
        relink: bool,
        chunks: &[NewRowGroup],
        req: &WriteRequest,
        created: &mut Vec<PathBuf>,
    ) -> Result<()> {
        let new_ids: Vec<u64> = seq
            .iter()
            .zip(ids)
            .filter_map(|(k, &id)| k.is_none().then_some(id))
            .collect();
        if new_ids.is_empty() && !relink {
            return Ok(());
        }
        fs::create_dir_all(&self.layout.dir)
            .at("cannot create dataset directory", &self.layout.dir)?;
        let kept_dir = self.layout.files_dir();
        fs::create_dir_all(&kept_dir).at("cannot create history directory", &kept_dir)?;
        if relink {
            for (kept, &id) in seq.iter().zip(ids) {
                if let Some(old_id) = kept {
                    let from = self.data_path(*old_id);
                    for to in [self.layout.file_path(id), self.layout.kept_file_path(id)] {
                        link_or_copy(&from, &to)?;
                        created.push(to);
                    }
                }
            }
        }
        // Rows before each new row group in the new sequence, for the layout.
        let mut before = Vec::with_capacity(chunks.len());
        let (mut rows, mut next_chunk) = (0u64, chunks.iter());
        for kept in seq {
            match kept {
                Some(id) => {
                    let rg = self.state.row_groups.iter().find(|rg| rg.file_id == *id);
                    rows += rg.map_or(0, |rg| rg.n_rows);
                }
                None => {
                    before.push(rows);
                    rows += next_chunk.next().map_or(0, NewRowGroup::n_rows);
                }
            }
        }
        let jobs: Vec<(PathBuf, &NewRowGroup, u64)> = new_ids
            .iter()
            .zip(chunks)
            .zip(before)
            .map(|((&id, c), b)| (self.layout.file_path(id), c, b))
            .collect();
        write_data_files(&jobs, req, Some(&kept_dir), created)?;
        let dirs = [self.layout.dir.clone(), kept_dir];
        parallel_map(&dirs, |d| crate::durable::sync_dir(d))?;
        Ok(())
    }
}

/// Writes and fsyncs new data files (`(path, row group, rows before it)`),
/// each linked into `kept_dir` (the history) when given; every path made is
/// pushed to `created`. Reports progress to `req.progress`.
pub(super) fn write_data_files(
    jobs: &[(PathBuf, &NewRowGroup, u64)],
    req: &WriteRequest,
    kept_dir: Option<&std::path::Path>,
    created: &mut Vec<PathBuf>,
) -> Result<()> {
    let props = writer_properties(req.compression);
    created.extend(jobs.iter().map(|(p, _, _)| p.clone()));
    let total: u64 = jobs.iter().map(|(_, c, _)| c.n_rows()).sum();
    let done = AtomicU64::new(0);
    let report = |rows: u64| {
        if let Some(progress) = &req.progress {
            progress(done.fetch_add(rows, Ordering::Relaxed) + rows, total);
        }
    };
    report(0);
    // Writeback starts as each file is written; waiting for a window of
    // files at once then mostly finds it done. The window bounds the
    // number of open descriptors.
    for window in jobs.chunks(SYNC_WINDOW) {
        let files = parallel_map(window, |(path, row_group, before)| {
            let file = match row_group {
                NewRowGroup::Encoded(c) => {
                    parquet_io::write_pieces(path, &c.pieces, &props, *before)?
                }
                NewRowGroup::Spliced(s) => splice::write(path, s, &props)?,
            };
            failpoint::hit("after_data_file");
            report(row_group.n_rows());
            Ok(file)
        })?;
        let pending: Vec<(&std::fs::File, &PathBuf)> =
            files.iter().zip(window.iter().map(|(p, _, _)| p)).collect();
        parallel_map(&pending, |(f, p)| crate::durable::sync_file(f, p))?;
        if let Some(kept_dir) = kept_dir {
            // Every version reads its files from the history directory.
            for (path, _, _) in window {
                let kept = kept_dir.join(path.file_name().unwrap_or_default());
                link_or_copy(path, &kept)?;
                created.push(kept);
            }
        }
    }
    Ok(())
}

/// Applies a write's key-value metadata: a null value removes its key.
pub(super) fn merge_metadata(next: &mut State, kvm: &serde_json::Map<String, serde_json::Value>) {
    for (k, v) in kvm {
        if v.is_null() {
            next.key_value_metadata.remove(k);
        } else {
            next.key_value_metadata.insert(k.clone(), v.clone());
        }
    }
}
