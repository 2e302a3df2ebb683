//! In-process analysis, kept by the writer thread as it drains spans: per
//! operation latency sketches (bounded memory whatever the span count, at
//! most 1% relative error), the service graph, and bounded stores of recent
//! and recent failed traces. It also decides when a trace is complete (its
//! local root finished) and produces the trace summary written to
//! `traces*.jsonl`. Traced code pays nothing for any of this.
//!
//! Spans are kept as the records they are; nothing is converted per span.
//! Queries (the query layer's `TraceQueries`, see `crate::query`) take a
//! snapshot of the kept records under the lock and convert it after.
//!
//! With tail rules on, spans of head-unsampled traces come here too and are
//! held with their trace until its local root finishes; then the rules
//! decide whether they are released for writing or discarded.

use std::collections::{BTreeMap, VecDeque};

use foldhash::HashMap;
use smallvec::SmallVec;

use compact_str::CompactString;

use crate::analysis::{callee, DependencyEdge, QuantileSketch};
use crate::attributes::AttrValue;
use crate::buffer::{prefetch_record, FinishedSpan};
use crate::ids::TraceId;
use crate::pool::RecordPool;
use crate::sampling::TailRules;
use crate::span::{SpanKind, Status};
use crate::trace_summary::TraceSummary;

/// Bounds of the trace stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveLimits {
    /// Completed traces kept for `get_trace`/`slow_traces` (and, separately,
    /// failed ones for `error_traces`).
    pub max_recent_traces: usize,
    /// Spans kept per trace; more are counted but not kept.
    pub max_spans_per_trace: usize,
    /// Traces whose root has not finished yet; the oldest are evicted.
    pub max_open_traces: usize,
}

impl Default for LiveLimits {
    fn default() -> Self {
        LiveLimits {
            max_recent_traces: 1000,
            max_spans_per_trace: 1000,
            max_open_traces: 100_000,
        }
    }
}

/// A trace's kept spans. Most local traces have one or two spans: those
/// stay inline, so completing a trace allocates nothing.
type TraceSpans = SmallVec<[FinishedSpan; 2]>;

#[derive(Default)]
struct OpenTrace {
    spans: TraceSpans,
    span_count: u64,
    error_count: u64,
    /// Unsampled spans that did not fit in `spans` (lost if the trace is kept).
    unsampled_not_kept: u64,
}

/// A completed trace kept for the queries, which find it by id and read
/// its spans (its summary went to the files; queries make their own).
struct ClosedTrace {
    trace_id: TraceId,
    spans: TraceSpans,
}

#[derive(Default)]
pub(crate) struct OperationSketch {
    pub(crate) durations: QuantileSketch,
    pub(crate) errors: u64,
    /// Bit `kind as u8` set for each span kind seen.
    pub(crate) kinds: u8,
}

/// Counters about what the stores had to let go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveCounters {
    pub traces_evicted: u64,
    pub open_traces_evicted: u64,
    pub spans_not_kept: u64,
    /// Spans of head-unsampled traces that the tail rules did not keep.
    pub spans_unsampled: u64,
    /// Spans of traces the tail rules kept, which could not be held.
    pub spans_lost_tail_limit: u64,
    /// Traces head sampling dropped and the tail rules kept.
    pub traces_kept_by_tail: u64,
}

pub struct LiveAnalysis {
    service: CompactString,
    limits: LiveLimits,
    tail: TailRules,
    operations: HashMap<CompactString, OperationSketch>,
    edges: BTreeMap<(CompactString, CompactString), u64>,
    open: HashMap<TraceId, OpenTrace>,
    open_order: VecDeque<TraceId>,
    recent: VecDeque<ClosedTrace>,
    recent_errors: VecDeque<ClosedTrace>,
    /// Traces completed lately: a straggler span (finished after its root,
    /// e.g. by a fire-and-forget task) must not open a trace that would
    /// never complete.
    closed: ClosedTraces,
    pub counters: LiveCounters,
}

