//! Writing to object storage: plan and merge as on local disk, upload the
//! new files under this write's own names, then commit by creating the next
//! version's record only if no other writer created it first.

use std::collections::BTreeSet;

use bytes::Bytes;
use serde_json::Value;

use super::ObjectDataset;
use crate::dataset::commit::{apply_write, changes_metadata, is_unchanged, sequence};
use crate::dataset::file_ids;
use crate::dataset::history::commit_time;
use crate::dataset::metadata::{self, MetadataDoc};
use crate::dataset::ordered_key::{key_from_json, key_to_json};
use crate::dataset::parquet_io::{self, parallel_map, writer_properties};
use crate::dataset::retention::{Retention, VacuumReport};
use crate::dataset::splice::NewRowGroup;
use crate::dataset::state::{RowGroup, State};
use crate::dataset::write::{prepare, validate_data, Prepared, WriteRequest};
use crate::error::{OupsError, Result, StorageFailure};
use crate::storage::Created;

/// Commits a write tries before it gives up on a busy dataset.
pub const MAX_ATTEMPTS: usize = 16;
/// Rounds of moving the pointer after a commit, each with the client's retries.
const POINTER_ATTEMPTS: usize = 10;
/// How long files no kept version lists are left to the writer that may
/// still be uploading them (`OUPS_ORPHAN_GRACE_SECONDS` overrides it).
const ORPHAN_GRACE_SECONDS: f64 = 3600.0;

/// How a version is committed, beside its state and files.
pub(super) struct Commit<'a> {
    pub operation: &'a str,
    pub restored_from: Option<u64>,
    pub writer: Option<String>,
    /// This write's new data files, deleted when the commit is lost.
    pub uploaded: Vec<String>,
    /// The ordered range of the write's new rows.
    pub span: Option<(u64, u64)>,
}

/// What one attempt at a commit gave.
enum Attempt {
    Committed,
    /// Nothing to commit: the write changes nothing.
    Unchanged,
    /// Another writer committed the version first; `span` is this write's
    /// range of ordered keys (`None`: no rows).
    Lost {
        span: Option<(u64, u64)>,
    },
}

/// A tag for this write's file names: no other write picks the same one.
fn write_tag() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(commit_time(None) as u64);
    h.write_u32(std::process::id());
    h.finish()
}

