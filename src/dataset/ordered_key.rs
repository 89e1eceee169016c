//! The ordered column as sortable `u64` keys.
//!
//! Every supported ordered-column type (signed/unsigned ints, floats, dates,
//! timestamps and durations of any unit) is mapped to a `u64` whose unsigned
//! order equals the value order, so planning and merging run on one integer
//! type whatever the column's Arrow type.

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, UInt64Array};
use arrow_schema::{DataType, TimeUnit};
use serde_json::Value;

use crate::error::{OupsError, Result};

/// How keys decode back to values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Signed,
    Unsigned,
    Float,
}

const SIGN: u64 = 1 << 63;

pub fn encode_i64(v: i64) -> u64 {
    (v as u64) ^ SIGN
}

pub fn decode_i64(k: u64) -> i64 {
    (k ^ SIGN) as i64
}

pub fn encode_f64(v: f64) -> u64 {
    // -0.0 and 0.0 compare equal in pandas; give them one key.
    let v = if v == 0.0 { 0.0 } else { v };
    let bits = v.to_bits();
    if bits & SIGN != 0 {
        !bits
    } else {
        bits | SIGN
    }
}

pub fn decode_f64(k: u64) -> f64 {
    let bits = if k & SIGN != 0 { k & !SIGN } else { !k };
    f64::from_bits(bits)
}

/// The key kind of a supported ordered-column type, or a `TypeError`.
pub fn key_kind(dt: &DataType, column: &str) -> Result<KeyKind> {
    use DataType::*;
    match dt {
        Int8 | Int16 | Int32 | Int64 | Date32 | Date64 | Timestamp(_, _) | Duration(_) => {
            Ok(KeyKind::Signed)
        }
        UInt8 | UInt16 | UInt32 | UInt64 => Ok(KeyKind::Unsigned),
        Float32 | Float64 => Ok(KeyKind::Float),
        other => Err(OupsError::InvalidType(format!(
            "ordered column '{column}' has type {other}; it must hold integers, floats, dates, \
             timestamps or durations"
        ))),
    }
}

/// Nanoseconds per unit of a temporal column, `None` for non-temporal ones.
pub fn unit_nanos(dt: &DataType) -> Option<i64> {
    let of = |u: &TimeUnit| match u {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    };
    match dt {
        DataType::Timestamp(u, _) | DataType::Duration(u) => Some(of(u)),
        DataType::Date32 => Some(86_400_000_000_000),
        DataType::Date64 => Some(1_000_000),
        _ => None,
    }
}

fn null_error(column: &str, row: usize) -> OupsError {
    OupsError::Unsorted(format!(
        "ordered column '{column}' holds a missing value (NaN, NaT or null) at row {row}; \
         drop or fill those rows first"
    ))
}

