//! Data files whose fixed-width values can be mapped into a read's columns.
//!
//! A full read hands pandas one contiguous array per column, spanning every
//! file. If each file holds a column's values as one run of bytes (a single
//! PLAIN, uncompressed data page) that starts, modulo the memory page size, at
//! the byte where the run lands in the joined column, the read can map the
//! file's pages there (copy-on-write) instead of copying them: only the
//! partial pages at the seams between files are copied.
//!
//! The writer knows where the run will land: `rows_before` the file in the
//! dataset times the value width. It pads before each such column chunk to
//! get there. Padding between column chunks is legal Parquet, since the
//! footer records where each chunk starts, so other readers see an ordinary
//! file. A later write that changes the rows before a file only makes the read
//! copy that file's values, as it does for files written without padding.

use std::cell::RefCell;
use std::io::Write;
use std::ops::Range;
use std::path::Path;
use std::rc::Rc;

use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use bytes::Bytes;
use parquet::arrow::{
    encode_arrow_schema, ArrowSchemaConverter, ArrowWriter, ARROW_SCHEMA_META_KEY,
};
use parquet::basic::{Compression, Encoding};
use parquet::file::metadata::{
    ColumnChunkMetaData, FileMetaData, KeyValue, PageIndexPolicy, ParquetMetaData,
    ParquetMetaDataReader, ParquetMetaDataWriter, RowGroupMetaData,
};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::{ColumnDescPtr, ColumnPath};

use crate::dataset::plain_page;
use crate::dataset::splice::stats::combine;
use parquet::file::page_index::offset_index::{OffsetIndexMetaData, PageLocation};
use parquet::file::reader::{ChunkReader, Length};
use parquet::file::writer::TrackedWrite;

use crate::error::{OupsError, Result};

/// The memory page size the layout aligns to (the largest common one, 4 KiB
/// pages map at any multiple of it).
pub const PAGE: u64 = 4096;

static ZEROS: [u8; PAGE as usize] = [0; PAGE as usize];

/// Longest run of values written as one page: a page header holds i32 sizes.
const MAX_RUN: usize = 1 << 30;

/// Bytes per value of the columns that can be mapped: those whose Parquet
/// values are their Arrow values bit for bit. Narrow integers (stored as
/// INT32), second-unit times (stored as milliseconds), decimals and booleans
/// (bit-packed) are not.
pub fn mappable_width(dt: &DataType) -> Option<usize> {
    use arrow_schema::TimeUnit::*;
    use DataType::*;
    match dt {
        Int32 | UInt32 | Float32 | Date32 | Time32(Millisecond) => Some(4),
        Int64 | UInt64 | Float64 | Time64(_) => Some(8),
        Timestamp(Millisecond | Microsecond | Nanosecond, _) => Some(8),
        Duration(Millisecond | Microsecond | Nanosecond) => Some(8),
        _ => None,
    }
}

/// Whether a Parquet leaf holds `width`-byte values of its own physical type.
pub fn physical_width_is(physical: parquet::basic::Type, width: usize) -> bool {
    use parquet::basic::Type::*;
    matches!((physical, width), (INT32 | FLOAT, 4) | (INT64 | DOUBLE, 8))
}

/// The value width of each Parquet leaf column of `schema`, where mappable:
/// a top-level fixed-width field is one leaf; nested fields have several.
pub fn leaf_widths(schema: &arrow_schema::Schema) -> Vec<Option<usize>> {
    let mut widths = Vec::new();
    for f in schema.fields() {
        match mappable_width(f.data_type()) {
            Some(w) => widths.push(Some(w)),
            None => widths.extend(std::iter::repeat_n(None, leaf_count(f.data_type()))),
        }
    }
    widths
}

fn leaf_count(dt: &DataType) -> usize {
    use DataType::*;
    match dt {
        Struct(fields) => fields.iter().map(|f| leaf_count(f.data_type())).sum(),
        List(f) | LargeList(f) | FixedSizeList(f, _) | ListView(f) | LargeListView(f) => {
            leaf_count(f.data_type())
        }
        Map(entry, _) => leaf_count(entry.data_type()),
        Dictionary(_, value) => leaf_count(value),
        RunEndEncoded(_, values) => leaf_count(values.data_type()),
        _ => 1,
    }
}

