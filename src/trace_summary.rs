//! Trace summaries: the background thread counts each trace's spans as they
//! are drained and emits one summary record when the trace's local root
//! finishes. The hot path pays nothing for this.

use std::collections::{HashMap, HashSet, VecDeque};

use compact_str::CompactString;
use serde::Serialize;

use crate::ids::{SpanId, TraceId};
use crate::span::{SpanRecord, Status};

/// What `traces*.jsonl` holds, one per completed local trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceSummary {
    #[serde(serialize_with = "hex_trace")]
    pub trace_id: TraceId,
    #[serde(serialize_with = "hex_span")]
    pub root_span_id: SpanId,
    pub service: CompactString,
    pub operation: CompactString,
    pub start_ns: u64,
    pub duration_ms: f64,
    pub span_count: u64,
    pub error_count: u64,
    pub status: &'static str,
}

fn hex_trace<S: serde::Serializer>(id: &TraceId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(id.to_hex().as_str())
}

fn hex_span<S: serde::Serializer>(id: &SpanId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(id.to_hex().as_str())
}

#[derive(Default, Clone, Copy)]
struct Tally {
    spans: u64,
    errors: u64,
}

/// Traces whose local root finished recently; a straggler span of one of
/// them (finished after its root, e.g. a fire-and-forget task) must not open
/// a tally that would never close.
const RECENTLY_CLOSED: usize = 4096;
/// Open tallies beyond this are evicted oldest-first (each is a few words;
/// this bounds memory if roots never finish).
const MAX_OPEN: usize = 100_000;

#[derive(Default)]
pub struct TraceTally {
    open: HashMap<TraceId, Tally>,
    open_order: VecDeque<TraceId>,
    closed: VecDeque<TraceId>,
    closed_set: HashSet<TraceId>,
    pub evicted: u64,
}

impl TraceTally {
    /// Counts `span`; returns the summary if it is its trace's local root.
    pub fn observe(&mut self, span: &SpanRecord, service: &str) -> Option<TraceSummary> {
        let is_error = span.status == Status::Error;
        if span.is_local_root {
            let tally = self.open.remove(&span.trace_id).unwrap_or_default();
            self.remember_closed(span.trace_id);
            let error_count = tally.errors + u64::from(is_error);
            return Some(TraceSummary {
                trace_id: span.trace_id,
                root_span_id: span.span_id,
                service: service.into(),
                operation: span.name.clone(),
                start_ns: span.start_ns,
                duration_ms: span.duration_ms(),
                span_count: tally.spans + 1,
                error_count,
                status: if error_count > 0 { "error" } else { "ok" },
            });
        }
        if self.closed_set.contains(&span.trace_id) {
            return None;
        }
        let tally = self.open.entry(span.trace_id).or_insert_with(|| {
            self.open_order.push_back(span.trace_id);
            Tally::default()
        });
        tally.spans += 1;
        tally.errors += u64::from(is_error);
        self.evict_overflow();
        None
    }

    fn remember_closed(&mut self, trace_id: TraceId) {
        if !self.closed_set.insert(trace_id) {
            return;
        }
        if self.closed.len() == RECENTLY_CLOSED {
            if let Some(oldest) = self.closed.pop_front() {
                self.closed_set.remove(&oldest);
            }
        }
        self.closed.push_back(trace_id);
    }

    fn evict_overflow(&mut self) {
        while self.open.len() > MAX_OPEN {
            match self.open_order.pop_front() {
                Some(oldest) => {
                    if self.open.remove(&oldest).is_some() {
                        self.evicted += 1;
                    }
                }
                None => break,
            }
        }
        // Keep the order queue from growing without bound with ids that
        // already closed.
        if self.open_order.len() > 2 * MAX_OPEN.max(self.open.len()) {
            let open = &self.open;
            self.open_order.retain(|id| open.contains_key(id));
        }
    }

    pub fn open_traces(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(trace: u128, id: u64, parent: Option<u64>, error: bool) -> SpanRecord {
        let mut r = SpanRecord::new(TraceId(trace), parent.map(SpanId), "op".into());
        r.span_id = SpanId(id);
        r.start_mono = 1;
        r.end_mono = 1_000_001;
        if error {
            r.status = Status::Error;
        }
        r
    }

    #[test]
    fn summary_counts_children_and_errors() {
        let mut tally = TraceTally::default();
        assert!(tally.observe(&span(7, 2, Some(1), true), "svc").is_none());
        assert!(tally.observe(&span(7, 3, Some(1), false), "svc").is_none());
        let summary = tally.observe(&span(7, 1, None, false), "svc").unwrap();
        assert_eq!(summary.span_count, 3);
        assert_eq!(summary.error_count, 1);
        assert_eq!(summary.status, "error");
        assert_eq!(summary.root_span_id, SpanId(1));
        assert_eq!(summary.duration_ms, 1.0);
        assert_eq!(tally.open_traces(), 0);
        // A straggler after the root does not reopen the trace.
        assert!(tally.observe(&span(7, 4, Some(1), false), "svc").is_none());
        assert_eq!(tally.open_traces(), 0);
    }
}