/// Encodes a column into keys; rejects nulls and NaNs.
pub fn encode_column(array: &dyn Array, column: &str) -> Result<Vec<u64>> {
    if array.null_count() > 0 {
        let row = (0..array.len()).find(|&i| array.is_null(i)).unwrap_or(0);
        return Err(null_error(column, row));
    }
    macro_rules! signed {
        ($t:ty) => {
            array
                .as_primitive::<$t>()
                .values()
                .iter()
                .map(|&v| encode_i64(v as i64))
                .collect()
        };
    }
    macro_rules! unsigned {
        ($t:ty) => {
            array
                .as_primitive::<$t>()
                .values()
                .iter()
                .map(|&v| v as u64)
                .collect()
        };
    }
    use DataType::*;
    let keys: Vec<u64> = match array.data_type() {
        Int8 => signed!(Int8Type),
        Int16 => signed!(Int16Type),
        Int32 => signed!(Int32Type),
        Int64 => signed!(Int64Type),
        Date32 => signed!(Date32Type),
        Date64 => signed!(Date64Type),
        Timestamp(TimeUnit::Second, _) => signed!(TimestampSecondType),
        Timestamp(TimeUnit::Millisecond, _) => signed!(TimestampMillisecondType),
        Timestamp(TimeUnit::Microsecond, _) => signed!(TimestampMicrosecondType),
        Timestamp(TimeUnit::Nanosecond, _) => signed!(TimestampNanosecondType),
        Duration(TimeUnit::Second) => signed!(DurationSecondType),
        Duration(TimeUnit::Millisecond) => signed!(DurationMillisecondType),
        Duration(TimeUnit::Microsecond) => signed!(DurationMicrosecondType),
        Duration(TimeUnit::Nanosecond) => signed!(DurationNanosecondType),
        UInt8 => unsigned!(UInt8Type),
        UInt16 => unsigned!(UInt16Type),
        UInt32 => unsigned!(UInt32Type),
        UInt64 => unsigned!(UInt64Type),
        Float32 | Float64 => {
            let floats: Vec<f64> = if let Float32 = array.data_type() {
                array
                    .as_primitive::<Float32Type>()
                    .values()
                    .iter()
                    .map(|&v| v as f64)
                    .collect()
            } else {
                array.as_primitive::<Float64Type>().values().to_vec()
            };
            if let Some(row) = floats.iter().position(|v| v.is_nan()) {
                return Err(null_error(column, row));
            }
            floats.into_iter().map(encode_f64).collect()
        }
        other => {
            key_kind(other, column)?;
            return Err(OupsError::Internal(format!("no key encoder for {other}")));
        }
    };
    Ok(keys)
}

/// The number of leading values of a sorted column whose key is below `key`
/// (a binary search on the values: no key vector is built).
pub fn count_below(array: &dyn Array, key: u64) -> usize {
    macro_rules! search {
        ($t:ty, $enc:expr) => {
            array
                .as_primitive::<$t>()
                .values()
                .partition_point(|&v| $enc(v) < key)
        };
    }
    use DataType::*;
    match array.data_type() {
        Int8 => search!(Int8Type, |v: i8| encode_i64(v as i64)),
        Int16 => search!(Int16Type, |v: i16| encode_i64(v as i64)),
        Int32 => search!(Int32Type, |v: i32| encode_i64(v as i64)),
        Int64 => search!(Int64Type, encode_i64),
        Date32 => search!(Date32Type, |v: i32| encode_i64(v as i64)),
        Date64 => search!(Date64Type, encode_i64),
        Timestamp(TimeUnit::Second, _) => search!(TimestampSecondType, encode_i64),
        Timestamp(TimeUnit::Millisecond, _) => search!(TimestampMillisecondType, encode_i64),
        Timestamp(TimeUnit::Microsecond, _) => search!(TimestampMicrosecondType, encode_i64),
        Timestamp(TimeUnit::Nanosecond, _) => search!(TimestampNanosecondType, encode_i64),
        Duration(TimeUnit::Second) => search!(DurationSecondType, encode_i64),
        Duration(TimeUnit::Millisecond) => search!(DurationMillisecondType, encode_i64),
        Duration(TimeUnit::Microsecond) => search!(DurationMicrosecondType, encode_i64),
        Duration(TimeUnit::Nanosecond) => search!(DurationNanosecondType, encode_i64),
        UInt8 => search!(UInt8Type, |v: u8| v as u64),
        UInt16 => search!(UInt16Type, |v: u16| v as u64),
        UInt32 => search!(UInt32Type, |v: u32| v as u64),
        UInt64 => search!(UInt64Type, |v: u64| v),
        Float32 => search!(Float32Type, |v: f32| encode_f64(v as f64)),
        Float64 => search!(Float64Type, encode_f64),
        // Unsupported ordered types never reach a dataset (writes refuse them).
        _ => 0,
    }
}

/// Fails with a message naming the first out-of-order row.
pub fn check_sorted(keys: &[u64], kind: KeyKind, column: &str, dt: &DataType) -> Result<()> {
    if let Some(i) = keys.windows(2).position(|w| w[0] > w[1]) {
        return Err(OupsError::Unsorted(format!(
            "data must be sorted in ascending order on '{column}', but row {} ({}) is smaller \
             than row {} ({}); sort it first (e.g. df.sort_values('{column}', kind='stable'))",
            i + 1,
            shown(keys[i + 1], kind, dt),
            i,
            shown(keys[i], kind, dt),
        )));
    }
    Ok(())
}

