//! Which existing row groups a write rewrites, and where the new rows go.
//!
//! New rows are assigned to "ordered atomic regions" (OARs, one per existing
//! row group plus one per run of new rows falling between row groups; see
//! docs/dataset.md), each OAR is classified on or off target, and runs of OARs are grouped into merge regions. Planning
//! works on row-group stats and the new keys only; no data is read.

use std::collections::HashMap;
use std::ops::Range;

use crate::dataset::period::Periods;

/// Stats of one existing row group, keys as sortable `u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RgStat {
    pub n_rows: u64,
    pub min: u64,
    pub max: u64,
}

#[derive(Debug, Clone)]
pub enum Target {
    Rows(u64),
    Periods(Periods),
}

#[derive(Debug, Clone)]
struct Oar {
    rg: Option<usize>,
    new: Range<usize>,
    has_new: bool,
    rg_rows: u64,
    min: u64,
    max: u64,
    on_target: bool,
    min_rows: u64,
    start_period: i64,
    end_period: i64,
}

/// One merge region: existing row groups `rgs` rewritten together with the new
/// rows `new` (indices into the new, sorted data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub rgs: Range<usize>,
    pub new: Range<usize>,
}

/// The output sequence of row groups, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Keep(usize),
    Merge(Region),
}

/// Plans a write. `max_n` is `max_n_off_target_rgs` (0 is taken as 1).
pub fn plan(
    rgs: &[RgStat],
    new: &[u64],
    target: &Target,
    drop_duplicates: bool,
    max_n: Option<i64>,
) -> Vec<Step> {
    let mut oars = build_oars(rgs, new, drop_duplicates);
    classify(&mut oars, target, drop_duplicates);
    let regions = merge_regions(&oars, target, max_n, new.len());
    let mut steps = Vec::new();
    let mut next_region = regions.iter().peekable();
    let mut i = 0;
    while i < oars.len() {
        if let Some(r) = next_region.peek() {
            if r.start == i {
                let r: Range<usize> = (*r).clone();
                let region = &oars[r.clone()];
                let rg_ids: Vec<usize> = region.iter().filter_map(|o| o.rg).collect();
                let rgs = match (rg_ids.first(), rg_ids.last()) {
                    (Some(&a), Some(&b)) => a..b + 1,
                    _ => {
                        // A region of new rows only sits before the next kept row group.
                        let at = oars[r.end..].iter().find_map(|o| o.rg).unwrap_or(rgs.len());
                        at..at
                    }
                };
                let new = region[0].new.start..region[region.len() - 1].new.end;
                steps.push(Step::Merge(Region { rgs, new }));
                i = r.end;
                next_region.next();
                continue;
            }
        }
        if let Some(rg) = oars[i].rg {
            steps.push(Step::Keep(rg));
        }
        i += 1;
    }
    steps
}

fn build_oars(rgs: &[RgStat], new: &[u64], drop_duplicates: bool) -> Vec<Oar> {
    let m = new.len();
    let lower = |x: u64| new.partition_point(|&v| v < x);
    let upper = |x: u64| new.partition_point(|&v| v <= x);
    let mut oars = Vec::with_capacity(rgs.len() * 2 + 1);
    let mut cursor = 0;
    let gap = |range: Range<usize>| Oar {
        rg: None,
        min: new[range.start],
        max: new[range.end - 1],
        new: range,
        has_new: true,
        rg_rows: 0,
        on_target: false,
        min_rows: 0,
        start_period: 0,
        end_period: 0,
    };
    for (i, rg) in rgs.iter().enumerate() {
        let start = lower(rg.min);
        // Without deduplication a value equal to a row group's max goes after
        // it; with it, the max is inclusive and a value shared with the next
        // row group's min belongs to that next row group (the last of a chain).
        let (end, touched) = if drop_duplicates {
            let hi = upper(rg.max);
            let cap = rgs.get(i + 1).map_or(m, |next| lower(next.min));
            (hi.min(cap).max(start), hi > start)
        } else {
            let end = lower(rg.max).max(start);
            (end, end > start)
        };
        if start > cursor {
            oars.push(gap(cursor..start));
        }
        oars.push(Oar {
            rg: Some(i),
            new: start..end,
            has_new: touched,
            rg_rows: rg.n_rows,
            min: rg.min,
            max: rg.max,
            on_target: false,
            min_rows: 0,
            start_period: 0,
            end_period: 0,
        });
        cursor = end.max(cursor);
    }
    if cursor < m {
        oars.push(gap(cursor..m));
    }
    oars
}

fn classify(oars: &mut [Oar], target: &Target, drop_duplicates: bool) {
    for o in oars.iter_mut() {
        let new_rows = o.new.len() as u64;
        let max_rows = o.rg_rows + new_rows;
        o.min_rows = if drop_duplicates {
            o.rg_rows.max(new_rows)
        } else {
            max_rows
        };
    }
    match target {
        Target::Rows(n) => {
            let low = (4 * n) / 5;
            for o in oars.iter_mut() {
                o.on_target = if o.has_new {
                    o.rg_rows + o.new.len() as u64 >= low
                } else {
                    low <= o.rg_rows && o.rg_rows <= *n
                };
            }
        }
        Target::Periods(periods) => {
            let mut touching: HashMap<i64, u32> = HashMap::new();
            for o in oars.iter_mut() {
                o.start_period = periods.of_key(o.min);
                o.end_period = periods.of_key(o.max);
                *touching.entry(o.start_period).or_default() += 1;
                if o.end_period != o.start_period {
                    *touching.entry(o.end_period).or_default() += 1;
                }
            }
            for o in oars.iter_mut() {
                let single = o.start_period == o.end_period;
                o.on_target = (o.has_new && !single) || (single && touching[&o.start_period] == 1);
            }
        }
    }
}

