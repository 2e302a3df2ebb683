//! Trace analysis over finished spans, from JSONL files or from memory:
//! trace assembly, exact latency percentiles, per-operation statistics,
//! error groups, critical paths, the service graph and text trees. Knows
//! nothing of Python. Asking questions of a set of traces is the query
//! layer's part (`crate::query`).

mod critical_path;
mod deps;
mod errors;
mod operations;
mod percentile;
mod reader;
mod record;
mod scan;
mod sketch;
mod streaming;
pub(crate) mod traces;
mod tree;

pub use critical_path::{critical_path, PathSegment};
pub use deps::{merge_dependencies, service_dependencies, DependencyEdge};
pub use errors::{error_groups, fingerprint, normalize_message, ErrorGroup};
pub use operations::{
    latency_stats, operation_stats, self_times_ms, sort_operations, OperationStats,
};
pub use percentile::{nearest_rank, percentile_sorted, LatencyStats};
pub use reader::{
    is_span_file_name, read_lines, read_span_file, read_span_files_parallel, read_span_lines,
    read_spans, read_threads, span_files, AnalysisError, ReadProgress, ReadReport, SkippedLine,
};
pub use record::{ErrorRow, EventRow, RecordError, SpanRow};
pub use scan::{scan_stats_fields, StatsFields};
pub use sketch::{
    AccuracyMismatch, QuantileSketch, DEFAULT_ALPHA, DEFAULT_MAX_BUCKETS, MIN_POSITIVE,
};
pub use streaming::{Precision, StatsOnly};
pub use traces::{Trace, TraceHeadline, TraceView};
pub use tree::{format_ms, render_tree};