impl ObjectDataset {
    /// Merges `req` into the latest version. It plans on the version this
    /// object last read (the caller refreshes it first when it may be old):
    /// a newer one makes the commit fail, and the write is planned again.
    pub fn write(&mut self, req: WriteRequest) -> Result<()> {
        self.refuse_fixed("write")?;
        self.check_ordered_on(&req.ordered_on)?;
        let new = validate_data(&req)?;
        if new.is_none() && req.key_value_metadata.is_empty() && !self.state.exists {
            return Ok(());
        }
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                pause(attempt);
            }
            let base = self.state.clone();
            let base_files = self.files.clone();
            self.check_ordered_on(&req.ordered_on)?;
            let stored = self.schema()?;
            let prepared = prepare(&self.state, stored, &*self, &req, new.clone())?;
            match self.try_commit(prepared, &req)? {
                Attempt::Committed | Attempt::Unchanged => return Ok(()),
                Attempt::Lost { span } => {
                    let (winners, complete) = self.load_after()?;
                    let why = if complete {
                        self.overlap(&base, &winners, span, &req)
                    } else {
                        self.changed_since(&base, &base_files, span, &req)
                    };
                    if let Some(why) = why {
                        return Err(OupsError::CommitConflict(format!(
                            "another writer committed version {} of '{}' while this write was \
                             based on version {}, and {why}; nothing of this write was \
                             committed: read the latest version and write again",
                            self.state.version,
                            self.url(),
                            base.version
                        )));
                    }
                }
            }
        }
        Err(OupsError::CommitConflict(format!(
            "'{}' is busy: {MAX_ATTEMPTS} attempts to commit this write each lost to another \
             writer; nothing of it was committed",
            self.url()
        )))
    }

    pub(super) fn check_ordered_on(&self, given: &Value) -> Result<()> {
        let stored = &self.state.ordered_on;
        if self.state.exists && !stored.is_null() && stored != given {
            return Err(crate::dataset::ordered_on_mismatch(given, stored));
        }
        Ok(())
    }

    /// Moves to the newest record after the current version (the pointer may
    /// lag behind it), reading records one by one; returns them, oldest first.
    /// The second part is false when some of them are gone (vacuumed): the
    /// caller then only knows the newest state.
    pub(super) fn load_after(&mut self) -> Result<(Vec<MetadataDoc>, bool)> {
        let mut v = self.state.version;
        let mut newer = Vec::new();
        while let Some(doc) = self.read_record(v + 1)? {
            v += 1;
            newer.push(doc);
        }
        let before = self.state.version;
        match newer.last() {
            Some(doc) => self.install(doc.clone())?,
            // The record after this one is gone (vacuumed, or the dataset
            // removed): start again from the pointer and what it lists.
            None => {
                self.load_latest()?;
                if self.state.version > before + 1 {
                    let _ = self.load_after()?;
                }
            }
        }
        let complete = newer
            .last()
            .is_some_and(|d| d.version == self.state.version)
            || self.state.version <= before;
        Ok((newer, complete))
    }

    /// Why the versions committed since `base` (`winners`) conflict with
    /// this write, if they do: one brought rows into this write's key range
    /// (or restored another version), or set a metadata key this write sets.
    fn overlap(
        &self,
        base: &State,
        winners: &[MetadataDoc],
        span: Option<(u64, u64)>,
        req: &WriteRequest,
    ) -> Option<String> {
        if base.exists && !self.state.exists {
            return Some("the dataset was removed".into());
        }
        if base.exists && base.ordered_type != self.state.ordered_type {
            return Some("the ordered column's type changed".into());
        }
        if let (Some((lo, hi)), Some(kind)) = (span, self.state.kind()) {
            for doc in winners {
                if doc.operation.as_deref() == Some("restore") {
                    return Some(format!("version {} restored another version", doc.version));
                }
                let bounds = doc
                    .span
                    .as_ref()
                    .and_then(|[a, b]| Some((key_from_json(kind, a)?, key_from_json(kind, b)?)));
                if let Some((min, max)) = bounds {
                    if min <= hi && lo <= max {
                        return Some(format!(
                            "version {} wrote rows in this write's range",
                            doc.version
                        ));
                    }
                }
            }
        }
        for key in req.key_value_metadata.keys() {
            if base.key_value_metadata.get(key) != self.state.key_value_metadata.get(key) {
                return Some(format!("it changed metadata key '{key}'"));
            }
        }
        None
    }

    /// [`Self::overlap`] when the versions in between are gone: any row
    /// group that differs from `base`'s within this write's range, or a
    /// changed metadata key, conflicts (a coarser test, never a looser one).
    fn changed_since(
        &self,
        base: &State,
        base_files: &[String],
        span: Option<(u64, u64)>,
        req: &WriteRequest,
    ) -> Option<String> {
        let why = "versions committed meanwhile were vacuumed, and the latest differs in this \
                   write's range";
        if let Some((lo, hi)) = span {
            let named = |s: &State, f: &[String]| -> BTreeSet<(String, u64, u64)> {
                s.row_groups
                    .iter()
                    .zip(f)
                    .map(|(rg, f)| (f.clone(), rg.min, rg.max))
                    .collect()
            };
            let before = named(base, base_files);
            let after = named(&self.state, &self.files);
            if before
                .symmetric_difference(&after)
                .any(|(_, min, max)| *min <= hi && lo <= *max)
            {
                return Some(why.into());
            }
        }
        self.overlap(base, &[], None, req)
    }

    fn try_commit(&mut self, prepared: Prepared, req: &WriteRequest) -> Result<Attempt> {
        let span = prepared
            .new
            .as_ref()
            .and_then(|n| Some((*n.keys.first()?, *n.keys.last()?)));
        let old = &self.state.row_groups;
        let (seq, chunks) = sequence(&prepared.steps, prepared.outputs, old);
        if is_unchanged(&seq, &chunks, old)
            && self.state.exists
            && !changes_metadata(&self.state, req)
        {
            return Ok(Attempt::Unchanged);
        }
        // Kept files keep their names whatever id they get; only ids must
        // increase, and names never collide (each write has its own tag).
        let taken: BTreeSet<u64> = old.iter().map(|rg| rg.file_id).collect();
        let (ids, _) = file_ids::assign(&seq, &taken)?;
        let tag = write_tag();
        let mut rows = 0u64;
        let mut uploads: Vec<(usize, u64)> = Vec::new(); // (chunk, rows before)
        let mut next = self.state.clone();
        let mut files = Vec::with_capacity(seq.len());
        next.row_groups = Vec::with_capacity(seq.len());
        let mut chunk_iter = chunks.iter().enumerate();
        for (kept, &id) in seq.iter().zip(&ids) {
            match kept {
                Some(old_id) => {
                    let i = old
                        .iter()
                        .position(|rg| rg.file_id == *old_id)
                        .expect("kept row groups are listed");
                    next.row_groups.push(RowGroup {
                        file_id: id,
                        ..old[i]
                    });
                    files.push(self.files[i].clone());
                    rows += old[i].n_rows;
                }
                None => {
                    let (c, chunk) = chunk_iter.next().expect("one chunk per new row group");
                    let (min, max) = chunk.bounds();
                    next.row_groups.push(RowGroup {
                        file_id: id,
                        n_rows: chunk.n_rows(),
                        min,
                        max,
                    });
                    files.push(format!("file_{id:010}_{tag:016x}.parquet"));
                    uploads.push((c, rows));
                    rows += chunk.n_rows();
                }
            }
        }
        let new_files: Vec<String> = seq
            .iter()
            .zip(&files)
            .filter(|(k, _)| k.is_none())
            .map(|(_, f)| self.data_key(f))
            .collect();
        let props = writer_properties(req.compression);
        let jobs: Vec<(usize, u64, &String)> = uploads
            .iter()
            .zip(&new_files)
            .map(|(&(c, before), key)| (c, before, key))
            .collect();
        if let Some(progress) = &req.progress {
            progress(0, rows);
        }
        // Each file is uploaded as soon as it is encoded, while the next
        // ones are encoded.
        let started = parallel_map(&jobs, |&(c, before, key)| {
            let NewRowGroup::Encoded(chunk) = &chunks[c] else {
                return Err(OupsError::Internal(
                    "a spliced row group on object storage".into(),
                ));
            };
            let mut out = Vec::new();
            let name = std::path::PathBuf::from(self.storage.url(key));
            parquet_io::encode_pieces(&mut out, &name, &chunk.pieces, &props, before)?;
            let bytes = Bytes::from(out);
            super::fetch::remember(&self.storage.url(key), &bytes);
            Ok(self.storage.start_put(key.clone(), bytes))
        });
        // A failed encoding leaves the files already sent as orphans, which
        // a vacuum removes after the grace period (as after a failed upload).
        self.storage.finish_puts(started?)?;
        crate::failpoint::hit("after_data_file");
        apply_write(&mut next, req, prepared.new.as_ref())?;
        let operation = if chunks.is_empty() {
            "update_metadata"
        } else {
            "write"
        };
        let committed = self.commit_state(
            next,
            files,
            Commit {
                operation,
                restored_from: None,
                writer: req.writer.clone(),
                uploaded: new_files,
                span,
            },
        )?;
        if let Some(progress) = &req.progress {
            progress(rows, rows);
        }
        Ok(if committed {
            Attempt::Committed
        } else {
            Attempt::Lost { span }
        })
    }

    /// Commits `next` (with its data files' names) as the version after
    /// this object's; false when another writer created that version first,
    /// in which case `uploaded` (this write's new files) are deleted.
    pub(super) fn commit_state(
        &mut self,
        mut next: State,
        files: Vec<String>,
        how: Commit<'_>,
    ) -> Result<bool> {
        let Commit {
            operation,
            restored_from,
            writer,
            uploaded,
            span,
        } = how;
        next.version = self.state.version + 1;
        next.format = metadata::FORMAT_VERSION;
        next.committed_at = Some(commit_time(self.state.committed_at));
        next.operation = Some(operation.to_string());
        next.restored_from = restored_from;
        next.writer = writer;
        let mut doc = next.to_doc();
        for (r, f) in doc.row_groups.iter_mut().zip(&files) {
            r.file = Some(f.clone());
        }
        if let (Some((lo, hi)), Some(kind)) = (span, next.kind()) {
            doc.span = Some([key_to_json(kind, lo), key_to_json(kind, hi)]);
        }
        let tag = format!("{:016x}", write_tag());
        doc.tag = Some(tag.clone());
        doc.lineage = self.lineage.clone();
        let bytes = Bytes::from(metadata::encode(&doc)?);
        let key = self.record_key(next.version);
        crate::failpoint::hit("before_commit");
        if !self.create_record(&key, &bytes, &doc)? {
            let _ = self.storage.delete_many(&uploaded);
            return Ok(false);
        }
        crate::failpoint::hit("after_commit");
        if !self.publish_pointer(&bytes, &doc)? {
            // The record was created on a number whose first record had
            // been vacuumed (or the dataset removed): no reader will ever
            // reach it. It goes, and the write is planned again.
            in_rounds(|| self.storage.delete_many(std::slice::from_ref(&key)))?;
            let _ = self.storage.delete_many(&uploaded);
            return Ok(false);
        }
        self.lineage = std::iter::once(tag)
            .chain(doc.lineage)
            .take(super::LINEAGE)
            .collect();
        self.state = next;
        self.files = files;
        let keep = self.retention().keep_versions;
        // Vacuums are amortised: one every `keep` commits.
        if let Some(k) = keep.filter(|&k| k > 0) {
            if self.state.version % k == 0 {
                let _ = self.vacuum(self.retention());
            }
        }
        Ok(true)
    }

    /// Creates the record `key` unless it exists: true if this write's record
    /// is there afterwards, false if another writer's is. A request whose
    /// answer was lost may have taken effect, so failures are resolved by
    /// trying again (a create that did happen then finds its own record),
    /// never taken for a lost race.
    fn create_record(&self, key: &str, bytes: &Bytes, doc: &MetadataDoc) -> Result<bool> {
        let mut failure = None;
        for attempt in 0..POINTER_ATTEMPTS {
            if attempt > 0 {
                pause(attempt);
            }
            let created = match self.storage.create(key, bytes.clone()) {
                Ok(Created::New(e_tag)) => {
                    if let Some(t) = e_tag {
                        self.remember_record(key, &t, doc);
                    }
                    return Ok(true);
                }
                Ok(Created::Exists) => self.storage.get(key),
                Err(e) => Err(e),
            };
            match created {
                Ok(Some((found, _))) => return Ok(found == *bytes),
                // Gone again (a removal): try to create it once more.
                Ok(None) => {}
                Err(e @ OupsError::Storage { .. }) => failure = Some(e),
                Err(e) => return Err(e),
            }
        }
        let why = failure.map_or_else(String::new, |e| format!(" ({e})"));
        Err(OupsError::Storage {
            op: "cannot commit",
            url: self.storage.url(key),
            kind: StorageFailure::Other,
            message: format!(
                "whether this write committed is unknown: the store kept failing{why}; \
                 open the dataset again and look at its versions"
            ),
        })
    }

    /// Points `<name>_opdmd` at the version just recorded (`doc`, encoded as
    /// `bytes`) by compare-and-swap on the entity tag this object last saw.
    /// True when that version is in the dataset's history (the pointer is
    /// at it, or at a version that descends from it), false when it is not:
    /// its number had been used by a version since vacuumed, or the dataset
    /// was removed.
    ///
    /// Why a swap that succeeds proves the version kept: a vacuum deletes a
    /// record only below the pointer's version as it last saw it, and the
    /// pointer never moves back. The record for version `N + 1` of a write
    /// planned on `N` could only have been taken and vacuumed if the pointer
    /// had moved past `N + 1` in the meantime; the swap from the tag seen
    /// with `N` then fails. When it fails, the pointer's version and lineage
    /// tell which case this is; only then does the check cost requests.
    fn publish_pointer(&mut self, bytes: &Bytes, doc: &MetadataDoc) -> Result<bool> {
        let mut failure = None;
        for attempt in 0..POINTER_ATTEMPTS {
            if attempt > 0 {
                pause(attempt);
            }
            match self.try_publish(bytes, doc) {
                Ok(Some(kept)) => return Ok(kept),
                // The pointer moved, to an ancestor of this version.
                Ok(None) => {}
                Err(e @ OupsError::Storage { .. }) => failure = Some(e),
                Err(e) => return Err(e),
            }
        }
        let why = failure.map_or_else(|| "other writers kept moving it".into(), |e| e.to_string());
        Err(OupsError::Storage {
            op: "cannot move the pointer",
            url: self.storage.url(&self.pointer_key()),
            kind: StorageFailure::Other,
            message: format!(
                "version {} is recorded, but readers opening the dataset see the version \
                 before it until the next write ({why})",
                doc.version
            ),
        })
    }

    /// One round of [`Self::publish_pointer`]: `None` when the pointer is
    /// behind this version and is to be moved again.
    fn try_publish(&mut self, bytes: &Bytes, doc: &MetadataDoc) -> Result<Option<bool>> {
        let key = self.pointer_key();
        let done = match &self.pointer_tag {
            Some(tag) => self.storage.replace(&key, bytes.clone(), tag)?,
            None => match self.storage.create(&key, bytes.clone())? {
                Created::New(tag) => Some(tag),
                Created::Exists => None,
            },
        };
        if let Some(tag) = done {
            self.pointer_tag = tag;
            self.pointer_version = Some(doc.version);
            return Ok(Some(true));
        }
        let Some((current, tag)) = self.storage.get(&key)? else {
            // Removed since this write read it.
            self.pointer_tag = None;
            self.pointer_version = None;
            return Ok(Some(false));
        };
        let seen = self.decode(&current, &key)?;
        self.pointer_tag = tag;
        self.pointer_version = Some(seen.version);
        let ours = doc.tag.as_deref().unwrap_or_default();
        let theirs = seen.tag.as_deref().unwrap_or_default();
        Ok(match seen.version.cmp(&doc.version) {
            std::cmp::Ordering::Equal => Some(theirs == ours),
            std::cmp::Ordering::Greater => {
                let back = (seen.version - doc.version - 1) as usize;
                match seen.lineage.get(back) {
                    Some(t) => Some(t == ours),
                    None => Some(self.successor_descends(doc.version, ours)?),
                }
            }
            // Behind: it must be an ancestor of this version (otherwise the
            // dataset was removed and written again).
            std::cmp::Ordering::Less => {
                let back = (doc.version - seen.version - 1) as usize;
                if doc.lineage.get(back).map(String::as_str) == Some(theirs) {
                    None
                } else {
                    Some(false)
                }
            }
        })
    }

    /// Whether the record after `version` was planned on the version tagged
    /// `tag`: asked when the pointer has moved further past this write's
    /// version than a lineage reaches.
    fn successor_descends(&self, version: u64, tag: &str) -> Result<bool> {
        match self.read_record(version + 1)? {
            Some(next) => Ok(next.lineage.first().map(String::as_str) == Some(tag)),
            None => Err(OupsError::Storage {
                op: "cannot commit",
                url: self.url(),
                kind: StorageFailure::Other,
                message: format!(
                    "whether version {version} is in the history is unknown: the versions after \
                     it were vacuumed before this write could check; open the dataset again and \
                     look at its versions"
                ),
            }),
        }
    }

    pub(super) fn retention(&self) -> Retention {
        Retention::of(self.state.retention.as_ref())
    }

    /// Deletes the records retention no longer keeps, then the data files no
    /// kept record lists and older than the grace period (the files of
    /// dropped versions, and those of writers that never committed).
    pub fn vacuum(&mut self, retention: Retention) -> Result<VacuumReport> {
        self.refuse_fixed("vacuum")?;
        let versions = self.listed_records()?;
        let now = chrono_now_seconds();
        let latest = versions.last().map_or(0, |l| l.version);
        let n = versions.len();
        let pinned: BTreeSet<u64> = self.state.pins.values().copied().collect();
        let below = self.pointer_version.map(|p| p.min(self.state.version));
        let kept: Vec<bool> = versions
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let v = l.version;
                let by_count = retention.keep_versions.is_none_or(|k| (n - i) as u64 <= k);
                // A version is superseded when the next one is committed.
                let superseded = versions.get(i + 1).map_or(now, |next| next.modified);
                let by_age = retention.keep_seconds.is_some_and(|s| now - superseded < s);
                v == latest
                    // Only records below the pointer may go (`publish_pointer`),
                    // and below this object's own version: a newer record may
                    // pin a version this one does not know of (`pins.rs`).
                    || below.is_none_or(|b| v >= b)
                    || (retention.keep_versions.is_none() && retention.keep_seconds.is_none())
                    || by_count && retention.keep_versions.is_some()
                    || by_age
                    || retention.pinned.contains(&v)
                    || pinned.contains(&v)
            })
            .collect();
        let mut keep_files: BTreeSet<String> = BTreeSet::new();
        for (listed, &k) in versions.iter().zip(&kept) {
            if k {
                if let Some(doc) = self.read_listed(listed)? {
                    for r in doc.row_groups {
                        keep_files.insert(
                            r.file
                                .unwrap_or_else(|| crate::dataset::layout::file_name(r.file_id)),
                        );
                    }
                }
            }
        }
        keep_files.extend(self.files.iter().cloned());
        let dropped: Vec<(u64, String)> = versions
            .iter()
            .zip(&kept)
            .filter(|(_, &k)| !k)
            .map(|(l, _)| (l.version, l.key.clone()))
            .collect();
        // Records first: no reader then finds a record whose files are gone.
        let record_keys: Vec<String> = dropped.iter().map(|(_, k)| k.clone()).collect();
        self.storage.delete_many(&record_keys)?;
        let grace = std::env::var("OUPS_ORPHAN_GRACE_SECONDS")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(ORPHAN_GRACE_SECONDS);
        let data_prefix = format!("{}/", self.name);
        let stale: Vec<String> = self
            .storage
            .list(&data_prefix, None)?
            .iter()
            .filter(|m| {
                let key = self.storage.key_of(m);
                let name = key.strip_prefix(&data_prefix).unwrap_or(&key);
                !keep_files.contains(name)
                    && now - m.last_modified.timestamp_millis() as f64 / 1e3 >= grace
            })
            .map(|m| self.storage.key_of(m))
            .collect();
        self.storage.delete_many(&stale)?;
        Ok(VacuumReport {
            versions_removed: dropped.into_iter().map(|(v, _)| v).collect(),
            files_removed: stale.len(),
        })
    }
}

/// `op`, tried again in rounds (each with the client's own retries) while
/// the store fails: for the steps after a commit point, whose outcome must
/// not be left unknown for a passing failure.
fn in_rounds<T>(mut op: impl FnMut() -> Result<T>) -> Result<T> {
    let mut attempt = 0;
    loop {
        match op() {
            Err(OupsError::Storage { .. }) if attempt + 1 < POINTER_ATTEMPTS => {
                attempt += 1;
                pause(attempt);
            }
            other => return other,
        }
    }
}

/// A random pause that grows with `attempt`: writers that lost together
/// would otherwise meet again at once.
fn pause(attempt: usize) {
    let ceiling_ms = 10u64 << attempt.min(7);
    std::thread::sleep(std::time::Duration::from_millis(write_tag() % ceiling_ms));
}

fn chrono_now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
