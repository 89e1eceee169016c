//! Joining the row groups of a read into one contiguous array per column.
//!
//! pandas needs each column in one contiguous block; handing it one Arrow
//! chunk per file makes pyarrow concatenate into fresh memory, and first
//! touching fresh memory (page faults) costs more than the whole Parquet
//! decode on small VMs. Fixed-width columns without nulls are therefore
//! joined here, on all cores, into anonymous mappings populated in one system
//! call (no fault per page; measured 4x cheaper than faulting in, while huge
//! pages were slower still because of compaction); pyarrow then converts them
//! without copying.
//! Other columns (strings, dictionaries, booleans, nullable ones) use the
//! Arrow concat kernel.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use arrow_array::{make_array, Array, ArrayRef, RecordBatch};
use arrow_buffer::{BooleanBufferBuilder, Buffer, NullBuffer};
use arrow_data::ArrayData;
use arrow_schema::{DataType, SchemaRef};

use crate::dataset::parquet_io::{
    parallel_map, read_file_in_place, read_file_private, read_file_split,
};
use crate::dataset::state::RowGroup;
use crate::dataset::verify::check_file;
use crate::dictionaries::concat_arrays;
use crate::error::{OupsError, Result};

/// Below this size a dedicated mapping does not pay off.
const MIN_MAPPED_BYTES: usize = 4 << 20;

/// The joined column's memory: reserved, not yet backed (slots are either
/// mapped from the files or populated just before they are copied into).
fn reserved(bytes: usize) -> Result<memmap2::MmapMut> {
    memmap2::MmapOptions::new()
        .len(bytes.max(1))
        .map_anon()
        .map_err(|e| OupsError::Internal(format!("cannot map {bytes} bytes: {e}")))
}

/// Backs `dst` with fresh pages in one system call, rather than one fault
/// per page while copying (older kernels: faults it is).
fn populate(dst: &mut [u8]) {
    let page = crate::dataset::aligned::PAGE as usize;
    let start = (dst.as_mut_ptr() as usize) & !(page - 1);
    let len = dst.as_mut_ptr() as usize + dst.len() - start;
    // SAFETY: advice on pages of our own mapping; it changes no contents.
    unsafe {
        libc::madvise(start as *mut libc::c_void, len, libc::MADV_POPULATE_WRITE);
    }
}

/// Maps the pages under `bytes` (of a file mapping) in one system call, for
/// reading: MAP_POPULATE on a writable private mapping would fault every page
/// for writing, copying it, and faulting them in one by one costs more.
pub(crate) fn populate_read(bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let page = crate::dataset::aligned::PAGE as usize;
    let start = (bytes.as_ptr() as usize) & !(page - 1);
    let len = bytes.as_ptr() as usize + bytes.len() - start;
    // SAFETY: advice on pages of a mapping the caller holds; it changes no
    // contents.
    unsafe {
        libc::madvise(start as *mut libc::c_void, len, libc::MADV_POPULATE_READ);
    }
}

/// Puts `src` (values in the mapped file `path`, whose mapping spans
/// `mapped`) into `dst` by mapping the file's pages there, copy-on-write,
/// when the file lays them out at the same offset within a page as `dst`
/// ([`crate::dataset::aligned`]): only the partial pages at both ends are
/// copied. `false` when it cannot (the caller copies).
fn place_by_mapping(dst: &mut [u8], src: &[u8], mapped: &Range<usize>, path: &Path) -> bool {
    let page = crate::dataset::aligned::PAGE as usize;
    let src_at = src.as_ptr() as usize;
    if !mapped.contains(&src_at) || dst.len() != src.len() {
        return false;
    }
    let file_offset = src_at - mapped.start;
    let dst_at = dst.as_mut_ptr() as usize;
    if dst_at.wrapping_sub(file_offset) % page != 0 {
        return false;
    }
    let first = dst_at.next_multiple_of(page);
    let last = (dst_at + dst.len()) & !(page - 1);
    if last <= first {
        return false;
    }
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    // SAFETY: the target pages lie inside `dst`, memory of a mapping we own
    // and hold exclusively; MAP_FIXED replaces them with private copy-on-
    // write pages of the file, whose offset is page-aligned by the check
    // above. Nothing reads `dst` meanwhile.
    let got = unsafe {
        libc::mmap(
            first as *mut libc::c_void,
            last - first,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_FIXED,
            std::os::fd::AsRawFd::as_raw_fd(&file),
            (file_offset + (first - dst_at)) as libc::off_t,
        )
    };
    if got != first as *mut libc::c_void {
        return false;
    }
    // SAFETY: the pages just mapped, `last - first` bytes from `got`.
    populate_read(unsafe { std::slice::from_raw_parts(got as *const u8, last - first) });
    let (head, tail) = (first - dst_at, last - dst_at);
    dst[..head].copy_from_slice(&src[..head]);
    dst[tail..].copy_from_slice(&src[tail..]);
    true
}

