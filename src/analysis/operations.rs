//! Per-operation statistics: how often each (service, operation) ran, how
//! often it failed, its exact latency percentiles, and where the time went.
//!
//! Self time is a span's duration minus the *union* of its direct children's
//! intervals (each clamped to the span's own interval), never below zero.
//! The union, not the sum: three parallel 10 ms calls under a 12 ms span
//! leave it 2 ms of self time, not zero after clamping a negative -18 ms.
//!
//! An operation's time share is its total self time divided by the total
//! duration of the traces it appears in (each trace counted once): the
//! fraction of those requests' time spent in the operation's own code.

use std::collections::HashMap;

use compact_str::CompactString;
use serde::Serialize;

use super::percentile::LatencyStats;
use super::record::SpanRow;
use super::traces::TraceView;

/// Statistics of one (service, operation); durations in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OperationStats {
    pub service: CompactString,
    pub operation: CompactString,
    pub count: u64,
    pub error_count: u64,
    /// `error_count / count`, in [0, 1].
    pub error_rate: f64,
    pub min: f64,
    pub max: f64,
    pub avg: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    /// Sum of the spans' durations.
    pub total_ms: f64,
    /// Sum of the spans' self times; `None` where traces were not assembled
    /// (the streaming [`super::StatsOnly`] path).
    pub self_ms: Option<f64>,
    /// `self_ms` over the total duration of the traces the operation is in.
    pub time_share: Option<f64>,
}

impl OperationStats {
    /// Assembles the record from its parts.
    pub fn new(
        service: CompactString,
        operation: CompactString,
        latency: LatencyStats,
        error_count: u64,
        total_ms: f64,
    ) -> Self {
        let error_rate = if latency.count == 0 {
            0.0
        } else {
            error_count as f64 / latency.count as f64
        };
        OperationStats {
            service,
            operation,
            count: latency.count,
            error_count,
            error_rate,
            min: latency.min,
            max: latency.max,
            avg: latency.avg,
            p50: latency.p50,
            p95: latency.p95,
            p99: latency.p99,
            total_ms,
            self_ms: None,
            time_share: None,
        }
    }

    /// The latency part of the record.
    pub fn latency(&self) -> LatencyStats {
        LatencyStats {
            count: self.count,
            min: self.min,
            max: self.max,
            avg: self.avg,
            p50: self.p50,
            p95: self.p95,
            p99: self.p99,
        }
    }
}

/// Orders operations as reports show them: most total time first.
pub(crate) fn sort_operations(ops: &mut [OperationStats]) {
    ops.sort_by(|a, b| {
        b.total_ms
            .total_cmp(&a.total_ms)
            .then_with(|| a.service.cmp(&b.service))
            .then_with(|| a.operation.cmp(&b.operation))
    });
}

#[derive(Default)]
struct Accumulator {
    durations: Vec<f64>,
    errors: u64,
    self_ms: f64,
    trace_ms: f64,
    /// Index of the last trace whose duration was added to `trace_ms`.
    last_trace: Option<usize>,
}

/// Statistics of every (service, operation) in `traces`, most total time
/// first, with exact nearest-rank percentiles, self time and time share.
pub(crate) fn operation_stats<'a>(
    traces: impl IntoIterator<Item = TraceView<'a>>,
) -> Vec<OperationStats> {
    let mut by_op: HashMap<(&str, &str), Accumulator> = HashMap::new();
    for (trace_index, trace) in traces.into_iter().enumerate() {
        let self_times = self_times_ms(&trace);
        for (position, span) in trace.spans().enumerate() {
            let acc = by_op
                .entry((span.service.as_str(), span.name.as_str()))
                .or_default();
            acc.durations.push(span.duration_ms);
            acc.errors += u64::from(span.is_error());
            acc.self_ms += self_times[position];
            if acc.last_trace != Some(trace_index) {
                acc.last_trace = Some(trace_index);
                acc.trace_ms += trace.duration_ms();
            }
        }
    }
    let mut ops: Vec<OperationStats> = by_op
        .into_iter()
        .map(|((service, operation), mut acc)| {
            let total_ms = acc.durations.iter().sum();
            let latency = LatencyStats::from_values(&mut acc.durations);
            let mut op = OperationStats::new(
                service.into(),
                operation.into(),
                latency,
                acc.errors,
                total_ms,
            );
            op.self_ms = Some(acc.self_ms);
            op.time_share = Some(if acc.trace_ms > 0.0 {
                acc.self_ms / acc.trace_ms
            } else {
                0.0
            });
            op
        })
        .collect();
    sort_operations(&mut ops);
    ops
}

/// Each span's self time in ms, by position: its duration minus the union
/// of its direct children's intervals clamped to its own, at least zero.
pub(crate) fn self_times_ms(trace: &TraceView<'_>) -> Vec<f64> {
    let children = trace.children();
    (0..trace.span_count())
        .map(|position| {
            let span = trace.span(position);
            let covered_ns =
                covered_by_children(span, children[position].iter().map(|&c| trace.span(c)));
            (span.duration_ms - covered_ns as f64 / 1e6).max(0.0)
        })
        .collect()
}