/// Where a column chunk's values are, when they are one run of
/// `n_values * width` bytes: one PLAIN data page, uncompressed, no nulls. A
/// data page ends with its values (after its header and levels), so the run
/// is the tail of the page.
pub fn value_run(
    chunk: &ColumnChunkMetaData,
    pages: &OffsetIndexMetaData,
    width: usize,
) -> Option<Range<u64>> {
    let [page] = pages.page_locations().as_slice() else {
        return None;
    };
    let plain = chunk
        .encodings()
        .all(|e| matches!(e, Encoding::PLAIN | Encoding::RLE));
    let no_nulls = chunk.statistics().and_then(|s| s.null_count_opt()) == Some(0);
    if chunk.compression() != Compression::UNCOMPRESSED
        || chunk.dictionary_page_offset().is_some()
        || !plain
        || !no_nulls
    {
        return None;
    }
    let len = u64::try_from(chunk.num_values()).ok()? * width as u64;
    let end = u64::try_from(page.offset).ok()? + u64::try_from(page.compressed_page_size).ok()?;
    (end >= len && i64::try_from(end).ok()? <= chunk.data_page_offset() + chunk.compressed_size())
        .then(|| end - len..end)
}

/// Writes the rows of `pieces` (batches of one schema, laid end to end) as a
/// one-row-group Parquet file to `out`.
///
/// Fixed-width columns without nulls (and without a codec) are written as one
/// data page each, straight from the Arrow buffers ([`plain_page`]), padded
/// so that their values start where they land in a joined column:
/// `rows_before * width`, modulo [`PAGE`]. The other columns are encoded by
/// the Arrow writer into `staging` and copied in. `extra` goes to the footer's
/// key-value metadata after the Arrow schema. The pieces are written one
/// after the other: a merge hands over slices of the stored files' mappings
/// and of the new rows, which are never gathered into new memory.
pub fn write_file<W: Write>(
    out: W,
    path: &Path,
    pieces: &[RecordBatch],
    props: &WriterProperties,
    extra: Vec<KeyValue>,
    rows_before: u64,
    staging: &mut Vec<u8>,
) -> Result<()> {
    let io = |e: std::io::Error| OupsError::io("cannot write data file", path, e);
    let schema = pieces
        .first()
        .ok_or_else(|| OupsError::Internal("a row group without rows".into()))?
        .schema();
    let descr = Arc::new(
        ArrowSchemaConverter::new()
            .with_coerce_types(props.coerce_types())
            .convert(&schema)?,
    );
    let n: usize = pieces.iter().map(RecordBatch::num_rows).sum();
    // Per root column: written directly (its value width) or encoded.
    let direct: Vec<Option<usize>> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(c, f)| {
            let w = mappable_width(f.data_type())?;
            let path = ColumnPath::from(f.name().as_str());
            (pieces.iter().all(|p| p.column(c).null_count() == 0)
                && n.saturating_mul(w) < MAX_RUN
                && props.compression(&path) == Compression::UNCOMPRESSED)
                .then_some(w)
        })
        .collect();
    let encoded_roots: Vec<usize> = (0..direct.len()).filter(|&c| direct[c].is_none()).collect();
    let encoded = if encoded_roots.is_empty() {
        None
    } else {
        staging.clear();
        let parts: Vec<RecordBatch> = pieces
            .iter()
            .map(|p| p.project(&encoded_roots))
            .collect::<std::result::Result<_, _>>()?;
        let mut writer = ArrowWriter::try_new(
            &mut *staging,
            parts[0].schema(),
            Some(crate::dataset::parquet_io::column_properties(
                &parts[0], props,
            )),
        )?;
        for part in &parts {
            writer.write(part)?;
        }
        writer.close()?;
        Some(
            ParquetMetaDataReader::new()
                .with_page_index_policy(PageIndexPolicy::Required)
                .parse_and_finish(&InMemory(staging))?,
        )
    };
    let failed = Rc::new(RefCell::new(None));
    let mut tracked = TrackedWrite::new(Recording {
        file: out,
        failed: Rc::clone(&failed),
    });
    tracked.write_all(b"PAR1").map_err(io)?;
    let mut columns = Vec::with_capacity(descr.num_columns());
    let mut locations = Vec::with_capacity(descr.num_columns());
    let mut next_encoded = 0usize;
    for leaf in 0..descr.num_columns() {
        let root = descr.get_column_root_idx(leaf);
        let leaf_descr = descr.column(leaf);
        let at = tracked.bytes_written() as i64;
        if let Some(width) = direct[root] {
            let data: Vec<_> = pieces.iter().map(|p| p.column(root).to_data()).collect();
            let values: Vec<&[u8]> = data
                .iter()
                .map(|d| plain_page::value_bytes(d, width))
                .collect::<Option<_>>()
                .ok_or_else(|| OupsError::Internal("a column shorter than its rows".into()))?;
            let prefix = plain_page::prefix(n, width, leaf_descr.max_def_level() > 0)
                .ok_or_else(|| OupsError::Internal("a page too large".into()))?;
            let lands = at as u64 + prefix.bytes.len() as u64;
            let wanted = (rows_before * width as u64) % PAGE;
            let pad = (wanted + PAGE - lands % PAGE) % PAGE;
            tracked.write_all(&ZEROS[..pad as usize]).map_err(io)?;
            let start = at + pad as i64;
            tracked.write_all(&prefix.bytes).map_err(io)?;
            for piece in &values {
                tracked.write_all(piece).map_err(io)?;
            }
            let size = (prefix.bytes.len() + n * width) as i64;
            let mut encodings = vec![Encoding::PLAIN];
            if leaf_descr.max_def_level() > 0 {
                encodings.push(Encoding::RLE);
            }
            let mut builder = ColumnChunkMetaData::builder(Arc::clone(&leaf_descr))
                .set_compression(Compression::UNCOMPRESSED)
                .set_encodings(encodings)
                .set_total_compressed_size(size)
                .set_total_uncompressed_size(size)
                .set_num_values(n as i64)
                .set_data_page_offset(start);
            let order = leaf_descr.sort_order();
            let stats: Vec<_> = data
                .iter()
                .map(|d| plain_page::statistics(d, order))
                .collect();
            let stats = match stats.as_slice() {
                [one] => one.clone(),
                all => combine(&all.iter().map(Option::as_ref).collect::<Vec<_>>(), order),
            };
            if let Some(stats) = stats {
                builder = builder.set_statistics(stats);
            }
            columns.push(builder.build()?);
            locations.push(OffsetIndexMetaData {
                page_locations: vec![PageLocation {
                    offset: start,
                    compressed_page_size: i32::try_from(size)
                        .map_err(|_| OupsError::Internal("a page too large".into()))?,
                    first_row_index: 0,
                }],
                unencoded_byte_array_data_bytes: None,
            });
            continue;
        }
        let meta = encoded
            .as_ref()
            .ok_or_else(|| OupsError::Internal("an encoded column went missing".into()))?;
        let chunk = meta.row_group(0).column(next_encoded);
        let pages = meta
            .offset_index()
            .and_then(|o| o.first())
            .and_then(|o| o.get(next_encoded))
            .ok_or_else(|| OupsError::Internal("the encoder wrote no offset index".into()))?;
        next_encoded += 1;
        let src_start = chunk
            .dictionary_page_offset()
            .unwrap_or(chunk.data_page_offset());
        let src = staging
            .get(src_start as usize..(src_start + chunk.compressed_size()) as usize)
            .ok_or_else(|| OupsError::Internal("a column chunk outside the encoded file".into()))?;
        tracked.write_all(src).map_err(io)?;
        let shift = at - src_start;
        columns.push(moved(chunk, Arc::clone(&leaf_descr), shift)?);
        locations.push(OffsetIndexMetaData {
            page_locations: pages
                .page_locations()
                .iter()
                .map(|p| PageLocation {
                    offset: p.offset + shift,
                    ..p.clone()
                })
                .collect(),
            unencoded_byte_array_data_bytes: pages.unencoded_byte_array_data_bytes().cloned(),
        });
    }
    let first = columns.first().map_or(4, |c| {
        c.dictionary_page_offset().unwrap_or(c.data_page_offset())
    });
    let total: i64 = columns.iter().map(|c| c.uncompressed_size()).sum();
    let row_group = RowGroupMetaData::builder(Arc::clone(&descr))
        .set_num_rows(n as i64)
        .set_total_byte_size(total)
        .set_column_metadata(columns)
        .set_file_offset(first)
        .set_ordinal(0)
        .build()?;
    let mut kv = vec![KeyValue::new(
        ARROW_SCHEMA_META_KEY.to_string(),
        encode_arrow_schema(&schema),
    )];
    kv.extend(extra);
    let file_meta = FileMetaData::new(
        props.writer_version().as_num(),
        n as i64,
        Some(props.created_by().to_string()),
        Some(kv),
        descr,
        None,
    );
    let out_meta = ParquetMetaData::new(file_meta, vec![row_group])
        .into_builder()
        .set_offset_index(Some(vec![locations]))
        .build();
    // The footer writer keeps the last bytes buffered until it is dropped;
    // `Recording` keeps the error that flush would otherwise lose.
    ParquetMetaDataWriter::new_with_tracked(tracked, &out_meta).finish()?;
    let error = failed.borrow_mut().take();
    error.map_or(Ok(()), |e| Err(io(e)))
}

