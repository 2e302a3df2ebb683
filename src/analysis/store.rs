//! [`Analysis`]: every span under a path (or handed over in memory),
//! assembled once into traces, answering every question the analysis
//! modules know how to ask.

use std::path::Path;

use super::critical_path::{critical_path, PathSegment};
use super::deps::{service_dependencies, DependencyEdge};
use super::errors::{error_groups, ErrorGroup};
use super::operations::{latency_stats, operation_stats, OperationStats};
use super::percentile::LatencyStats;
use super::reader::{
    read_span_files_parallel, read_threads, AnalysisError, ReadProgress, ReadReport,
};
use super::record::SpanRow;
use super::traces::{TraceSet, TraceView};
use super::tree::render_tree;

/// All spans of one or many services, assembled into traces. Memory is
/// proportional to the spans read; for per-operation numbers over files
/// too large for that, see [`super::StatsOnly`].
#[derive(Debug, Default)]
pub struct Analysis {
    traces: TraceSet,
    report: ReadReport,
}

impl Analysis {
    /// Reads every `spans*.jsonl` under `path` (or the one file it names).
    ///
    /// ```no_run
    /// use _core::analysis::Analysis;
    /// let analysis = Analysis::open("traces/").unwrap();
    /// println!("{} traces, p99 {} ms", analysis.trace_count(),
    ///          analysis.latency_stats(None, None).p99);
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Analysis, AnalysisError> {
        Self::open_with(path, &ReadProgress::new())
    }

    /// [`Self::open`], parsing files on every core (see
    /// [`read_span_files_parallel`]) and reporting to `progress`.
    pub fn open_with(
        path: impl AsRef<Path>,
        progress: &ReadProgress,
    ) -> Result<Analysis, AnalysisError> {
        let (parts, report) = read_span_files_parallel(
            path.as_ref(),
            read_threads(),
            progress,
            Vec::new,
            |rows: &mut Vec<SpanRow>, line| {
                rows.push(SpanRow::parse_bytes(line)?);
                Ok(())
            },
        )?;
        let mut rows = Vec::with_capacity(parts.iter().map(Vec::len).sum());
        for part in parts {
            rows.extend(part);
        }
        Ok(Analysis {
            traces: TraceSet::new(rows),
            report,
        })
    }

    /// Analyses spans already in memory (e.g. the in-process tracer's
    /// recent spans, through [`SpanRow::from_record`]).
    pub fn from_rows(rows: Vec<SpanRow>) -> Analysis {
        let report = ReadReport {
            spans: rows.len() as u64,
            lines: rows.len() as u64,
            ..ReadReport::default()
        };
        Analysis {
            traces: TraceSet::new(rows),
            report,
        }
    }

    /// What reading went through: files, spans, malformed lines skipped.
    pub fn report(&self) -> &ReadReport {
        &self.report
    }

    /// The assembled traces.
    pub fn traces(&self) -> &TraceSet {
        &self.traces
    }

    /// Every span (duplicates dropped), in the order read.
    pub fn rows(&self) -> &[SpanRow] {
        self.traces.rows()
    }

    /// Number of spans.
    pub fn span_count(&self) -> usize {
        self.traces.rows().len()
    }

    /// Number of traces.
    pub fn trace_count(&self) -> usize {
        self.traces.len()
    }