fn runs(oars: &[Oar], keep: impl Fn(&Oar) -> bool) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, o) in oars.iter().enumerate() {
        match (keep(o), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(s..oars.len());
    }
    out
}

fn merge_regions(
    oars: &[Oar],
    target: &Target,
    max_n: Option<i64>,
    n_new: usize,
) -> Vec<Range<usize>> {
    let simple = runs(oars, |o| o.has_new);
    let Some(max_n) = max_n else {
        return simple;
    };
    let max_n = if max_n == 0 { 1 } else { max_n };
    let resize = n_new == 0;
    let confirmed: Vec<Range<usize>> = runs(oars, |o| o.has_new || !o.on_target)
        .into_iter()
        .filter(|c| resize || oars[c.clone()].iter().any(|o| o.has_new))
        .filter(|c| {
            let members = &oars[c.clone()];
            let off = members.iter().filter(|o| !o.on_target).count() as i64;
            let exceeds = match target {
                Target::Rows(n) => members.iter().map(|o| o.min_rows).sum::<u64>() >= *n,
                Target::Periods(_) => {
                    members[0].start_period != members[members.len() - 1].end_period
                }
            };
            off > max_n || exceeds
        })
        .collect();
    if resize {
        return confirmed;
    }
    let mut regions: Vec<Range<usize>> = Vec::new();
    for s in simple {
        let region = confirmed
            .iter()
            .find(|c| c.start <= s.start && s.end <= c.end)
            .cloned()
            .unwrap_or(s);
        if regions.last() != Some(&region) {
            regions.push(region);
        }
    }
    regions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgs(groups: &[&[u64]]) -> Vec<RgStat> {
        groups
            .iter()
            .map(|g| RgStat {
                n_rows: g.len() as u64,
                min: g[0],
                max: g[g.len() - 1],
            })
            .collect()
    }

    #[test]
    fn append_with_coalescing_merges_tail() {
        // Scenario 3: [0..3] [4,5] + [6], N=4, max_n=1.
        let s = plan(
            &rgs(&[&[0, 1, 2, 3], &[4, 5]]),
            &[6],
            &Target::Rows(4),
            false,
            Some(1),
        );
        assert_eq!(
            s,
            vec![
                Step::Keep(0),
                Step::Merge(Region {
                    rgs: 1..2,
                    new: 0..1
                })
            ]
        );
    }

    #[test]
    fn append_without_coalescing_is_a_new_region() {
        let s = plan(
            &rgs(&[&[0, 1, 2, 3], &[4, 5]]),
            &[6],
            &Target::Rows(4),
            false,
            None,
        );
        assert_eq!(
            s,
            vec![
                Step::Keep(0),
                Step::Keep(1),
                Step::Merge(Region {
                    rgs: 2..2,
                    new: 0..1
                })
            ]
        );
    }

    #[test]
    fn shared_boundary_with_dedup_takes_both_row_groups() {
        // Scenario 29: [1,5] [5,9] + [5], dedup.
        let s = plan(
            &rgs(&[&[1, 5], &[5, 9]]),
            &[5],
            &Target::Rows(10),
            true,
            None,
        );
        assert_eq!(
            s,
            vec![Step::Merge(Region {
                rgs: 0..2,
                new: 0..1
            })]
        );
        // Scenario 25: without dedup only the second is rewritten.
        let s = plan(
            &rgs(&[&[1, 5], &[5, 9]]),
            &[5],
            &Target::Rows(10),
            false,
            None,
        );
        assert_eq!(
            s,
            vec![
                Step::Keep(0),
                Step::Merge(Region {
                    rgs: 1..2,
                    new: 0..1
                })
            ]
        );
    }

    #[test]
    fn resize_coalesces_in_the_middle() {
        // Scenario 38: df=None, N=4, max_n=1.
        let s = plan(
            &rgs(&[&[0, 1, 2, 3], &[4], &[5], &[6, 7, 8, 9], &[10]]),
            &[],
            &Target::Rows(4),
            false,
            Some(1),
        );
        assert_eq!(
            s,
            vec![
                Step::Keep(0),
                Step::Merge(Region {
                    rgs: 1..3,
                    new: 0..0
                }),
                Step::Keep(3),
                Step::Keep(4)
            ]
        );
    }

    #[test]
    fn insertion_between_row_groups_keeps_its_place() {
        let s = plan(
            &rgs(&[&[0, 1, 2], &[10, 11, 12]]),
            &[5, 6],
            &Target::Rows(3),
            false,
            None,
        );
        assert_eq!(
            s,
            vec![
                Step::Keep(0),
                Step::Merge(Region {
                    rgs: 1..1,
                    new: 0..2
                }),
                Step::Keep(1)
            ]
        );
    }
}
