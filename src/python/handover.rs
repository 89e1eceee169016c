//! Handing private column memory to numpy as writable arrays.
//!
//! The engine marks the fixed-width columns of a read that live in private
//! copy-on-write memory no one else references. pandas gets those as
//! writable numpy arrays without a copy; the other columns travel as a
//! pyarrow batch and are converted by Python.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, RecordBatchOptions};
use arrow_schema::SchemaRef;
use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3_arrow::PyRecordBatch;

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

/// A result column either kept in Arrow or handed to numpy.
pub type Part = (Option<ArrayRef>, Option<Py<PyAny>>);
/// Per aggregation, its result as a numpy array, or `None` if in the batch.
pub type Handed = Vec<Option<Py<PyAny>>>;

/// Float64 results the engine has just built, with NaN under their nulls, as
/// writable numpy arrays over the same memory: pandas takes them as they
/// are, where a conversion would copy each (and fault in fresh pages for
/// it, which costs more than the copy on chunks of a stream). Other columns
/// are returned as Arrow arrays, `None` standing in for the handed ones.
pub fn floats_to_numpy(py: Python<'_>, columns: Vec<ArrayRef>) -> PyResult<Vec<Part>> {
    let mut out = Vec::with_capacity(columns.len());
    for column in columns {
        let floats = column.as_any().downcast_ref::<Float64Array>();
        let Some(floats) = floats.filter(|f| f.offset() == 0) else {
            out.push((Some(column), None));
            continue;
        };
        let buffer = floats.values().inner().clone();
        let len = floats.len();
        let nulls = floats.nulls().cloned();
        drop(column);
        // Only memory that no other handle shares may become writable.
        let buffer = match buffer.into_mutable() {
            Ok(unique) => arrow_buffer::Buffer::from(unique),
            Err(shared) => {
                let values = arrow_buffer::ScalarBuffer::<f64>::new(shared, 0, len);
                out.push((
                    Some(Arc::new(Float64Array::new(values, nulls)) as ArrayRef),
                    None,
                ));
                continue;
            }
        };
        let owner = Bound::new(py, ColumnMemory { _buffer: buffer })?;
        let start = owner.get()._buffer.as_ptr() as *const f64;
        // SAFETY: the buffer holds `len` f64 values (it backed an array of
        // that length at offset 0) and `owner`, the array's base, keeps it
        // alive. `into_mutable` succeeded, so no other handle shares it, and
        // numpy's writes are seen by no one else.
        let array = unsafe {
            let view = numpy::ndarray::ArrayView1::from_shape_ptr(len, start);
            PyArray1::<f64>::borrow_from_array(&view, owner.into_any())
        };
        out.push((None, Some(array.into_any().unbind())));
    }
    Ok(out)
}

/// The result batch: `fields`, then the aggregations as columns named by
/// their index, except those handed to numpy (`numpy_out`, for pandas),
/// returned apart in aggregation order (`None` for those in the batch).
pub fn with_columns(
    py: Python<'_>,
    mut fields: Vec<(String, ArrayRef)>,
    columns: Vec<ArrayRef>,
    numpy_out: bool,
) -> PyResult<(Py<PyAny>, Handed)> {
    let parts = if numpy_out {
        floats_to_numpy(py, columns)?
    } else {
        columns.into_iter().map(|c| (Some(c), None)).collect()
    };
    let mut handed = Vec::with_capacity(parts.len());
    for (j, (arrow, numpy)) in parts.into_iter().enumerate() {
        if let Some(c) = arrow {
            fields.push((j.to_string(), c));
        }
        handed.push(numpy);
    }
    let batch = RecordBatch::try_from_iter(fields).map_err(OupsError::from)?;
    Ok((PyRecordBatch::new(batch).into_pyarrow(py)?.unbind(), handed))
}
