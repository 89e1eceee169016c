//! The in-memory view of a committed metadata file.

use arrow_schema::DataType;
use serde_json::{Map, Value};

use crate::dataset::metadata::{MetadataDoc, RetentionDoc, RowGroupRecord};
use crate::dataset::ordered_key::{key_from_json, key_kind, key_to_json, KeyKind};
use crate::dataset::plan::RgStat;
use crate::error::{OupsError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowGroup {
    pub file_id: u64,
    pub n_rows: u64,
    pub min: u64,
    pub max: u64,
}

impl RowGroup {
    pub fn stat(&self) -> RgStat {
        RgStat {
            n_rows: self.n_rows,
            min: self.min,
            max: self.max,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct State {
    /// Whether a metadata file exists (the dataset is not newly initialised).
    pub exists: bool,
    pub ordered_on: Value,
    pub ordered_field: Option<String>,
    pub ordered_type: Option<DataType>,
    /// The version number (0 before the first commit).
    pub version: u64,
    /// Nanoseconds since the Unix epoch; `None` for a format-1 record.
    pub committed_at: Option<i64>,
    pub operation: Option<String>,
    pub restored_from: Option<u64>,
    pub writer: Option<String>,
    /// Carried from version to version; `None`: the default retention.
    pub retention: Option<RetentionDoc>,
    /// Object storage's pins, carried like the retention (see `MetadataDoc::pins`).
    pub pins: std::collections::BTreeMap<String, u64>,
    /// The record's format: 1 has no history directory yet.
    pub format: u32,
    pub row_groups: Vec<RowGroup>,
    pub key_value_metadata: Map<String, Value>,
}

impl State {
    pub fn new(ordered_on: Value) -> Self {
        State {
            ordered_on,
            ..Default::default()
        }
    }

    pub fn n_rows(&self) -> u64 {
        self.row_groups.iter().map(|rg| rg.n_rows).sum()
    }

    pub fn kind(&self) -> Option<KeyKind> {
        let dt = self.ordered_type.as_ref()?;
        key_kind(dt, "").ok()
    }

    pub fn from_doc(doc: MetadataDoc, path: &std::path::Path) -> Result<Self> {
        let bad = |reason: String| OupsError::corrupt(path, reason);
        let ordered_type = match &doc.ordered_type {
            Some(t) => Some(
                t.parse::<DataType>()
                    .map_err(|e| bad(format!("unknown ordered column type {t:?}: {e}")))?,
            ),
            None => None,
        };
        let kind = match &ordered_type {
            Some(dt) => Some(key_kind(dt, "").map_err(|e| bad(e.to_string()))?),
            None => None,
        };
        let mut row_groups = Vec::with_capacity(doc.row_groups.len());
        for (i, r) in doc.row_groups.iter().enumerate() {
            let kind =
                kind.ok_or_else(|| bad("row groups without an ordered column type".into()))?;
            let min = key_from_json(kind, &r.min);
            let max = key_from_json(kind, &r.max);
            let (Some(min), Some(max)) = (min, max) else {
                return Err(bad(format!("row group {i} has unreadable min/max")));
            };
            if min > max || r.n_rows == 0 {
                return Err(bad(format!("row group {i} has inconsistent stats")));
            }
            if let Some(prev) = row_groups.last() {
                let prev: &RowGroup = prev;
                if prev.max > min || prev.file_id >= r.file_id {
                    return Err(bad(format!(
                        "row groups {} and {i} overlap or are out of order",
                        i - 1
                    )));
                }
            }
            row_groups.push(RowGroup {
                file_id: r.file_id,
                n_rows: r.n_rows,
                min,
                max,
            });
        }
        Ok(State {
            exists: true,
            ordered_on: doc.ordered_on,
            ordered_field: doc.ordered_field,
            ordered_type,
            version: doc.version,
            committed_at: doc.committed_at,
            operation: doc.operation,
            restored_from: doc.restored_from,
            writer: doc.writer,
            retention: doc.retention,
            pins: doc.pins,
            format: doc.format,
            row_groups,
            key_value_metadata: doc.key_value_metadata,
        })
    }

    pub fn to_doc(&self) -> MetadataDoc {
        let kind = self.kind();
        MetadataDoc {
            ordered_on: self.ordered_on.clone(),
            ordered_field: self.ordered_field.clone(),
            ordered_type: self.ordered_type.as_ref().map(|t| t.to_string()),
            version: self.version,
            committed_at: self.committed_at,
            operation: self.operation.clone(),
            restored_from: self.restored_from,
            writer: self.writer.clone(),
            retention: self.retention.clone(),
            pins: self.pins.clone(),
            format: self.format,
            row_groups: self
                .row_groups
                .iter()
                .map(|rg| {
                    let k = kind.unwrap_or(KeyKind::Signed);
                    RowGroupRecord {
                        file_id: rg.file_id,
                        n_rows: rg.n_rows,
                        min: key_to_json(k, rg.min),
                        max: key_to_json(k, rg.max),
                        file: None,
                    }
                })
                .collect(),
            key_value_metadata: self.key_value_metadata.clone(),
            span: None,
            tag: None,
            lineage: Vec::new(),
        }
    }
}