/// A chunk's footer entry at its new place, for the file's own schema.
fn moved(
    chunk: &ColumnChunkMetaData,
    descr: ColumnDescPtr,
    shift: i64,
) -> Result<ColumnChunkMetaData> {
    let mut builder = ColumnChunkMetaData::builder(descr)
        .set_compression(chunk.compression())
        .set_encodings(chunk.encodings().collect())
        .set_total_compressed_size(chunk.compressed_size())
        .set_total_uncompressed_size(chunk.uncompressed_size())
        .set_num_values(chunk.num_values())
        .set_data_page_offset(chunk.data_page_offset() + shift)
        .set_dictionary_page_offset(chunk.dictionary_page_offset().map(|d| d + shift))
        .set_unencoded_byte_array_data_bytes(chunk.unencoded_byte_array_data_bytes());
    if let Some(stats) = chunk.statistics() {
        builder = builder.set_statistics(stats.clone());
    }
    if let Some(stats) = chunk.page_encoding_stats() {
        builder = builder.set_page_encoding_stats(stats.clone());
    }
    if let Some(h) = chunk.definition_level_histogram() {
        builder = builder.set_definition_level_histogram(Some(h.clone()));
    }
    if let Some(h) = chunk.repetition_level_histogram() {
        builder = builder.set_repetition_level_histogram(Some(h.clone()));
    }
    Ok(builder.build()?)
}

