//! Gathering one output column from per-group carry windows and chunks.
//!
//! Each output row reads row `idx` of `S_g = carry_g ++ chunk_g` for its
//! group `g`. Primitive columns are gathered with a typed loop straight into
//! the output buffer; other types go through Arrow's `interleave`, which
//! handles strings, dictionaries, decimals, nested types and nulls.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{downcast_primitive_array, Array, ArrayRef, ArrowPrimitiveType, PrimitiveArray};
use arrow_buffer::{BooleanBufferBuilder, NullBuffer, ScalarBuffer};
use arrow_schema::ArrowError;

/// The sources of one column: per group, its carry window and its chunk.
pub struct ColumnSources<'a> {
    pub carry: Vec<&'a ArrayRef>,
    pub chunk: Vec<&'a ArrayRef>,
    pub carry_len: usize,
}

impl ColumnSources<'_> {
    /// Carry and chunk of every group, interleaved: source `2g` and `2g + 1`.
    fn arrays(&self) -> Vec<&dyn Array> {
        self.carry
            .iter()
            .zip(&self.chunk)
            .flat_map(|(c, k)| [c.as_ref(), k.as_ref()])
            .collect()
    }

    /// `(source, row)` of `S_g[idx]`.
    #[inline]
    fn locate(&self, g: usize, idx: usize) -> (usize, usize) {
        if idx < self.carry_len {
            (2 * g, idx)
        } else {
            (2 * g + 1, idx - self.carry_len)
        }
    }
}

/// Gathers `S_{groups[r]}[rows[r] - back]` for every output row `r`.
pub fn gather(
    sources: &ColumnSources,
    groups: &[u32],
    rows: &[u32],
    back: u32,
) -> Result<ArrayRef, ArrowError> {
    let first = sources.chunk[0];
    downcast_primitive_array!(
        first => gather_primitive(first, sources, groups, rows, back),
        _ => gather_any(sources, groups, rows, back)
    )
}

fn gather_primitive<T: ArrowPrimitiveType>(
    first: &PrimitiveArray<T>,
    sources: &ColumnSources,
    groups: &[u32],
    rows: &[u32],
    back: u32,
) -> Result<ArrayRef, ArrowError> {
    let mut values: Vec<&[T::Native]> = Vec::with_capacity(2 * sources.chunk.len());
    let mut has_nulls = false;
    for (carry, chunk) in sources.carry.iter().zip(&sources.chunk) {
        for array in [carry, chunk] {
            has_nulls |= array.null_count() > 0;
            values.push(array.as_primitive::<T>().values());
        }
    }
    let n = rows.len();
    let out: Vec<T::Native> = picked(&values, sources.carry_len, groups, rows, back).collect();
    let nulls = if has_nulls {
        let arrays = sources.arrays();
        let mut bits = BooleanBufferBuilder::new(n);
        for (&g, &row) in groups.iter().zip(rows) {
            let (source, i) = sources.locate(g as usize, (row - back) as usize);
            bits.append(arrays[source].is_valid(i));
        }
        Some(NullBuffer::new(bits.finish()))
    } else {
        None
    };
    let array = PrimitiveArray::<T>::try_new(ScalarBuffer::from(out), nulls)?
        .with_data_type(first.data_type().clone());
    Ok(Arc::new(array))
}

/// A caller-owned output buffer for one column (a row of a numpy block).
///
/// The binding creates it from a borrowed, writable numpy array that stays
/// alive and exclusively borrowed for the whole call; distinct slots never
/// overlap.
#[derive(Clone, Copy)]
pub struct OutSlot {
    pub ptr: *mut u8,
    pub len: usize,
}

// SAFETY: see the type's documentation; each slot is written by one task only.
unsafe impl Send for OutSlot {}
unsafe impl Sync for OutSlot {}

/// Like [`gather`] for each `(back, slot)` of `outs`, but writes a primitive,
/// null-free column straight into the slots (native values, `rows.len()` of
/// them each), in one pass over the rows.
pub fn gather_into(
    sources: &ColumnSources,
    groups: &[u32],
    rows: &[u32],
    outs: &[(u32, OutSlot)],
) -> Result<(), ArrowError> {
    let first = sources.chunk[0];
    downcast_primitive_array!(
        first => write_primitive(first, sources, groups, rows, outs),
        other => Err(ArrowError::InvalidArgumentError(format!(
            "cannot write a {other} column into a numpy block"
        )))
    )
}