/// Per column: whether its values are a run of the file mapping `mapped`
/// (fixed width, without nulls), which no other batch references.
fn in_mapping(batch: &RecordBatch, mapped: &Range<usize>) -> Vec<bool> {
    batch
        .columns()
        .iter()
        .map(|col| {
            let data = col.to_data();
            fixed_width(col.data_type()).is_some()
                && data.null_count() == 0
                && matches!(data.buffers(), [b] if mapped.contains(&(b.as_ptr() as usize)))
        })
        .collect()
}

fn fixed_width(dt: &DataType) -> Option<usize> {
    dt.is_primitive().then(|| dt.primitive_width()).flatten()
}

/// One file to read: its path, row count and slots in the joined columns.
type Job<'a> = (&'a PathBuf, &'a RowGroup, Mutex<Vec<Option<&'a mut [u8]>>>);

/// Reads the files of row groups `rgs` into one batch, copying each decoded
/// file into its slot of the joined columns at once so that decode buffers
/// are reused instead of piling up. Each file is checked against its
/// metadata entry (`ordered`: the ordered column's index).
pub fn read_joined(
    paths: &[PathBuf],
    rgs: &[RowGroup],
    schema: &SchemaRef,
    ordered: Option<usize>,
) -> Result<RecordBatch> {
    Ok(join(paths, rgs, schema, ordered, None)?.0)
}

/// Like [`read_joined`], for a caller that hands the joined columns over as
/// mutable memory (numpy arrays): the dedicated mappings stay writable (private
/// copy-on-write pages, so writes never reach the files), and the second
/// value says which columns are in one. Each of those buffers is referenced by
/// the returned batch alone. Without `populate`, a single file's pages are
/// mapped as they are touched (the checks and searches touch a few): the
/// caller populates what it hands over ([`populate_read`]).
pub fn read_joined_private(
    paths: &[PathBuf],
    rgs: &[RowGroup],
    schema: &SchemaRef,
    ordered: Option<usize>,
    populate: bool,
) -> Result<(RecordBatch, Vec<bool>)> {
    join(paths, rgs, schema, ordered, Some(populate))
}