impl LiveAnalysis {
    pub fn new(service: &str, limits: LiveLimits, tail: TailRules) -> Self {
        LiveAnalysis {
            service: service.into(),
            limits,
            tail,
            operations: HashMap::default(),
            edges: BTreeMap::new(),
            open: HashMap::default(),
            open_order: VecDeque::new(),
            recent: VecDeque::new(),
            recent_errors: VecDeque::new(),
            closed: ClosedTraces::new(limits.max_recent_traces.max(4096)),
            counters: LiveCounters::default(),
        }
    }

    /// Takes in one finished span. Returns the trace summary when the span
    /// is its trace's local root and the trace is recorded. Held unsampled
    /// spans that the tail rules keep are appended to `release` for writing
    /// (a sampled span is the caller's to write). Evicted spans go back to
    /// `pool`.
    pub fn observe(
        &mut self,
        span: &FinishedSpan,
        pool: &RecordPool,
        release: &mut Vec<FinishedSpan>,
    ) -> Option<TraceSummary> {
        let is_error = span.status == Status::Error;
        let op = match self.operations.get_mut(span.name.as_str()) {
            Some(op) => op,
            None => self.operations.entry(span.name.clone()).or_default(),
        };
        op.durations.add(span.duration_ms());
        op.errors += u64::from(is_error);
        op.kinds |= 1 << span.kind as u8;
        self.count_edges(span);

        if span.is_local_root {
            return self.complete(span, pool, release);
        }

        if let Some(recorded) = self.closed.get(span.trace_id) {
            // A straggler, finished after its root: follow the trace's fate.
            if !span.sampled {
                if recorded {
                    release.push(span.clone());
                } else {
                    self.counters.spans_unsampled += 1;
                    return None;
                }
            }
            if let Some(t) = self
                .recent
                .iter_mut()
                .rev()
                .find(|t| t.trace_id == span.trace_id)
            {
                if t.spans.len() < self.limits.max_spans_per_trace {
                    t.spans.push(span.clone());
                }
            }
            return None;
        }
        let max_spans = self.limits.max_spans_per_trace;
        let trace = match self.open.get_mut(&span.trace_id) {
            Some(t) => t,
            None => {
                self.open_order.push_back(span.trace_id);
                self.open.entry(span.trace_id).or_default()
            }
        };
        trace.span_count += 1;
        trace.error_count += u64::from(is_error);
        if trace.spans.len() < max_spans {
            trace.spans.push(span.clone());
        } else {
            self.counters.spans_not_kept += 1;
            trace.unsampled_not_kept += u64::from(!span.sampled);
        }
        self.evict_open(pool);
        None
    }

    /// The local root finished: summarise, decide, store.
    fn complete(
        &mut self,
        root: &FinishedSpan,
        pool: &RecordPool,
        release: &mut Vec<FinishedSpan>,
    ) -> Option<TraceSummary> {
        let open = self.open.remove(&root.trace_id).unwrap_or_default();
        let error_count = open.error_count + u64::from(root.status == Status::Error);
        let recorded = root.sampled || self.tail.keeps(error_count, root.duration_ms());
        self.closed.insert(root.trace_id, recorded);
        let mut spans = open.spans;
        spans.push(root.clone());
        if !recorded {
            self.counters.spans_unsampled += spans.len() as u64 + open.unsampled_not_kept;
            for span in spans {
                pool.recycle(span);
            }
            return None;
        }
        if !root.sampled {
            self.counters.traces_kept_by_tail += 1;
            self.counters.spans_lost_tail_limit += open.unsampled_not_kept;
        }
        release.extend(spans.iter().filter(|s| !s.sampled).cloned());
        let summary = TraceSummary {
            trace_id: root.trace_id,
            root_span_id: root.span_id,
            service: self.service.clone(),
            operation: root.name.clone(),
            start_ns: root.start_ns,
            duration_ns: root.duration_ns(),
            span_count: open.span_count + 1,
            error_count,
            status: if error_count > 0 { "error" } else { "ok" },
        };
        let closed = ClosedTrace {
            trace_id: root.trace_id,
            spans,
        };
        if error_count > 0 {
            let copy = ClosedTrace {
                trace_id: closed.trace_id,
                spans: closed.spans.clone(),
            };
            push_bounded(
                &mut self.recent_errors,
                copy,
                self.limits.max_recent_traces,
                pool,
                &mut self.counters,
            );
        }
        push_bounded(
            &mut self.recent,
            closed,
            self.limits.max_recent_traces,
            pool,
            &mut self.counters,
        );
        Some(summary)
    }

