//! Reading and writing the one-row-group Parquet files, in parallel.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
    RowSelector,
};
use parquet::arrow::ProjectionMask;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::metadata::PageIndexPolicy;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::error::{IoContext, OupsError, Result};

/// Parses a compression name: none, snappy, lz4, zstd, zstd(<level>), gzip.
pub fn parse_compression(name: &str) -> Result<Compression> {
    let lower = name.trim().to_ascii_lowercase();
    let bad = || {
        OupsError::InvalidArgument(format!(
            "'compression' {name:?} is not supported; use one of 'none', 'snappy', 'lz4', \
             'zstd', 'zstd(<1-22>)', 'gzip'"
        ))
    };
    Ok(match lower.as_str() {
        "none" | "uncompressed" => Compression::UNCOMPRESSED,
        "snappy" => Compression::SNAPPY,
        "lz4" => Compression::LZ4_RAW,
        "zstd" => Compression::ZSTD(ZstdLevel::default()),
        "gzip" => Compression::GZIP(GzipLevel::default()),
        other => {
            let level = other
                .strip_prefix("zstd(")
                .and_then(|r| r.strip_suffix(')'))
                .and_then(|l| l.parse::<i32>().ok())
                .ok_or_else(bad)?;
            Compression::ZSTD(ZstdLevel::try_new(level).map_err(|_| bad())?)
        }
    })
}

pub fn writer_properties(compression: Compression) -> WriterProperties {
    // Dictionary encoding is slow on numeric data and rarely helps it; it stays
    // on per column for strings and categoricals (see `write_file`).
    WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_row_count(None)
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .build()
}

/// `base` with dictionary encoding for the string and categorical columns of `batch`.
pub fn column_properties(batch: &RecordBatch, base: &WriterProperties) -> WriterProperties {
    use arrow_schema::DataType::*;
    let mut builder = base.clone().into_builder();
    for f in batch.schema().fields() {
        if matches!(
            f.data_type(),
            Utf8 | LargeUtf8 | Utf8View | Dictionary(_, _) | Binary | LargeBinary
        ) {
            builder = builder.set_column_dictionary_enabled(f.name().as_str().into(), true);
        }
    }
    builder.build()
}

/// Writes one batch as a new file holding a single row group, and starts its
/// writeback; the caller makes it durable with [`crate::durable::sync_file`]
/// once the other files are written too, so that encoding and the device's
/// work overlap instead of taking turns. `rows_before` is the number of rows
/// before this file in the dataset: fixed-width values are placed so that a
/// full read can map them ([`crate::dataset::aligned`]).
pub fn write_file(
    path: &Path,
    batch: &RecordBatch,
    props: &WriterProperties,
    rows_before: u64,
) -> Result<File> {
    write_pieces(path, std::slice::from_ref(batch), props, rows_before)
}

/// [`write_file`] for rows given as slices laid end to end (see
/// [`crate::dataset::aligned::write_file`]).
pub fn write_pieces(
    path: &Path,
    pieces: &[RecordBatch],
    props: &WriterProperties,
    rows_before: u64,
) -> Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .at("cannot create data file", path)?;
    encode_pieces(&file, path, pieces, props, rows_before)?;
    crate::durable::start_writeback(&file);
    Ok(file)
}

/// A data file of `pieces` (see [`write_pieces`]) written to `out`; `name`
/// is what errors call it.
pub fn encode_pieces<W: std::io::Write>(
    out: W,
    name: &Path,
    pieces: &[RecordBatch],
    props: &WriterProperties,
    rows_before: u64,
) -> Result<()> {
    let first = pieces
        .first()
        .ok_or_else(|| OupsError::Internal("a row group without rows".into()))?;
    let joined;
    // Slices of batches with dictionaries may not share them: one is written.
    let pieces = if pieces.len() > 1 && crate::dictionaries::has_dictionary(&first.schema()) {
        joined = [crate::dictionaries::concat(&first.schema(), pieces)?];
        &joined[..]
    } else {
        pieces
    };
    let plain: Vec<RecordBatch>;
    let to_write = match crate::dictionaries::unordered(&first.schema()) {
        None => pieces,
        Some(schema) => {
            plain = pieces
                .iter()
                .map(|p| RecordBatch::try_new(Arc::clone(&schema), p.columns().to_vec()))
                .collect::<std::result::Result<_, _>>()?;
            &plain[..]
        }
    };
    // The buffer for encoded columns is the thread's, reused from file to
    // file: fresh memory costs a page fault per page.
    let mut staging = STAGING.with(|s| std::mem::take(&mut *s.borrow_mut()));
    let result = (|| {
        let extra = crate::dictionaries::record(&pieces[0])?;
        crate::dataset::aligned::write_file(
            out,
            name,
            to_write,
            props,
            extra,
            rows_before,
            &mut staging,
        )
    })();
    STAGING.with(|s| *s.borrow_mut() = staging);
    result
}

