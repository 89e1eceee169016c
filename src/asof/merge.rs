//! One `AsofMerger.merge` call: key checks, row selection, parallel gathers
//! and the next carry windows.

use arrow_array::{Array, ArrayRef};

use crate::asof::gather::{gather, gather_into, window_tail, ColumnSources, OutSlot};
use crate::asof::keys::{sorted_keys, Keys};
use crate::asof::select::select_rows;
use crate::error::{OupsError, Result};

/// One frame of one group for this call: its `on` column and value columns.
pub struct FrameChunk {
    pub on: ArrayRef,
    pub columns: Vec<ArrayRef>,
}

pub struct AsofInput<'a> {
    /// The `main` keys, same Arrow type as every `on` column.
    pub main: ArrayRef,
    /// Per join position, the group of every output row.
    pub positions: &'a [Vec<u32>],
    /// `chunks[g][d]`.
    pub chunks: &'a [Vec<FrameChunk>],
    /// `carry[g][d][c]`: `n_prev[d] + 1` rows per column.
    pub carry: &'a [Vec<Vec<ArrayRef>>],
    pub n_prev: &'a [usize],
    pub exact: &'a [bool],
    /// Optional caller buffers, one per output column (same order as
    /// [`AsofOutput::columns`]); empty for none.
    pub slots: &'a [Option<OutSlot>],
}

pub struct AsofOutput {
    /// For each position, frame, value column and `k = n_prev..=0`; `None`
    /// for the columns written into a caller slot.
    pub columns: Vec<Option<ArrayRef>>,
    /// The carry windows for the next call, `[g][d][c]`.
    pub carry: Vec<Vec<Vec<ArrayRef>>>,
}

fn check_shapes(input: &AsofInput) -> Result<()> {
    let n_groups = input.chunks.len();
    let n_frames = input.n_prev.len();
    let bad = |msg: String| Err(OupsError::Internal(msg));
    if input.carry.len() != n_groups || input.exact.len() != n_frames {
        return bad("carry or configuration does not match the groups".into());
    }
    for (g, (frames, windows)) in input.chunks.iter().zip(input.carry).enumerate() {
        if frames.len() != n_frames || windows.len() != n_frames {
            return bad(format!("group {g} does not have {n_frames} frames"));
        }
        for (d, (frame, window)) in frames.iter().zip(windows).enumerate() {
            if frame.columns.len() != window.len() {
                return bad(format!(
                    "group {g}, frame {d}: carry and chunk columns differ"
                ));
            }
            for (c, (column, carried)) in frame.columns.iter().zip(window).enumerate() {
                if column.len() != frame.on.len() || carried.len() != input.n_prev[d] + 1 {
                    return bad(format!("group {g}, frame {d}, column {c}: wrong length"));
                }
                if column.data_type() != carried.data_type() {
                    return Err(OupsError::SchemaMismatch(format!(
                        "group {g}, frame {d}: column {c} has type {} but the carry window \
                         holds {}",
                        column.data_type(),
                        carried.data_type()
                    )));
                }
            }
        }
    }
    for (j, groups) in input.positions.iter().enumerate() {
        if groups.len() != input.main.len() {
            return bad(format!("position {j}: wrong number of rows"));
        }
        if let Some(r) = groups.iter().position(|&g| g as usize >= n_groups) {
            return Err(OupsError::InvalidArgument(format!(
                "'combinations' row {r}, column {j} names group {} but there are only \
                 {n_groups} groups",
                groups[r]
            )));
        }
    }
    Ok(())
}