    fn count_edges(&mut self, span: &FinishedSpan) {
        if let Some(parent_service) = &span.parent_service {
            if *parent_service != self.service {
                *self
                    .edges
                    .entry((parent_service.clone(), self.service.clone()))
                    .or_default() += 1;
            }
        }
        // An outgoing call names its callee (OpenTelemetry conventions, the
        // same keys as the file analysis) when the callee is not traced here.
        if matches!(span.kind, SpanKind::Client | SpanKind::Producer) {
            let callee = callee(|key| match span.attributes.get(key) {
                Some(AttrValue::Str(text)) => Some(text.as_str()),
                _ => None,
            });
            if let Some(peer) = callee {
                if peer != self.service {
                    *self
                        .edges
                        .entry((self.service.clone(), peer.into()))
                        .or_default() += 1;
                }
            }
        }
    }

    /// The trace's local root will never arrive (traced code finished it
    /// but the buffer refused it, counted there): nothing can judge the
    /// trace any more, so its held unsampled spans are unsampled, as in
    /// [`Self::evict_open`], and later stragglers follow (counted too).
    /// Without this they would wait in `open` for a root that never comes,
    /// counted nowhere.
    pub fn abandon(&mut self, trace_id: TraceId, pool: &RecordPool) {
        if let Some(trace) = self.open.remove(&trace_id) {
            self.count_unkept(trace, pool);
        }
        self.closed.insert(trace_id, false);
    }

    /// At shutdown: every trace still open is abandoned (its root never
    /// finished, or was lost), so the final counters account for every
    /// span that finished.
    pub fn abandon_all(&mut self, pool: &RecordPool) {
        for (_, trace) in std::mem::take(&mut self.open) {
            self.count_unkept(trace, pool);
        }
        self.open_order.clear();
    }

    fn count_unkept(&mut self, trace: OpenTrace, pool: &RecordPool) {
        self.counters.spans_unsampled +=
            trace.spans.iter().filter(|s| !s.sampled).count() as u64 + trace.unsampled_not_kept;
        for span in trace.spans {
            pool.recycle(span);
        }
    }

    fn evict_open(&mut self, pool: &RecordPool) {
        while self.open.len() > self.limits.max_open_traces {
            let Some(oldest) = self.open_order.pop_front() else {
                break;
            };
            if let Some(trace) = self.open.remove(&oldest) {
                self.counters.open_traces_evicted += 1;
                // Held unsampled spans of a trace that never completed here
                // stay unsampled: nothing ever decided to keep them.
                self.count_unkept(trace, pool);
            }
        }
        // Ids of traces that completed stay in the order queue; prune them
        // before it outgrows the map by much.
        if self.open_order.len() > 2 * self.open.len() + 1024 {
            let open = &self.open;
            self.open_order.retain(|id| open.contains_key(id));
        }
    }

    /// The service of every span observed here.
    pub(crate) fn service(&self) -> &str {
        &self.service
    }

