//! Chunk statistics of spliced column chunks, from those of their pieces.
//!
//! Readers prune row groups on these min/max values, so a combined value must
//! stay a true bound in the column's sort order. Where that order is not one
//! handled here (INT96, signed byte arrays such as decimals), the statistics
//! are left out, which readers take as "unknown".

use parquet::basic::SortOrder;
use parquet::file::statistics::{Statistics, ValueStatistics};

/// The statistics of chunks laid end to end; `None` if one of them has none.
pub fn combine(stats: &[Option<&Statistics>], order: SortOrder) -> Option<Statistics> {
    let all: Vec<&Statistics> = stats.iter().copied().collect::<Option<_>>()?;
    macro_rules! fold_as {
        ($variant:ident, $less:expr) => {{
            let typed: Vec<_> = all
                .iter()
                .map(|s| match s {
                    Statistics::$variant(v) => Some(v),
                    _ => None,
                })
                .collect::<Option<_>>()?;
            Some(Statistics::$variant(fold(&typed, $less)))
        }};
    }
    let unsigned = order == SortOrder::UNSIGNED;
    match all.first()? {
        Statistics::Boolean(_) => fold_as!(Boolean, |a: &bool, b: &bool| !*a & *b),
        Statistics::Int32(_) if unsigned => {
            fold_as!(Int32, |a: &i32, b: &i32| (*a as u32) < (*b as u32))
        }
        Statistics::Int32(_) => fold_as!(Int32, |a: &i32, b: &i32| a < b),
        Statistics::Int64(_) if unsigned => {
            fold_as!(Int64, |a: &i64, b: &i64| (*a as u64) < (*b as u64))
        }
        Statistics::Int64(_) => fold_as!(Int64, |a: &i64, b: &i64| a < b),
        Statistics::Float(_) => fold_as!(Float, |a: &f32, b: &f32| a < b),
        Statistics::Double(_) => fold_as!(Double, |a: &f64, b: &f64| a < b),
        Statistics::ByteArray(_) if unsigned => fold_as!(ByteArray, |a: &_, b: &_| {
            parquet::data_type::ByteArray::data(a) < parquet::data_type::ByteArray::data(b)
        }),
        Statistics::FixedLenByteArray(_) if unsigned => {
            fold_as!(
                FixedLenByteArray,
                |a: &parquet::data_type::FixedLenByteArray,
                 b: &parquet::data_type::FixedLenByteArray| { a.data() < b.data() }
            )
        }
        _ => None,
    }
}

/// Min of the mins, max of the maxes, sum of the null counts. A bound is
/// exact only if the one it comes from is.
fn fold<T: Clone>(
    all: &[&ValueStatistics<T>],
    less: impl Fn(&T, &T) -> bool,
) -> ValueStatistics<T> {
    let mut min: Option<(T, bool)> = None;
    let mut max: Option<(T, bool)> = None;
    let mut nulls = Some(0u64);
    for s in all {
        if let Some(v) = s.min_opt() {
            if min.as_ref().is_none_or(|(m, _)| less(v, m)) {
                min = Some((v.clone(), s.min_is_exact()));
            }
        }
        if let Some(v) = s.max_opt() {
            if max.as_ref().is_none_or(|(m, _)| less(m, v)) {
                max = Some((v.clone(), s.max_is_exact()));
            }
        }
        nulls = nulls.zip(s.null_count_opt()).map(|(a, b)| a + b);
    }
    let (min_exact, max_exact) = (
        min.as_ref().is_some_and(|m| m.1),
        max.as_ref().is_some_and(|m| m.1),
    );
    ValueStatistics::new(min.map(|m| m.0), max.map(|m| m.0), None, nulls, false)
        .with_min_is_exact(min_exact)
        .with_max_is_exact(max_exact)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_follow_the_sort_order() {
        let a = Statistics::int64(Some(-5), Some(3), None, Some(1), false);
        let b = Statistics::int64(Some(2), Some(9), None, Some(2), false);
        let signed = combine(&[Some(&a), Some(&b)], SortOrder::SIGNED).unwrap();
        assert_eq!(
            signed,
            Statistics::int64(Some(-5), Some(9), None, Some(3), false)
        );
        // As unsigned values, -5 is the largest: a chunk of 3 and -5 has these bounds.
        let a = Statistics::int64(Some(3), Some(-5), None, Some(1), false);
        let unsigned = combine(&[Some(&a), Some(&b)], SortOrder::UNSIGNED).unwrap();
        assert_eq!(unsigned.max_bytes_opt(), Some(&(-5i64).to_le_bytes()[..]));
        assert_eq!(unsigned.min_bytes_opt(), Some(&2i64.to_le_bytes()[..]));
    }

    #[test]
    fn a_chunk_without_statistics_leaves_them_out() {
        let a = Statistics::double(Some(1.0), Some(2.0), None, Some(0), false);
        assert!(combine(&[Some(&a), None], SortOrder::SIGNED).is_none());
    }

    #[test]
    fn all_null_pieces_keep_the_others_bounds() {
        let a = Statistics::double(None, None, None, Some(4), false);
        let b = Statistics::double(Some(1.0), Some(2.0), None, Some(0), false);
        let c = combine(&[Some(&a), Some(&b)], SortOrder::SIGNED).unwrap();
        assert_eq!(
            c,
            Statistics::double(Some(1.0), Some(2.0), None, Some(4), false)
        );
    }
}
