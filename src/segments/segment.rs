//! Pass 1: every row to a slot (one bin of one group), in one pass over the
//! sorted keys, and the moment every slot closes.

use crate::error::{OupsError, Result};
use crate::segments::spec::{Bins, Side, Spec, Values};

/// The slot of a row that belongs to no bin (no group, or outside the edges).
pub const NO_SLOT: u32 = u32::MAX;
/// The `event` of a slot that can still receive rows.
pub const OPEN: u64 = u64::MAX;
/// The group of a row whose `by` value is null: pandas drops it.
pub const NO_GROUP: u32 = u32::MAX;

#[derive(Clone, Debug, PartialEq)]
pub struct Slot {
    pub group: u32,
    /// Time-like bins: the global bin index; otherwise the group's bin count.
    pub bin: i64,
    pub first_key: i64,
    pub last_key: i64,
    pub n_rows: u64,
    /// Position in the whole stream of the row that closed the slot (rows
    /// and threshold bins: their last row; time bins: the first row past
    /// them); `OPEN` while open. Output is ordered by it, so that chunked
    /// calls emit exactly the rows of one call, in the same order.
    pub event: u64,
}

impl Slot {
    fn new(group: u32, bin: i64, key: i64) -> Slot {
        Slot {
            group,
            bin,
            first_key: key,
            last_key: key,
            n_rows: 0,
            event: OPEN,
        }
    }
}

/// What a group carries between rows and between calls.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupCursor {
    /// The slot receiving its rows (index into the call's slots).
    pub open: Option<u32>,
    /// The bin of its latest slot, for the empty bins before its next one.
    pub last_bin: Option<i64>,
    /// Threshold bins: the running sum of the open bin.
    pub running: f64,
    /// Rows and threshold bins: how many bins the group has had.
    pub n_bins: i64,
}

/// Finds the global time bin of sorted keys, with a fast path while the key
/// stays in the current bin.
struct Locator<'a> {
    bins: &'a Bins,
    closed: Side,
    cur: Option<i64>,
    lo: i64,
    hi: i64,
}

impl<'a> Locator<'a> {
    fn new(bins: &'a Bins, closed: Side) -> Self {
        Locator {
            bins,
            closed,
            cur: None,
            lo: 0,
            hi: 0,
        }
    }

    #[inline]
    fn inside(&self, key: i64) -> bool {
        match self.closed {
            Side::Left => self.lo <= key && key < self.hi,
            Side::Right => self.lo < key && key <= self.hi,
        }
    }

    /// The bin of `key`; `None` before the first or after the last bounded
    /// edge. Index `n_edges - 1` stands for "after the last edge".
    #[inline]
    fn locate(&mut self, key: i64) -> Result<(i64, bool)> {
        if self.cur.is_some() && self.inside(key) {
            return Ok((self.cur.unwrap_or_default(), true));
        }
        self.relocate(key)
    }

    fn relocate(&mut self, key: i64) -> Result<(i64, bool)> {
        let overflow = || {
            OupsError::InvalidArgument(format!(
                "key {key} is too far from the bins' origin to be binned"
            ))
        };
        match self.bins {
            Bins::Fixed { origin, step } => {
                let off = key.checked_sub(*origin).ok_or_else(overflow)?;
                let off = if self.closed == Side::Right {
                    off.checked_sub(1).ok_or_else(overflow)?
                } else {
                    off
                };
                let b = off.div_euclid(*step);
                self.lo = b
                    .checked_mul(*step)
                    .and_then(|x| x.checked_add(*origin))
                    .ok_or_else(overflow)?;
                self.hi = self.lo.checked_add(*step).ok_or_else(overflow)?;
                self.cur = Some(b);
                Ok((b, true))
            }
            Bins::Edges {
                edges,
                bounded,
                base,
                ..
            } => {
                let after = match self.closed {
                    Side::Left => edges.partition_point(|e| *e <= key),
                    Side::Right => edges.partition_point(|e| *e < key),
                };
                let b = base + after as i64 - 1;
                if after == 0 || after == edges.len() {
                    if !bounded {
                        return Err(OupsError::Internal(format!(
                            "calendar edges do not cover key {key}"
                        )));
                    }
                    // No fast path outside the edges; these rows are rare.
                    self.cur = None;
                    return Ok((b, false));
                }
                self.lo = edges[after - 1];
                self.hi = edges[after];
                self.cur = Some(b);
                Ok((b, true))
            }
            _ => Err(OupsError::Internal("not a time-like binning".into())),
        }
    }
}