/// A key as a value of the column's own type (a timestamp reads as one).
fn shown(key: u64, kind: KeyKind, dt: &DataType) -> String {
    let formatted = keys_to_array(&[key], kind, dt).ok().and_then(|a| {
        let options = arrow_cast::display::FormatOptions::default();
        let f = arrow_cast::display::ArrayFormatter::try_new(a.as_ref(), &options).ok()?;
        Some(f.value(0).to_string())
    });
    formatted.unwrap_or_else(|| key_to_json(kind, key).to_string())
}

/// The JSON form of a key in the metadata file. Floats are strings so that
/// infinities survive (JSON has no literal for them).
pub fn key_to_json(kind: KeyKind, key: u64) -> Value {
    match kind {
        KeyKind::Signed => Value::from(decode_i64(key)),
        KeyKind::Unsigned => Value::from(key),
        KeyKind::Float => Value::from(decode_f64(key).to_string()),
    }
}

pub fn key_from_json(kind: KeyKind, value: &Value) -> Option<u64> {
    match kind {
        KeyKind::Signed => value.as_i64().map(encode_i64),
        KeyKind::Unsigned => value.as_u64(),
        KeyKind::Float => value
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|v| !v.is_nan())
            .map(encode_f64),
    }
}

/// Keys decoded into an array of the ordered column's own type.
pub fn keys_to_array(keys: &[u64], kind: KeyKind, dt: &DataType) -> Result<ArrayRef> {
    let raw: ArrayRef = match kind {
        KeyKind::Signed => std::sync::Arc::new(Int64Array::from_iter_values(
            keys.iter().map(|&k| decode_i64(k)),
        )),
        KeyKind::Unsigned => std::sync::Arc::new(UInt64Array::from(keys.to_vec())),
        KeyKind::Float => std::sync::Arc::new(Float64Array::from_iter_values(
            keys.iter().map(|&k| decode_f64(k)),
        )),
    };
    let staged = match dt {
        DataType::Date32 => arrow_cast::cast(&raw, &DataType::Int32)?,
        _ => raw,
    };
    Ok(arrow_cast::cast(&staged, dt)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float32Array, TimestampMicrosecondArray, UInt8Array};

    #[test]
    fn count_below_searches_values_of_every_kind() {
        let f = Float32Array::from(vec![-2.5, -0.0, 1.5, 1.5, 3.0]);
        assert_eq!(count_below(&f, encode_f64(0.0)), 1);
        assert_eq!(count_below(&f, encode_f64(1.5)), 2);
        assert_eq!(count_below(&f, encode_f64(10.0)), 5);
        let u = UInt8Array::from(vec![1, 200, 255]);
        assert_eq!(count_below(&u, 200), 1);
        let t = TimestampMicrosecondArray::from(vec![-10, 0, 10]).with_timezone("UTC");
        assert_eq!(count_below(&t, encode_i64(0)), 1);
        assert_eq!(count_below(&t, encode_i64(11)), 3);
    }

    #[test]
    fn encodings_preserve_order() {
        let ints = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        let keys: Vec<u64> = ints.iter().map(|&v| encode_i64(v)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert!(ints.iter().all(|&v| decode_i64(encode_i64(v)) == v));
        let floats = [f64::NEG_INFINITY, -2.5, -0.0, 1e-300, 3.0, f64::INFINITY];
        let keys: Vec<u64> = floats.iter().map(|&v| encode_f64(v)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(encode_f64(-0.0), encode_f64(0.0));
        for v in floats {
            assert_eq!(decode_f64(encode_f64(v)), if v == 0.0 { 0.0 } else { v });
        }
    }

    #[test]
    fn float_keys_round_trip_through_json() {
        for v in [f64::INFINITY, -1.5, 0.1] {
            let k = encode_f64(v);
            assert_eq!(
                key_from_json(KeyKind::Float, &key_to_json(KeyKind::Float, k)),
                Some(k)
            );
        }
    }
}
