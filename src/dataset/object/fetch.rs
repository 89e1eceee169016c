//! Reading data files from object storage: the whole file in one request,
//! or the footer and the column chunks a projection needs, laid into a
//! file-sized buffer that is only touched where bytes were fetched.

use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};

use super::memo::Memo;
use crate::dataset::parquet_io::read_mapped;
use crate::error::{OupsError, Result};
use crate::storage::ObjectStorage;

/// Bytes fetched from a file's end to find its footer: one request for the
/// footers of files with many columns, and the whole of small files.
const FOOTER_HINT: u64 = 64 << 10;

/// The end of a data file as fetched: its last bytes and its size.
#[derive(Clone)]
pub struct Tail {
    pub bytes: Bytes,
    pub size: u64,
}

impl Tail {
    pub fn is_whole(&self) -> bool {
        self.bytes.len() as u64 == self.size
    }
}

fn corrupt(storage: &ObjectStorage, key: &str, why: impl Into<String>) -> OupsError {
    OupsError::corrupt(&PathBuf::from(storage.url(key)), why)
}

/// Tails fetched by this process, by URL.
static TAILS: Memo<Tail> = Memo::new(64 << 20, |t| t.bytes.len());

/// Data files this process wrote, by URL, so that a process that appends
/// does not download again the tail row group it wrote the step before.
static WRITTEN: Memo<Bytes> = Memo::new(64 << 20, Bytes::len);

/// Files larger than this are not kept in [`WRITTEN`]: a bulk write would
/// only push out the small tail files that appends read back.
const REMEMBERED_FILE: usize = 8 << 20;

/// Keeps a copy of a data file this process is writing.
pub fn remember(url: &str, bytes: &Bytes) {
    if bytes.len() <= REMEMBERED_FILE {
        WRITTEN.put(url, bytes.clone());
    }
}

/// Forgets the footers and files this process kept.
pub fn forget() {
    TAILS.clear();
    WRITTEN.clear();
}

/// A file [`remember`]ed by this process.
pub fn recall(url: &str) -> Option<Bytes> {
    WRITTEN.get(url)
}

/// The last bytes of `key`, enough to hold its footer (from this process's
/// cache when it read them before).
pub fn tail(storage: &ObjectStorage, key: &str) -> Result<Tail> {
    let url = storage.url(key);
    if let Some(bytes) = recall(&url) {
        let size = bytes.len() as u64;
        return Ok(Tail { bytes, size });
    }
    if let Some(t) = TAILS.get(&url) {
        return Ok(t);
    }
    let t = fetch_tail(storage, key)?;
    TAILS.put(&url, t.clone());
    Ok(t)
}

fn fetch_tail(storage: &ObjectStorage, key: &str) -> Result<Tail> {
    let (bytes, size) = storage
        .get_suffix(key, FOOTER_HINT)
        .map_err(|e| missing(e, key))?;
    let tail = Tail { bytes, size };
    let footer = footer_len(storage, key, &tail)?;
    if footer as usize <= tail.bytes.len() {
        return Ok(tail);
    }
    // A footer larger than the hint: fetch the rest of it.
    let start = size - footer as u64;
    let head = start..size - tail.bytes.len() as u64;
    let rest = storage.get_ranges(key, std::slice::from_ref(&head))?;
    let mut joined = rest.concat();
    joined.extend_from_slice(&tail.bytes);
    Ok(Tail {
        bytes: Bytes::from(joined),
        size,
    })
}

fn missing(e: OupsError, key: &str) -> OupsError {
    match e {
        OupsError::Storage {
            kind: crate::error::StorageFailure::NotFound,
            url,
            ..
        } => OupsError::corrupt(
            &PathBuf::from(url),
            format!("data file '{key}' listed in the version record is missing"),
        ),
        other => other,
    }
}

