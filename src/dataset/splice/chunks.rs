//! Column chunks of several files laid end to end, with the footer entry of the whole.

use std::io::Read;

use bytes::Bytes;
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::basic::Encoding;
use parquet::column::writer::ColumnCloseResult;
use parquet::file::metadata::ColumnChunkMetaData;
use parquet::file::page_index::offset_index::{OffsetIndexMetaData, PageLocation};
use parquet::file::reader::{ChunkReader, Length};

use crate::error::{OupsError, Result};

/// One column chunk of a source: its bytes and what the footer says of them.
pub(super) struct ChunkRef<'a> {
    bytes: &'a Bytes,
    meta: &'a ColumnChunkMetaData,
    pages: &'a OffsetIndexMetaData,
    rows: i64,
}

pub(super) fn chunk_of<'a>(
    bytes: &'a Bytes,
    meta: &'a ArrowReaderMetadata,
    column: usize,
) -> Result<ChunkRef<'a>> {
    let md = meta.metadata();
    let pages = md
        .offset_index()
        .and_then(|oi| oi.first())
        .and_then(|rg| rg.get(column))
        .ok_or_else(|| OupsError::Internal("a spliced chunk lost its offset index".into()))?;
    Ok(ChunkRef {
        bytes,
        meta: md.row_group(0).column(column),
        pages,
        rows: md.row_group(0).num_rows(),
    })
}

/// The chunks laid end to end: a reader over their bytes and the footer entry
/// of the joined chunk, offsets relative to that reader.
pub(super) fn joined(
    chunks: &[ChunkRef],
    descr: parquet::schema::types::ColumnDescPtr,
) -> Result<(Joined, ColumnCloseResult)> {
    let first = chunks
        .first()
        .ok_or_else(|| OupsError::Internal("a column without chunks".into()))?;
    if chunks.len() > 1
        && chunks
            .iter()
            .any(|c| c.meta.dictionary_page_offset().is_some())
    {
        return Err(OupsError::Internal(
            "dictionary pages cannot be laid end to end".into(),
        ));
    }
    let mut pieces = Vec::with_capacity(chunks.len());
    let mut locations: Vec<PageLocation> = Vec::new();
    let mut encodings: Vec<Encoding> = Vec::new();
    let (mut at, mut rows, mut values, mut uncompressed) = (0i64, 0i64, 0i64, 0i64);
    for chunk in chunks {
        let m = chunk.meta;
        let start = m.dictionary_page_offset().unwrap_or(m.data_page_offset());
        let len = m.compressed_size();
        let end = usize::try_from(start + len)
            .ok()
            .filter(|&e| e <= chunk.bytes.len() && start >= 0)
            .ok_or_else(|| OupsError::Internal("a column chunk outside its file".into()))?;
        pieces.push(chunk.bytes.slice(start as usize..end));
        for loc in chunk.pages.page_locations() {
            locations.push(PageLocation {
                offset: at + loc.offset - start,
                compressed_page_size: loc.compressed_page_size,
                first_row_index: rows + loc.first_row_index,
            });
        }
        for e in m.encodings() {
            if !encodings.contains(&e) {
                encodings.push(e);
            }
        }
        at += len;
        rows += chunk.rows;
        values += m.num_values();
        uncompressed += m.uncompressed_size();
    }
    let m0 = first.meta;
    let start0 = m0.dictionary_page_offset().unwrap_or(m0.data_page_offset());
    let mut builder = ColumnChunkMetaData::builder(descr)
        .set_compression(m0.compression())
        .set_encodings(encodings)
        .set_total_compressed_size(at)
        .set_total_uncompressed_size(uncompressed)
        .set_num_values(values)
        .set_data_page_offset(m0.data_page_offset() - start0)
        .set_dictionary_page_offset(m0.dictionary_page_offset().map(|d| d - start0));
    let stats: Vec<_> = chunks.iter().map(|c| c.meta.statistics()).collect();
    if let Some(s) = super::stats::combine(&stats, first.meta.column_descr().sort_order()) {
        builder = builder.set_statistics(s);
    }
    let close = ColumnCloseResult {
        bytes_written: at as u64,
        rows_written: rows as u64,
        metadata: builder.build()?,
        bloom_filter: None,
        column_index: None,
        offset_index: Some(OffsetIndexMetaData {
            page_locations: locations,
            unencoded_byte_array_data_bytes: None,
        }),
    };
    Ok((
        Joined {
            pieces,
            len: at as u64,
        },
        close,
    ))
}

/// Byte slices read as one.
pub(super) struct Joined {
    pieces: Vec<Bytes>,
    len: u64,
}

impl Length for Joined {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for Joined {
    type T = JoinedRead;

    fn get_read(&self, start: u64) -> parquet::errors::Result<JoinedRead> {
        let mut skip = start as usize;
        let mut pieces = std::collections::VecDeque::new();
        for p in &self.pieces {
            if skip >= p.len() {
                skip -= p.len();
                continue;
            }
            pieces.push_back(p.slice(skip..));
            skip = 0;
        }
        Ok(JoinedRead { pieces })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let mut out = Vec::with_capacity(length);
        self.get_read(start)?
            .take(length as u64)
            .read_to_end(&mut out)?;
        Ok(Bytes::from(out))
    }
}

pub(super) struct JoinedRead {
    pieces: std::collections::VecDeque<Bytes>,
}

impl Read for JoinedRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some(front) = self.pieces.front_mut() {
            if front.is_empty() {
                self.pieces.pop_front();
                continue;
            }
            let n = front.len().min(buf.len());
            buf[..n].copy_from_slice(&front[..n]);
            bytes::Buf::advance(front, n);
            return Ok(n);
        }
        Ok(0)
    }
}
