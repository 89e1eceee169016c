//! Row groups made of whole existing files keep those files' pages as bytes.
//!
//! When an append or a coalescing step rewrites the tail, most of the rows it
//! writes are already encoded in the files it replaces. A column chunk may hold
//! any number of pages and a data page carries its own header, levels and
//! values, so the pages of several one-row-group files, laid end to end, are a
//! valid chunk of the sum of their rows: copying them costs one pass over the
//! bytes, where decoding, gathering and re-encoding cost four.
//!
//! Only what cannot be laid end to end is decoded and encoded again:
//! - columns with a dictionary page (strings: a chunk holds one dictionary at
//!   most), nested columns, and columns whose codec differs from the write's;
//! - the rows of a file that a row-group boundary cuts in two;
//! - the new rows, which have no pages yet.
//!
//! It applies only where a merge is a plain concatenation: the new rows all
//! sort after the stored ones, so no row moves and no stored row can be
//! replaced by a duplicate. Everything else (and every dataset with
//! categorical columns, whose dictionaries are recorded per file) takes the
//! decoding path of [`crate::dataset::merge`].

use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};
use bytes::Bytes;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::ArrowSchemaConverter;
use parquet::basic::Compression;
use parquet::file::metadata::{KeyValue, PageIndexPolicy};

mod chunks;
pub(crate) mod stats;
mod write;

pub use write::write;

use crate::dataset::merge::{split_bounds, Chunk};
use crate::dataset::ordered_key::{check_sorted, encode_column, key_kind};
use crate::dataset::parquet_io::{self, map_file};
use crate::dataset::plan::Target;
use crate::dataset::state::RowGroup;
use crate::dataset::verify::{check_file, check_rows, same_columns};
use crate::error::{OupsError, Result};

/// A data file whose pages can be copied: mapped, with its footer parsed.
pub struct Source {
    path: PathBuf,
    bytes: Bytes,
    meta: ArrowReaderMetadata,
}

/// A run of rows in a spliced row group.
pub enum Part {
    /// All rows of a stored file, copied as pages.
    File(Arc<Source>),
    /// Rows to encode: new rows, or those of a file cut by a boundary.
    Rows(RecordBatch),
}

/// One row group to write by splicing.
pub struct Splice {
    parts: Vec<Part>,
    /// Per dataset column: copied as pages (true) or decoded and encoded.
    copied: Arc<Vec<bool>>,
    schema: SchemaRef,
    pub n_rows: u64,
    pub min: u64,
    pub max: u64,
}

/// A row group a write creates.
pub enum NewRowGroup {
    Encoded(Chunk),
    Spliced(Splice),
}

impl NewRowGroup {
    pub fn n_rows(&self) -> u64 {
        match self {
            NewRowGroup::Encoded(c) => c.num_rows() as u64,
            NewRowGroup::Spliced(s) => s.n_rows,
        }
    }

    pub fn bounds(&self) -> (u64, u64) {
        match self {
            NewRowGroup::Encoded(c) => (c.min, c.max),
            NewRowGroup::Spliced(s) => (s.min, s.max),
        }
    }
}

/// What [`plan`] needs of the write.
pub struct Region<'a> {
    /// The stored row groups the region rewrites, in order, with their files.
    pub files: &'a [(PathBuf, RowGroup)],
    /// The region's new rows (conformed to `schema`) and their keys.
    pub new: Option<(RecordBatch, &'a [u64])>,
    pub schema: &'a SchemaRef,
    pub ordered_col: usize,
    pub target: &'a Target,
    /// Whether the write drops duplicates.
    pub drop: bool,
    pub compression: Compression,
}

/// Columns whose chunks can be laid end to end when every file allows it:
/// single-leaf, fixed-width or boolean, and never dictionary-encoded by oups.
fn copyable_type(dt: &DataType) -> bool {
    dt.is_primitive() || matches!(dt, DataType::Boolean)
}