thread_local! {
    static STAGING: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A new data file, buffered: the encoder's many small writes are slow as
/// system calls.
pub fn create_data_file(path: &Path) -> Result<std::io::BufWriter<File>> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .at("cannot create data file", path)?;
    Ok(std::io::BufWriter::with_capacity(1 << 20, file))
}

/// Flushes a data file written through [`create_data_file`] and starts its
/// writeback.
pub fn finish_data_file(buffered: std::io::BufWriter<File>, path: &Path) -> Result<File> {
    let file = buffered
        .into_inner()
        .map_err(|e| OupsError::io("cannot write data file", path, e.into_error()))?;
    crate::durable::start_writeback(&file);
    Ok(file)
}

fn missing_or_io(path: &Path, e: std::io::Error) -> OupsError {
    if e.kind() == std::io::ErrorKind::NotFound {
        OupsError::corrupt(path, "a data file listed in the metadata is missing")
    } else {
        OupsError::io("cannot read data file", path, e)
    }
}

fn open_data_file(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| missing_or_io(path, e))
}

/// The whole file as bytes, memory-mapped from the page cache. Copying it
/// into fresh memory costs far more (page faults on the new buffer) than
/// mapping it. Safe because data files are immutable: oups never modifies a
/// data file in place, it only creates new names and unlinks old ones (an
/// unlinked file stays mapped until it is dropped).
pub(crate) fn map_file(path: &Path) -> Result<Bytes> {
    let file = open_data_file(path)?;
    checked_len(&file, path)?;
    // SAFETY: see above; the mapping is read-only and owned by the Bytes.
    let map = unsafe { memmap2::MmapOptions::new().populate().map(&file) }
        .at("cannot map data file", path)?;
    Ok(Bytes::from_owner(map))
}

fn checked_len(file: &File, path: &Path) -> Result<u64> {
    let len = file.metadata().at("cannot stat data file", path)?.len();
    if len == 0 {
        return Err(OupsError::corrupt(path, "the data file is empty"));
    }
    Ok(len)
}

/// Like [`map_file`], but a private copy-on-write mapping: its pages may be
/// handed over as mutable memory (numpy arrays), and a write to one copies
/// that page instead of reaching the file. Without `populate`, pages are
/// mapped as they are touched, for a caller that populates the ranges it
/// hands over ([`crate::dataset::contiguous::populate_read`]).
fn map_file_private(path: &Path, populate: bool) -> Result<Bytes> {
    let file = open_data_file(path)?;
    checked_len(&file, path)?;
    // SAFETY: as for `map_file`; writes through the mapping stay private.
    let map =
        unsafe { memmap2::MmapOptions::new().map_copy(&file) }.at("cannot map data file", path)?;
    if populate {
        crate::dataset::contiguous::populate_read(&map);
    }
    Ok(Bytes::from_owner(map))
}

/// Reads a whole data file as one batch.
pub fn read_file(path: &Path) -> Result<RecordBatch> {
    read_file_part(path, None, None)
}

/// Reads some columns (`None`: all) of some rows (`None`: all) of a data file.
/// A row range skips the pages outside it, thanks to the offset index.
pub fn read_file_part(
    path: &Path,
    columns: Option<&[usize]>,
    rows: Option<std::ops::Range<usize>>,
) -> Result<RecordBatch> {
    read_file_split(path, columns, rows, 1)
}

