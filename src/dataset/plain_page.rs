//! One PLAIN, uncompressed data page holding a whole fixed-width column
//! without nulls, written straight from the Arrow buffer.
//!
//! Such a page is a small header, the definition levels (one run of "present"
//! when the column is nullable) and the values exactly as Arrow holds them, so
//! the values go from the caller's memory to the file with one copy, the
//! kernel's, instead of passing through the encoder's buffers.

use arrow_data::ArrayData;
use arrow_schema::DataType;
use parquet::basic::SortOrder;
use parquet::file::statistics::Statistics;

/// The page bytes that come before the values: header and levels.
pub struct Prefix {
    pub bytes: Vec<u8>,
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A Thrift compact-protocol i32 field, `delta` ids after the previous one.
fn i32_field(out: &mut Vec<u8>, delta: u8, v: i32) {
    out.push((delta << 4) | 5);
    varint(out, ((v << 1) ^ (v >> 31)) as u32 as u64);
}

/// Header and levels of a data page of `n` values of `width` bytes;
/// `nullable`: the column has definition levels (all "present" here).
pub fn prefix(n: usize, width: usize, nullable: bool) -> Option<Prefix> {
    let n32 = i32::try_from(n).ok()?;
    let mut levels = Vec::new();
    if nullable {
        // RLE/bit-packing hybrid, bit width 1: one RLE run of `n` ones,
        // preceded by its byte length (data page v1).
        let mut run = Vec::new();
        varint(&mut run, (n as u64) << 1);
        run.push(1);
        levels.extend_from_slice(&(run.len() as u32).to_le_bytes());
        levels.extend_from_slice(&run);
    }
    let body = i32::try_from(levels.len() + n.checked_mul(width)?).ok()?;
    let mut bytes = Vec::with_capacity(32 + levels.len());
    i32_field(&mut bytes, 1, 0); // type: DATA_PAGE
    i32_field(&mut bytes, 1, body); // uncompressed_page_size
    i32_field(&mut bytes, 1, body); // compressed_page_size
    bytes.push((2 << 4) | 12); // data_page_header (field 5), a struct
    i32_field(&mut bytes, 1, n32); // num_values
    i32_field(&mut bytes, 1, 0); // encoding: PLAIN
    i32_field(&mut bytes, 1, 3); // definition_level_encoding: RLE
    i32_field(&mut bytes, 1, 3); // repetition_level_encoding: RLE
    bytes.push(0); // end of data_page_header
    bytes.push(0); // end of PageHeader
    bytes.extend_from_slice(&levels);
    Some(Prefix { bytes })
}

/// The column's values as bytes: its slice of the Arrow buffer.
pub fn value_bytes(data: &ArrayData, width: usize) -> Option<&[u8]> {
    let start = data.offset().checked_mul(width)?;
    let end = start.checked_add(data.len().checked_mul(width)?)?;
    data.buffers().first()?.as_slice().get(start..end)
}

fn typed<T: arrow_buffer::ArrowNativeType>(data: &ArrayData) -> &[T] {
    &data.buffers()[0].typed_data::<T>()[data.offset()..data.offset() + data.len()]
}

/// Chunk statistics of a column without nulls, in the column's sort order;
/// float bounds ignore NaN, as the Parquet writer's do.
pub fn statistics(data: &ArrayData, order: SortOrder) -> Option<Statistics> {
    let unsigned = order == SortOrder::UNSIGNED;
    let int32 = |(lo, hi): (Option<i32>, Option<i32>)| {
        Some(Statistics::int32(lo, hi, None, Some(0), false))
    };
    let int64 = |(lo, hi): (Option<i64>, Option<i64>)| {
        Some(Statistics::int64(lo, hi, None, Some(0), false))
    };
    // Unsigned values keep their bit patterns in the signed physical type.
    let as_i32 =
        |(lo, hi): (Option<u32>, Option<u32>)| (lo.map(|x| x as i32), hi.map(|x| x as i32));
    let as_i64 =
        |(lo, hi): (Option<u64>, Option<u64>)| (lo.map(|x| x as i64), hi.map(|x| x as i64));
    match data.data_type() {
        DataType::UInt32 if unsigned => int32(as_i32(bounds(typed::<u32>(data)))),
        DataType::Int32 | DataType::Date32 | DataType::Time32(_) => {
            int32(bounds(typed::<i32>(data)))
        }
        DataType::UInt64 if unsigned => int64(as_i64(bounds(typed::<u64>(data)))),
        DataType::Int64
        | DataType::Timestamp(_, _)
        | DataType::Time64(_)
        | DataType::Duration(_) => int64(bounds(typed::<i64>(data))),
        DataType::Float32 => {
            let (lo, hi) = float_bounds(typed::<f32>(data).iter().map(|&x| f64::from(x)));
            let narrow = |v: Option<f64>| v.map(|x| x as f32);
            Some(Statistics::float(
                narrow(lo),
                narrow(hi),
                None,
                Some(0),
                false,
            ))
        }
        DataType::Float64 => {
            let (lo, hi) = float_bounds(typed::<f64>(data).iter().copied());
            Some(Statistics::double(lo, hi, None, Some(0), false))
        }
        _ => None,
    }
}

fn bounds<T: Ord + Copy>(values: &[T]) -> (Option<T>, Option<T>) {
    let lo = values.iter().copied().min();
    let hi = values.iter().copied().max();
    (lo, hi)
}

/// Bounds without NaN; a zero bound is written as -0.0 (min) and +0.0 (max),
/// as the format asks, since readers cannot tell which zero the values hold.
fn float_bounds(values: impl Iterator<Item = f64>) -> (Option<f64>, Option<f64>) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    if lo > hi {
        return (None, None);
    }
    let lo = if lo == 0.0 { -0.0 } else { lo };
    let hi = if hi == 0.0 { 0.0 } else { hi };
    (Some(lo), Some(hi))
}