/// The region's row groups by splicing, or `None` when it must be merged by
/// decoding (not a concatenation, or files that do not allow it).
pub fn plan(region: &Region) -> Result<Option<Vec<NewRowGroup>>> {
    let Some((_, last)) = region.files.last() else {
        return Ok(None);
    };
    let schema = region.schema;
    if schema
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Dictionary(_, _)))
    {
        return Ok(None);
    }
    if let Some((_, keys)) = &region.new {
        let first = keys.first().copied().unwrap_or(u64::MAX);
        if first < last.max || (region.drop && first == last.max) {
            return Ok(None);
        }
    }
    let Some((sources, copied)) = open_sources(region)? else {
        return Ok(None);
    };
    if !copied.iter().any(|&c| c) {
        return Ok(None);
    }
    // The ordered column of every file, decoded: checked like a decoding
    // merge checks it, and the keys place the row-group boundaries.
    let field = schema.field(region.ordered_col);
    let kind = key_kind(field.data_type(), field.name())?;
    let mut keys: Vec<u64> = Vec::new();
    let mut starts = Vec::with_capacity(sources.len());
    for (source, (path, rg)) in sources.iter().zip(region.files) {
        let column = parquet_io::read_file_part(path, Some(&[region.ordered_col]), None)?;
        check_rows(path, column.num_rows(), rg)?;
        let file_keys = encode_column(column.column(0).as_ref(), field.name())
            .map_err(|e| OupsError::corrupt(path, format!("its ordered column: {e}")))?;
        check_sorted(&file_keys, kind, field.name(), field.data_type())
            .map_err(|e| OupsError::corrupt(path, format!("its rows are not sorted: {e}")))?;
        if file_keys.first() != Some(&rg.min) || file_keys.last() != Some(&rg.max) {
            return Err(OupsError::corrupt(
                &source.path,
                "its ordered values do not run from the min to the max the metadata records",
            ));
        }
        starts.push(keys.len());
        keys.extend_from_slice(&file_keys);
    }
    let stored_rows = keys.len();
    if let Some((_, new_keys)) = &region.new {
        keys.extend_from_slice(new_keys);
    }
    let copied = Arc::new(copied);
    let mut decoded: Vec<Option<RecordBatch>> = vec![None; sources.len()];
    let mut out = Vec::new();
    for bound in split_bounds(&keys, region.target) {
        let mut parts: Vec<Part> = Vec::new();
        for (i, source) in sources.iter().enumerate() {
            let (start, end) = (starts[i], starts[i] + region.files[i].1.n_rows as usize);
            let (lo, hi) = (bound.start.max(start), bound.end.min(end));
            if lo >= hi {
                continue;
            }
            if lo == start && hi == end {
                parts.push(Part::File(Arc::clone(source)));
                continue;
            }
            if decoded[i].is_none() {
                let (path, rg) = &region.files[i];
                let batch = parquet_io::read_file(path)?;
                check_file(path, &batch, schema, rg, Some(region.ordered_col))?;
                decoded[i] = Some(RecordBatch::try_new(
                    Arc::clone(schema),
                    batch.columns().to_vec(),
                )?);
            }
            let batch = decoded[i].as_ref().expect("decoded above");
            push_rows(&mut parts, batch.slice(lo - start, hi - lo), schema)?;
        }
        if let Some((batch, _)) = &region.new {
            let (lo, hi) = (bound.start.max(stored_rows), bound.end);
            if lo < hi {
                push_rows(&mut parts, batch.slice(lo - stored_rows, hi - lo), schema)?;
            }
        }
        let (min, max) = (keys[bound.start], keys[bound.end - 1]);
        let row_group = match parts.as_slice() {
            [Part::Rows(batch)] => NewRowGroup::Encoded(Chunk {
                pieces: vec![batch.clone()],
                min,
                max,
            }),
            _ => NewRowGroup::Spliced(Splice {
                parts,
                copied: Arc::clone(&copied),
                schema: Arc::clone(schema),
                n_rows: bound.len() as u64,
                min,
                max,
            }),
        };
        out.push(row_group);
    }
    Ok(Some(out))
}

/// Appends rows, joining them to a preceding run of rows (one encode each).
fn push_rows(parts: &mut Vec<Part>, rows: RecordBatch, schema: &SchemaRef) -> Result<()> {
    if let Some(Part::Rows(prev)) = parts.last_mut() {
        *prev = arrow_select::concat::concat_batches(schema, [&*prev, &rows])?;
    } else {
        parts.push(Part::Rows(rows));
    }
    Ok(())
}

/// The mapped files, and per dataset column whether its pages are copied.
type Opened = (Vec<Arc<Source>>, Vec<bool>);

/// Maps and parses the region's files; `None` when one of them cannot be
/// spliced (another Parquet schema, another footer, no offset index, more
/// than one row group), so that the decoding path judges it. Also says, per
/// dataset column, whether its pages can be copied.
fn open_sources(region: &Region) -> Result<Option<Opened>> {
    let schema = region.schema;
    let expected = ArrowSchemaConverter::new().convert(schema)?;
    let leaves = expected.columns();
    let mut copied: Vec<bool> = schema
        .fields()
        .iter()
        .map(|f| copyable_type(f.data_type()))
        .collect();
    // Single-leaf columns only: their leaf index is their column index.
    if leaves.len() != schema.fields().len() {
        return Ok(None);
    }
    let mut sources = Vec::with_capacity(region.files.len());
    let mut footer: Option<Vec<KeyValue>> = None;
    for (path, rg) in region.files {
        let bytes = map_file(path)?;
        let options = ArrowReaderOptions::new().with_offset_index_policy(PageIndexPolicy::Required);
        let Ok(meta) = ArrowReaderMetadata::load(&bytes, options) else {
            return Ok(None);
        };
        let md = meta.metadata();
        let file_meta = md.file_metadata();
        let kv = file_meta.key_value_metadata().cloned().unwrap_or_default();
        if md.num_row_groups() != 1
            || file_meta.num_rows() != rg.n_rows as i64
            || file_meta.schema_descr().root_schema() != expected.root_schema()
            || !same_columns(meta.schema().fields(), schema.fields())
            || md.offset_index().is_none()
            || footer.as_ref().is_some_and(|f| *f != kv)
        {
            return Ok(None);
        }
        footer.get_or_insert(kv);
        for (c, chunk) in md.row_group(0).columns().iter().enumerate() {
            if chunk.dictionary_page_offset().is_some() || chunk.compression() != region.compression
            {
                copied[c] = false;
            }
        }
        sources.push(Arc::new(Source {
            path: path.clone(),
            bytes,
            meta,
        }));
    }
    Ok(Some((sources, copied)))
}
