//! Rolling windows at query keys (kdb+'s window join): for every query, the
//! aggregate of its group's rows in the trailing window that ends at the
//! query's key.
//!
//! Rows and queries are walked in key order; a query is answered once no
//! later row can enter its window, that is once a row past its key has been
//! seen (or at the end of the stream). Queries not yet answered wait in the
//! state with the lanes, so a chunked stream answers each query exactly when
//! one call would, from the same additions and removals.

use arrow_array::ArrayRef;

use crate::error::{OupsError, Result};
use crate::segments::lane::{Entry, Lane};
use crate::segments::rolling::{per_lane, Closed, RollSpec, RollState, Window};
use crate::segments::segment::NO_GROUP;
use crate::segments::spec::{AggKind, AggSpec, FloatsOut, Values};

/// The rows of a stream that a window join reads, and its queries.
pub struct JoinChunk<'a> {
    pub keys: &'a [i64],
    pub groups: Option<&'a [u32]>,
    pub columns: &'a [Values<'a>],
    pub query_keys: &'a [i64],
    pub query_groups: Option<&'a [u32]>,
}

#[derive(Clone, Debug, Default)]
pub struct JoinState {
    pub roll: RollState,
    /// Queries given but not answered yet: their keys and group ids.
    pub pending_keys: Vec<i64>,
    pub pending_groups: Vec<u32>,
    /// The key of the latest query given.
    pub last_query: Option<i64>,
}

pub struct JoinOutput {
    /// The answered queries, in the order given: group ids and keys.
    pub groups: Vec<u32>,
    pub keys: Vec<i64>,
    pub columns: Vec<ArrayRef>,
    pub state: JoinState,
}

/// Whether the window of a query at `q` excludes rows at its own key.
fn open_end(spec: &RollSpec) -> bool {
    !spec.closed.has_current()
}

/// A row at key `k` comes after the window of the query at `q`.
fn past(spec: &RollSpec, q: i64, k: i64) -> bool {
    if open_end(spec) {
        k >= q
    } else {
        k > q
    }
}

/// Drops the rows that no window ending at `t` or later holds.
fn evict(lane: &mut Lane, spec: &RollSpec, kind: AggKind, t: i64) {
    if let Window::Span(w) = spec.window {
        let bound = t.saturating_sub(w);
        let start = spec.closed.has_start();
        while lane
            .rows
            .front()
            .is_some_and(|r| if start { r.key < bound } else { r.key <= bound })
        {
            lane.remove_front(kind);
        }
    }
}

/// One aggregation over the chunk's rows, answering the first `ready`
/// queries of `queries` (keys, groups) on the way.
fn join_lane(
    spec: &RollSpec,
    agg: &AggSpec,
    chunk: &JoinChunk<'_>,
    queries: (&[i64], &[u32]),
    ready: usize,
    lanes: &mut Vec<Lane>,
    n_groups: usize,
) -> ArrayRef {
    lanes.resize_with(n_groups.max(1), Lane::default);
    let kind = agg.kind;
    let values = chunk.columns[agg.column];
    let weight = agg.weight.map(|w| chunk.columns[w]);
    let empty = Lane::default();
    let mut out = FloatsOut::with_capacity(ready);
    let mut answer = |lanes: &mut Vec<Lane>, q: usize| {
        let g = queries.1[q];
        let value = match lanes.get_mut(g as usize) {
            Some(lane) if g != NO_GROUP => {
                evict(lane, spec, kind, queries.0[q]);
                lane.value(kind, spec.min_periods)
            }
            _ => empty.value(kind, spec.min_periods),
        };
        out.push(value);
    };
    let mut next = 0;
    for (i, &key) in chunk.keys.iter().enumerate() {
        while next < ready && past(spec, queries.0[next], key) {
            answer(lanes, next);
            next += 1;
        }
        let g = chunk.groups.map_or(0, |g| g[i]);
        if g == NO_GROUP {
            continue;
        }
        let lane = &mut lanes[g as usize];
        // Rows that left the window of this row leave every later window.
        evict(lane, spec, kind, key);
        let e = Entry {
            key,
            pos: lane.seen,
            v: values.f64_at(i).unwrap_or(f64::NAN),
            w: weight.map_or(0.0, |w| w.f64_at(i).unwrap_or(f64::NAN)),
        };
        lane.seen += 1;
        lane.add(kind, e);
        if let Window::Rows(n) = spec.window {
            if lane.rows.len() as u64 > n {
                lane.remove_front(kind);
            }
        }
    }
    while next < ready {
        answer(lanes, next);
        next += 1;
    }
    out.finish()
}