fn write_primitive<T: ArrowPrimitiveType>(
    _first: &PrimitiveArray<T>,
    sources: &ColumnSources,
    groups: &[u32],
    rows: &[u32],
    outs: &[(u32, OutSlot)],
) -> Result<(), ArrowError> {
    let mut values: Vec<&[T::Native]> = Vec::with_capacity(2 * sources.chunk.len());
    for array in sources.arrays() {
        if array.null_count() > 0 {
            return Err(ArrowError::InvalidArgumentError(
                "a column with missing values cannot go into a numpy block".into(),
            ));
        }
        values.push(array.as_primitive::<T>().values());
    }
    let mut dsts: Vec<(usize, &mut [T::Native])> = Vec::with_capacity(outs.len());
    for &(back, slot) in outs {
        // SAFETY: the slot is a live, exclusively borrowed buffer of `len`
        // bytes, distinct from every other slot.
        let bytes = unsafe { std::slice::from_raw_parts_mut(slot.ptr, slot.len) };
        // SAFETY: every bit pattern is a valid primitive native value.
        let (head, out, tail) = unsafe { bytes.align_to_mut::<T::Native>() };
        if !head.is_empty() || !tail.is_empty() || out.len() != rows.len() {
            return Err(ArrowError::InvalidArgumentError(
                "output buffer has the wrong size or alignment".into(),
            ));
        }
        dsts.push((back as usize, out));
    }
    let carry_len = sources.carry_len;
    if let [(back, out)] = dsts.as_mut_slice() {
        let picks = picked(&values, carry_len, groups, rows, *back as u32);
        for (dst, v) in out.iter_mut().zip(picks) {
            *dst = v;
        }
        return Ok(());
    }
    for (r, (&g, &row)) in groups.iter().zip(rows).enumerate() {
        let (carry, chunk) = (values[2 * g as usize], values[2 * g as usize + 1]);
        for (back, out) in dsts.iter_mut() {
            let idx = row as usize - *back;
            out[r] = if idx < carry_len {
                carry[idx]
            } else {
                chunk[idx - carry_len]
            };
        }
    }
    Ok(())
}

/// The value of every output row: row `rows[r] - back` of the virtual
/// sequence carry ++ chunk of group `groups[r]`; `values` holds each group's
/// carry then chunk values.
fn picked<'a, N: Copy>(
    values: &'a [&'a [N]],
    carry_len: usize,
    groups: &'a [u32],
    rows: &'a [u32],
    back: u32,
) -> impl Iterator<Item = N> + 'a {
    groups.iter().zip(rows).map(move |(&g, &row)| {
        let idx = (row - back) as usize;
        let g = g as usize;
        if idx < carry_len {
            values[2 * g][idx]
        } else {
            values[2 * g + 1][idx - carry_len]
        }
    })
}

fn gather_any(
    sources: &ColumnSources,
    groups: &[u32],
    rows: &[u32],
    back: u32,
) -> Result<ArrayRef, ArrowError> {
    let indices: Vec<(usize, usize)> = groups
        .iter()
        .zip(rows)
        .map(|(&g, &row)| sources.locate(g as usize, (row - back) as usize))
        .collect();
    interleave_unified(&sources.arrays(), &indices)
}

fn interleave_unified(
    arrays: &[&dyn Array],
    indices: &[(usize, usize)],
) -> Result<ArrayRef, ArrowError> {
    // Carry windows and chunks may hold other categories.
    crate::dictionaries::interleave(arrays, indices)
        .map_err(|e| ArrowError::ComputeError(e.to_string()))
}

