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

// The result types and the file reader are the public face (the query
// layer's answers are made of them); the algorithms are reached through the
// query layer and stay inside the crate.
pub use critical_path::PathSegment;
pub(crate) use deps::callee;
pub use deps::{merge_dependencies, DependencyEdge};
pub use errors::ErrorGroup;
pub use operations::OperationStats;
pub use percentile::LatencyStats;
pub use reader::{
    is_span_file_name, read_file_lines, read_lines, read_span_file, read_span_files_parallel,
    read_span_lines, read_spans, read_threads, span_files, AnalysisError, ReadProgress, ReadReport,
    SkippedLine,
};
pub use record::{ErrorRow, EventRow, LinkRow, RecordError, ScopeRow, SpanRow};
pub use streaming::{Precision, StatsOnly};
pub use traces::{Trace, TraceHeadline, TraceView};

pub(crate) use critical_path::critical_path;
pub(crate) use deps::service_dependencies;
pub(crate) use errors::error_groups;
pub(crate) use operations::{latency_stats, operation_stats, sort_operations};
pub(crate) use sketch::QuantileSketch;
pub(crate) use tree::render_tree;