/// An encoded file in memory, for the footer reader.
struct InMemory<'a>(&'a [u8]);

impl Length for InMemory<'_> {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
}

impl<'a> ChunkReader for InMemory<'a> {
    type T = &'a [u8];

    fn get_read(&self, start: u64) -> parquet::errors::Result<&'a [u8]> {
        self.0
            .get(start as usize..)
            .ok_or_else(|| parquet::errors::ParquetError::EOF("past the end".into()))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let start = start as usize;
        self.0
            .get(start..start.saturating_add(length))
            .map(Bytes::copy_from_slice)
            .ok_or_else(|| parquet::errors::ParquetError::EOF("past the end".into()))
    }
}

/// A file writer that remembers its first error.
struct Recording<W: Write> {
    file: W,
    failed: Rc<RefCell<Option<std::io::Error>>>,
}

impl<W: Write> Write for Recording<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf).inspect_err(|e| {
            self.failed
                .borrow_mut()
                .get_or_insert_with(|| std::io::Error::new(e.kind(), e.to_string()));
        })
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
    use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};

    use super::*;
    use crate::dataset::parquet_io::{read_file, write_file, writer_properties};

    fn batch(n: usize) -> RecordBatch {
        let ints: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n as i64));
        let floats: ArrayRef = Arc::new(Float64Array::from_iter_values((0..n).map(|i| i as f64)));
        let narrow: ArrayRef = Arc::new(Int32Array::from_iter_values(0..n as i32));
        let with_nulls: ArrayRef = Arc::new(Int64Array::from_iter(
            (0..n as i64).map(|i| (i % 3 != 0).then_some(i)),
        ));
        let strings: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..n).map(|i| format!("s{}", i % 7)),
        ));
        RecordBatch::try_from_iter([
            ("i", ints),
            ("s", strings),
            ("f", floats),
            ("n", with_nulls),
            ("i32", narrow),
        ])
        .unwrap()
    }

    #[test]
    fn fixed_width_values_land_where_a_joined_column_puts_them() {
        let dir = tempfile::tempdir().unwrap();
        let props = writer_properties(Compression::UNCOMPRESSED);
        for (k, rows_before) in [0u64, 1, 1_000_000, 12_345].into_iter().enumerate() {
            let path = dir.path().join(format!("f{k}.parquet"));
            let b = batch(3_000 + k * 17);
            write_file(&path, &b, &props, rows_before).unwrap();
            // An ordinary file to the Parquet reader.
            assert_eq!(read_file(&path).unwrap(), b);
            let bytes = Bytes::from(std::fs::read(&path).unwrap());
            let options =
                ArrowReaderOptions::new().with_offset_index_policy(PageIndexPolicy::Required);
            let meta = ArrowReaderMetadata::load(&bytes, options).unwrap();
            let md = meta.metadata();
            let offsets = &md.offset_index().unwrap()[0];
            for (c, width) in [(0usize, 8u64), (2, 8), (4, 4)] {
                let chunk = md.row_group(0).column(c);
                let run = value_run(chunk, &offsets[c], width as usize).expect("one run");
                assert_eq!(run.start % PAGE, rows_before * width % PAGE, "column {c}");
                let first =
                    u64::from_le_bytes(bytes[run.start as usize..][..8].try_into().unwrap());
                if c == 0 {
                    assert_eq!(first, 0);
                }
            }
            // A column with nulls is no run of values.
            assert!(value_run(md.row_group(0).column(3), &offsets[3], 8).is_none());
        }
    }
}
