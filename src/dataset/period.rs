//! Time periods for a frequency row-group target.
//!
//! Fixed-duration frequencies ("2h", "30min") are floored on multiples of the
//! period counted from the Unix epoch, as pandas' `Timestamp.floor` does.
//! Calendar frequencies ("MS", "W", "QS") have irregular periods: the Python
//! layer computes their start instants with pandas and passes them here.

use crate::dataset::ordered_key::decode_i64;

#[derive(Debug, Clone)]
pub enum Periods {
    /// Period length in nanoseconds; `unit_ns` is the column's unit.
    Fixed { period_ns: i64, unit_ns: i64 },
    /// Sorted period start values, in the column's own unit.
    Anchors(Vec<i64>),
}

impl Periods {
    /// The period index of a signed key.
    pub fn of_key(&self, key: u64) -> i64 {
        let v = decode_i64(key);
        match self {
            Periods::Fixed { period_ns, unit_ns } => {
                let ns = v as i128 * *unit_ns as i128;
                ns.div_euclid(*period_ns as i128) as i64
            }
            Periods::Anchors(starts) => starts.partition_point(|&s| s <= v) as i64 - 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::ordered_key::encode_i64;

    #[test]
    fn fixed_periods_floor_from_epoch() {
        let p = Periods::Fixed {
            period_ns: 2 * 3_600_000_000_000,
            unit_ns: 1_000_000_000,
        };
        assert_eq!(p.of_key(encode_i64(0)), 0);
        assert_eq!(p.of_key(encode_i64(7199)), 0);
        assert_eq!(p.of_key(encode_i64(7200)), 1);
        assert_eq!(p.of_key(encode_i64(-1)), -1);
    }

    #[test]
    fn anchors_pick_last_start_at_or_before() {
        let p = Periods::Anchors(vec![10, 20, 30]);
        assert_eq!(p.of_key(encode_i64(10)), 0);
        assert_eq!(p.of_key(encode_i64(19)), 0);
        assert_eq!(p.of_key(encode_i64(20)), 1);
        assert_eq!(p.of_key(encode_i64(35)), 2);
    }
}
