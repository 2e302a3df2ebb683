//! The trace summary record: one per completed local trace, written to
//! `traces*.jsonl` (see `live.rs` for when a trace completes).

use compact_str::CompactString;
use serde::Serialize;

use crate::ids::{SpanId, TraceId};

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
    /// Written as `duration_ms`, the root's duration in milliseconds; kept
    /// in nanoseconds so the writer prints it with integer arithmetic.
    #[serde(rename = "duration_ms", serialize_with = "ns_as_ms")]
    pub duration_ns: u64,
    pub span_count: u64,
    pub error_count: u64,
    pub status: &'static str,
}

fn hex_trace<S: serde::Serializer>(id: &TraceId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(id.to_hex().as_str())
}

fn ns_as_ms<S: serde::Serializer>(ns: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(*ns as f64 / 1e6)
}

fn hex_span<S: serde::Serializer>(id: &SpanId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(id.to_hex().as_str())
}
