//! [`Analysis`]: every span under a path, read in parallel into a
//! [`TraceStore`] with no retention, answering the [`TraceQueries`] over
//! files (`ft.analyze`, the `ferrotrace` command).

use std::borrow::Cow;
use std::path::Path;

use compact_str::CompactString;

use crate::analysis::{
    read_span_files_parallel, read_threads, AnalysisError, DependencyEdge, ErrorGroup,
    LatencyStats, OperationStats, ReadProgress, ReadReport, SpanRow, Trace, TraceHeadline,
};
use crate::ids::TraceId;

use super::operation_query::OperationQuery;
use super::store::TraceStore;
use super::trace_queries::{SpanName, TraceQueries};
use super::trace_query::{QueryError, TraceQuery};

/// All spans of one or many services read from files, assembled into
/// traces. Memory is proportional to the spans read; for per-operation
/// numbers over files too large for that, see [`crate::analysis::StatsOnly`].
#[derive(Debug, Default)]
pub struct Analysis {
    store: TraceStore,
    report: ReadReport,
}

impl Analysis {
    /// Reads every `spans*.jsonl` under `path` (or the one file it names).
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
        let store = TraceStore::from_parts(parts);
        store.assemble(read_threads());
        Ok(Analysis { store, report })
    }

    /// What reading went through: files, spans, malformed lines skipped.
    pub fn report(&self) -> &ReadReport {
        &self.report
    }

    /// The traces read.
    pub fn store(&self) -> &TraceStore {
        &self.store
    }

    /// Number of spans (duplicates counted once).
    pub fn span_count(&self) -> usize {
        self.store.span_count() - self.store.duplicate_spans() as usize
    }

    /// Number of traces.
    pub fn trace_count(&self) -> usize {
        self.store.len()
    }
}

/// The store's answers: exact percentiles, whole traces across services.
impl TraceQueries for Analysis {
    fn find_traces(&self, query: &TraceQuery) -> Result<Vec<TraceHeadline>, QueryError> {
        self.store.find_traces(query)
    }

    fn matching_traces(&self, query: &TraceQuery) -> Result<Vec<Cow<'_, Trace>>, QueryError> {
        self.store.matching_traces(query)
    }

    fn get_trace(&self, trace_id: TraceId) -> Option<Cow<'_, Trace>> {
        self.store.get_trace(trace_id)
    }

    fn latency_stats(&self, operation: Option<&str>, service: Option<&str>) -> LatencyStats {
        self.store.latency_stats(operation, service)
    }

    fn operations(&self, query: &OperationQuery) -> Vec<OperationStats> {
        self.store.operations(query)
    }

    fn service_dependencies(&self) -> Vec<DependencyEdge> {
        self.store.service_dependencies()
    }

    fn error_groups(&self, service: Option<&str>, limit: Option<usize>) -> Vec<ErrorGroup> {
        self.store.error_groups(service, limit)
    }

    fn services(&self) -> Vec<CompactString> {
        self.store.services()
    }

    fn span_names(&self, service: &str) -> Vec<SpanName> {
        self.store.span_names(service)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::traces::tests::checkout_rows;
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
        let dir = tempfile::tempdir().unwrap();
        let rows = checkout_rows();
        // Each service writes its own file, in its own order; one file is
        // read twice (a copy), its spans counted once.
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
            if service == "orders" {
                write_spans(&dir.path().join(service).join("spans-2.jsonl"), &mine, "");
            }
        }
        let analysis = Analysis::open(dir.path()).unwrap();
        assert_eq!(analysis.report().files, 5);
        assert_eq!(analysis.report().skipped, 1);
        assert_eq!(analysis.span_count(), 6);
        assert_eq!(analysis.store().duplicate_spans(), 2);
        assert_eq!(analysis.trace_count(), 2);

        let trace = analysis.get_trace(TraceId(1)).unwrap();
        assert_eq!(trace.view().operation(), "GET /checkout");
        assert_eq!(trace.view().status(), "error");
        assert_eq!(analysis.slow_traces(50.0).unwrap().len(), 1);
        assert_eq!(analysis.error_traces(None).len(), 1);
        assert_eq!(analysis.latency_stats(None, Some("orders")).count, 2);
        assert_eq!(analysis.service_dependencies().len(), 3);
        assert_eq!(analysis.operations(&OperationQuery::default()).len(), 6);
        assert_eq!(
            analysis.error_groups(None, None)[0].message,
            "query <num> timed out"
        );
        assert_eq!(analysis.critical_path(TraceId(1)).unwrap().len(), 9);
        assert!(analysis.get_trace(TraceId(3)).is_none());
        assert_eq!(analysis.services().len(), 4);
        assert_eq!(analysis.span_names("orders").len(), 2);
        assert_eq!(
            analysis.find_traces(&TraceQuery::default()).unwrap().len(),
            2
        );
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
    fn is_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Analysis>();
    }
}