pub struct Segmentation {
    /// Per row: its slot, or `NO_SLOT`.
    pub row_slot: Vec<u32>,
    /// The carried open slots first (same order), then the new ones.
    pub slots: Vec<Slot>,
    pub cursors: Vec<GroupCursor>,
    /// Time-like bins: the bin of the latest key.
    pub cur_bin: Option<i64>,
}

/// Assigns the rows of one chunk. `cursors` and `slots` come from the state
/// (open slots only); `row_base` is the stream position of the first row.
#[allow(clippy::too_many_arguments)]
pub fn segment(
    spec: &Spec,
    keys: &[i64],
    groups: Option<&[u32]>,
    threshold_values: Option<Values<'_>>,
    mut cursors: Vec<GroupCursor>,
    mut slots: Vec<Slot>,
    mut cur_bin: Option<i64>,
    row_base: u64,
    is_final: bool,
) -> Result<Segmentation> {
    let n = keys.len();
    let mut row_slot = vec![NO_SLOT; n];
    let group_of = |i: usize| groups.map_or(0, |g| g[i]);
    if spec.bins.time_like() {
        let mut locator = Locator::new(&spec.bins, spec.closed);
        // Slots open in the current global bin; all of them close together.
        let mut open: Vec<u32> = (0..slots.len() as u32)
            .filter(|s| slots[*s as usize].event == OPEN)
            .collect();
        for i in 0..n {
            let key = keys[i];
            let (b, inside) = locator.locate(key)?;
            if cur_bin != Some(b) {
                if cur_bin.is_some_and(|c| b < c) {
                    return Err(OupsError::Internal("bins went back".into()));
                }
                for s in open.drain(..) {
                    let slot = &mut slots[s as usize];
                    slot.event = row_base + i as u64;
                    cursors[slot.group as usize].open = None;
                }
                cur_bin = Some(b);
            }
            let g = group_of(i);
            if !inside || g == NO_GROUP {
                continue;
            }
            let cursor = &mut cursors[g as usize];
            let s = match cursor.open {
                Some(s) => s,
                None => {
                    if spec.keep_empty {
                        if let Some(last) = cursor.last_bin {
                            for empty in last + 1..b {
                                let mut slot = Slot::new(g, empty, key);
                                slot.event = row_base + i as u64;
                                slots.push(slot);
                            }
                        }
                    }
                    let s = slots.len() as u32;
                    slots.push(Slot::new(g, b, key));
                    cursor.open = Some(s);
                    cursor.last_bin = Some(b);
                    open.push(s);
                    s
                }
            };
            let slot = &mut slots[s as usize];
            slot.last_key = key;
            slot.n_rows += 1;
            row_slot[i] = s;
        }
    } else {
        for i in 0..n {
            let g = group_of(i);
            if g == NO_GROUP {
                continue;
            }
            let key = keys[i];
            let cursor = &mut cursors[g as usize];
            let s = match cursor.open {
                Some(s) => s,
                None => {
                    let s = slots.len() as u32;
                    slots.push(Slot::new(g, cursor.n_bins, key));
                    cursor.n_bins += 1;
                    cursor.open = Some(s);
                    s
                }
            };
            let slot = &mut slots[s as usize];
            slot.last_key = key;
            slot.n_rows += 1;
            row_slot[i] = s;
            let closes = match &spec.bins {
                Bins::Rows(every) => slot.n_rows == *every,
                Bins::Threshold { threshold, .. } => {
                    let v = threshold_values.as_ref().and_then(|v| v.f64_at(i));
                    cursor.running += v.unwrap_or(0.0);
                    cursor.running >= *threshold
                }
                _ => false,
            };
            if closes {
                slot.event = row_base + i as u64;
                cursor.open = None;
                cursor.running = 0.0;
            }
        }
    }
    if is_final {
        let end = row_base + n as u64;
        for slot in slots.iter_mut().filter(|s| s.event == OPEN) {
            slot.event = end;
        }
        for c in cursors.iter_mut() {
            c.open = None;
            c.running = 0.0;
        }
    }
    Ok(Segmentation {
        row_slot,
        slots,
        cursors,
        cur_bin,
    })
}
