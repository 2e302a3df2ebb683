//! [`TraceQueries`]: the questions every source of traces answers, one
//! interface for the files (`Analysis`, and the server's live
//! [`super::TraceStore`]) and for the in-process tracer (`LiveAnalysis`).
//!
//! The rules that must not differ between sources live here once, as
//! provided methods: `slow_traces` is slowest first, `error_traces` most
//! recent first, a negative or NaN threshold is an error.

use std::borrow::Cow;

use compact_str::CompactString;
use serde::Serialize;

use crate::analysis::{
    critical_path, render_tree, DependencyEdge, ErrorGroup, LatencyStats, OperationStats,
    PathSegment, Trace, TraceHeadline,
};
use crate::ids::TraceId;

use super::operation_query::OperationQuery;
use super::trace_query::{check_duration, QueryError, TraceQuery};

/// An operation name as a service uses it, with the span kind it has
/// (Jaeger lists a name once per kind).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SpanName {
    pub name: CompactString,
    pub kind: CompactString,
}

/// Typed questions over a set of traces. Results that hold traces are
/// `Cow`s: a store hands out its own, a source that assembles traces at
/// query time hands out owned ones.
pub trait TraceQueries {
    /// Headline fields (no spans) of the traces `query` matches, in its
    /// order, at most its limit.
    fn find_traces(&self, query: &TraceQuery) -> Result<Vec<TraceHeadline>, QueryError>;

    /// The traces `query` matches, with their spans.
    fn matching_traces(&self, query: &TraceQuery) -> Result<Vec<Cow<'_, Trace>>, QueryError>;

    /// One trace, if any of its spans is here.
    fn get_trace(&self, trace_id: TraceId) -> Option<Cow<'_, Trace>>;

    /// Latency of span durations, optionally of one operation (span name)
    /// and/or one service.
    fn latency_stats(&self, operation: Option<&str>, service: Option<&str>) -> LatencyStats;

    /// The per-(service, operation) table.
    fn operations(&self, query: &OperationQuery) -> Vec<OperationStats>;

    /// Calls between services, sorted by caller then callee.
    fn service_dependencies(&self) -> Vec<DependencyEdge>;

    /// Failed spans grouped by fingerprint, most frequent first; only
    /// `service`'s if given, at most `limit` groups.
    fn error_groups(&self, service: Option<&str>, limit: Option<usize>) -> Vec<ErrorGroup>;

    /// Every service with a span here, sorted.
    fn services(&self) -> Vec<CompactString>;

    /// The operation names `service`'s spans have, with their kinds, sorted.
    fn span_names(&self, service: &str) -> Vec<SpanName>;

    /// Traces at least `threshold_ms` long, slowest first (ties: most
    /// recent first). A negative or NaN threshold is an error.
    fn slow_traces(&self, threshold_ms: f64) -> Result<Vec<Cow<'_, Trace>>, QueryError> {
        check_duration("threshold_ms", threshold_ms)?;
        self.matching_traces(&TraceQuery::slower_than(threshold_ms))
    }

    /// Traces with a failed span, most recent first, at most `limit`.
    fn error_traces(&self, limit: Option<usize>) -> Vec<Cow<'_, Trace>> {
        // Cannot fail: the query has no duration or time criteria.
        self.matching_traces(&TraceQuery::failed(limit))
            .unwrap_or_default()
    }

    /// The critical path of a trace; `None` if there is no such trace.
    fn critical_path(&self, trace_id: TraceId) -> Option<Vec<PathSegment>> {
        self.get_trace(trace_id).map(|t| critical_path(&t.view()))
    }

    /// A trace drawn as a text tree; `None` if there is no such trace.
    fn render_tree(&self, trace_id: TraceId) -> Option<String> {
        self.get_trace(trace_id).map(|t| render_tree(&t.view()))
    }
}
