//! Writing a spliced row group: copied columns page by page, the others encoded.

use std::path::Path;
use std::sync::Arc;

use arrow_array::RecordBatch;
use bytes::Bytes;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::PageIndexPolicy;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;

use super::chunks::{chunk_of, joined, ChunkRef};
use super::{Part, Splice};
use crate::dataset::parquet_io;
use crate::error::{OupsError, Result};

/// One encoded run of rows: an in-memory one-row-group file.
pub(super) struct Encoded {
    bytes: Bytes,
    meta: ArrowReaderMetadata,
    /// Its column index for each dataset column it holds.
    index_of: Vec<Option<usize>>,
}

/// Encodes `projected`, which holds the dataset columns `columns`.
fn encode(
    projected: &RecordBatch,
    columns: &[usize],
    n_columns: usize,
    props: &WriterProperties,
) -> Result<Encoded> {
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(
        &mut buffer,
        projected.schema(),
        Some(parquet_io::column_properties(projected, props)),
    )?;
    writer.write(projected)?;
    writer.close()?;
    let bytes = Bytes::from(buffer);
    let options = ArrowReaderOptions::new().with_offset_index_policy(PageIndexPolicy::Required);
    let meta = ArrowReaderMetadata::load(&bytes, options)?;
    let mut index_of = vec![None; n_columns];
    for (i, &c) in columns.iter().enumerate() {
        index_of[c] = Some(i);
    }
    Ok(Encoded {
        bytes,
        meta,
        index_of,
    })
}

/// Writes `splice` as a new data file at `path` and starts its writeback.
pub fn write(path: &Path, splice: &Splice, props: &WriterProperties) -> Result<std::fs::File> {
    let n_columns = splice.schema.fields().len();
    let copied: Vec<usize> = (0..n_columns).filter(|&c| splice.copied[c]).collect();
    let encoded_cols: Vec<usize> = (0..n_columns).filter(|&c| !splice.copied[c]).collect();
    // Runs of rows, encoded for the copied columns.
    let mut runs: Vec<Option<Encoded>> = Vec::with_capacity(splice.parts.len());
    for part in &splice.parts {
        runs.push(match part {
            Part::Rows(batch) => Some(encode(&batch.project(&copied)?, &copied, n_columns, props)?),
            Part::File(_) => None,
        });
    }
    // The other columns, decoded from every part and encoded as one.
    let reencoded = if encoded_cols.is_empty() {
        None
    } else {
        let mut pieces = Vec::with_capacity(splice.parts.len());
        for part in &splice.parts {
            pieces.push(match part {
                Part::Rows(batch) => batch.project(&encoded_cols)?,
                Part::File(source) => {
                    let b = parquet_io::read_file_part(&source.path, Some(&encoded_cols), None)?;
                    RecordBatch::try_new(
                        Arc::new(splice.schema.project(&encoded_cols)?),
                        b.columns().to_vec(),
                    )?
                }
            });
        }
        let all = arrow_select::concat::concat_batches(&pieces[0].schema(), &pieces)?;
        Some(encode(&all, &encoded_cols, n_columns, props)?)
    };

    let buffered = parquet_io::create_data_file(path)?;
    let first_file = splice
        .parts
        .iter()
        .find_map(|p| match p {
            Part::File(s) => Some(s),
            Part::Rows(_) => None,
        })
        .ok_or_else(|| OupsError::Internal("a splice without a file".into()))?;
    let descr = first_file
        .meta
        .metadata()
        .file_metadata()
        .schema_descr_ptr();
    let mut writer =
        SerializedFileWriter::new(buffered, descr.root_schema_ptr(), Arc::new(props.clone()))?;
    let mut row_group = writer.next_row_group()?;
    for c in 0..n_columns {
        let chunks: Vec<ChunkRef> = if splice.copied[c] {
            splice
                .parts
                .iter()
                .zip(&runs)
                .map(|(part, run)| match (part, run) {
                    (Part::File(s), _) => chunk_of(&s.bytes, &s.meta, c),
                    (Part::Rows(_), Some(e)) => {
                        let i = e.index_of[c].expect("copied columns are encoded per run");
                        chunk_of(&e.bytes, &e.meta, i)
                    }
                    (Part::Rows(_), None) => Err(OupsError::Internal("unencoded run".into())),
                })
                .collect::<Result<_>>()?
        } else {
            let e = reencoded.as_ref().expect("re-encoded columns exist");
            vec![chunk_of(
                &e.bytes,
                &e.meta,
                e.index_of[c].expect("encoded"),
            )?]
        };
        let (reader, close) = joined(&chunks, descr.column(c))?;
        row_group.append_column(&reader, close)?;
    }
    row_group.close()?;
    for kv in first_file
        .meta
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .into_iter()
        .flatten()
    {
        writer.append_key_value_metadata(kv.clone());
    }
    parquet_io::finish_data_file(writer.into_inner()?, path)
}
