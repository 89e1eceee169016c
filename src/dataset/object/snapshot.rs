//! One version of a dataset on object storage, detached from its dataset,
//! for readers that outlive a call (`Store.iter_intersections`).

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};
use bytes::Bytes;

use super::{fetch, ObjectDataset};
use crate::dataset::parquet_io::parallel_map;
use crate::dataset::state::RowGroup;
use crate::dataset::verify::check_rows;
use crate::error::{OupsError, Result};
use crate::storage::ObjectStorage;

/// The row groups of one version and where their files are.
#[derive(Clone)]
pub struct ObjectSnapshot {
    storage: ObjectStorage,
    name: String,
    version: u64,
    pub row_groups: Vec<RowGroup>,
    /// Per row group: its data file's name under `<name>/`.
    files: Vec<String>,
    pub schema: SchemaRef,
    pub ordered_index: usize,
    pub ordered_type: DataType,
}

impl ObjectSnapshot {
    /// Row groups `range`, whole, joined into one batch.
    pub fn load(&self, range: Range<usize>) -> Result<RecordBatch> {
        let selected: Vec<(RowGroup, String)> = self.row_groups[range.clone()]
            .iter()
            .copied()
            .zip(self.files[range].iter().cloned())
            .collect();
        let batches = fetch_whole(&self.storage, &self.name, self.version, &selected)?;
        let batches = batches
            .into_iter()
            .map(|b| Ok(b.with_schema(Arc::clone(&self.schema))?))
            .collect::<Result<Vec<_>>>()?;
        crate::dictionaries::concat(&self.schema, &batches)
    }
}

impl ObjectDataset {
    /// The version this object reads; `None` when it has no row group.
    pub fn snapshot(&mut self) -> Result<Option<ObjectSnapshot>> {
        let Some(schema) = self.schema()? else {
            return Ok(None);
        };
        let (Some(field), Some(dt)) = (
            self.state.ordered_field.clone(),
            self.state.ordered_type.clone(),
        ) else {
            return Ok(None);
        };
        let ordered_index = schema.index_of(&field).map_err(|_| {
            OupsError::corrupt(
                &PathBuf::from(self.url()),
                format!("the ordered column '{field}' is not in the data files"),
            )
        })?;
        Ok(Some(ObjectSnapshot {
            storage: self.storage.clone(),
            name: self.name.clone(),
            version: self.state.version,
            row_groups: self.state.row_groups.clone(),
            files: self.files.clone(),
            schema,
            ordered_index,
            ordered_type: dt,
        }))
    }
}

/// The batches of whole data files of version `version` of dataset `name`:
/// those this process wrote from memory, the rest fetched concurrently.
pub(super) fn fetch_whole(
    storage: &ObjectStorage,
    name: &str,
    version: u64,
    selected: &[(RowGroup, String)],
) -> Result<Vec<RecordBatch>> {
    let keys: Vec<String> = selected
        .iter()
        .map(|(_, f)| format!("{name}/{f}"))
        .collect();
    let mut fetched: Vec<Option<Bytes>> = keys
        .iter()
        .map(|k| fetch::recall(&storage.url(k)))
        .collect();
    let missing: Vec<String> = keys
        .iter()
        .zip(&fetched)
        .filter(|(_, b)| b.is_none())
        .map(|(k, _)| k.clone())
        .collect();
    let mut got = storage.get_many(&missing)?.into_iter();
    for slot in fetched.iter_mut().filter(|b| b.is_none()) {
        *slot = got.next().flatten();
    }
    let jobs: Vec<(&RowGroup, &String, Option<Bytes>)> = selected
        .iter()
        .zip(&keys)
        .zip(fetched)
        .map(|(((rg, _), k), b)| (rg, k, b))
        .collect();
    parallel_map(&jobs, |(rg, key, bytes)| {
        let Some(bytes) = bytes.clone() else {
            return Err(gone(storage, key, version));
        };
        let batch = fetch::decode(storage, key, bytes, None, None)?;
        check_rows(&PathBuf::from(storage.url(key)), batch.num_rows(), rg)?;
        Ok(batch)
    })
}

/// A data file of `version` missing while it is read.
pub(super) fn gone(storage: &ObjectStorage, key: &str, version: u64) -> OupsError {
    OupsError::VersionNotFound(format!(
        "data file '{}' of version {version} is gone: the version was vacuumed (or the dataset \
         removed) while it was being read; call refresh() to read the latest version",
        storage.url(key),
    ))
}
