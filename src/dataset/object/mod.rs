//! A dataset on object storage (S3, GCS, Azure, in memory).
//!
//! The same records, row-group layout and merge rules as on local disk; what
//! differs is how a version is committed. Object stores have no rename and
//! no locks, so a commit is the conditional creation (`If-None-Match: *`) of
//! the next version's record, `.<name>.oups/versions/v_<N+1>`: of two writers
//! racing for it, exactly one succeeds. The loser re-plans on the winner's
//! version and retries when the two writes do not overlap, and fails with a
//! [`OupsError::CommitConflict`] when they do. `<name>_opdmd` points readers
//! to the latest version; it is replaced by compare-and-swap after each
//! commit and may lag behind a committer that died in between, until the
//! next commit moves it on. Data files are never overwritten: each write
//! names its files with a tag of its own, so a loser's files are never
//! read, and a vacuum removes them once they are older than a grace period.

mod commit;
mod fetch;
mod memo;
mod pins;
mod snapshot;
mod staged;
mod versions;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use serde_json::Value;

use crate::dataset::layout::{file_name, version_name, HISTORY_SUFFIX, META_SUFFIX};
use crate::dataset::metadata::{self, MetadataDoc};
use crate::dataset::ordered_key::count_below;
use crate::dataset::parquet_io::parallel_map;
use crate::dataset::range_read::{projection, KeyRange};
use crate::dataset::state::{RowGroup, State};
use crate::dataset::verify::{check_rows, same_columns};
use crate::dataset::write::StoredFiles;
use crate::dataset::{ordered_on_mismatch, Pin, PrivateBatch};
use crate::error::{OupsError, Result};
use crate::storage::{Location, ObjectStorage};

pub use commit::MAX_ATTEMPTS;
pub use snapshot::ObjectSnapshot;

/// How many ancestors' tags a record carries: how far the pointer may have
/// moved on past a commit before its writer checks that it was kept.
const LINEAGE: usize = 64;

/// Records read or written by this process, by URL and entity tag.
static RECORDS: memo::Memo<MetadataDoc> =
    memo::Memo::new(16 << 20, |d| 512 + 192 * d.row_groups.len());

/// Forgets what this process kept of the objects it read and wrote, as if
/// it were another process (for benchmarks of a reader).
pub fn forget_objects() {
    fetch::forget();
    RECORDS.clear();
}

/// A version's record as a listing shows it.
struct Listed {
    version: u64,
    e_tag: Option<String>,
    /// When it was written (seconds since the epoch, the store's clock).
    modified: f64,
    key: String,
}

/// One dataset on object storage, seen at one committed version.
pub struct ObjectDataset {
    /// The store at the dataset's parent prefix.
    storage: ObjectStorage,
    name: String,
    state: State,
    /// Per row group of `state`: its data file's name under `<name>/`.
    files: Vec<String>,
    /// The entity tag of `<name>_opdmd` as last read or written.
    pointer_tag: Option<String>,
    /// The version `<name>_opdmd` held when last read or written: records
    /// before it are the only ones a vacuum may delete (see `commit.rs`).
    pointer_version: Option<u64>,
    /// The tags of `state`'s version and of those before it, newest first
    /// (at most [`LINEAGE`]).
    lineage: Vec<String>,
    fixed: bool,
    /// The schema of the first data file, by that file's name.
    schema: Option<(String, SchemaRef)>,
}

impl ObjectDataset {
    /// Opens the dataset at `url` (`s3://bucket/prefix/name`).
    pub fn open(
        url: &str,
        options: &BTreeMap<String, String>,
        ordered_on: Value,
        pin: Pin,
    ) -> Result<Self> {
        let (parent, name) = Location::parse(url)?.split_name()?;
        let storage = ObjectStorage::open(parent, options)?;
        let mut ds = ObjectDataset {
            storage,
            name,
            state: State::new(ordered_on.clone()),
            files: Vec::new(),
            pointer_tag: None,
            pointer_version: None,
            lineage: Vec::new(),
            fixed: !matches!(pin, Pin::Latest),
            schema: None,
        };
        match pin {
            Pin::Latest => ds.load_latest()?,
            Pin::Version(v) => {
                let doc = ds
                    .read_record(v)?
                    .ok_or_else(|| ds.no_version(&format!("version {v}")))?;
                ds.install(doc)?;
            }
            Pin::AsOf(t) => {
                let v = ds.version_as_of(t)?;
                let doc = ds
                    .read_record(v)?
                    .ok_or_else(|| ds.no_version(&format!("version {v}")))?;
                ds.install(doc)?;
            }
        }
        if ds.state.exists {
            let stored = &ds.state.ordered_on;
            if !ordered_on.is_null() && !stored.is_null() && stored != &ordered_on {
                return Err(ordered_on_mismatch(&ordered_on, stored));
            }
        }
        Ok(ds)
    }