/// The footer's length with its 8-byte trailer.
fn footer_len(storage: &ObjectStorage, key: &str, tail: &Tail) -> Result<u32> {
    let b = &tail.bytes;
    if b.len() < 8 || &b[b.len() - 4..] != b"PAR1" {
        return Err(corrupt(storage, key, "it is not a Parquet file"));
    }
    let n = u32::from_le_bytes(b[b.len() - 8..b.len() - 4].try_into().expect("4 bytes"));
    let total = n as u64 + 8;
    if total + 4 > tail.size {
        return Err(corrupt(storage, key, "its footer is longer than the file"));
    }
    Ok(n + 8)
}

/// The file's Parquet metadata, from its tail.
pub fn metadata(storage: &ObjectStorage, key: &str, tail: &Tail) -> Result<ParquetMetaData> {
    let n = footer_len(storage, key, tail)? as usize;
    let b = &tail.bytes;
    ParquetMetaDataReader::decode_metadata(&b[b.len() - n..b.len() - 8])
        .map_err(|e| corrupt(storage, key, e.to_string()))
}

/// The file's Arrow schema, as a local read gives it.
pub fn schema(storage: &ObjectStorage, key: &str, tail: &Tail) -> Result<SchemaRef> {
    let meta = metadata(storage, key, tail)?;
    let file = meta.file_metadata();
    let kv = file.key_value_metadata();
    let arrow = parquet::arrow::parquet_to_arrow_schema(file.schema_descr(), kv)
        .map_err(|e| corrupt(storage, key, e.to_string()))?;
    Ok(crate::dictionaries::file_schema(Arc::new(arrow), kv))
}

/// The file with the root columns `columns` fetched (all: the whole file),
/// ready for [`read_mapped`]. `tail` (from [`tail`]) saves the footer's request.
pub fn file_bytes(
    storage: &ObjectStorage,
    key: &str,
    columns: Option<&[usize]>,
    tail: Option<&Tail>,
) -> Result<Bytes> {
    if let Some(t) = tail.filter(|t| t.is_whole()) {
        return Ok(t.bytes.clone());
    }
    let (Some(columns), Some(tail)) = (columns, tail) else {
        return match storage.get(key)? {
            Some((bytes, _)) => Ok(bytes),
            None => Err(corrupt(
                storage,
                key,
                "a data file listed in the version record is missing",
            )),
        };
    };
    let meta = metadata(storage, key, tail)?;
    let descr = meta.file_metadata().schema_descr();
    let mut ranges = Vec::new();
    for rg in meta.row_groups() {
        for (leaf, chunk) in rg.columns().iter().enumerate() {
            let wanted = columns.contains(&descr.get_column_root_idx(leaf));
            if wanted {
                let (start, len) = chunk.byte_range();
                ranges.push(start..start + len);
            }
            // The reader loads every column's offset index.
            if let (Some(at), Some(len)) =
                (chunk.offset_index_offset(), chunk.offset_index_length())
            {
                ranges.push(at as u64..at as u64 + len as u64);
            }
        }
    }
    let size = tail.size as usize;
    let fetched = storage.get_ranges(key, &ranges)?;
    // Zeroed memory is only committed where it is written.
    let mut buffer = vec![0u8; size];
    for (r, b) in ranges.iter().zip(&fetched) {
        if r.end as usize > size {
            return Err(corrupt(
                storage,
                key,
                "a column chunk lies beyond the file's end",
            ));
        }
        buffer[r.start as usize..r.end as usize].copy_from_slice(b);
    }
    buffer[size - tail.bytes.len()..].copy_from_slice(&tail.bytes);
    Ok(Bytes::from(buffer))
}

/// Decodes fetched bytes as [`read_mapped`] does a mapped local file.
pub fn decode(
    storage: &ObjectStorage,
    key: &str,
    bytes: Bytes,
    columns: Option<&[usize]>,
    rows: Option<std::ops::Range<usize>>,
) -> Result<RecordBatch> {
    read_mapped(&PathBuf::from(storage.url(key)), bytes, columns, rows, 1)
}