    /// Per-operation sketches over every span finished so far.
    pub(crate) fn operation_sketches(
        &self,
    ) -> impl Iterator<Item = (&CompactString, &OperationSketch)> + '_ {
        self.operations.iter()
    }

    /// Caller -> callee edges counted so far, sorted.
    pub(crate) fn edges(&self) -> Vec<DependencyEdge> {
        self.edges
            .iter()
            .map(|((caller, callee), calls)| DependencyEdge {
                caller: caller.clone(),
                callee: callee.clone(),
                calls: *calls,
            })
            .collect()
    }

    /// The spans of every completed trace kept (recent, or recent and
    /// failed), as shared records: cheap to take under the lock, converted
    /// by the query layer after it is released.
    pub(crate) fn kept_spans(&self) -> Vec<FinishedSpan> {
        let recent: std::collections::HashSet<TraceId> =
            self.recent.iter().map(|t| t.trace_id).collect();
        let only_failed = self
            .recent_errors
            .iter()
            .filter(|t| !recent.contains(&t.trace_id));
        self.recent
            .iter()
            .chain(only_failed)
            .flat_map(|t| t.spans.iter().cloned())
            .collect()
    }

    /// The spans held of one trace: completed and kept, or still open
    /// (its root has not finished).
    pub(crate) fn spans_of(&self, trace_id: TraceId) -> Vec<FinishedSpan> {
        let closed = |store: &VecDeque<ClosedTrace>| -> Vec<FinishedSpan> {
            store
                .iter()
                .filter(|t| t.trace_id == trace_id)
                .flat_map(|t| t.spans.iter().cloned())
                .collect()
        };
        let mut spans = closed(&self.recent);
        if spans.is_empty() {
            spans = closed(&self.recent_errors);
        }
        if let Some(open) = self.open.get(&trace_id) {
            spans.extend(open.spans.iter().cloned());
        }
        spans
    }

    pub fn open_traces(&self) -> usize {
        self.open.len()
    }
}

/// Traces completed lately, and whether each was recorded (sampled, or kept
/// by the tail rules). Direct-mapped: a trace takes the slot its id hashes
/// to, and a later trace hashing there takes it over. With slots for twice
/// `remember`, about 4 in 5 of the latest `remember` traces are remembered,
/// at one memory access per span instead of a map's insert, lookup and
/// eviction (a straggler of a forgotten trace is held as an open trace,
/// evicted and counted like any other).
struct ClosedTraces {
    slots: Box<[ClosedSlot]>,
    /// `64 - log2(slots.len())`: the hash's top bits pick the slot.
    shift: u32,
}

/// An empty slot holds trace id 0, which no trace has (W3C Trace Context).
#[derive(Clone, Copy, Default)]
struct ClosedSlot {
    low: u64,
    high: u64,
    recorded: bool,
}

impl ClosedTraces {
    fn new(remember: usize) -> Self {
        let len = (remember.max(1) * 2).next_power_of_two();
        ClosedTraces {
            slots: vec![ClosedSlot::default(); len].into_boxed_slice(),
            shift: 64 - len.trailing_zeros(),
        }
    }