    pub fn url(&self) -> String {
        self.storage.url(&self.name)
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn is_fixed(&self) -> bool {
        self.fixed
    }

    /// Requests issued so far by this object.
    pub fn requests(&self) -> u64 {
        self.storage.requests()
    }

    fn pointer_key(&self) -> String {
        format!("{}{META_SUFFIX}", self.name)
    }

    fn versions_prefix(&self) -> String {
        format!(".{}{HISTORY_SUFFIX}/versions/", self.name)
    }

    fn record_key(&self, version: u64) -> String {
        format!("{}{}", self.versions_prefix(), version_name(version))
    }

    fn data_key(&self, file: &str) -> String {
        format!("{}/{file}", self.name)
    }

    fn no_version(&self, what: &str) -> OupsError {
        OupsError::VersionNotFound(format!(
            "{what} of dataset '{}' does not exist (or was vacuumed)",
            self.url()
        ))
    }

    fn decode(&self, bytes: &[u8], key: &str) -> Result<MetadataDoc> {
        metadata::decode(bytes, &PathBuf::from(self.storage.url(key)))
    }

    fn read_record(&self, version: u64) -> Result<Option<MetadataDoc>> {
        Ok(self.fetch_record(version)?.map(|(doc, _)| doc))
    }

    /// The record of `version` with its entity tag.
    fn fetch_record(&self, version: u64) -> Result<Option<(MetadataDoc, Option<String>)>> {
        let key = self.record_key(version);
        let Some((bytes, e_tag)) = self.storage.get(&key)? else {
            return Ok(None);
        };
        let doc = self.decode(&bytes, &key)?;
        if doc.version != version {
            return Err(OupsError::corrupt(
                &PathBuf::from(self.storage.url(&key)),
                format!(
                    "it holds version {}, not the one its name says",
                    doc.version
                ),
            ));
        }
        if let Some(t) = &e_tag {
            self.remember_record(&key, t, &doc);
        }
        Ok(Some((doc, e_tag)))
    }

    /// A listed record, from this process's memory when it read or wrote
    /// that very object (same entity tag) before.
    fn read_listed(&self, listed: &Listed) -> Result<Option<MetadataDoc>> {
        if let Some(t) = &listed.e_tag {
            let id = format!("{}#{t}", self.storage.url(&listed.key));
            if let Some(doc) = RECORDS.get(&id) {
                return Ok(Some(doc));
            }
        }
        self.read_record(listed.version)
    }

    fn remember_record(&self, key: &str, e_tag: &str, doc: &MetadataDoc) {
        RECORDS.put(&format!("{}#{e_tag}", self.storage.url(key)), doc.clone());
    }

    /// Makes `doc` the version this object reads.
    fn install(&mut self, doc: MetadataDoc) -> Result<()> {
        let files = doc
            .row_groups
            .iter()
            .map(|r| r.file.clone().unwrap_or_else(|| file_name(r.file_id)))
            .collect();
        let path = PathBuf::from(self.url());
        self.lineage = std::iter::once(doc.tag.clone().unwrap_or_default())
            .chain(doc.lineage.iter().cloned())
            .take(LINEAGE)
            .collect();
        self.state = State::from_doc(doc, &path)?;
        self.files = files;
        self.schema = None;
        Ok(())
    }

    /// Reads the pointer to the latest version; without one (a dataset not
    /// written yet, or whose first committer died before writing it), the
    /// newest record.
    fn load_latest(&mut self) -> Result<()> {
        let key = self.pointer_key();
        match self.storage.get(&key)? {
            Some((bytes, tag)) => {
                let doc = self.decode(&bytes, &key)?;
                self.pointer_tag = tag;
                self.pointer_version = Some(doc.version);
                if doc.version != self.state.version || !self.state.exists {
                    self.install(doc)?;
                }
            }
            None => {
                self.pointer_tag = None;
                self.pointer_version = None;
                let ordered_on = self.state.ordered_on.clone();
                match self.listed_versions()?.last() {
                    Some(&v) => match self.read_record(v)? {
                        Some(doc) => self.install(doc)?,
                        None => self.reset(ordered_on),
                    },
                    None => self.reset(ordered_on),
                }
            }
        }
        Ok(())
    }

    fn reset(&mut self, ordered_on: Value) {
        let keep = if self.state.exists {
            Value::Null
        } else {
            ordered_on
        };
        self.state = State::new(keep);
        self.files.clear();
        self.lineage.clear();
    }

    /// Versions with a record, oldest first (one listing).
    fn listed_versions(&self) -> Result<Vec<u64>> {
        Ok(self.listed_records()?.iter().map(|l| l.version).collect())
    }

    /// The records there are, oldest first (one listing).
    fn listed_records(&self) -> Result<Vec<Listed>> {
        let prefix = self.versions_prefix();
        let mut listed: Vec<Listed> = self
            .storage
            .list(&prefix, None)?
            .into_iter()
            .filter_map(|m| {
                let key = self.storage.key_of(&m);
                let version = key
                    .strip_prefix(&prefix)?
                    .strip_prefix("v_")?
                    .parse()
                    .ok()?;
                Some(Listed {
                    version,
                    e_tag: m.e_tag,
                    modified: m.last_modified.timestamp_millis() as f64 / 1e3,
                    key,
                })
            })
            .collect();
        listed.sort_by_key(|l| l.version);
        Ok(listed)
    }

    fn version_as_of(&self, t: i64) -> Result<u64> {
        let versions = self.listed_versions()?;
        // Commit times increase with versions: binary search over records.
        let (mut lo, mut hi) = (0usize, versions.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let at = self
                .read_record(versions[mid])?
                .and_then(|d| d.committed_at)
                .unwrap_or(i64::MIN);
            if at <= t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        match lo {
            0 => Err(self.no_version(&format!("a version committed at or before {t} ns"))),
            n => Ok(versions[n - 1]),
        }
    }

    /// Moves to the latest version (a fixed version stays where it is).
    pub fn refresh(&mut self) -> Result<()> {
        if self.fixed {
            return Ok(());
        }
        self.load_latest()
    }

    fn refuse_fixed(&self, what: &str) -> Result<()> {
        if self.fixed {
            return Err(crate::dataset::read_only(
                what,
                self.state.version,
                &self.url(),
            ));
        }
        Ok(())
    }

    fn tail_of(&self, file: &str) -> Result<fetch::Tail> {
        fetch::tail(&self.storage, &self.data_key(file))
    }

    /// The dataset's schema: its first data file's.
    pub fn schema(&mut self) -> Result<Option<SchemaRef>> {
        let first = self.files.first().cloned();
        self.schema_from(first)
    }

    /// The dataset's schema as `file` holds it (every data file of a version
    /// has the same columns: writes check it, reads check it again), which
    /// spares a read the footer of a file it does not need.
    fn schema_from(&mut self, file: Option<String>) -> Result<Option<SchemaRef>> {
        let Some(first) = file else {
            return Ok(None);
        };
        if let Some((_, s)) = &self.schema {
            return Ok(Some(Arc::clone(s)));
        }
        let key = self.data_key(&first);
        let s = fetch::schema(&self.storage, &key, &self.tail_of(&first)?)?;
        self.adopt_schema(first, s).map(Some)
    }

    /// Takes `s`, the schema of data file `file`, as the dataset's, once its
    /// ordered column is checked against the record.
    fn adopt_schema(&mut self, file: String, s: SchemaRef) -> Result<SchemaRef> {
        if let (Some(field), Some(dt)) = (&self.state.ordered_field, &self.state.ordered_type) {
            if s.field_with_name(field)
                .map(|f| f.data_type() != dt)
                .unwrap_or(true)
            {
                return Err(OupsError::corrupt(
                    &PathBuf::from(self.storage.url(&self.data_key(&file))),
                    format!("its ordered column '{field}' is not the {dt} the record says"),
                ));
            }
        }
        self.schema = Some((file, Arc::clone(&s)));
        Ok(s)
    }

    fn selected(&self, file_ids: Option<&[u64]>) -> Vec<(RowGroup, String)> {
        self.state
            .row_groups
            .iter()
            .zip(&self.files)
            .filter(|(rg, _)| file_ids.is_none_or(|ids| ids.contains(&rg.file_id)))
            .map(|(rg, f)| (*rg, f.clone()))
            .collect()
    }

    /// Whole row groups (all, or those of `file_ids`), in order.
    pub fn read(
        &mut self,
        file_ids: Option<&[u64]>,
    ) -> Result<(Vec<RecordBatch>, Option<SchemaRef>)> {
        let selected = self.selected(file_ids);
        let batches = self.fetch_whole(&selected)?;
        // The schema of a file this read fetched anyway: no footer request.
        let schema = match (&self.schema, batches.first(), selected.first()) {
            (Some((_, s)), _, _) => Arc::clone(s),
            (None, Some(b), Some((_, file))) => self.adopt_schema(file.clone(), b.schema())?,
            _ => match self.schema()? {
                Some(s) => s,
                None => return Ok((Vec::new(), None)),
            },
        };
        let batches = batches
            .into_iter()
            .map(|b| Ok(b.with_schema(Arc::clone(&schema))?))
            .collect::<Result<Vec<_>>>()?;
        Ok((batches, Some(schema)))
    }

    /// [`Self::read`] as one batch; no column is private memory here.
    pub fn read_private(
        &mut self,
        file_ids: Option<&[u64]>,
    ) -> Result<(Option<PrivateBatch>, Option<SchemaRef>)> {
        let (batches, schema) = self.read(file_ids)?;
        let Some(schema) = schema else {
            return Ok((None, None));
        };
        let batch = crate::dictionaries::concat(&schema, &batches)?;
        let private = vec![false; batch.num_columns()];
        Ok((Some((batch, private)), Some(schema)))
    }

    fn fetch_whole(&self, selected: &[(RowGroup, String)]) -> Result<Vec<RecordBatch>> {
        snapshot::fetch_whole(&self.storage, &self.name, self.state.version, selected)
    }

    fn missing(&self, key: &str) -> OupsError {
        snapshot::gone(&self.storage, key, self.state.version)
    }

    /// Rows in `range` of some row groups, some columns (by name), as
    /// [`crate::dataset::Dataset::read_range`] gives them. Each row group
    /// costs the request for its footer (once per object) and one for the
    /// column chunks it needs.
    pub fn read_range(
        &mut self,
        file_ids: Option<&[u64]>,
        range: KeyRange,
        columns: Option<&[String]>,
    ) -> Result<(Vec<RecordBatch>, Option<SchemaRef>)> {
        let first_selected = self
            .selected(file_ids)
            .into_iter()
            .find(|(rg, _)| range.overlaps(rg.min, rg.max))
            .map(|(_, f)| f)
            .or_else(|| self.files.first().cloned());
        let Some(schema) = self.schema_from(first_selected)? else {
            return Ok((Vec::new(), None));
        };
        let field = self.state.ordered_field.clone().unwrap_or_default();
        let ordered = schema.index_of(&field).ok();
        let (projection, out_schema) = projection(&schema, columns, &self.url())?;
        let selected: Vec<(RowGroup, String)> = self
            .selected(file_ids)
            .into_iter()
            .filter(|(rg, _)| range.overlaps(rg.min, rg.max))
            .collect();
        let batches = parallel_map(&selected, |(rg, file)| {
            let key = self.data_key(file);
            let path = PathBuf::from(self.storage.url(&key));
            let covers = range.covers(rg.min, rg.max);
            // The ordered column is needed to cut a straddling row group.
            let mut fetch_cols: Option<Vec<usize>> = projection.clone();
            if let (Some(cols), Some(o), false) = (&mut fetch_cols, ordered, covers) {
                if !cols.contains(&o) {
                    cols.push(o);
                }
            }
            let tail = self.tail_of(file)?;
            let bytes = fetch::file_bytes(&self.storage, &key, fetch_cols.as_deref(), Some(&tail))
                .map_err(|e| self.gone(e, &key))?;
            let rows = match (covers, ordered) {
                (true, _) | (false, None) => None,
                (false, Some(o)) => {
                    let keys = fetch::decode(&self.storage, &key, bytes.clone(), Some(&[o]), None)?;
                    let col = keys.column(0).as_ref();
                    check_rows(&path, col.len(), rg)?;
                    Some(range.rows_in(col.len(), |k| count_below(col, k)))
                }
            };
            let whole = rows.is_none();
            let batch = fetch::decode(&self.storage, &key, bytes, projection.as_deref(), rows)?;
            if whole {
                check_rows(&path, batch.num_rows(), rg)?;
            }
            if !same_columns(batch.schema().fields(), out_schema.fields()) {
                return Err(OupsError::corrupt(
                    &path,
                    "its schema differs from the dataset's first data file",
                ));
            }
            Ok(batch.with_schema(Arc::clone(&out_schema))?)
        })?;
        Ok((batches, Some(out_schema)))
    }

    fn gone(&self, e: OupsError, key: &str) -> OupsError {
        match e {
            OupsError::Corrupt { reason, .. } if reason.contains("missing") => self.missing(key),
            other => other,
        }
    }

    /// The size of each row group's data file (one listing); 0 for a
    /// file that is gone.
    pub fn file_sizes(&self) -> Result<Vec<u64>> {
        let prefix = format!("{}/", self.name);
        let sizes: BTreeMap<String, u64> = self
            .storage
            .list(&prefix, None)?
            .iter()
            .map(|m| {
                let key = self.storage.key_of(m);
                let name = key.strip_prefix(&prefix).unwrap_or(&key).to_string();
                (name, m.size)
            })
            .collect();
        Ok(self
            .files
            .iter()
            .map(|f| sizes.get(f).copied().unwrap_or(0))
            .collect())
    }

    /// Bytes of the data files this version lists (one listing).
    pub fn stored_bytes(&self) -> Result<u64> {
        Ok(self.file_sizes()?.iter().sum())
    }

    /// Removes the dataset: its pointer first (readers then find no
    /// dataset), then its records and data files.
    pub fn remove(&mut self, preserve_metadata: bool) -> Result<()> {
        self.refuse_fixed("remove")?;
        let data: Vec<String> = self
            .storage
            .list(&format!("{}/", self.name), None)?
            .iter()
            .map(|m| self.storage.key_of(m))
            .collect();
        if preserve_metadata {
            // An empty version keeps the metadata, with no row group.
            self.refresh()?;
            if self.state.exists {
                let mut next = self.state.clone();
                next.row_groups.clear();
                let how = commit::Commit {
                    operation: "write",
                    restored_from: None,
                    writer: None,
                    uploaded: Vec::new(),
                    span: None,
                };
                self.commit_state(next, Vec::new(), how)?;
            }
            self.storage.delete_many(&data)?;
            return Ok(());
        }
        self.storage.delete_many(&[self.pointer_key()])?;
        let records: Vec<String> = self
            .storage
            .list(&self.versions_prefix(), None)?
            .iter()
            .map(|m| self.storage.key_of(m))
            .collect();
        self.storage.delete_many(&records)?;
        self.storage.delete_many(&data)?;
        let ordered_on = self.state.ordered_on.clone();
        self.state = State::new(ordered_on);
        self.files.clear();
        self.schema = None;
        self.pointer_tag = None;
        self.pointer_version = None;
        self.lineage.clear();
        Ok(())
    }
}

impl StoredFiles for ObjectDataset {
    fn read_row_groups(&self, rgs: &[RowGroup]) -> Result<Vec<(RecordBatch, PathBuf)>> {
        let selected: Vec<(RowGroup, String)> = rgs
            .iter()
            .map(|rg| {
                let i = self
                    .state
                    .row_groups
                    .iter()
                    .position(|r| r.file_id == rg.file_id)
                    .ok_or_else(|| {
                        OupsError::Internal("a merged row group is not listed".into())
                    })?;
                Ok((*rg, self.files[i].clone()))
            })
            .collect::<Result<_>>()?;
        let batches = self.fetch_whole(&selected)?;
        Ok(batches
            .into_iter()
            .zip(&selected)
            .map(|(b, (_, f))| (b, PathBuf::from(self.storage.url(&self.data_key(f)))))
            .collect())
    }

    fn local_files(&self, _: &[RowGroup]) -> Option<Vec<PathBuf>> {
        None
    }
}