/// Runs one merge call.
pub fn merge(input: &AsofInput) -> Result<AsofOutput> {
    check_shapes(input)?;
    // Key checks and selections are independent per frame: run them on all
    // cores, as the gathers below.
    let mut key_tasks: Vec<(&dyn Array, String)> = vec![(input.main.as_ref(), "'main'".into())];
    for (g, frames) in input.chunks.iter().enumerate() {
        for (d, frame) in frames.iter().enumerate() {
            if frame.on.data_type() != input.main.data_type() {
                return Err(OupsError::InvalidType(format!(
                    "the 'on' column of frame {d} in group {g} has type {} but 'main' has \
                     type {}",
                    frame.on.data_type(),
                    input.main.data_type()
                )));
            }
            key_tasks.push((
                frame.on.as_ref(),
                format!("the 'on' column of frame {d} in group {g}"),
            ));
        }
    }
    let mut keys = run_parallel(&key_tasks, |(array, what)| sorted_keys(*array, what))?;
    let frame_keys = keys.split_off(1);
    let main = keys.pop().unwrap_or(Keys::Encoded(Vec::new()));
    let n_frames = input.n_prev.len();
    // `frame_keys` is group-major: group g, frame d is at g * n_frames + d.
    let select_tasks: Vec<(usize, usize)> = (0..input.positions.len())
        .flat_map(|j| (0..n_frames).map(move |d| (j, d)))
        .collect();
    let flat = run_parallel(&select_tasks, |&(j, d)| {
        let groups = input.positions[j].iter().map(|&g| g as usize);
        let frames = (0..input.chunks.len()).map(|g| &frame_keys[g * n_frames + d]);
        let (carry_len, exact) = (input.n_prev[d] + 1, input.exact[d]);
        // Every key column has main's type (checked above), hence its variant.
        Ok(match &main {
            Keys::Native(main) => {
                let chunks: Vec<&[i64]> = frames
                    .map(|k| match k {
                        Keys::Native(v) => *v,
                        Keys::Encoded(_) => &[],
                    })
                    .collect();
                select_rows(main, groups, &chunks, carry_len, exact)
            }
            Keys::Encoded(main) => {
                let chunks: Vec<&[u64]> = frames
                    .map(|k| match k {
                        Keys::Encoded(v) => v.as_slice(),
                        Keys::Native(_) => &[],
                    })
                    .collect();
                select_rows(main, groups, &chunks, carry_len, exact)
            }
        })
    })?;
    let mut flat = flat.into_iter();
    let selections: Vec<Vec<Vec<u32>>> = (0..input.positions.len())
        .map(|_| flat.by_ref().take(n_frames).collect())
        .collect();
    let n_columns: Vec<usize> = (0..n_frames)
        .map(|d| input.chunks.first().map_or(0, |f| f[d].columns.len()))
        .collect();
    // One task per (position, frame, column): its `n_prev + 1` output
    // columns (k = n_prev..=0) read neighbouring rows, so when they all go
    // to numpy blocks one pass writes them all.
    let mut tasks = Vec::new();
    let mut first_output = 0;
    for j in 0..input.positions.len() {
        for (d, &n_cols) in n_columns.iter().enumerate() {
            for c in 0..n_cols {
                tasks.push((first_output, j, d, c));
                first_output += input.n_prev[d] + 1;
            }
        }
    }
    if !input.slots.is_empty() && input.slots.len() != first_output {
        return Err(OupsError::Internal(
            "one output slot per column expected".into(),
        ));
    }
    let run = |&(i, j, d, c): &(usize, usize, usize, usize)| {
        let sources = ColumnSources {
            carry: input.carry.iter().map(|w| &w[d][c]).collect(),
            chunk: input.chunks.iter().map(|f| &f[d].columns[c]).collect(),
            carry_len: input.n_prev[d] + 1,
        };
        let (groups, rows) = (&input.positions[j], &selections[j][d]);
        let ks: Vec<u32> = (0..=input.n_prev[d] as u32).rev().collect();
        let slots: Option<Vec<OutSlot>> = (i..i + ks.len())
            .map(|o| input.slots.get(o).copied().flatten())
            .collect();
        if let Some(slots) = slots {
            let outs: Vec<(u32, OutSlot)> = ks.iter().copied().zip(slots).collect();
            gather_into(&sources, groups, rows, &outs)?;
            return Ok(vec![None; ks.len()]);
        }
        let mut out = Vec::with_capacity(ks.len());
        for (o, &k) in ks.iter().enumerate() {
            out.push(match input.slots.get(i + o).copied().flatten() {
                Some(slot) => {
                    gather_into(&sources, groups, rows, &[(k, slot)])?;
                    None
                }
                None => Some(gather(&sources, groups, rows, k)?),
            });
        }
        Ok(out)
    };
    let columns: Vec<Option<ArrayRef>> = run_parallel(&tasks, run)?.into_iter().flatten().collect();

    let mut carry = Vec::with_capacity(input.chunks.len());
    for (frames, windows) in input.chunks.iter().zip(input.carry) {
        let mut per_frame = Vec::with_capacity(frames.len());
        for (d, (frame, window)) in frames.iter().zip(windows).enumerate() {
            let tails = frame
                .columns
                .iter()
                .zip(window)
                .map(|(chunk, carried)| window_tail(carried, chunk, input.n_prev[d] + 1))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            per_frame.push(tails);
        }
        carry.push(per_frame);
    }
    Ok(AsofOutput { columns, carry })
}

