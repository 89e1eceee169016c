//! Synchronised chunked reads across datasets (`Store.iter_intersections`).
//!
//! Row groups of each dataset are collapsed into groups (consecutive row
//! groups sharing a bound value). Chunk edges are the starts of the in-range
//! groups of every participating dataset but their first. Each dataset keeps
//! one group in memory, and the next group needed by the whole iteration is
//! read ahead on another thread while the caller works on the current chunk.

use std::ops::Range;
use std::sync::Arc;
use std::thread::JoinHandle;

use arrow_array::RecordBatch;
use arrow_schema::DataType;

use crate::dataset::bounds::{key_range, PhysicalBound};
use crate::dataset::contiguous::populate_read;
use crate::dataset::ordered_key::count_below;
use crate::dataset::range_read::KeyRange;
use crate::dataset::state::RowGroup;
use crate::error::{OupsError, Result};
use crate::store::sources::Source;

/// Consecutive row groups `rgs` with `min_i == max_{i-1}`, spanning `[min, max]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub rgs: std::ops::Range<usize>,
    pub min: u64,
    pub max: u64,
}

pub fn collapse(rgs: &[RowGroup]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for (i, rg) in rgs.iter().enumerate() {
        match groups.last_mut() {
            Some(g) if g.max == rg.min => {
                g.rgs.end = i + 1;
                g.max = rg.max;
            }
            _ => groups.push(Group {
                rgs: i..i + 1,
                min: rg.min,
                max: rg.max,
            }),
        }
    }
    groups
}

/// The in-range groups `first..stop` of one participating dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub source: usize,
    pub groups: Vec<Group>,
    pub first: usize,
    pub stop: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub participants: Vec<Participant>,
    /// Sorted, distinct inner chunk edges; there are `edges.len() + 1` chunks.
    pub edges: Vec<u64>,
}

/// Plans the chunks from row-group stats alone.
pub fn plan(datasets: &[&[RowGroup]], range: KeyRange) -> Plan {
    let mut participants = Vec::new();
    let mut edges = Vec::new();
    for (source, rgs) in datasets.iter().enumerate() {
        let groups = collapse(rgs);
        let first = range
            .start
            .map_or(0, |s| groups.partition_point(|g| g.max < s));
        let stop = range
            .end_excl
            .map_or(groups.len(), |e| groups.partition_point(|g| g.min < e));
        if first < stop {
            edges.extend(groups[first + 1..stop].iter().map(|g| g.min));
            participants.push(Participant {
                source,
                groups,
                first,
                stop,
            });
        }
    }
    edges.sort_unstable();
    edges.dedup();
    Plan {
        participants,
        edges,
    }
}

impl Plan {
    pub fn n_chunks(&self) -> usize {
        if self.participants.is_empty() {
            0
        } else {
            self.edges.len() + 1
        }
    }

    /// The chunk at which group `g` of a participant is first needed.
    fn chunk_of_group(&self, p: &Participant, g: usize) -> usize {
        if g == p.first {
            0
        } else {
            self.edges.partition_point(|&e| e < p.groups[g].min) + 1
        }
    }

    /// Group loads in the order the iteration needs them.
    fn schedule(&self) -> Vec<(usize, usize, usize)> {
        let mut loads: Vec<(usize, usize, usize)> = self
            .participants
            .iter()
            .enumerate()
            .flat_map(|(i, p)| (p.first..p.stop).map(move |g| (i, g)))
            .map(|(i, g)| (self.chunk_of_group(&self.participants[i], g), i, g))
            .collect();
        loads.sort_unstable();
        loads
    }
}

/// A group in memory: its rows (plus warm-up rows before them).
struct Loaded {
    group: usize,
    batch: RecordBatch,
    ordered: usize,
    /// Per column: whether it is private memory that its chunks may hand over
    /// as mutable ([`Part::private`]).
    private: Vec<bool>,
    /// Rows already handed out in chunks. They are never read again: a caller
    /// may have modified them.
    consumed: usize,
    /// Whether its pages are all mapped in ([`load_group`]).
    populated: bool,
}

impl Loaded {
    fn below(&self, key: u64) -> usize {
        let n = self.batch.num_rows();
        let rest = self
            .batch
            .column(self.ordered)
            .slice(self.consumed, n - self.consumed);
        self.consumed + count_below(rest.as_ref(), key)
    }

    /// Rows with keys in `range`, among those not handed out yet.
    fn rows(&self, range: &KeyRange) -> std::ops::Range<usize> {
        range.rows_in(self.batch.num_rows(), |k| self.below(k))
    }
}

/// One dataset's rows in a chunk.
pub struct Part {
    /// The dataset's position in the sources.
    pub source: usize,
    pub batch: RecordBatch,
    /// Per column: the values are private copy-on-write memory that no other
    /// chunk and no file shares, so the caller may hand them over as mutable
    /// memory (writes never reach the files nor other chunks).
    pub private: Vec<bool>,
}

type Pending = (usize, usize, JoinHandle<Result<Loaded>>);

