//! [`TraceStore`]: spans taken one at a time, in any order, grouped into
//! traces as they arrive, and let go by a [`Retention`] rule, oldest trace
//! first, each eviction counted.
//!
//! "Oldest" is by arrival of a trace's first span, which is what a store
//! fed live (receivers, followed files) sees as age; it makes eviction O(1).
//! A trace is evicted whole: a search never sees half of one. A span that
//! arrives for a trace already evicted starts it again, as a new trace.
//!
//! The file analysis builds the same store with no retention.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, VecDeque};

use compact_str::CompactString;

use crate::analysis::{
    error_groups, latency_stats, operation_stats, service_dependencies, DependencyEdge, ErrorGroup,
    LatencyStats, OperationStats, SpanRow, Trace, TraceHeadline, TraceView,
};
use crate::ids::TraceId;

use super::operation_query::OperationQuery;
use super::trace_queries::{SpanName, TraceQueries};
use super::trace_query::{QueryError, TraceQuery};

/// How much a [`TraceStore`] keeps. Either bound, when reached, evicts the
/// oldest traces until the store is within both again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// At most this many traces.
    pub max_traces: Option<usize>,
    /// At most this many spans, over all traces.
    pub max_spans: Option<usize>,
}

impl Retention {
    /// Keep everything.
    pub const UNBOUNDED: Retention = Retention {
        max_traces: None,
        max_spans: None,
    };
}

/// What retention let go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreCounters {
    pub traces_evicted: u64,
    pub spans_evicted: u64,
}

/// Traces, fed span by span, bounded by a [`Retention`].
///
/// ```text
/// let mut store = TraceStore::new(Retention { max_spans: Some(1_000_000), ..Retention::UNBOUNDED });
/// store.add(row);
/// let recent = store.find_traces(&TraceQuery { limit: Some(20), ..TraceQuery::default() })?;
/// ```
#[derive(Clone, Debug, Default)]
pub struct TraceStore {
    retention: Retention,
    /// By arrival of each trace's first span, oldest first.
    traces: VecDeque<Trace>,
    /// Trace id -> arrival number; `traces[n - evicted]` holds it.
    index: HashMap<TraceId, u64>,
    /// Arrival number of `traces[0]` (= traces evicted so far).
    first: u64,
    spans: usize,
    counters: StoreCounters,
}

impl TraceStore {
    /// An empty store keeping what `retention` allows.
    pub fn new(retention: Retention) -> TraceStore {
        TraceStore {
            retention,
            ..TraceStore::default()
        }
    }

    /// Adds one span to its trace (a new trace if none is held), then
    /// evicts the oldest traces while the store is over its retention.
    pub fn add(&mut self, row: SpanRow) {
        match self.index.get(&row.trace_id) {
            Some(&n) => self.traces[(n - self.first) as usize].push(row),
            None => {
                let n = self.first + self.traces.len() as u64;
                self.index.insert(row.trace_id, n);
                self.traces.push_back(Trace::new(row));
            }
        }
        self.spans += 1;
        self.enforce_retention();
    }

    fn enforce_retention(&mut self) {
        let Retention {
            max_traces,
            max_spans,
        } = self.retention;
        while max_traces.is_some_and(|max| self.traces.len() > max)
            || max_spans.is_some_and(|max| self.spans > max)
        {
            let Some(oldest) = self.traces.pop_front() else {
                break;
            };
            self.index.remove(&oldest.trace_id());
            self.first += 1;
            self.spans -= oldest.stored_spans();
            self.counters.traces_evicted += 1;
            self.counters.spans_evicted += oldest.stored_spans() as u64;
        }
    }

    /// Replaces the retention rule, evicting at once what the new one
    /// does not allow (a store built with [`TraceStore::from_parts`], say).
    pub fn set_retention(&mut self, retention: Retention) {
        self.retention = retention;
        self.enforce_retention();
    }

    /// The retention rule.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// What retention has let go so far.
    pub fn counters(&self) -> StoreCounters {
        self.counters
    }

    /// Number of traces.
    pub fn len(&self) -> usize {
        self.traces.len()
    }

    /// Whether there are no traces.
    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    /// Spans held (a duplicate span id counts until assembly drops it).
    pub fn span_count(&self) -> usize {
        self.spans
    }