/// Runs `f` over `tasks` on up to all cores, keeping the task order.
fn run_parallel<T: Sync, R: Send>(
    tasks: &[T],
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let workers = crate::cores::cores().min(tasks.len().max(1));
    if workers <= 1 {
        return tasks.iter().map(&f).collect();
    }
    let f = &f;
    let mut slots: Vec<Option<Result<R>>> = (0..tasks.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let chunks: Vec<_> = slots
            .chunks_mut(tasks.len().div_ceil(workers))
            .zip(tasks.chunks(tasks.len().div_ceil(workers)))
            .map(|(out, todo)| {
                scope.spawn(move || {
                    for (slot, task) in out.iter_mut().zip(todo) {
                        *slot = Some(f(task));
                    }
                })
            })
            .collect();
        for handle in chunks {
            if let Err(payload) = handle.join() {
                std::panic::resume_unwind(payload);
            }
        }
    });
    slots
        .into_iter()
        .map(|s| s.expect("every task ran"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type};
    use arrow_array::{Float64Array, Int64Array};
    use std::sync::Arc;

    fn ints(v: &[i64]) -> ArrayRef {
        Arc::new(Int64Array::from(v.to_vec()))
    }

    #[test]
    fn streaming_with_n_prev_matches_the_spec() {
        // Scenario A3, call 1 then call 2 (exact matches, n_prev = 2).
        let chunk = vec![vec![FrameChunk {
            on: ints(&[10, 20, 30]),
            columns: vec![
                ints(&[1, 2, 3]),
                Arc::new(Float64Array::from(vec![1.5, 2.5, 3.5])),
            ],
        }]];
        let carry = vec![vec![vec![
            ints(&[0, 0, 0]),
            Arc::new(Float64Array::from(vec![0.0; 3])) as ArrayRef,
        ]]];
        let positions = vec![vec![0u32; 5]];
        let out = merge(&AsofInput {
            main: ints(&[5, 10, 15, 30, 40]),
            positions: &positions,
            chunks: &chunk,
            carry: &carry,
            n_prev: &[2],
            exact: &[true],
            slots: &[],
        })
        .unwrap();
        let col = |i: usize| {
            out.columns[i]
                .as_ref()
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        };
        assert_eq!(col(0), vec![0, 0, 0, 1, 1]); // a_2
        assert_eq!(col(1), vec![0, 0, 0, 2, 2]); // a_1
        assert_eq!(col(2), vec![0, 1, 1, 3, 3]); // a_0
        let b0 = out.columns[5]
            .as_ref()
            .unwrap()
            .as_primitive::<Float64Type>()
            .values()
            .to_vec();
        assert_eq!(b0, vec![0.0, 1.5, 1.5, 3.5, 3.5]);

        let chunk2 = vec![vec![FrameChunk {
            on: ints(&[45, 46]),
            columns: vec![ints(&[4, 5]), Arc::new(Float64Array::from(vec![4.5, 5.5]))],
        }]];
        let positions = vec![vec![0u32; 3]];
        let out2 = merge(&AsofInput {
            main: ints(&[41, 45, 50]),
            positions: &positions,
            chunks: &chunk2,
            carry: &out.carry,
            n_prev: &[2],
            exact: &[true],
            slots: &[],
        })
        .unwrap();
        let col = |i: usize| {
            out2.columns[i]
                .as_ref()
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        };
        assert_eq!(
            (col(0), col(1), col(2)),
            (vec![1, 2, 3], vec![2, 3, 4], vec![3, 4, 5])
        );
    }

    #[test]
    fn unsorted_inputs_and_bad_groups_are_errors() {
        let chunk = vec![vec![FrameChunk {
            on: ints(&[20, 10]),
            columns: vec![],
        }]];
        let carry = vec![vec![vec![]]];
        let error = |main: &[i64], groups: Vec<u32>| {
            let positions = vec![groups];
            merge(&AsofInput {
                main: ints(main),
                positions: &positions,
                chunks: &chunk,
                carry: &carry,
                n_prev: &[0],
                exact: &[false],
                slots: &[],
            })
            .err()
            .unwrap()
            .to_string()
        };
        let err = error(&[1, 2], vec![0, 0]);
        assert!(err.contains("frame 0 in group 0"), "{err}");
        let err = error(&[2, 1], vec![0, 0]);
        assert!(err.contains("'main' must be sorted"), "{err}");
        let err = error(&[1, 2], vec![0, 3]);
        assert!(err.contains("row 1, column 0"), "{err}");
    }
}
