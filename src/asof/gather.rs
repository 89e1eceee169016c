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
use arrow_select::interleave::interleave;

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
    let carry_len = sources.carry_len;
    let mut out: Vec<T::Native> = Vec::with_capacity(n);
    for (&g, &row) in groups.iter().zip(rows) {
        let idx = (row - back) as usize;
        let g = g as usize;
        let v = if idx < carry_len {
            values[2 * g][idx]
        } else {
            values[2 * g + 1][idx - carry_len]
        };
        out.push(v);
    }
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

fn gather_any(
    sources: &ColumnSources,
    groups: &[u32],
    rows: &[u32],
    back: u32,
) -> Result<ArrayRef, ArrowError> {
    let arrays = sources.arrays();
    let indices: Vec<(usize, usize)> = groups
        .iter()
        .zip(rows)
        .map(|(&g, &row)| sources.locate(g as usize, (row - back) as usize))
        .collect();
    interleave(&arrays, &indices)
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
    interleave(&[carry.as_ref(), chunk.as_ref()], &indices)
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
