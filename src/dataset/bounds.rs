//! Range bounds as the caller gives them (the ordered column's physical
//! value: an integer for integer and temporal columns, a float for float
//! columns), checked against the column and turned into order keys.

use arrow_schema::DataType;

use crate::dataset::ordered_key::{encode_f64, encode_i64, key_kind, KeyKind};
use crate::dataset::range_read::KeyRange;
use crate::error::{OupsError, Result};

/// A bound in the ordered column's physical value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PhysicalBound {
    Int(i128),
    Float(f64),
}

fn bound_key(kind: KeyKind, b: PhysicalBound) -> Result<u64> {
    let bad = || OupsError::InvalidType("a range bound does not match the ordered column".into());
    Ok(match (kind, b) {
        (KeyKind::Signed, PhysicalBound::Int(v)) => {
            encode_i64(i64::try_from(v).map_err(|_| bad())?)
        }
        (KeyKind::Unsigned, PhysicalBound::Int(v)) => u64::try_from(v).map_err(|_| bad())?,
        (KeyKind::Float, PhysicalBound::Float(v)) => encode_f64(v),
        (KeyKind::Float, PhysicalBound::Int(v)) => encode_f64(v as f64),
        _ => return Err(bad()),
    })
}

/// `[start, end_excl)` on a column of type `dt`, as keys.
pub fn key_range(
    dt: &DataType,
    start: Option<PhysicalBound>,
    end_excl: Option<PhysicalBound>,
) -> Result<KeyRange> {
    let kind = key_kind(dt, "")?;
    Ok(KeyRange {
        start: start.map(|b| bound_key(kind, b)).transpose()?,
        end_excl: end_excl.map(|b| bound_key(kind, b)).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::TimeUnit;

    #[test]
    fn bounds_must_fit_the_column() {
        let ts = DataType::Timestamp(TimeUnit::Nanosecond, None);
        let r = key_range(
            &ts,
            Some(PhysicalBound::Int(-1)),
            Some(PhysicalBound::Int(5)),
        )
        .unwrap();
        assert!(r.start < r.end_excl);
        assert!(key_range(&ts, Some(PhysicalBound::Float(1.5)), None).is_err());
        assert!(key_range(&DataType::UInt8, Some(PhysicalBound::Int(-1)), None).is_err());
        assert!(key_range(&DataType::Float64, Some(PhysicalBound::Int(2)), None).is_ok());
    }
}