/// Below this many bytes of column data, one thread decodes a file.
const MIN_SPLIT_BYTES: i64 = 4 << 20;

/// Like [`read_file_part`], decoding the columns on up to `ways` threads
/// (the Parquet reader decodes one column after the other).
pub fn read_file_split(
    path: &Path,
    columns: Option<&[usize]>,
    rows: Option<std::ops::Range<usize>>,
    ways: usize,
) -> Result<RecordBatch> {
    read_mapped(path, map_file(path)?, columns, rows, ways)
}

/// A whole data file, with the address range of its mapping: the columns
/// taken as runs of values point into it ([`crate::dataset::contiguous`]
/// maps the same file pages where they are joined).
pub fn read_file_in_place(path: &Path) -> Result<(RecordBatch, std::ops::Range<usize>)> {
    in_place(path, map_file(path)?)
}

/// [`read_file_in_place`] over a private copy-on-write mapping
/// ([`map_file_private`]): the zero-copy value runs may be handed over as
/// mutable memory.
pub fn read_file_private(
    path: &Path,
    populate: bool,
) -> Result<(RecordBatch, std::ops::Range<usize>)> {
    in_place(path, map_file_private(path, populate)?)
}

fn in_place(path: &Path, file: Bytes) -> Result<(RecordBatch, std::ops::Range<usize>)> {
    let start = file.as_ptr() as usize;
    let range = start..start + file.len();
    Ok((read_mapped(path, file, None, None, 1)?, range))
}

/// Decodes a data file held in memory: `columns` (`None`: all) of `rows`
/// (`None`: all), fixed-width values sliced out of `file` where they lie.
/// `path` is what errors call it.
pub fn read_mapped(
    path: &Path,
    file: Bytes,
    columns: Option<&[usize]>,
    rows: Option<std::ops::Range<usize>>,
    ways: usize,
) -> Result<RecordBatch> {
    let corrupt = |e: parquet::errors::ParquetError| OupsError::corrupt(path, e.to_string());
    // The offset index skips pages and locates runs of values (there is no
    // column index).
    let options = ArrowReaderOptions::new().with_offset_index_policy(PageIndexPolicy::Optional);
    let meta = ArrowReaderMetadata::load(&file, options).map_err(corrupt)?;
    let kv = meta.metadata().file_metadata().key_value_metadata();
    let schema = crate::dictionaries::file_schema(Arc::clone(meta.schema()), kv);
    let total = meta.metadata().file_metadata().num_rows().max(0) as usize;
    let n_fields = meta.schema().fields().len();
    let cols: Vec<usize> = match columns {
        Some(c) => c.to_vec(),
        None => (0..n_fields).collect(),
    };
    let projected = Arc::new(schema.project(&cols)?);
    let wanted = match &rows {
        Some(r) if r.end > total || r.start > r.end => {
            return Err(OupsError::corrupt(
                path,
                "it holds fewer rows than the metadata says",
            ))
        }
        Some(r) => r.end - r.start,
        None => total,
    };
    // Runs of values are taken as they are in the file; the rest is decoded.
    let mut taken: Vec<(usize, arrow_array::ArrayRef)> = Vec::new();
    for &c in &cols {
        if let Some(array) = value_array(&file, &meta, &schema, c, total, rows.clone())? {
            taken.push((c, array));
        }
    }
    let decoded_cols: Vec<usize> = cols
        .iter()
        .copied()
        .filter(|c| !taken.iter().any(|(t, _)| t == c))
        .collect();
    let parts = if decoded_cols.is_empty() {
        Vec::new()
    } else {
        split_columns(&meta, &decoded_cols, ways)
    };
    let read_part = |part: &Vec<usize>| -> Result<RecordBatch> {
        let mut builder =
            ParquetRecordBatchReaderBuilder::new_with_metadata(file.clone(), meta.clone());
        let mask = ProjectionMask::roots(builder.parquet_schema(), part.iter().copied());
        builder = builder.with_projection(mask);
        if let Some(r) = &rows {
            builder = builder.with_row_selection(RowSelection::from(vec![
                RowSelector::skip(r.start),
                RowSelector::select(wanted),
                RowSelector::skip(total - r.end),
            ]));
        }
        let part_schema = Arc::new(schema.project(part)?);
        let reader = builder
            .with_batch_size(wanted.max(1))
            .build()
            .map_err(corrupt)?;
        let mut batches = Vec::new();
        for b in reader {
            batches.push(b.map_err(|e| OupsError::corrupt(path, e.to_string()))?);
        }
        match batches.len() {
            0 => Ok(RecordBatch::new_empty(part_schema)),
            1 => Ok(batches.pop().expect("one batch")),
            _ => crate::dictionaries::concat(&part_schema, &batches),
        }
    };
    let decoded = match parts.len() {
        0 => Vec::new(),
        1 => vec![read_part(&parts[0])?],
        _ => parallel_map(&parts, read_part)?,
    };
    // Put the columns of the parts back in the requested (sorted) order.
    let mut arrays = Vec::with_capacity(cols.len());
    for c in &cols {
        if let Some((_, array)) = taken.iter().find(|(t, _)| t == c) {
            arrays.push(Arc::clone(array));
            continue;
        }
        let (p, i) = parts
            .iter()
            .enumerate()
            .find_map(|(p, part)| part.iter().position(|x| x == c).map(|i| (p, i)))
            .ok_or_else(|| OupsError::Internal("a projected column was lost".into()))?;
        arrays.push(decoded[p].column(i).clone());
    }
    if arrays.is_empty() {
        return Ok(RecordBatch::try_new_with_options(
            projected,
            arrays,
            &arrow_array::RecordBatchOptions::new().with_row_count(Some(wanted)),
        )?);
    }
    let batch = RecordBatch::try_new(projected, arrays)?;
    // Footer entries are per column of the file: only a full projection keeps
    // the indices (range reads of some columns keep the decoded dictionaries).
    match columns {
        None => crate::dictionaries::restore(
            batch,
            meta.metadata().file_metadata().key_value_metadata(),
        ),
        Some(_) => restore_projected(batch, &cols, &meta),
    }
}

