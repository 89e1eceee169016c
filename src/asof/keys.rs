//! The sorted keys of `main` and of every `on` column, checked once per call.
//!
//! Keys stored as 64-bit signed integers (int64, timestamps, durations,
//! date64: the usual case) are compared in place; other types are encoded
//! into order-preserving `u64` (see `dataset::ordered_key`). Copying 8 bytes
//! per row of every frame is a measurable part of a call otherwise.

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::Array;
use arrow_schema::{DataType, TimeUnit};

use crate::dataset::ordered_key::{encode_column, encode_i64, key_kind, key_to_json, KeyKind};
use crate::error::{OupsError, Result};

/// One column's keys, sorted and free of missing values.
pub enum Keys<'a> {
    Native(&'a [i64]),
    Encoded(Vec<u64>),
}

/// The values of an array stored as `i64`, viewed without a copy.
fn as_i64(array: &dyn Array) -> Option<&[i64]> {
    macro_rules! view {
        ($t:ty) => {
            Some(array.as_primitive::<$t>().values().as_ref())
        };
    }
    use DataType::*;
    use TimeUnit::*;
    match array.data_type() {
        Int64 => view!(Int64Type),
        Date64 => view!(Date64Type),
        Timestamp(Second, _) => view!(TimestampSecondType),
        Timestamp(Millisecond, _) => view!(TimestampMillisecondType),
        Timestamp(Microsecond, _) => view!(TimestampMicrosecondType),
        Timestamp(Nanosecond, _) => view!(TimestampNanosecondType),
        Duration(Second) => view!(DurationSecondType),
        Duration(Millisecond) => view!(DurationMillisecondType),
        Duration(Microsecond) => view!(DurationMicrosecondType),
        Duration(Nanosecond) => view!(DurationNanosecondType),
        _ => None,
    }
}

fn unsorted(what: &str, kind: KeyKind, i: usize, prev: u64, next: u64) -> OupsError {
    OupsError::Unsorted(format!(
        "{what} must be sorted in ascending order (ties allowed), but row {} ({}) is smaller \
         than row {} ({}); sort it first",
        i + 1,
        key_to_json(kind, next),
        i,
        key_to_json(kind, prev),
    ))
}

/// Checks that `array` is sorted and complete; `what` names it in errors.
pub fn sorted_keys<'a>(array: &'a dyn Array, what: &str) -> Result<Keys<'a>> {
    let kind = key_kind(array.data_type(), what)?;
    // numpy's NaT reaches the engine as the smallest int64 (see the Python
    // side); sorted, it comes first.
    let temporal = matches!(
        array.data_type(),
        DataType::Timestamp(_, _) | DataType::Duration(_)
    );
    let nat = || {
        OupsError::Unsorted(format!(
            "{what} holds a missing value (NaT); drop or fill those rows first"
        ))
    };
    if let (Some(values), 0) = (as_i64(array), array.null_count()) {
        if temporal && values.first() == Some(&i64::MIN) {
            return Err(nat());
        }
        if let Some(i) = values.windows(2).position(|w| w[0] > w[1]) {
            let (prev, next) = (encode_i64(values[i]), encode_i64(values[i + 1]));
            return Err(unsorted(what, kind, i, prev, next));
        }
        return Ok(Keys::Native(values));
    }
    let keys = encode_column(array, what).map_err(|e| match e {
        OupsError::Unsorted(msg) => OupsError::Unsorted(format!("{what}: {msg}")),
        other => other,
    })?;
    if temporal && keys.first() == Some(&encode_i64(i64::MIN)) {
        return Err(nat());
    }
    if let Some(i) = keys.windows(2).position(|w| w[0] > w[1]) {
        return Err(unsorted(what, kind, i, keys[i], keys[i + 1]));
    }
    Ok(Keys::Encoded(keys))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Float64Array, TimestampNanosecondArray};

    use super::*;

    #[test]
    fn timestamps_are_viewed_in_place_even_when_sliced() {
        let ts: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![1, 5, 7, 9]));
        let sliced = ts.slice(1, 2);
        match sorted_keys(sliced.as_ref(), "'main'").unwrap() {
            Keys::Native(values) => assert_eq!(values, &[5, 7]),
            Keys::Encoded(_) => panic!("timestamps should not be copied"),
        }
    }

    #[test]
    fn nat_unsorted_and_floats() {
        let nat: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![i64::MIN, 3]));
        let err = sorted_keys(nat.as_ref(), "'main'").err().unwrap();
        assert!(err.to_string().contains("NaT"), "{err}");
        let unsorted: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![3, 2]));
        let err = sorted_keys(unsorted.as_ref(), "'main'").err().unwrap();
        assert!(err.to_string().contains("row 1"), "{err}");
        let floats: ArrayRef = Arc::new(Float64Array::from(vec![-1.5, 0.0, 2.0]));
        assert!(matches!(
            sorted_keys(floats.as_ref(), "'main'").unwrap(),
            Keys::Encoded(_)
        ));
        let nan: ArrayRef = Arc::new(Float64Array::from(vec![1.0, f64::NAN]));
        assert!(sorted_keys(nan.as_ref(), "'main'").is_err());
    }
}