/// The last `len` rows of `carry ++ chunk`, as fresh arrays (never a view
/// that would keep the caller's chunk alive).
pub fn window_tail(carry: &ArrayRef, chunk: &ArrayRef, len: usize) -> Result<ArrayRef, ArrowError> {
    let total = carry.len() + chunk.len();
    let indices: Vec<(usize, usize)> = (total - len..total)
        .map(|i| {
            if i < carry.len() {
                (0, i)
            } else {
                (1, i - carry.len())
            }
        })
        .collect();
    interleave_unified(&[carry.as_ref(), chunk.as_ref()], &indices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::types::Int64Type;
    use arrow_array::{Int64Array, StringArray};

    #[test]
    fn primitive_and_generic_paths_agree() {
        let c0: ArrayRef = Arc::new(Int64Array::from(vec![0, 0]));
        let k0: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(3)]));
        let c1: ArrayRef = Arc::new(Int64Array::from(vec![-1, -2]));
        let k1: ArrayRef = Arc::new(Int64Array::from(vec![10]));
        let sources = ColumnSources {
            carry: vec![&c0, &c1],
            chunk: vec![&k0, &k1],
            carry_len: 2,
        };
        let groups = [0u32, 0, 1, 0, 1];
        let rows = [1u32, 3, 2, 4, 1];
        let got = gather(&sources, &groups, &rows, 0).unwrap();
        let expected = Int64Array::from(vec![Some(0), None, Some(10), Some(3), Some(-2)]);
        assert_eq!(got.as_primitive::<Int64Type>(), &expected);
        assert_eq!(&gather_any(&sources, &groups, &rows, 0).unwrap(), &got);
        let back = gather(&sources, &groups, &rows, 1).unwrap();
        let expected = Int64Array::from(vec![Some(0), Some(1), Some(-2), None, Some(-1)]);
        assert_eq!(back.as_primitive::<Int64Type>(), &expected);
    }

    #[test]
    fn gather_into_writes_native_values() {
        let carry: ArrayRef = Arc::new(Int64Array::from(vec![0, 0]));
        let chunk: ArrayRef = Arc::new(Int64Array::from(vec![5, 6]));
        let sources = ColumnSources {
            carry: vec![&carry],
            chunk: vec![&chunk],
            carry_len: 2,
        };
        let mut out = vec![0i64; 3];
        let slot = OutSlot {
            ptr: out.as_mut_ptr() as *mut u8,
            len: 3 * 8,
        };
        gather_into(&sources, &[0, 0, 0], &[1, 2, 3], &[(0, slot)]).unwrap();
        assert_eq!(out, vec![0, 5, 6]);
        let short = OutSlot {
            ptr: out.as_mut_ptr() as *mut u8,
            len: 16,
        };
        assert!(gather_into(&sources, &[0, 0, 0], &[1, 2, 3], &[(0, short)]).is_err());
        let with_null: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None]));
        let sources = ColumnSources {
            carry: vec![&carry],
            chunk: vec![&with_null],
            carry_len: 2,
        };
        assert!(gather_into(&sources, &[0, 0, 0], &[1, 2, 3], &[(0, slot)]).is_err());
    }

    #[test]
    fn gather_into_writes_several_windows_in_one_pass() {
        let carry: ArrayRef = Arc::new(Int64Array::from(vec![1, 2]));
        let chunk: ArrayRef = Arc::new(Int64Array::from(vec![5, 6]));
        let sources = ColumnSources {
            carry: vec![&carry],
            chunk: vec![&chunk],
            carry_len: 2,
        };
        let (mut k1, mut k0) = (vec![0i64; 3], vec![0i64; 3]);
        let slot = |v: &mut Vec<i64>| OutSlot {
            ptr: v.as_mut_ptr() as *mut u8,
            len: v.len() * 8,
        };
        let outs = [(1, slot(&mut k1)), (0, slot(&mut k0))];
        gather_into(&sources, &[0, 0, 0], &[1, 2, 3], &outs).unwrap();
        assert_eq!(k1, vec![1, 2, 5]);
        assert_eq!(k0, vec![2, 5, 6]);
        for (k, expected) in [(1, &k1), (0, &k0)] {
            let single = gather(&sources, &[0, 0, 0], &[1, 2, 3], k).unwrap();
            assert_eq!(
                single.as_primitive::<Int64Type>().values().to_vec(),
                *expected
            );
        }
    }

    #[test]
    fn strings_and_window_tail() {
        let carry: ArrayRef = Arc::new(StringArray::from(vec!["", ""]));
        let chunk: ArrayRef = Arc::new(StringArray::from(vec!["a"]));
        let tail = window_tail(&carry, &chunk, 2).unwrap();
        assert_eq!(tail.as_string::<i32>(), &StringArray::from(vec!["", "a"]));
        let sources = ColumnSources {
            carry: vec![&carry],
            chunk: vec![&chunk],
            carry_len: 2,
        };
        let got = gather(&sources, &[0, 0], &[1, 2], 0).unwrap();
        assert_eq!(got.as_string::<i32>(), &StringArray::from(vec!["", "a"]));
    }
}