/// Nanoseconds of `parent`'s interval covered by at least one of `children`
/// (which come by start time).
fn covered_by_children<'a>(parent: &SpanRow, children: impl Iterator<Item = &'a SpanRow>) -> u64 {
    let mut covered = 0;
    let mut current: Option<(u64, u64)> = None;
    for child in children {
        let start = child.start_ns.clamp(parent.start_ns, parent.end_ns);
        let end = child.end_ns.clamp(parent.start_ns, parent.end_ns);
        if end <= start {
            continue;
        }
        current = match current {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                covered += e - s;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    if let Some((s, e)) = current {
        covered += e - s;
    }
    covered
}

/// Exact latency stats over span durations, optionally only of one
/// operation (span name) and/or one service.
pub(crate) fn latency_stats<'a>(
    spans: impl IntoIterator<Item = &'a SpanRow>,
    operation: Option<&str>,
    service: Option<&str>,
) -> LatencyStats {
    let mut durations: Vec<f64> = spans
        .into_iter()
        .filter(|r| operation.is_none_or(|op| r.name == op))
        .filter(|r| service.is_none_or(|svc| r.service == svc))
        .map(|r| r.duration_ms)
        .collect();
    LatencyStats::from_values(&mut durations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::traces::tests::{checkout_rows, failed, row, shuffled};
    use crate::query::TraceStore;

    fn find<'a>(ops: &'a [OperationStats], service: &str, name: &str) -> &'a OperationStats {
        ops.iter()
            .find(|o| o.service == service && o.operation == name)
            .unwrap()
    }

    #[test]
    fn self_time_subtracts_the_union_of_children() {
        // parent 0..100 with children 10..40 and 30..60 (overlapping) and
        // 90..130 (runs past the parent's end): covered 10..60 and 90..100.
        let rows = vec![
            row(1, 1, None, "parent", "s", 0, 100),
            row(1, 2, Some(1), "a", "s", 10, 40),
            row(1, 3, Some(1), "b", "s", 30, 60),
            row(1, 4, Some(1), "c", "s", 90, 130),
            row(1, 5, Some(2), "grandchild", "s", 0, 40),
        ];
        let set = TraceStore::from_iter(rows);
        let t = set.get(crate::ids::TraceId(1)).unwrap().view();
        let self_ms = self_times_ms(&t);
        // Positions by start: parent(0) grandchild(0), a(10), b(30), c(90).
        let by_name = |name: &str| {
            let p = t.spans().position(|s| s.name == name).unwrap();
            self_ms[p]
        };
        assert_eq!(by_name("parent"), 40.0);
        assert_eq!(by_name("a"), 0.0); // grandchild clamped to 10..40 covers a
        assert_eq!(by_name("b"), 30.0);
        assert_eq!(by_name("grandchild"), 40.0);
    }

    #[test]
    fn stats_per_operation() {
        let mut rows = checkout_rows();
        // A second checkout: db.insert ok this time, 20 ms.
        rows.extend([
            row(3, 1, None, "GET /checkout", "frontend", 300, 340),
            row(3, 2, Some(1), "POST /api/order", "api", 301, 339),
            row(3, 4, Some(2), "orders.create", "orders", 302, 338),
            row(3, 5, Some(4), "db.insert", "orders", 310, 330),
        ]);
        let set = TraceStore::from_iter(shuffled(rows, 7));
        let ops = operation_stats(set.views());
        assert_eq!(ops.len(), 6);
        let db = find(&ops, "orders", "db.insert");
        assert_eq!(db.count, 2);
        assert_eq!(db.error_count, 1);
        assert_eq!(db.error_rate, 0.5);
        assert_eq!((db.min, db.p50, db.p95, db.max), (20.0, 20.0, 50.0, 50.0));
        assert_eq!(db.total_ms, 70.0);
        assert_eq!(db.self_ms, Some(70.0));
        // Traces 1 (100 ms) and 3 (40 ms) hold db.insert: 70 / 140.
        assert_eq!(db.time_share, Some(0.5));
        let front = find(&ops, "frontend", "GET /checkout");
        // 100 - 90 and 40 - 38.
        assert_eq!(front.self_ms, Some(12.0));
        let health = find(&ops, "frontend", "GET /health");
        assert_eq!(health.time_share, Some(1.0));
        // Most total time first.
        assert_eq!(ops[0].operation, "GET /checkout");
        assert!(ops.windows(2).all(|w| w[0].total_ms >= w[1].total_ms));
        // Self times of a trace add up to the root's duration when children
        // nest inside their parents.
        let total_self: f64 = ops.iter().filter_map(|o| o.self_ms).sum();
        assert_eq!(total_self, 100.0 + 1.0 + 40.0);
    }

    #[test]
    fn latency_stats_filters() {
        let mut rows = checkout_rows();
        rows.push(failed(
            row(4, 1, None, "auth.verify", "auth", 0, 30),
            "E",
            "m",
        ));
        rows.push(row(4, 2, None, "auth.verify", "other", 0, 99));
        let all = latency_stats(&rows, None, None);
        assert_eq!(all.count, 8);
        let auth = latency_stats(&rows, Some("auth.verify"), None);
        assert_eq!((auth.count, auth.min, auth.max), (3, 10.0, 99.0));
        assert_eq!(auth.p50, 30.0);
        let auth_svc = latency_stats(&rows, Some("auth.verify"), Some("auth"));
        assert_eq!((auth_svc.count, auth_svc.avg), (2, 20.0));
        let svc = latency_stats(&rows, None, Some("orders"));
        assert_eq!(svc.count, 2);
        assert_eq!(
            latency_stats(&rows, Some("nope"), None),
            LatencyStats::default()
        );
    }

    #[test]
    fn serialises_with_flat_keys() {
        let set = TraceStore::from_iter(checkout_rows());
        let v = serde_json::to_value(&operation_stats(set.views())[0]).unwrap();
        for key in [
            "service",
            "operation",
            "count",
            "error_count",
            "error_rate",
            "min",
            "max",
            "avg",
            "p50",
            "p95",
            "p99",
            "total_ms",
            "self_ms",
            "time_share",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
    }
}
