//! The in-process tracer's answers to [`TraceQueries`].
//!
//! Trace questions (search, get, error groups) are answered by the same
//! [`TraceStore`] code as files, over a snapshot of the traces
//! [`LiveAnalysis`] keeps: the writer thread stores records as they are,
//! and they become rows only here, at query time. Taking the snapshot
//! ([`LiveAnalysis::trace_snapshot`]) only clones shared pointers, so a
//! caller holding the writer's lock can release it before the conversion.
//!
//! Statistics (latency, operations, dependencies) come from the sketches
//! and counters kept over every span finished, not only the kept traces;
//! percentiles are within 1% (the files' are exact).

use std::borrow::Cow;

use compact_str::CompactString;

use crate::analysis::{
    DependencyEdge, ErrorGroup, LatencyStats, OperationStats, QuantileSketch, SpanRow, Trace,
    TraceHeadline,
};
use crate::buffer::FinishedSpan;
use crate::ids::TraceId;
use crate::live::LiveAnalysis;
use crate::span::SpanKind;

use super::operation_query::OperationQuery;
use super::store::TraceStore;
use super::trace_queries::{SpanName, TraceQueries};
use super::trace_query::{QueryError, TraceQuery};

/// Span kinds by their `as u8` value (the bit `LiveAnalysis` sets per kind).
const KINDS: [SpanKind; 5] = [
    SpanKind::Internal,
    SpanKind::Server,
    SpanKind::Client,
    SpanKind::Producer,
    SpanKind::Consumer,
];

/// The completed traces a [`LiveAnalysis`] keeps, as shared records.
pub struct LiveTraces {
    service: CompactString,
    spans: Vec<FinishedSpan>,
}

impl LiveTraces {
    /// The traces as rows in a store (no retention: it holds a snapshot).
    pub fn into_store(self) -> TraceStore {
        let service = self.service;
        self.spans
            .iter()
            .map(|span| SpanRow::from_record(span, &service))
            .collect()
    }
}

impl LiveAnalysis {
    /// The kept traces, cheap to take (pointer copies) while holding the
    /// lock the writer thread needs; convert with [`LiveTraces::into_store`]
    /// after releasing it.
    pub fn trace_snapshot(&self) -> LiveTraces {
        LiveTraces {
            service: self.service().into(),
            spans: self.kept_spans(),
        }
    }

    fn owned<'a>(traces: Vec<Cow<'_, Trace>>) -> Vec<Cow<'a, Trace>> {
        traces
            .into_iter()
            .map(|t| Cow::Owned(t.into_owned()))
            .collect()
    }
}

/// Everything under the caller's lock; the Python binding instead takes
/// [`LiveAnalysis::trace_snapshot`] for trace questions and queries the
/// store after releasing it.
impl TraceQueries for LiveAnalysis {
    fn find_traces(&self, query: &TraceQuery) -> Result<Vec<TraceHeadline>, QueryError> {
        self.trace_snapshot().into_store().find_traces(query)
    }