fn join(
    paths: &[PathBuf],
    rgs: &[RowGroup],
    schema: &SchemaRef,
    ordered: Option<usize>,
    // Some(populate) for private memory ([`read_joined_private`]).
    private: Option<bool>,
) -> Result<(RecordBatch, Vec<bool>)> {
    let n_cols = schema.fields().len();
    if let ([path], [rg]) = (paths, rgs) {
        // One file is already contiguous: no copy.
        if let Some(populate) = private {
            let (batch, mapped) = read_file_private(path, populate)?;
            check_file(path, &batch, schema, rg, ordered)?;
            let in_mapping = in_mapping(&batch, &mapped);
            return Ok((batch.with_schema(Arc::clone(schema))?, in_mapping));
        }
        // Its columns decoded in parallel.
        let ways = crate::cores::cores();
        let batch = read_file_split(path, None, None, ways)?;
        check_file(path, &batch, schema, rg, ordered)?;
        return Ok((batch.with_schema(Arc::clone(schema))?, vec![false; n_cols]));
    }
    let rows: Vec<usize> = rgs.iter().map(|rg| rg.n_rows as usize).collect();
    let total: usize = rows.iter().sum();
    let widths: Vec<Option<usize>> = schema
        .fields()
        .iter()
        .map(|f| fixed_width(f.data_type()).filter(|w| total * w >= MIN_MAPPED_BYTES))
        .collect();
    let mut maps: Vec<Option<memmap2::MmapMut>> = widths
        .iter()
        .map(|w| w.map(|w| reserved(total * w)).transpose())
        .collect::<Result<_>>()?;
    // Disjoint slots: file i, column c gets rows[i] * width bytes.
    let mut slots: Vec<Vec<Option<&mut [u8]>>> = (0..paths.len()).map(|_| Vec::new()).collect();
    for (c, map) in maps.iter_mut().enumerate() {
        let mut rest: Option<&mut [u8]> = map.as_deref_mut();
        for (i, file_slots) in slots.iter_mut().enumerate() {
            let slot = rest.take().map(|r| {
                let (head, tail) = r.split_at_mut(rows[i] * widths[c].unwrap_or(0));
                rest = Some(tail);
                head
            });
            file_slots.push(slot);
        }
    }
    let jobs: Vec<Job> = paths
        .iter()
        .zip(rgs)
        .zip(slots)
        .map(|((p, rg), s)| (p, rg, Mutex::new(s)))
        .collect();
    // Per file: the columns kept as arrays (variable width), and the validity
    // of the copied ones.
    let parts = parallel_map(&jobs, |(path, rg, slots)| {
        let (batch, mapped) = read_file_in_place(path)?;
        check_file(path, &batch, schema, rg, ordered)?;
        let n = &(rg.n_rows as usize);
        let mut slots = slots.lock().unwrap_or_else(|p| p.into_inner());
        let mut kept = Vec::with_capacity(n_cols);
        for (c, slot) in slots.iter_mut().enumerate() {
            let col = batch.column(c);
            match (slot.take(), widths[c]) {
                (Some(dst), Some(w)) => {
                    let data = col.to_data();
                    let src = &data.buffers()[0].as_slice()[data.offset() * w..][..*n * w];
                    if !place_by_mapping(dst, src, &mapped, path) {
                        populate(dst);
                        dst.copy_from_slice(src);
                    }
                    kept.push(Err(col.logical_nulls()));
                }
                _ => kept.push(Ok(col.clone())),
            }
        }
        Ok(kept)
    })?;
    let mut columns = Vec::with_capacity(n_cols);
    let mut in_mapping = vec![false; n_cols];
    for (c, map) in maps.into_iter().enumerate() {
        let field = schema.field(c);
        match map {
            Some(mut map) => {
                let bytes = total * widths[c].unwrap_or(0);
                let ptr = NonNull::new(map.as_mut_ptr())
                    .ok_or_else(|| OupsError::Internal("null mapping".into()))?;
                let owner: Arc<dyn arrow_buffer::alloc::Allocation> =
                    if private.is_some() {
                        Arc::new(map)
                    } else {
                        Arc::new(map.make_read_only().map_err(|e| {
                            OupsError::Internal(format!("cannot seal mapping: {e}"))
                        })?)
                    };
                in_mapping[c] = true;
                // SAFETY: the buffer owns the mapping; `bytes` lies within it.
                let values = unsafe { Buffer::from_custom_allocation(ptr, bytes, owner) };
                let validity: Vec<Option<NullBuffer>> = parts
                    .iter()
                    .map(|p| p[c].as_ref().err().cloned().flatten())
                    .collect();
                let nulls = if validity.iter().all(Option::is_none) {
                    None
                } else {
                    let mut bits = BooleanBufferBuilder::new(total);
                    for (v, &n) in validity.iter().zip(&rows) {
                        match v {
                            Some(v) => bits.append_buffer(v.inner()),
                            None => bits.append_n(n, true),
                        }
                    }
                    Some(NullBuffer::new(bits.finish()))
                };
                let data = ArrayData::builder(field.data_type().clone())
                    .len(total)
                    .add_buffer(values)
                    .nulls(nulls)
                    .build()?;
                columns.push(make_array(data));
            }
            None => {
                let arrays: Vec<ArrayRef> = parts
                    .iter()
                    .filter_map(|p| p[c].as_ref().ok().cloned())
                    .collect();
                columns.push(match arrays.len() {
                    1 => arrays[0].slice(0, arrays[0].len()),
                    _ => concat_arrays(&arrays)?,
                });
            }
        }
    }
    Ok((
        RecordBatch::try_new(Arc::clone(schema), columns)?,
        in_mapping,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::parquet_io::{read_file, write_file, writer_properties};
    use arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray};
    use parquet::basic::Compression;

    #[test]
    fn joins_fixed_width_nullable_and_string_columns() {
        let dir = tempfile::tempdir().unwrap();
        let n = 300_000;
        let batch = |start: usize, with_null: bool| {
            let ints = Int64Array::from_iter(
                (start..start + n).map(|v| (!(with_null && v == start + 3)).then_some(v as i64)),
            );
            RecordBatch::try_from_iter_with_nullable([
                (
                    "f",
                    Arc::new(Float64Array::from_iter_values(
                        (start..start + n).map(|v| v as f64),
                    )) as ArrayRef,
                    true,
                ),
                ("i", Arc::new(ints) as ArrayRef, true),
                (
                    "s",
                    Arc::new(StringArray::from_iter_values(
                        (start..start + n).map(|v| v.to_string()),
                    )) as ArrayRef,
                    true,
                ),
            ])
            .unwrap()
        };
        let props = writer_properties(Compression::UNCOMPRESSED);
        let paths: Vec<PathBuf> = (0..3)
            .map(|i| dir.path().join(format!("{i}.parquet")))
            .collect();
        for (i, p) in paths.iter().enumerate() {
            write_file(p, &batch(i * n, i == 1), &props, 0).unwrap();
        }
        let schema = read_file(&paths[0]).unwrap().schema();
        let rg = RowGroup {
            file_id: 0,
            n_rows: n as u64,
            min: 0,
            max: 0,
        };
        // No ordered column given: only rows and columns are checked.
        let joined = read_joined(&paths, &[rg, rg, rg], &schema, None).unwrap();
        assert_eq!(joined.num_rows(), 3 * n);
        let f = joined
            .column(0)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert_eq!(f.value(2 * n + 7), (2 * n + 7) as f64);
        let i = joined
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(i.null_count(), 1);
        assert!(i.is_null(n + 3));
        assert_eq!(i.value(n + 4), (n + 4) as i64);
        let s = joined
            .column(2)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(s.value(2 * n), (2 * n).to_string());
    }
}