/// Column `c` of a mapped file as an array over the file's bytes, when its
/// values are one run ([`crate::dataset::aligned::value_run`]) aligned for
/// its type; `None` to decode it. `rows` selects some of the `total` rows.
fn value_array(
    file: &Bytes,
    meta: &ArrowReaderMetadata,
    schema: &arrow_schema::Schema,
    c: usize,
    total: usize,
    rows: Option<std::ops::Range<usize>>,
) -> Result<Option<arrow_array::ArrayRef>> {
    let md = meta.metadata();
    let field = schema.field(c);
    let Some(width) = crate::dataset::aligned::mappable_width(field.data_type()) else {
        return Ok(None);
    };
    let descr = md.file_metadata().schema_descr();
    // The leaf of a fixed-width root column: the one whose root it is.
    let Some(leaf) = (0..descr.num_columns()).find(|&l| descr.get_column_root_idx(l) == c) else {
        return Ok(None);
    };
    let (Some(pages), [rg]) = (
        md.offset_index()
            .and_then(|o| o.first())
            .and_then(|o| o.get(leaf)),
        md.row_groups(),
    ) else {
        return Ok(None);
    };
    let chunk = rg.column(leaf);
    if !crate::dataset::aligned::physical_width_is(chunk.column_type(), width) {
        return Ok(None);
    }
    let Some(run) = crate::dataset::aligned::value_run(chunk, pages, width) else {
        return Ok(None);
    };
    let rows = rows.unwrap_or(0..total);
    let (start, end) = (run.start as usize, run.end as usize);
    if end > file.len()
        || (end - start) != total * width
        || rows.end > total
        || (file.as_ptr() as usize + start) % width != 0
    {
        return Ok(None);
    }
    let values = file.slice(start + rows.start * width..start + rows.end * width);
    let data = arrow_data::ArrayData::builder(field.data_type().clone())
        .len(rows.len())
        .add_buffer(arrow_buffer::Buffer::from(values))
        .build()?;
    Ok(Some(arrow_array::make_array(data)))
}