fn check_queries(spec: &RollSpec, keys: &[i64], state: &JoinState) -> Result<()> {
    if matches!(spec.window, Window::Rows(_))
        && matches!(spec.closed, Closed::Both | Closed::Neither)
    {
        return Err(OupsError::InvalidArgument(
            "a row-count window at query keys takes closed='right' (the rows up to the query's \
             key) or 'left' (the rows before it), not 'both' or 'neither'"
                .into(),
        ));
    }
    if let Some(i) = keys.windows(2).position(|w| w[0] > w[1]) {
        return Err(OupsError::Unsorted(format!(
            "'at' is not sorted on its key: query {} ({}) comes after query {i} ({}); sort the \
             queries",
            i + 1,
            keys[i + 1],
            keys[i]
        )));
    }
    let Some(&first) = keys.first() else {
        return Ok(());
    };
    if let Some(last) = state.last_query.filter(|last| first < *last) {
        return Err(OupsError::Unsorted(format!(
            "'at' starts at key {first}, before the previous queries ended ({last}): give the \
             queries in key order"
        )));
    }
    if let Some(last) = state.roll.last_key.filter(|last| past(spec, first, *last)) {
        return Err(OupsError::Unsorted(format!(
            "the query at key {first} comes after rows up to key {last} were rolled, so its \
             window is gone: give each query with the chunk that reaches its key, or earlier"
        )));
    }
    Ok(())
}

/// Rolls one chunk on top of `state` and answers the queries that it
/// completes (all of them when `last`). The state is returned, never changed
/// in place, so that an error leaves the caller's as it was.
pub fn join(
    spec: &RollSpec,
    chunk: &JoinChunk<'_>,
    n_groups: usize,
    state: &JoinState,
    last: bool,
) -> Result<JoinOutput> {
    spec.validate(chunk.columns.len())?;
    crate::segments::run::check_keys(chunk.keys, state.roll.last_key)?;
    check_queries(spec, chunk.query_keys, state)?;
    let mut lanes = state.roll.start_lanes(spec)?;
    let mut keys = state.pending_keys.clone();
    keys.extend_from_slice(chunk.query_keys);
    let mut groups = state.pending_groups.clone();
    match chunk.query_groups {
        Some(g) => groups.extend_from_slice(g),
        None => groups.resize(keys.len(), 0),
    }
    if groups.len() != keys.len() {
        return Err(OupsError::Internal(
            "query groups and keys differ in length".into(),
        ));
    }
    let last_key = chunk.keys.last().copied().or(state.roll.last_key);
    let ready = if last {
        keys.len()
    } else {
        last_key.map_or(0, |k| keys.partition_point(|q| past(spec, *q, k)))
    };
    let columns = per_lane(&mut lanes, chunk.keys.len(), |j, lane| {
        join_lane(
            spec,
            &spec.aggs[j],
            chunk,
            (&keys, &groups),
            ready,
            lane,
            n_groups,
        )
    })?;
    let pending_keys = keys.split_off(ready);
    let pending_groups = groups.split_off(ready);
    Ok(JoinOutput {
        groups,
        keys,
        columns,
        state: JoinState {
            roll: RollState { last_key, lanes },
            pending_keys,
            pending_groups,
            last_query: chunk.query_keys.last().copied().or(state.last_query),
        },
    })
}
