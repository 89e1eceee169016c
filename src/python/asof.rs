//! `oups._oups.asof_merge`: the binding of the as-of engine. Arrays cross as
//! Arrow (pyarrow arrays in, pyarrow arrays out); the work runs without the GIL.

use arrow_array::{Array, ArrayRef, UInt32Array};
use numpy::{PyReadwriteArray1, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3_arrow::PyArray;

use crate::asof::{merge, AsofInput, FrameChunk, OutSlot};
use crate::error::OupsError;
use crate::python::errors::run;

/// `[g][d]`: the frame's `on` array and its value arrays.
type ChunksIn = Vec<Vec<(PyArray, Vec<PyArray>)>>;
/// `[g][d][c]` arrays.
type Nested<T> = Vec<Vec<Vec<T>>>;
/// Output columns and next carry windows, as pyarrow arrays.
type MergeOut = (Vec<Option<Py<PyAny>>>, Nested<Py<PyAny>>);

fn array(a: PyArray) -> ArrayRef {
    a.into_inner().0
}

fn to_py(py: Python<'_>, a: ArrayRef) -> PyResult<Py<PyAny>> {
    Ok(PyArray::from_array_ref(a).to_pyarrow(py)?.unbind())
}

/// Runs one merge call; returns the output columns (position, frame, column,
/// k = n_prev..0 order; None for those written into `slots`) and the next
/// carry windows `[g][d][c]`. `slots`, if not empty, holds per output column
/// None or a writable, contiguous uint8 numpy view of its destination.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn asof_merge(
    py: Python<'_>,
    main: PyArray,
    positions: Vec<PyArray>,
    chunks: ChunksIn,
    carry: Nested<PyArray>,
    n_prev: Vec<usize>,
    exact: Vec<bool>,
    slots: Vec<Option<Bound<'_, PyAny>>>,
) -> PyResult<MergeOut> {
    // The write borrows live until the end of this function, beyond the call.
    let mut borrows: Vec<PyReadwriteArray1<u8>> = Vec::new();
    let mut out_slots = Vec::with_capacity(slots.len());
    for slot in slots {
        out_slots.push(match slot {
            None => None,
            Some(obj) => {
                let mut view = obj.extract::<PyReadwriteArray1<u8>>()?;
                if !view.is_contiguous() {
                    return Err(OupsError::InvalidArgument(
                        "output slots must be contiguous".into(),
                    )
                    .into());
                }
                let bytes = view
                    .as_slice_mut()
                    .map_err(|e| OupsError::InvalidArgument(format!("output slot: {e}")))?;
                let slot = OutSlot {
                    ptr: bytes.as_mut_ptr(),
                    len: bytes.len(),
                };
                borrows.push(view);
                Some(slot)
            }
        });
    }
    let mut groups = Vec::with_capacity(positions.len());
    for p in positions {
        let a = array(p);
        let ids = a
            .as_any()
            .downcast_ref::<UInt32Array>()
            .ok_or_else(|| OupsError::InvalidType("positions must be uint32 arrays".into()))?;
        groups.push(ids.values().to_vec());
    }
    let chunks: Vec<Vec<FrameChunk>> = chunks
        .into_iter()
        .map(|frames| {
            frames
                .into_iter()
                .map(|(on, columns)| FrameChunk {
                    on: array(on),
                    columns: columns.into_iter().map(array).collect(),
                })
                .collect()
        })
        .collect();
    let carry: Nested<ArrayRef> = carry
        .into_iter()
        .map(|g| {
            g.into_iter()
                .map(|d| d.into_iter().map(array).collect())
                .collect()
        })
        .collect();
    let main = array(main);
    let out = run(py, || {
        merge(&AsofInput {
            main,
            positions: &groups,
            chunks: &chunks,
            carry: &carry,
            n_prev: &n_prev,
            exact: &exact,
            slots: &out_slots,
        })
    })?;
    drop(borrows);
    let columns = out
        .columns
        .into_iter()
        .map(|a| a.map(|a| to_py(py, a)).transpose())
        .collect::<PyResult<Vec<_>>>()?;
    let carry = out
        .carry
        .into_iter()
        .map(|g| {
            g.into_iter()
                .map(|d| d.into_iter().map(|a| to_py(py, a)).collect())
                .collect()
        })
        .collect::<PyResult<Nested<_>>>()?;
    Ok((columns, carry))
}