/// Types whose keys compare meaningfully with each other.
fn domain(dt: &DataType) -> String {
    match dt {
        d if d.is_signed_integer() => "signed integer".into(),
        d if d.is_unsigned_integer() => "unsigned integer".into(),
        d if d.is_floating() => "floating point".into(),
        other => other.to_string(),
    }
}

pub struct Intersections {
    sources: Vec<Option<Arc<Source>>>,
    plan: Plan,
    range: KeyRange,
    n_prev: Vec<usize>,
    schedule: Vec<(usize, usize, usize)>,
    next_load: usize,
    loaded: Vec<Option<Loaded>>,
    prefetch: Option<Pending>,
    chunk: usize,
}

/// Loads row groups `rgs` of a source as group `group` (see [`Source::load`]).
fn load_group(src: &Source, group: usize, rgs: Range<usize>, whole: bool) -> Result<Loaded> {
    let (batch, private) = src.load(rgs, whole)?;
    Ok(Loaded {
        group,
        batch,
        ordered: src.ordered_index(),
        private,
        consumed: 0,
        populated: whole,
    })
}

impl Intersections {
    /// `sources[i]` (named `names[i]` in messages) is `None` for a dataset
    /// without row groups; `n_prev[i]` warm-up rows are prepended to dataset
    /// i's first chunk when `start` is set. The ordered columns must compare
    /// with each other and with the bounds.
    pub fn new(
        sources: Vec<Option<Source>>,
        names: &[String],
        n_prev: Vec<usize>,
        start: Option<PhysicalBound>,
        end_excl: Option<PhysicalBound>,
    ) -> Result<Self> {
        let mut first: Option<(usize, &DataType)> = None;
        for (i, s) in sources.iter().enumerate() {
            let Some(s) = s else { continue };
            match first {
                None => first = Some((i, s.ordered_type())),
                Some((j, dt)) if domain(dt) != domain(s.ordered_type()) => {
                    let name = |k: usize| names.get(k).map_or("?", String::as_str);
                    return Err(OupsError::SchemaMismatch(format!(
                        "the ordered columns cannot be compared: '{}' is {dt}, but '{}' is {}",
                        name(j),
                        name(i),
                        s.ordered_type()
                    )));
                }
                _ => {}
            }
        }
        let range = match first {
            Some((_, dt)) => key_range(dt, start, end_excl)?,
            None => KeyRange::default(),
        };
        Ok(Self::over(sources, range, n_prev))
    }