    /// The trace with this 32-hex-digit id.
    pub fn get_trace(&self, trace_id: &str) -> Option<TraceView<'_>> {
        self.traces.get_hex(trace_id)
    }

    /// Traces that took at least `threshold_ms`, slowest first.
    pub fn slow_traces(&self, threshold_ms: f64) -> Vec<TraceView<'_>> {
        self.traces.slow_traces(threshold_ms)
    }

    /// Failed traces, most recent first, at most `limit`.
    pub fn error_traces(&self, limit: Option<usize>) -> Vec<TraceView<'_>> {
        self.traces.error_traces(limit)
    }

    /// Exact latency stats of span durations, optionally of one operation
    /// (span name) and/or one service.
    pub fn latency_stats(&self, operation: Option<&str>, service: Option<&str>) -> LatencyStats {
        latency_stats(self.traces.rows(), operation, service)
    }

    /// Caller -> callee edges between services, sorted.
    pub fn service_dependencies(&self) -> Vec<DependencyEdge> {
        service_dependencies(&self.traces)
    }

    /// Per-(service, operation) statistics, most total time first.
    pub fn operations(&self) -> Vec<OperationStats> {
        operation_stats(&self.traces)
    }

    /// Failed spans grouped by fingerprint, most frequent first.
    pub fn error_groups(&self) -> Vec<ErrorGroup> {
        error_groups(self.traces.rows())
    }

    /// The critical path of a trace; `None` if there is no such trace.
    pub fn critical_path(&self, trace_id: &str) -> Option<Vec<PathSegment>> {
        self.get_trace(trace_id).map(|t| critical_path(&t))
    }

    /// A trace drawn as a text tree; `None` if there is no such trace.
    pub fn render_tree(&self, trace_id: &str) -> Option<String> {
        self.get_trace(trace_id).map(|t| render_tree(&t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TraceId;
    use std::io::Write;

    fn write_spans(path: &Path, rows: &[SpanRow], extra: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut f = std::fs::File::create(path).unwrap();
        for row in rows {
            serde_json::to_writer(&mut f, row).unwrap();
            f.write_all(b"\n").unwrap();
        }
        f.write_all(extra.as_bytes()).unwrap();
    }

    #[test]
    fn analyses_a_directory_of_several_services() {
        use crate::analysis::traces::tests::checkout_rows;
        let dir = tempfile::tempdir().unwrap();
        let rows = checkout_rows();
        // Each service writes its own file, in its own order.
        for service in ["frontend", "api", "auth", "orders"] {
            let mine: Vec<SpanRow> = rows
                .iter()
                .rev()
                .filter(|r| r.service == service)
                .cloned()
                .collect();
            let torn = if service == "api" {
                "{\"trace_id\": \"4b"
            } else {
                ""
            };
            write_spans(&dir.path().join(service).join("spans-1.jsonl"), &mine, torn);
        }
        let analysis = Analysis::open(dir.path()).unwrap();
        assert_eq!(analysis.report().files, 4);
        assert_eq!(analysis.report().skipped, 1);
        assert_eq!(analysis.span_count(), 6);
        assert_eq!(analysis.trace_count(), 2);

        let id = TraceId(1).to_hex();
        let trace = analysis.get_trace(id.as_str()).unwrap();
        assert_eq!(trace.operation(), "GET /checkout");
        assert_eq!(trace.status(), "error");
        assert_eq!(analysis.slow_traces(50.0).len(), 1);
        assert_eq!(analysis.error_traces(None).len(), 1);
        assert_eq!(analysis.latency_stats(None, Some("orders")).count, 2);
        assert_eq!(analysis.service_dependencies().len(), 3);
        assert_eq!(analysis.operations().len(), 6);
        assert_eq!(analysis.error_groups()[0].message, "query <num> timed out");
        assert_eq!(analysis.critical_path(id.as_str()).unwrap().len(), 9);
        assert!(analysis
            .render_tree(id.as_str())
            .unwrap()
            .contains("✗ error: TimeoutError"));
        assert!(analysis.get_trace("0123").is_none());
        assert!(analysis.critical_path("0123").is_none());
        assert!(analysis.render_tree("0123").is_none());
    }

    #[test]
    fn missing_directory_is_an_error() {
        let err = Analysis::open("/definitely/not/here").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no such file or directory: /definitely/not/here"
        );
    }

    #[test]
    fn from_rows_and_thread_safety() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Analysis>();
        let analysis = Analysis::from_rows(crate::analysis::traces::tests::checkout_rows());
        assert_eq!(analysis.report().spans, 6);
        assert_eq!(analysis.latency_stats(Some("GET /health"), None).max, 1.0);
    }
}
