//! Handing private column memory to numpy as writable arrays.
//!
//! The engine marks the fixed-width columns of a read that live in private
//! copy-on-write memory no one else references. pandas gets those as
//! writable numpy arrays without a copy; the other columns travel as a
//! pyarrow batch and are converted by Python.

use std::sync::Arc;

use arrow_array::{Array, RecordBatch, RecordBatchOptions};
use arrow_schema::SchemaRef;
use numpy::PyArray1;
use pyo3::prelude::*;

use crate::error::OupsError;
use crate::python::errors::to_pyerr;

/// The memory of a column handed to numpy: the array's base object.
#[pyclass(frozen, module = "oups._oups")]
pub struct ColumnMemory {
    _buffer: arrow_buffer::Buffer,
}

/// A batch split for conversion: `rest` holds the columns to convert, `raw`
/// the `(name, uint8 array)` views of the private ones.
pub struct Split<'py> {
    pub rest: RecordBatch,
    pub raw: Vec<(String, Bound<'py, PyArray1<u8>>)>,
}

/// Splits `batch` (of `schema`); `private[c]` says column c may be handed over.
pub fn split<'py>(
    py: Python<'py>,
    batch: RecordBatch,
    schema: &SchemaRef,
    private: &[bool],
) -> PyResult<Split<'py>> {
    let mut raw = Vec::new();
    let mut rest = Vec::new();
    for (c, column) in batch.columns().iter().enumerate() {
        let data = column.to_data();
        let width = schema.field(c).data_type().primitive_width();
        match (private.get(c), width, data.buffers()) {
            (Some(true), Some(w), [buffer])
                if data.null_count() == 0 && buffer.len() >= (data.offset() + data.len()) * w =>
            {
                let owner = Bound::new(
                    py,
                    ColumnMemory {
                        _buffer: buffer.clone(),
                    },
                )?;
                let len = data.len() * w;
                // SAFETY: the range lies within the buffer (checked above) and
                // `owner` keeps its memory alive as the array's base. The
                // memory is a private writable mapping; the engine marks it
                // private only when no other chunk, batch or file shares
                // these rows, and it never reads them again.
                let array = unsafe {
                    let start = buffer.as_ptr().add(data.offset() * w);
                    let view = numpy::ndarray::ArrayView1::from_shape_ptr(len, start);
                    PyArray1::<u8>::borrow_from_array(&view, owner.into_any())
                };
                raw.push((schema.field(c).name().clone(), array));
            }
            _ => rest.push(c),
        }
    }
    let rest_schema = schema
        .project(&rest)
        .map_err(OupsError::from)
        .map_err(to_pyerr)?;
    let rest = RecordBatch::try_new_with_options(
        Arc::new(rest_schema),
        rest.iter().map(|&c| Arc::clone(batch.column(c))).collect(),
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .map_err(OupsError::from)
    .map_err(to_pyerr)?;
    Ok(Split { rest, raw })
}