    #[inline]
    fn slot(&self, trace_id: TraceId) -> (usize, u64, u64) {
        let (low, high) = (trace_id.0 as u64, (trace_id.0 >> 64) as u64);
        // Fibonacci hashing: ids from other tracers need not be random in
        // any particular bits.
        let hash = (low ^ high.rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ((hash >> self.shift) as usize, low, high)
    }

    #[inline]
    fn get(&self, trace_id: TraceId) -> Option<bool> {
        let (index, low, high) = self.slot(trace_id);
        let slot = &self.slots[index];
        (slot.low == low && slot.high == high && trace_id.0 != 0).then_some(slot.recorded)
    }

    #[inline]
    fn insert(&mut self, trace_id: TraceId, recorded: bool) {
        let (index, low, high) = self.slot(trace_id);
        self.slots[index] = ClosedSlot {
            low,
            high,
            recorded,
        };
    }
}

fn push_bounded(
    store: &mut VecDeque<ClosedTrace>,
    trace: ClosedTrace,
    capacity: usize,
    pool: &RecordPool,
    counters: &mut LiveCounters,
) {
    if capacity == 0 {
        return;
    }
    while store.len() >= capacity {
        if let Some(old) = store.pop_front() {
            counters.traces_evicted += 1;
            for span in old.spans {
                pool.recycle(span);
            }
        }
    }
    // The next trace to go: its records were last touched on the traced
    // thread's core (its span objects let go of them). Loading them now
    // overlaps the wait with the spans in between.
    if store.len() + 1 >= capacity {
        if let Some(next) = store.front() {
            next.spans.iter().for_each(|span| prefetch_record(span));
        }
    }
    store.push_back(trace);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::Limits;
    use crate::ids::SpanId;
    use crate::query::TraceQueries;
    use crate::span::SpanRecord;

    #[test]
    fn closed_traces_remember_the_latest_and_their_fate() {
        let mut closed = ClosedTraces::new(4096);
        assert_eq!(closed.get(TraceId(0)), None, "the empty slot's id");
        for i in 1..=100_000u128 {
            // Sequential ids too: another tracer's need not be random.
            closed.insert(TraceId(i), i % 3 == 0);
        }
        assert_eq!(closed.get(TraceId(0)), None);
        assert_eq!(closed.get(TraceId(100_001)), None);
        let latest = (100_000 - 4095..=100_000u128)
            .filter(|&i| closed.get(TraceId(i)) == Some(i % 3 == 0))
            .count();
        // Slots for twice as many: hash collisions forget a few.
        assert!(latest > 3000, "{latest} of the latest 4096 remembered");
        let oldest = (1..=4096u128)
            .filter(|&i| closed.get(TraceId(i)).is_some())
            .count();
        assert_eq!(oldest, 0, "long since taken over");
        closed.insert(TraceId(7 << 64), true);
        assert_eq!(closed.get(TraceId(7 << 64)), Some(true));
        assert_eq!(closed.get(TraceId(7)), None, "the high half counts");
    }

    fn span(trace: u128, id: u64, parent: Option<u64>, ms: u64, error: bool) -> FinishedSpan {
        let mut r = SpanRecord::new(TraceId(trace), parent.map(SpanId), "op".into());
        r.span_id = SpanId(id);
        r.start_mono = 1;
        r.end_mono = 1 + ms * 1_000_000;
        if error {
            r.status = Status::Error;
        }
        triomphe::Arc::new(r)
    }

    #[test]
    fn summaries_count_spans_and_errors() {
        let pool = RecordPool::new(16);
        let mut live = LiveAnalysis::new("svc", LiveLimits::default(), TailRules::default());
        assert!(live
            .observe(&span(7, 2, Some(1), 3, true), &pool, &mut Vec::new())
            .is_none());
        assert!(live
            .observe(&span(7, 3, Some(1), 4, false), &pool, &mut Vec::new())
            .is_none());
        assert_eq!(live.open_traces(), 1);
        let summary = live
            .observe(&span(7, 1, None, 10, false), &pool, &mut Vec::new())
            .unwrap();
        assert_eq!(
            (summary.span_count, summary.error_count, summary.status),
            (3, 1, "error")
        );
        assert_eq!(summary.duration_ns, 10_000_000);
        assert_eq!(live.open_traces(), 0);
        // A straggler joins the completed trace instead of opening a new one.
        assert!(live
            .observe(&span(7, 4, Some(1), 1, false), &pool, &mut Vec::new())
            .is_none());
        assert_eq!(live.open_traces(), 0);
        assert_eq!(live.get_trace(TraceId(7)).unwrap().view().span_count(), 4);
        assert_eq!(live.error_traces(None).len(), 1);
        assert_eq!(live.slow_traces(10.0).unwrap().len(), 1);
        assert_eq!(live.slow_traces(10.5).unwrap().len(), 0);
        let stats = live.latency_stats(Some("op"), None);
        assert_eq!(stats.count, 4);
        assert!((stats.max - 10.0).abs() / 10.0 <= 0.01);
    }

    #[test]
    fn stores_are_bounded_and_evictions_counted() {
        let pool = RecordPool::new(16);
        let limits = LiveLimits {
            max_recent_traces: 3,
            max_spans_per_trace: 2,
            max_open_traces: 2,
        };
        let mut live = LiveAnalysis::new("svc", limits, TailRules::default());
        for t in 1..=10u128 {
            live.observe(&span(t, 1, None, 1, false), &pool, &mut Vec::new());
        }
        assert_eq!(live.counters.traces_evicted, 7);
        assert!(live.get_trace(TraceId(1)).is_none());
        assert!(live.get_trace(TraceId(10)).is_some());
        for i in 0..5 {
            live.observe(
                &span(100, 10 + i, Some(1), 1, false),
                &pool,
                &mut Vec::new(),
            );
        }
        assert_eq!(live.counters.spans_not_kept, 3);
        for t in 200..205u128 {
            live.observe(&span(t, 2, Some(1), 1, false), &pool, &mut Vec::new());
        }
        assert_eq!(live.open_traces(), 2);
        assert_eq!(live.counters.open_traces_evicted, 4);
    }

    fn unsampled(trace: u128, id: u64, parent: Option<u64>, ms: u64, error: bool) -> FinishedSpan {
        let mut r = (*span(trace, id, parent, ms, error)).clone();
        r.sampled = false;
        triomphe::Arc::new(r)
    }

    #[test]
    fn tail_rules_keep_failed_and_slow_unsampled_traces() {
        let pool = RecordPool::new(16);
        let rules = TailRules {
            keep_errors: true,
            keep_slower_than_ms: Some(100.0),
        };
        let mut live = LiveAnalysis::new("svc", LiveLimits::default(), rules);
        let mut out = Vec::new();
        // Fast, fine: discarded.
        live.observe(&unsampled(1, 2, Some(1), 1, false), &pool, &mut out);
        assert!(live
            .observe(&unsampled(1, 1, None, 5, false), &pool, &mut out)
            .is_none());
        assert!(out.is_empty());
        assert_eq!(live.counters.spans_unsampled, 2);
        // A failing child: kept, both spans released for writing.
        live.observe(&unsampled(2, 2, Some(1), 1, true), &pool, &mut out);
        assert!(out.is_empty(), "held until the root decides");
        let summary = live.observe(&unsampled(2, 1, None, 5, false), &pool, &mut out);
        assert_eq!(summary.unwrap().error_count, 1);
        assert_eq!(out.len(), 2);
        // Slow: kept; a straggler of the kept trace is released too.
        out.clear();
        live.observe(&unsampled(3, 1, None, 150, false), &pool, &mut out);
        live.observe(&unsampled(3, 2, Some(1), 1, false), &pool, &mut out);
        assert_eq!(out.len(), 2);
        // A straggler of a discarded trace is discarded.
        out.clear();
        live.observe(&unsampled(1, 3, Some(1), 1, false), &pool, &mut out);
        assert!(out.is_empty());
        assert_eq!(live.counters.spans_unsampled, 3);
        assert_eq!(live.counters.traces_kept_by_tail, 2);
    }

    #[test]
    fn edges_from_parent_service_and_peer_service() {
        let pool = RecordPool::new(4);
        let mut live = LiveAnalysis::new("api", LiveLimits::default(), TailRules::default());
        let mut r = SpanRecord::new(TraceId(1), Some(SpanId(9)), "handle".into());
        r.parent_service = Some("frontend".into());
        live.observe(&triomphe::Arc::new(r), &pool, &mut Vec::new());
        let mut c = SpanRecord::new(TraceId(1), Some(SpanId(9)), "call".into());
        c.kind = SpanKind::Client;
        c.set_attribute(
            "peer.service".into(),
            AttrValue::Str("db".into()),
            &Limits::default(),
        );
        live.observe(&triomphe::Arc::new(c.clone()), &pool, &mut Vec::new());
        live.observe(&triomphe::Arc::new(c), &pool, &mut Vec::new());
        // Without peer.service, the address called names the callee.
        let mut http = SpanRecord::new(TraceId(1), Some(SpanId(9)), "GET".into());
        http.kind = SpanKind::Client;
        http.set_attribute(
            "server.address".into(),
            AttrValue::Str("search.internal".into()),
            &Limits::default(),
        );
        live.observe(&triomphe::Arc::new(http), &pool, &mut Vec::new());
        let edges = live.service_dependencies();
        assert_eq!(edges.len(), 3);
        assert_eq!(
            (
                edges[0].caller.as_str(),
                edges[0].callee.as_str(),
                edges[0].calls
            ),
            ("api", "db", 2)
        );
        assert_eq!(
            (
                edges[2].caller.as_str(),
                edges[2].callee.as_str(),
                edges[2].calls
            ),
            ("frontend", "api", 1)
        );
        assert_eq!(
            (edges[1].caller.as_str(), edges[1].callee.as_str()),
            ("api", "search.internal")
        );
    }
}