/// [`crate::dictionaries::restore`] for a batch of some columns of a file.
fn restore_projected(
    batch: RecordBatch,
    cols: &[usize],
    meta: &ArrowReaderMetadata,
) -> Result<RecordBatch> {
    let Some(kv) = meta.metadata().file_metadata().key_value_metadata() else {
        return Ok(batch);
    };
    // Renumber the footer entries after the projection.
    let renumbered: Vec<parquet::file::metadata::KeyValue> = cols
        .iter()
        .enumerate()
        .filter_map(|(pos, c)| {
            let key = format!("oups:dictionary:{c}");
            kv.iter()
                .find(|e| e.key == key)
                .map(|e| parquet::file::metadata::KeyValue {
                    key: format!("oups:dictionary:{pos}"),
                    value: e.value.clone(),
                })
        })
        .collect();
    crate::dictionaries::restore(batch, Some(&renumbered))
}

/// Splits sorted root columns into up to `ways` runs of similar byte size.
fn split_columns(meta: &ArrowReaderMetadata, cols: &[usize], ways: usize) -> Vec<Vec<usize>> {
    let md = meta.metadata();
    let schema = md.file_metadata().schema_descr();
    let mut sizes = vec![0i64; meta.schema().fields().len()];
    for rg in md.row_groups() {
        for (leaf, chunk) in rg.columns().iter().enumerate() {
            let root = schema.get_column_root_idx(leaf);
            if let Some(s) = sizes.get_mut(root) {
                *s += chunk.uncompressed_size();
            }
        }
    }
    let total: i64 = cols
        .iter()
        .map(|&c| sizes.get(c).copied().unwrap_or(0))
        .sum();
    let ways = ways.min(cols.len()).max(1);
    if ways == 1 || total < MIN_SPLIT_BYTES {
        return vec![cols.to_vec()];
    }
    let share = total / ways as i64;
    let mut parts: Vec<Vec<usize>> = vec![Vec::new()];
    let mut acc = 0i64;
    for &c in cols {
        let last = parts.last_mut().expect("non-empty");
        if acc >= share && !last.is_empty() && parts.len() < ways {
            parts.push(Vec::new());
            acc = 0;
        }
        parts.last_mut().expect("non-empty").push(c);
        acc += sizes.get(c).copied().unwrap_or(0);
    }
    parts
}

/// The Arrow schema stored in a data file's footer.
pub fn read_schema(path: &Path) -> Result<SchemaRef> {
    let file = open_data_file(path)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| OupsError::corrupt(path, e.to_string()))?;
    let kv = builder.metadata().file_metadata().key_value_metadata();
    Ok(crate::dictionaries::file_schema(
        builder.schema().clone(),
        kv,
    ))
}

/// The Arrow schema and the row count of a data file, from its footer.
pub fn read_footer(path: &Path) -> Result<(SchemaRef, u64)> {
    let file = open_data_file(path)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| OupsError::corrupt(path, e.to_string()))?;
    let meta = builder.metadata().file_metadata();
    let rows = u64::try_from(meta.num_rows()).unwrap_or(0);
    let schema =
        crate::dictionaries::file_schema(builder.schema().clone(), meta.key_value_metadata());
    Ok((schema, rows))
}

pub fn remove_quietly(paths: &[PathBuf]) {
    for p in paths {
        let _ = fs::remove_file(p);
    }
}

/// Runs `f` over `items` on up to all cores, keeping the input order.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let workers = crate::cores::cores().min(items.len());
    if workers <= 1 {
        return items.iter().map(&f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<R>>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= items.len() {
                    break;
                }
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&items[i])))
                    .unwrap_or_else(|_| {
                        Err(OupsError::Internal("a worker thread panicked".into()))
                    });
                *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or_else(|| Err(OupsError::Internal("missing worker result".into())))
        })
        .collect()
}

pub type Batches = Vec<RecordBatch>;

pub fn read_files(paths: &[PathBuf]) -> Result<Batches> {
    parallel_map(paths, |p| read_file(p))
}

pub fn shared_schema(batches: &[RecordBatch]) -> Option<SchemaRef> {
    batches.first().map(|b| Arc::clone(&b.schema()))
}