    /// The trace with this id.
    pub fn get(&self, trace_id: TraceId) -> Option<&Trace> {
        let n = *self.index.get(&trace_id)?;
        self.traces.get((n - self.first) as usize)
    }

    /// Every trace, oldest first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Trace> + '_ {
        self.traces.iter()
    }

    /// Every trace assembled, oldest first.
    pub fn views(&self) -> impl ExactSizeIterator<Item = TraceView<'_>> + '_ {
        self.traces.iter().map(Trace::view)
    }

    /// Assembles every trace changed since it was last looked at, on up to
    /// `threads` threads, so that later questions (and the thread asking
    /// them) do not pay for it. Traces assemble on first look anyway.
    pub fn assemble(&self, threads: usize) {
        let (front, back) = self.traces.as_slices();
        let per_thread = self.traces.len().div_ceil(threads.max(1)).max(1);
        std::thread::scope(|scope| {
            for chunk in front.chunks(per_thread).chain(back.chunks(per_thread)) {
                let work = move || {
                    for trace in chunk {
                        let _ = trace.view();
                    }
                };
                let spawned = std::thread::Builder::new()
                    .name("ferrotrace-assemble".into())
                    .spawn_scoped(scope, work);
                if spawned.is_err() {
                    // No thread to be had: do it here.
                    work();
                }
            }
        });
    }

    /// Spans dropped at assembly because their span id was already held.
    pub fn duplicate_spans(&self) -> u64 {
        self.views().map(|t| t.duplicate_spans() as u64).sum()
    }

    /// Every span once, trace by trace.
    fn spans(&self) -> impl Iterator<Item = &SpanRow> + '_ {
        self.views().flat_map(|t| t.spans())
    }
}

impl TraceStore {
    /// A store with no retention holding every row of `parts` (as read by
    /// several threads, say): the same store as adding them one by one,
    /// built faster. Each trace's spans are counted first, then moved once
    /// into a buffer of exactly that size, so a trace's spans sit together
    /// in memory.
    pub fn from_parts(parts: Vec<Vec<SpanRow>>) -> TraceStore {
        let total: usize = parts.iter().map(Vec::len).sum();
        let mut index: HashMap<TraceId, u64> = HashMap::new();
        let mut sizes: Vec<usize> = Vec::new();
        let mut slots: Vec<u32> = Vec::with_capacity(total);
        for row in parts.iter().flatten() {
            let next = sizes.len() as u64;
            let slot = *index.entry(row.trace_id).or_insert(next);
            if slot == next {
                sizes.push(0);
            }
            sizes[slot as usize] += 1;
            slots.push(slot as u32);
        }
        // Each buffer is allocated when its trace's first span moves in,
        // not all up front, so parts already emptied (and freed) make room
        // for the buffers of traces first seen in later parts.
        let mut buckets: Vec<Vec<SpanRow>> = sizes.iter().map(|_| Vec::new()).collect();
        for (row, slot) in parts.into_iter().flatten().zip(slots) {
            let bucket = &mut buckets[slot as usize];
            if bucket.capacity() == 0 {
                bucket.reserve_exact(sizes[slot as usize]);
            }
            bucket.push(row);
        }
        TraceStore {
            retention: Retention::UNBOUNDED,
            traces: buckets.into_iter().filter_map(Trace::from_rows).collect(),
            index,
            first: 0,
            spans: total,
            counters: StoreCounters::default(),
        }
    }
}

impl FromIterator<SpanRow> for TraceStore {
    /// A store with no retention holding every row.
    fn from_iter<I: IntoIterator<Item = SpanRow>>(rows: I) -> Self {
        TraceStore::from_parts(vec![rows.into_iter().collect()])
    }
}

impl Extend<SpanRow> for TraceStore {
    fn extend<I: IntoIterator<Item = SpanRow>>(&mut self, rows: I) {
        for row in rows {
            self.add(row);
        }
    }
}

impl TraceQueries for TraceStore {
    fn find_traces(&self, query: &TraceQuery) -> Result<Vec<TraceHeadline>, QueryError> {
        query.check()?;
        Ok(query
            .select(self.views())
            .iter()
            .map(TraceView::headline)
            .collect())
    }