    fn matching_traces(&self, query: &TraceQuery) -> Result<Vec<Cow<'_, Trace>>, QueryError> {
        let store = self.trace_snapshot().into_store();
        store.matching_traces(query).map(Self::owned)
    }

    /// A completed trace kept here, or one whose root has not finished
    /// yet (its spans so far).
    fn get_trace(&self, trace_id: TraceId) -> Option<Cow<'_, Trace>> {
        let service = self.service();
        let mut rows = self
            .spans_of(trace_id)
            .into_iter()
            .map(|span| SpanRow::from_record(&span, service));
        let mut trace = Trace::new(rows.next()?);
        rows.for_each(|row| trace.push(row));
        Some(Cow::Owned(trace))
    }

    /// Over every span finished here; within 1%.
    fn latency_stats(&self, operation: Option<&str>, service: Option<&str>) -> LatencyStats {
        if service.is_some_and(|s| s != self.service()) {
            return LatencyStats::default();
        }
        let mut merged = QuantileSketch::new();
        for (name, op) in self.operation_sketches() {
            if operation.is_none_or(|o| o == name) {
                // Same accuracy everywhere: merging cannot fail.
                let _ = merged.merge(&op.durations);
            }
        }
        merged.stats()
    }

    /// Over every span finished here; percentiles within 1%, no self time.
    fn operations(&self, query: &OperationQuery) -> Vec<OperationStats> {
        let ops = self
            .operation_sketches()
            .map(|(name, op)| {
                OperationStats::new(
                    self.service().into(),
                    name.clone(),
                    op.durations.stats(),
                    op.errors,
                    op.durations.sum(),
                )
            })
            .collect();
        query.apply(ops)
    }

    /// Counted over every span finished here: spans whose parent belongs to
    /// another service traced in this process, and client spans naming
    /// their callee in `peer.service`.
    fn service_dependencies(&self) -> Vec<DependencyEdge> {
        self.edges()
    }

    fn error_groups(&self, service: Option<&str>, limit: Option<usize>) -> Vec<ErrorGroup> {
        self.trace_snapshot()
            .into_store()
            .error_groups(service, limit)
    }

    fn services(&self) -> Vec<CompactString> {
        match self.operation_sketches().next() {
            Some(_) => vec![self.service().into()],
            None => Vec::new(),
        }
    }

    fn span_names(&self, service: &str) -> Vec<SpanName> {
        if service != self.service() {
            return Vec::new();
        }
        let mut names: Vec<SpanName> = self
            .operation_sketches()
            .flat_map(|(name, op)| {
                KINDS
                    .iter()
                    .filter(move |&&kind| op.kinds & (1 << kind as u8) != 0)
                    .map(move |kind| SpanName {
                        name: name.clone(),
                        kind: kind.as_str().into(),
                    })
            })
            .collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::{AttrValue, Limits};
    use crate::ids::SpanId;
    use crate::live::LiveLimits;
    use crate::pool::RecordPool;
    use crate::sampling::TailRules;
    use crate::span::{SpanRecord, Status};

    struct Spans {
        live: LiveAnalysis,
        pool: RecordPool,
    }

    impl Spans {
        fn new(limits: LiveLimits) -> Spans {
            Spans {
                live: LiveAnalysis::new("shop", limits, TailRules::default()),
                pool: RecordPool::new(64),
            }
        }

        /// A span `start_ms` after an epoch base, lasting `ms`.
        #[allow(clippy::too_many_arguments)]
        fn finish(
            &mut self,
            trace: u128,
            id: u64,
            parent: Option<u64>,
            name: &str,
            kind: SpanKind,
            start_ms: u64,
            ms: u64,
            error: bool,
        ) {
            let mut r = SpanRecord::new(TraceId(trace), parent.map(SpanId), name.into());
            r.span_id = SpanId(id);
            r.kind = kind;
            r.start_ns = 1_700_000_000_000_000_000 + start_ms * 1_000_000;
            r.start_mono = 1;
            r.end_mono = 1 + ms * 1_000_000;
            if error {
                r.status = Status::Error;
            }
            self.live
                .observe(&triomphe::Arc::new(r), &self.pool, &mut Vec::new());
        }
    }

    fn ids(traces: &[Cow<'_, Trace>]) -> Vec<u128> {
        traces.iter().map(|t| t.trace_id().0).collect()
    }

    #[test]
    fn kinds_table_matches_the_enum() {
        for (i, kind) in KINDS.iter().enumerate() {
            assert_eq!(*kind as usize, i);
        }
    }

    #[test]
    fn trace_questions_go_through_the_store_rules() {
        let mut s = Spans::new(LiveLimits::default());
        // Trace 1: slow, fine. Trace 2: failed, fast. Trace 3: as slow as
        // 1, later. Trace 4: failed, later than 2.
        s.finish(1, 2, Some(1), "db", SpanKind::Client, 1, 10, false);
        s.finish(1, 1, None, "GET /a", SpanKind::Server, 0, 100, false);
        s.finish(2, 1, None, "GET /b", SpanKind::Server, 200, 5, true);
        s.finish(3, 1, None, "GET /a", SpanKind::Server, 300, 100, false);
        s.finish(4, 2, Some(1), "db", SpanKind::Client, 401, 1, true);
        s.finish(4, 1, None, "GET /c", SpanKind::Server, 400, 3, false);
        let live = &s.live;

        assert_eq!(ids(&live.slow_traces(50.0).unwrap()), [3, 1]);
        assert_eq!(ids(&live.slow_traces(0.0).unwrap()), [3, 1, 2, 4]);
        assert!(live.slow_traces(-1.0).is_err());
        assert_eq!(ids(&live.error_traces(None)), [4, 2]);
        assert_eq!(ids(&live.error_traces(Some(1))), [4]);
        let found = live
            .find_traces(&TraceQuery {
                operation: Some("db".into()),
                ..TraceQuery::default()
            })
            .unwrap();
        let found: Vec<u128> = found.iter().map(|t| t.trace_id.0).collect();
        assert_eq!(found, [4, 1]);

        let t = live.get_trace(TraceId(1)).unwrap();
        let v = t.view();
        assert_eq!(
            (v.operation(), v.span_count(), v.service()),
            ("GET /a", 2, "shop")
        );
        assert_eq!(live.critical_path(TraceId(1)).unwrap().len(), 3);
        assert!(live.render_tree(TraceId(1)).unwrap().contains("db (shop)"));
        assert!(live.get_trace(TraceId(9)).is_none());

        let groups = live.error_groups(None, None);
        assert_eq!(groups.len(), 2);
        assert_eq!(live.error_groups(Some("other"), None).len(), 0);
    }

    #[test]
    fn open_traces_can_be_fetched_but_not_found() {
        let mut s = Spans::new(LiveLimits::default());
        s.finish(5, 2, Some(1), "child", SpanKind::Internal, 0, 1, false);
        let t = s.live.get_trace(TraceId(5)).unwrap();
        assert_eq!(t.view().span_count(), 1);
        assert!(s
            .live
            .find_traces(&TraceQuery::default())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn failed_traces_outlive_the_recent_store() {
        let mut s = Spans::new(LiveLimits {
            max_recent_traces: 2,
            ..LiveLimits::default()
        });
        s.finish(1, 1, None, "failed", SpanKind::Server, 0, 1, true);
        for t in 2..=5 {
            s.finish(t, 1, None, "fine", SpanKind::Server, t as u64, 1, false);
        }
        assert_eq!(ids(&s.live.error_traces(None)), [1]);
        assert_eq!(ids(&s.live.slow_traces(0.0).unwrap()), [5, 4, 1]);
        assert!(s.live.get_trace(TraceId(1)).is_some());
        assert!(s.live.get_trace(TraceId(2)).is_none());
        // A failed trace that is also recent is found once.
        s.finish(6, 1, None, "failed", SpanKind::Server, 6, 1, true);
        assert_eq!(ids(&s.live.error_traces(None)), [6, 1]);
        assert_eq!(s.live.get_trace(TraceId(6)).unwrap().view().span_count(), 1);
    }

    #[test]
    fn statistics_cover_every_span() {
        let mut s = Spans::new(LiveLimits {
            max_recent_traces: 1,
            ..LiveLimits::default()
        });
        for t in 1..=10u128 {
            s.finish(t, 2, Some(1), "call", SpanKind::Client, 0, 2, t == 3);
            s.finish(t, 1, None, "handle", SpanKind::Server, 0, 10, false);
        }
        let mut c = SpanRecord::new(TraceId(11), Some(SpanId(1)), "call".into());
        c.kind = SpanKind::Producer;
        c.set_attribute(
            "peer.service".into(),
            AttrValue::Str("queue".into()),
            &Limits::default(),
        );
        s.live
            .observe(&triomphe::Arc::new(c), &s.pool, &mut Vec::new());
        let live = &s.live;
        assert_eq!(live.latency_stats(None, None).count, 21);
        assert_eq!(live.latency_stats(Some("call"), Some("shop")).count, 11);
        assert_eq!(live.latency_stats(None, Some("other")).count, 0);
        let ops = live.operations(&OperationQuery::default());
        let table: Vec<(&str, u64, u64)> = ops
            .iter()
            .map(|o| (o.operation.as_str(), o.count, o.error_count))
            .collect();
        assert_eq!(table, [("handle", 10, 0), ("call", 11, 1)]);
        assert!((ops[0].total_ms - 100.0).abs() < 1e-9);
        assert_eq!(ops[0].self_ms, None);
        let edges = live.service_dependencies();
        assert_eq!((edges[0].callee.as_str(), edges[0].calls), ("queue", 1));
        assert_eq!(live.services(), [CompactString::from("shop")]);
        let names: Vec<(String, String)> = live
            .span_names("shop")
            .into_iter()
            .map(|n| (n.name.into(), n.kind.into()))
            .collect();
        assert_eq!(
            names,
            [
                ("call".into(), "client".into()),
                ("call".into(), "producer".into()),
                ("handle".into(), "server".into()),
            ]
        );
        assert!(live.span_names("other").is_empty());
        let empty = LiveAnalysis::new("x", LiveLimits::default(), TailRules::default());
        assert!(empty.services().is_empty());
    }
}
