//! Row selection: for each output row, the position in the virtual sequence
//! `S = carry window ++ chunk` of the row read for the current value.

/// Selects, for every row `r`, the index into `S` of group `groups[r]` of the
/// last chunk row whose key is `<= main[r]` (`exact`) or `< main[r]`, or the
/// last carry row when there is none.
///
/// `main` must be sorted: every group then sees a sorted subsequence of it,
/// so one cursor per group only moves forward and the pass is linear in the
/// number of rows plus the chunk lengths.
pub fn select_rows<K: Copy + PartialOrd>(
    main: &[K],
    groups: impl Iterator<Item = usize>,
    chunk_keys: &[&[K]],
    carry_len: usize,
    exact: bool,
) -> Vec<u32> {
    let mut cursors = vec![0usize; chunk_keys.len()];
    let mut out = Vec::with_capacity(main.len());
    for (&key, g) in main.iter().zip(groups) {
        let keys = chunk_keys[g];
        let cursor = &mut cursors[g];
        if exact {
            while *cursor < keys.len() && keys[*cursor] <= key {
                *cursor += 1;
            }
        } else {
            while *cursor < keys.len() && keys[*cursor] < key {
                *cursor += 1;
            }
        }
        // carry_len >= 1, so "no chunk row" lands on the last carry row.
        out.push((carry_len + *cursor - 1) as u32);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_and_exact_with_ties() {
        let chunk: &[u64] = &[10, 20, 20];
        let main = [5u64, 10, 20, 21];
        let carry = 2;
        let strict = select_rows(&main, std::iter::repeat(0), &[chunk], carry, false);
        // S = [w0, w1, 10, 20, 20]: 5 and 10 read w1 (index 1).
        assert_eq!(strict, vec![1, 1, 2, 4]);
        let exact = select_rows(&main, std::iter::repeat(0), &[chunk], carry, true);
        assert_eq!(exact, vec![1, 2, 4, 4]);
    }

    #[test]
    fn groups_have_their_own_cursor() {
        let g0: &[u64] = &[10, 20];
        let g1: &[u64] = &[12, 22];
        let main = [12u64, 15, 21, 30];
        let groups = [0usize, 1, 1, 0];
        let out = select_rows(&main, groups.iter().copied(), &[g0, g1], 1, true);
        assert_eq!(out, vec![1, 1, 1, 2]);
    }
}