    fn over(sources: Vec<Option<Source>>, range: KeyRange, n_prev: Vec<usize>) -> Self {
        let empty: Vec<RowGroup> = Vec::new();
        let rgs: Vec<&[RowGroup]> = sources
            .iter()
            .map(|s| s.as_ref().map_or(empty.as_slice(), |s| s.row_groups()))
            .collect();
        let plan = plan(&rgs, range);
        let schedule = plan.schedule();
        let n = plan.participants.len();
        Intersections {
            sources: sources.into_iter().map(|s| s.map(Arc::new)).collect(),
            plan,
            range,
            n_prev,
            schedule,
            next_load: 0,
            loaded: (0..n).map(|_| None).collect(),
            prefetch: None,
            chunk: 0,
        }
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    fn source(&self, source: usize) -> Arc<Source> {
        // Participants always have row groups, hence a snapshot.
        Arc::clone(
            self.sources[source]
                .as_ref()
                .expect("participant without snapshot"),
        )
    }

    fn group_rgs(&self, p: usize, g: usize) -> (Arc<Source>, Range<usize>) {
        let part = &self.plan.participants[p];
        (self.source(part.source), part.groups[g].rgs.clone())
    }

    /// Whether all rows of group `g` of participant `p` lie in the range.
    fn within_range(&self, p: usize, g: usize) -> bool {
        let group = &self.plan.participants[p].groups[g];
        self.range.start.is_none_or(|s| group.min >= s)
            && self.range.end_excl.is_none_or(|e| group.max < e)
    }

    /// Starts reading the next scheduled group on another thread.
    fn start_prefetch(&mut self) {
        if self.prefetch.is_some() {
            return;
        }
        if let Some(&(_, p, g)) = self.schedule.get(self.next_load) {
            let (src, rgs) = self.group_rgs(p, g);
            let whole = self.within_range(p, g);
            let handle = std::thread::spawn(move || load_group(&src, g, rgs, whole));
            self.prefetch = Some((p, g, handle));
        }
    }

    fn take_load(&mut self, p: usize, g: usize) -> Result<Loaded> {
        if let Some((pp, pg, _)) = &self.prefetch {
            if (*pp, *pg) == (p, g) {
                let (_, _, handle) = self.prefetch.take().expect("checked");
                return handle.join().unwrap_or_else(|_| {
                    Err(OupsError::Internal("a read-ahead thread panicked".into()))
                });
            }
        }
        let (src, rgs) = self.group_rgs(p, g);
        load_group(&src, g, rgs, self.within_range(p, g))
    }

    /// Prepends the rows just before `start` from earlier row groups when the
    /// first group has fewer than `n_prev` of them.
    fn with_warm_up(&self, p: usize, mut loaded: Loaded) -> Result<Loaded> {
        let part = &self.plan.participants[p];
        let n = self.n_prev.get(part.source).copied().unwrap_or(0);
        let Some(start) = self.range.start else {
            return Ok(loaded);
        };
        let before = loaded.below(start);
        if n <= before {
            return Ok(loaded);
        }
        let missing = n - before;
        let src = &self.source(part.source);
        let first_rg = part.groups[loaded.group].rgs.start;
        let mut from = first_rg;
        let mut got = 0usize;
        while from > 0 && got < missing {
            from -= 1;
            got += src.row_groups()[from].n_rows as usize;
        }
        if from == first_rg {
            return Ok(loaded);
        }
        let earlier = load_group(src, loaded.group, from..first_rg, false)?;
        let skip = got.saturating_sub(missing);
        let tail = earlier.batch.slice(skip, got - skip);
        loaded.batch = crate::dictionaries::concat(&loaded.batch.schema(), &[tail, loaded.batch])?;
        // Concatenated into memory of the Arrow allocator: not a mapping.
        loaded.private.fill(false);
        Ok(loaded)
    }

    /// The next chunk: the rows of every participating dataset.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<Part>>> {
        let chunk = self.chunk;
        if chunk >= self.plan.n_chunks() {
            self.prefetch = None;
            return Ok(None);
        }
        while let Some(&(c, p, g)) = self.schedule.get(self.next_load) {
            if c != chunk {
                break;
            }
            self.next_load += 1;
            // Drop the previous group before reading the next one.
            self.loaded[p] = None;
            let mut loaded = self.take_load(p, g)?;
            if chunk == 0 {
                loaded = self.with_warm_up(p, loaded)?;
            }
            self.loaded[p] = Some(loaded);
        }
        self.start_prefetch();
        let lo = if chunk == 0 {
            self.range.start
        } else {
            Some(self.plan.edges[chunk - 1])
        };
        let hi = if chunk == self.plan.edges.len() {
            self.range.end_excl
        } else {
            Some(self.plan.edges[chunk])
        };
        let bounds = KeyRange {
            start: lo,
            end_excl: hi,
        };
        let mut out = Vec::with_capacity(self.plan.participants.len());
        for (p, part) in self.plan.participants.iter().enumerate() {
            let loaded = self.loaded[p]
                .as_mut()
                .ok_or_else(|| OupsError::Internal("a dataset group was not loaded".into()))?;
            let mut rows = loaded.rows(&bounds);
            if chunk == 0 && lo.is_some() {
                let n = self.n_prev.get(part.source).copied().unwrap_or(0);
                rows.start = rows.start.saturating_sub(n);
            }
            loaded.consumed = loaded.consumed.max(rows.end);
            let batch = loaded.batch.slice(rows.start, rows.len());
            // A group at the edge of the range is mapped lazily
            // ([`load_group`]): what a chunk hands over is mapped in at once.
            let lazy = loaded.private.iter().map(|&p| p && !loaded.populated);
            for (column, _) in batch.columns().iter().zip(lazy).filter(|(_, p)| *p) {
                let data = column.to_data();
                if let (Some(w), [values]) = (column.data_type().primitive_width(), data.buffers())
                {
                    let start = data.offset() * w;
                    if let Some(bytes) = values.as_slice().get(start..start + data.len() * w) {
                        populate_read(bytes);
                    }
                }
            }
            out.push(Part {
                source: part.source,
                batch,
                private: loaded.private.clone(),
            });
        }
        self.chunk += 1;
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgs(bounds: &[(u64, u64)]) -> Vec<RowGroup> {
        bounds
            .iter()
            .enumerate()
            .map(|(i, &(min, max))| RowGroup {
                file_id: i as u64,
                n_rows: 2,
                min,
                max,
            })
            .collect()
    }

    #[test]
    fn collapses_chains_on_equal_bounds() {
        let g = collapse(&rgs(&[(1, 2), (2, 2), (2, 3), (4, 5)]));
        assert_eq!(g.len(), 2);
        assert_eq!((g[0].rgs.clone(), g[0].min, g[0].max), (0..3, 1, 3));
    }

    #[test]
    fn edges_pool_group_starts_within_the_range() {
        let a = rgs(&[(1, 2), (3, 4), (5, 6)]);
        let b = rgs(&[(2, 3), (4, 7)]);
        let p = plan(&[&a, &b], KeyRange::default());
        assert_eq!(p.edges, [3, 4, 5]);
        let p = plan(
            &[&a, &b],
            KeyRange {
                start: Some(7),
                end_excl: None,
            },
        );
        assert_eq!(p.participants.len(), 1);
        assert_eq!(p.participants[0].source, 1);
        assert_eq!(p.n_chunks(), 1);
        let none = plan(
            &[&a],
            KeyRange {
                start: Some(100),
                end_excl: None,
            },
        );
        assert_eq!(none.n_chunks(), 0);
    }
}