    fn matching_traces(&self, query: &TraceQuery) -> Result<Vec<Cow<'_, Trace>>, QueryError> {
        query.check()?;
        Ok(query
            .select(self.views())
            .iter()
            .map(|v| Cow::Borrowed(v.trace()))
            .collect())
    }

    fn get_trace(&self, trace_id: TraceId) -> Option<Cow<'_, Trace>> {
        self.get(trace_id).map(Cow::Borrowed)
    }

    /// Exact, nearest-rank.
    fn latency_stats(&self, operation: Option<&str>, service: Option<&str>) -> LatencyStats {
        latency_stats(self.spans(), operation, service)
    }

    /// Exact percentiles, self time and time share.
    fn operations(&self, query: &OperationQuery) -> Vec<OperationStats> {
        query.apply(operation_stats(self.views()))
    }

    fn service_dependencies(&self) -> Vec<DependencyEdge> {
        service_dependencies(self.views())
    }

    fn error_groups(&self, service: Option<&str>, limit: Option<usize>) -> Vec<ErrorGroup> {
        let mut groups = error_groups(
            self.spans()
                .filter(|s| service.is_none_or(|v| s.service == v)),
        );
        groups.truncate(limit.unwrap_or(usize::MAX));
        groups
    }

    fn services(&self) -> Vec<CompactString> {
        let services: BTreeSet<&str> = self.spans().map(|s| s.service.as_str()).collect();
        services.into_iter().map(CompactString::from).collect()
    }

    fn span_names(&self, service: &str) -> Vec<SpanName> {
        let names: BTreeSet<(&str, &str)> = self
            .spans()
            .filter(|s| s.service == service)
            .map(|s| (s.name.as_str(), s.kind.as_str()))
            .collect();
        names
            .into_iter()
            .map(|(name, kind)| SpanName {
                name: name.into(),
                kind: kind.into(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::traces::tests::{checkout_rows, failed, row, shuffled};
    use crate::ids::SpanId;

    fn trace_ids(store: &TraceStore) -> Vec<u128> {
        store.iter().map(|t| t.trace_id().0).collect()
    }

    #[test]
    fn traces_assemble_as_spans_arrive_in_any_order() {
        for seed in 1..20 {
            let mut store = TraceStore::new(Retention::UNBOUNDED);
            for (n, row) in shuffled(checkout_rows(), seed).into_iter().enumerate() {
                store.add(row);
                assert_eq!(store.span_count(), n + 1);
                // Every intermediate state answers, and the headline
                // follows the spans received so far.
                let total: usize = store.views().map(|t| t.span_count()).sum();
                assert_eq!(total, n + 1);
            }
            assert_eq!(store.len(), 2);
            let t = store.get(TraceId(1)).unwrap().view();
            assert_eq!(t.span_count(), 5);
            assert_eq!(t.operation(), "GET /checkout");
            assert_eq!(t.duration_ms(), 100.0);
            assert_eq!(t.error_count(), 1);
            assert_eq!(t.parent_of(4), Some(3));
        }
    }

    #[test]
    fn a_late_root_changes_the_headline() {
        let mut store = TraceStore::new(Retention::UNBOUNDED);
        store.add(row(1, 2, Some(1), "child", "api", 5, 20));
        let t = store.get(TraceId(1)).unwrap().view().headline();
        assert_eq!((t.operation.as_str(), t.duration_ms), ("child", 15.0));
        assert_eq!(t.root_span_id, Some(SpanId(2)));
        store.add(row(1, 1, None, "root", "web", 0, 30));
        let t = store.get(TraceId(1)).unwrap().view().headline();
        assert_eq!((t.operation.as_str(), t.duration_ms), ("root", 30.0));
        assert_eq!((t.service.as_str(), t.span_count), ("web", 2));
    }

    #[test]
    fn built_at_once_or_span_by_span_alike() {
        let rows = shuffled(checkout_rows(), 3);
        let mut incremental = TraceStore::new(Retention::UNBOUNDED);
        incremental.extend(rows.clone());
        let (a, b) = rows.split_at(2);
        let at_once = TraceStore::from_parts(vec![a.to_vec(), Vec::new(), b.to_vec()]);
        assert_eq!(trace_ids(&at_once), trace_ids(&incremental));
        assert_eq!(at_once.span_count(), incremental.span_count());
        for (x, y) in at_once.views().zip(incremental.views()) {
            assert_eq!(x.headline(), y.headline());
            let xs: Vec<&SpanRow> = x.spans().collect();
            let ys: Vec<&SpanRow> = y.spans().collect();
            assert_eq!(xs, ys);
        }
        // Lookups and later additions work on a store built at once.
        let mut store = at_once;
        store.add(row(2, 10, Some(9), "late", "api", 200, 201));
        assert_eq!(store.get(TraceId(2)).unwrap().view().span_count(), 2);
        assert_eq!(store.get(TraceId(1)).unwrap().view().span_count(), 5);
        assert!(TraceStore::from_parts(Vec::new()).is_empty());
    }

    #[test]
    fn duplicates_are_held_but_counted_once() {
        let mut store: TraceStore = checkout_rows().into_iter().collect();
        store.extend(checkout_rows());
        assert_eq!(store.span_count(), 12);
        assert_eq!(store.duplicate_spans(), 6);
        assert_eq!(store.get(TraceId(1)).unwrap().view().span_count(), 5);
        assert_eq!(store.latency_stats(None, None).count, 6);
    }

    #[test]
    fn max_traces_evicts_the_oldest_first() {
        let mut store = TraceStore::new(Retention {
            max_traces: Some(3),
            max_spans: None,
        });
        for t in 1..=5u128 {
            store.add(row(t, 1, None, "root", "s", 0, 1));
            store.add(row(t, 2, Some(1), "child", "s", 0, 1));
        }
        assert_eq!(trace_ids(&store), [3, 4, 5]);
        assert_eq!(
            store.counters(),
            StoreCounters {
                traces_evicted: 2,
                spans_evicted: 4
            }
        );
        assert_eq!(store.span_count(), 6);
        assert!(store.get(TraceId(2)).is_none());
        assert_eq!(store.get(TraceId(4)).unwrap().view().span_count(), 2);
        // A span of an evicted trace starts it again, as the newest.
        store.add(row(1, 3, Some(1), "straggler", "s", 0, 1));
        assert_eq!(trace_ids(&store), [4, 5, 1]);
        assert_eq!(store.counters().traces_evicted, 3);
        assert_eq!(store.get(TraceId(1)).unwrap().view().span_count(), 1);
    }

    #[test]
    fn max_spans_evicts_whole_traces() {
        let mut store = TraceStore::new(Retention {
            max_traces: None,
            max_spans: Some(5),
        });
        store.extend(checkout_rows()); // 5 spans of trace 1, then trace 2
        assert_eq!(trace_ids(&store), [2]);
        assert_eq!(store.counters().spans_evicted, 5);
        assert_eq!(store.span_count(), 1);
        // Growing an old trace evicts the oldest, even the one growing.
        for span in 10..14 {
            store.add(row(3, span, None, "x", "s", 0, 1));
        }
        assert_eq!(trace_ids(&store), [2, 3]);
        store.add(row(2, 2, Some(9), "late", "s", 0, 1));
        assert_eq!(trace_ids(&store), [3]);
        assert_eq!(store.span_count(), 4);
        assert_eq!(
            store.counters(),
            StoreCounters {
                traces_evicted: 2,
                spans_evicted: 7
            }
        );
        // A trace bigger than the whole store cannot stay.
        let mut tiny = TraceStore::new(Retention {
            max_traces: None,
            max_spans: Some(0),
        });
        tiny.add(row(1, 1, None, "x", "s", 0, 1));
        assert!(tiny.is_empty());
        assert_eq!(tiny.counters().spans_evicted, 1);
    }

    #[test]
    fn lookups_survive_eviction() {
        let mut store = TraceStore::new(Retention {
            max_traces: Some(100),
            max_spans: None,
        });
        for t in 1..=1000u128 {
            store.add(row(t, 1, None, "root", "s", t as u64, t as u64 + 1));
            if t % 7 == 0 {
                store.add(row(t - 3, 2, Some(1), "late", "s", 0, 1));
            }
        }
        for t in 901..=1000u128 {
            let trace = store.get(TraceId(t)).unwrap();
            assert_eq!(trace.trace_id(), TraceId(t));
        }
        assert!(store.get(TraceId(900)).is_none());
        assert_eq!(store.len(), 100);
    }

    #[test]
    fn queries() {
        let mut rows = checkout_rows();
        rows.push(failed(row(3, 1, None, "late", "api", 500, 530), "E", "x"));
        let mut call = row(3, 2, Some(1), "GET users", "api", 501, 529);
        call.kind = "client".into();
        call.attributes
            .insert("peer.service".into(), "users".into());
        rows.push(call);
        let store = TraceStore::from_iter(shuffled(rows, 5));

        let ids = |traces: Vec<Cow<'_, Trace>>| -> Vec<u128> {
            traces.iter().map(|t| t.trace_id().0).collect()
        };
        assert_eq!(ids(store.slow_traces(30.0).unwrap()), [1, 3]);
        assert_eq!(ids(store.slow_traces(0.0).unwrap()), [1, 3, 2]);
        assert!(store.slow_traces(1000.0).unwrap().is_empty());
        assert_eq!(
            store.slow_traces(-1.0).unwrap_err().to_string(),
            "threshold_ms must be a non-negative number of milliseconds, not -1"
        );
        assert_eq!(ids(store.error_traces(None)), [3, 1]);
        assert_eq!(ids(store.error_traces(Some(1))), [3]);
        assert!(store.error_traces(Some(0)).is_empty());

        let found = store
            .find_traces(&TraceQuery {
                service: Some("api".into()),
                ..TraceQuery::default()
            })
            .unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].operation, "late");
        assert_eq!(found[1].span_count, 5);

        assert_eq!(store.get_trace(TraceId(1)).unwrap().view().span_count(), 5);
        assert!(store.get_trace(TraceId(77)).is_none());
        assert_eq!(store.critical_path(TraceId(1)).unwrap().len(), 9);
        assert!(store.critical_path(TraceId(77)).is_none());
        assert!(store
            .render_tree(TraceId(1))
            .unwrap()
            .contains("✗ error: TimeoutError"));

        assert_eq!(store.latency_stats(None, Some("orders")).count, 2);
        assert_eq!(store.latency_stats(Some("late"), None).max, 30.0);
        let edges: Vec<(String, String, u64)> = store
            .service_dependencies()
            .into_iter()
            .map(|e| (e.caller.into(), e.callee.into(), e.calls))
            .collect();
        assert_eq!(
            edges,
            [
                ("api".into(), "auth".into(), 1),
                ("api".into(), "orders".into(), 1),
                ("api".into(), "users".into(), 1),
                ("frontend".into(), "api".into(), 1),
            ]
        );
        assert_eq!(store.operations(&OperationQuery::default()).len(), 8);
        let api_ops = store.operations(&OperationQuery {
            service: Some("api".into()),
            limit: Some(1),
            ..OperationQuery::default()
        });
        assert_eq!(api_ops[0].operation, "POST /api/order");
        assert_eq!(api_ops.len(), 1);

        let groups = store.error_groups(None, None);
        assert_eq!(groups.len(), 2);
        assert_eq!(store.error_groups(None, Some(1)).len(), 1);
        let orders = store.error_groups(Some("orders"), None);
        assert_eq!(orders.len(), 1);
        assert_eq!(orders[0].message, "query <num> timed out");

        assert_eq!(
            store.services(),
            ["api", "auth", "frontend", "orders"].map(CompactString::from)
        );
        let names = store.span_names("api");
        let names: Vec<(&str, &str)> = names
            .iter()
            .map(|n| (n.name.as_str(), n.kind.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("GET users", "client"),
                ("POST /api/order", "internal"),
                ("late", "internal")
            ]
        );
        assert!(store.span_names("nobody").is_empty());
    }

    #[test]
    fn assembles_on_several_threads() {
        let mut store = TraceStore::new(Retention {
            max_traces: Some(50),
            max_spans: None,
        });
        // Evictions leave the ring split in two slices.
        for t in 1..=80u128 {
            store.add(row(t, 2, Some(1), "child", "s", 1, 2));
            store.add(row(t, 1, None, "root", "s", 0, 3));
        }
        for threads in [0, 1, 3, 64] {
            store.assemble(threads);
        }
        assert!(store
            .views()
            .all(|t| t.operation() == "root" && t.span_count() == 2));
        assert_eq!(store.len(), 50);
    }

    #[test]
    fn is_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<TraceStore>();
    }
}
