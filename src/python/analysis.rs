//! `analyze(path)` and `Analysis`: the file analysis engine
//! and the query layer ([`crate::query`]) as Python objects, plus
//! `operation_stats(path)`, the streaming per-operation table behind
//! `ferrotrace stats`.
//!
//! Results cross into Python as plain dicts and lists with the keys the
//! README documents: the engine's types serialise themselves (with the GIL
//! released) into `serde_json::Value`s, which [`json_to_py`] turns into
//! Python objects.
//!
//! Reading happens on the engine's reader threads with the GIL released.
//! So that Ctrl-C still interrupts a long read, and so the command line can
//! draw a progress bar, the calling thread meanwhile wakes every 100 ms,
//! re-attaches to the interpreter to check for signals and report progress,
//! and cancels the read if that raises.

use std::io;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde::Serialize;

use crate::analysis::{AnalysisError, Precision, ReadProgress, ReadReport, StatsOnly};
use crate::query::{Analysis, OperationQuery, TraceQueries, TraceQuery};

use super::query::{limit_arg, query_error, serialize, tags_arg, time_arg, trace_id_arg};
use super::values::json_to_py;

/// How often a read in progress checks for Ctrl-C and reports progress.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// Everything the spans under a path say: traces assembled across files and
/// services, latency percentiles, the service graph, error groups, critical
/// paths and trace trees. Create one with `ferrotrace.analyze(path)`.
#[pyclass(name = "Analysis", module = "ferrotrace._core", frozen)]
pub struct AnalysisPy {
    inner: Analysis,
    path: PathBuf,
}

/// Reads every `spans*.jsonl` file under `path` (a directory, searched at any
/// depth, or one file) and assembles the spans into traces.
///
/// `progress`, if given, is called as `progress(bytes_read, bytes_total)`
/// while reading. Raises FileNotFoundError if `path` does not exist and
/// OSError if it cannot be read; malformed lines are skipped and counted
/// (see `Analysis.skipped_lines` and `Analysis.report()`).
#[pyfunction]
#[pyo3(signature = (path, *, progress = None))]
pub fn analyze(py: Python<'_>, path: PathBuf, progress: Option<Py<PyAny>>) -> PyResult<AnalysisPy> {
    let inner = watched_read(py, progress.as_ref(), |watch| {
        Analysis::open_with(&path, watch)
    })?;
    Ok(AnalysisPy { inner, path })
}

/// Per-(service, operation) statistics streamed from the span files under
/// `path` without keeping the spans: a dict with `operations` (list of
/// dicts; `self_ms` and `time_share` are None, as they need whole traces),
/// `precision` ("exact" or "sketch") and `report`.
///
/// `exact=True` keeps every duration (8 bytes a span) for exact
/// nearest-rank percentiles; `exact=False` keeps one quantile sketch per
/// operation (bounded memory, percentiles within 1%). `service`, `sort` and
/// `limit` select rows as `Analysis.operations` does.
#[pyfunction]
#[pyo3(signature = (path, *, exact = true, progress = None, service = None, sort = "total", limit = None))]
#[allow(clippy::too_many_arguments)]
pub fn operation_stats<'py>(
    py: Python<'py>,
    path: PathBuf,
    exact: bool,
    progress: Option<Py<PyAny>>,
    service: Option<String>,
    sort: &str,
    limit: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let query = operation_query(service, sort, limit)?;
    let precision = if exact {
        Precision::Exact
    } else {
        Precision::Sketch
    };
    let stats = watched_read(py, progress.as_ref(), |watch| {
        StatsOnly::open_with(&path, precision, watch)
    })?;
    let operations = py.detach(|| serialize(&query.apply(stats.operations())))?;
    let result = PyDict::new(py);
    result.set_item("operations", json_to_py(py, &operations)?)?;
    result.set_item("precision", if exact { "exact" } else { "sketch" })?;
    result.set_item("report", report_dict(py, stats.report(), 0)?)?;
    Ok(result)
}

fn operation_query(
    service: Option<String>,
    sort: &str,
    limit: Option<&Bound<'_, PyAny>>,
) -> PyResult<OperationQuery> {
    Ok(OperationQuery {
        service,
        order: sort.parse().map_err(query_error)?,
        limit: limit_arg(limit)?,
    })
}

/// Runs a query without the GIL and converts its result.
fn answer<'py, T: Serialize>(
    py: Python<'py>,
    query: impl FnOnce() -> T + Send,
) -> PyResult<Bound<'py, PyAny>> {
    let value = py.detach(|| serialize(&query()))?;
    json_to_py(py, &value)
}

#[pymethods]
impl AnalysisPy {
    /// The trace dict (`trace_id`, `root_span_id`, `service`, `operation`,
    /// `status`, `duration_ms`, `span_count`, `error_count`, `spans`, ...),
    /// or None if no span of that trace was read.
    fn get_trace<'py>(
        &self,
        py: Python<'py>,
        trace_id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let id = trace_id_arg(trace_id)?;
        answer(py, || id.and_then(|id| self.inner.get_trace(id)))
    }

    /// Exact nearest-rank latency stats (ms) of span durations, optionally
    /// of one operation (span name) and/or one service: `count`, `min`,
    /// `max`, `avg`, `p50`, `p95`, `p99`.
    #[pyo3(signature = (operation = None, service = None))]
    fn latency_stats<'py>(
        &self,
        py: Python<'py>,
        operation: Option<String>,
        service: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        answer(py, || {
            self.inner
                .latency_stats(operation.as_deref(), service.as_deref())
        })
    }

    /// Traces with at least one failed span (trace dicts), most recent
    /// first, at most `limit` of them.
    #[pyo3(signature = (limit = None))]
    fn error_traces<'py>(
        &self,
        py: Python<'py>,
        limit: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let limit = limit_arg(limit)?;
        answer(py, || self.inner.error_traces(limit))
    }

    /// Traces that took at least `threshold_ms` (trace dicts), slowest first.
    fn slow_traces<'py>(&self, py: Python<'py>, threshold_ms: f64) -> PyResult<Bound<'py, PyAny>> {
        let value = py.detach(|| match self.inner.slow_traces(threshold_ms) {
            Ok(traces) => serialize(&traces),
            Err(err) => Err(query_error(err)),
        })?;
        json_to_py(py, &value)
    }

    /// Calls between services: `{"caller", "callee", "calls"}` dicts,
    /// sorted by caller then callee.
    fn service_dependencies<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        answer(py, || self.inner.service_dependencies())
    }

    /// Per-(service, operation) statistics: `count`, `error_count`,
    /// `error_rate`, `min`/`max`/`avg`/`p50`/`p95`/`p99`, `total_ms`,
    /// `self_ms` and `time_share`. Only `service`'s if given; `sort` is
    /// "total" (most total time first, the default), "count", "errors",
    /// "p50", "p95", "p99", "self" or "name"; at most `limit` rows.
    #[pyo3(signature = (*, service = None, sort = "total", limit = None))]
    fn operations<'py>(
        &self,
        py: Python<'py>,
        service: Option<String>,
        sort: &str,
        limit: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let query = operation_query(service, sort, limit)?;
        answer(py, || self.inner.operations(&query))
    }

    /// Failed spans grouped by fingerprint (exception type, message with
    /// numbers, ids and quoted values normalised, service and operation),
    /// most frequent first; only `service`'s if given, at most `limit`.
    #[pyo3(signature = (*, service = None, limit = None))]
    fn error_groups<'py>(
        &self,
        py: Python<'py>,
        service: Option<String>,
        limit: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let limit = limit_arg(limit)?;
        answer(py, || self.inner.error_groups(service.as_deref(), limit))
    }

    /// The chain of span segments that determined the trace's end-to-end
    /// latency, in time order; None if there is no such trace.
    fn critical_path<'py>(
        &self,
        py: Python<'py>,
        trace_id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let id = trace_id_arg(trace_id)?;
        answer(py, || id.and_then(|id| self.inner.critical_path(id)))
    }

    /// The trace drawn as a text tree; None if there is no such trace.
    fn render_tree(&self, py: Python<'_>, trace_id: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
        let id = trace_id_arg(trace_id)?;
        Ok(py.detach(|| id.and_then(|id| self.inner.render_tree(id))))
    }

    /// Trace summaries (trace dicts without `spans`) matching every filter
    /// given. One span must have all of `service`, `operation` and `tags`
    /// (attribute values compared as text; `error` and `span.kind` work as
    /// tags too); the trace (its root) must last between `min_duration_ms`
    /// and `max_duration_ms` and start between `start_ns` and `end_ns`
    /// (Unix ns); `errors=True` keeps failed traces only. `order` is
    /// "recent" (latest start first) or "slowest"; at most `limit`.
    #[pyo3(signature = (
        *, service = None, operation = None, tags = None, errors = false,
        min_duration_ms = None, max_duration_ms = None, start_ns = None, end_ns = None,
        limit = None, order = "recent"
    ))]
    #[allow(clippy::too_many_arguments)]
    fn find_traces<'py>(
        &self,
        py: Python<'py>,
        service: Option<String>,
        operation: Option<String>,
        tags: Option<&Bound<'py, PyAny>>,
        errors: bool,
        min_duration_ms: Option<f64>,
        max_duration_ms: Option<f64>,
        start_ns: Option<&Bound<'py, PyAny>>,
        end_ns: Option<&Bound<'py, PyAny>>,
        limit: Option<&Bound<'py, PyAny>>,
        order: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let query = TraceQuery {
            service,
            operation,
            tags: tags_arg(tags)?,
            min_duration_ms,
            max_duration_ms,
            start_ns: time_arg("start_ns", start_ns)?,
            end_ns: time_arg("end_ns", end_ns)?,
            errors_only: errors,
            order: order.parse().map_err(query_error)?,
            limit: limit_arg(limit)?,
        };
        let value = py.detach(|| match self.inner.find_traces(&query) {
            Ok(found) => serialize(&found),
            Err(err) => Err(query_error(err)),
        })?;
        json_to_py(py, &value)
    }

    /// What reading went through: `files`, `lines`, `spans`,
    /// `skipped_lines`, `duplicate_spans`, `first_skipped` (None, or the
    /// `path`, `line` and `error` of the first malformed line) and `path`.
    fn report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = report_dict(
            py,
            self.inner.report(),
            self.inner.store().duplicate_spans(),
        )?;
        dict.set_item("path", self.path.to_string_lossy().as_ref())?;
        Ok(dict)
    }

    /// Number of spans (duplicates counted once).
    #[getter]
    fn span_count(&self) -> usize {
        self.inner.span_count()
    }

    /// Number of traces.
    #[getter]
    fn trace_count(&self) -> usize {
        self.inner.trace_count()
    }

    /// Malformed lines skipped while reading.
    #[getter]
    fn skipped_lines(&self) -> u64 {
        self.inner.report().skipped
    }

    /// Span files read.
    #[getter]
    fn files(&self) -> usize {
        self.inner.report().files
    }

    fn __repr__(&self) -> String {
        let skipped = match self.inner.report().skipped {
            0 => String::new(),
            1 => ", 1 malformed line skipped".to_string(),
            n => format!(", {n} malformed lines skipped"),
        };
        format!(
            "<Analysis of {:?}: {} spans in {} traces from {} files{skipped}>",
            self.path.to_string_lossy(),
            self.inner.span_count(),
            self.inner.trace_count(),
            self.inner.report().files,
        )
    }
}

fn report_dict<'py>(
    py: Python<'py>,
    report: &ReadReport,
    duplicate_spans: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("files", report.files)?;
    dict.set_item("lines", report.lines)?;
    dict.set_item("spans", report.spans)?;
    dict.set_item("skipped_lines", report.skipped)?;
    dict.set_item("duplicate_spans", duplicate_spans)?;
    let first = match &report.first_skipped {
        Some(skipped) => {
            let first = PyDict::new(py);
            first.set_item("path", skipped.path.to_string_lossy().as_ref())?;
            first.set_item("line", skipped.line)?;
            first.set_item("error", skipped.error.to_string())?;
            first.into_any()
        }
        None => py.None().into_bound(py),
    };
    dict.set_item("first_skipped", first)?;
    Ok(dict)
}

/// Runs `read` on a helper thread with the GIL released. Meanwhile this
/// thread checks for Ctrl-C and calls `callback(bytes_read, bytes_total)`
/// every [`CHECK_EVERY`]; an exception there cancels the read and is raised.
fn watched_read<T: Send>(
    py: Python<'_>,
    callback: Option<&Py<PyAny>>,
    read: impl FnOnce(&ReadProgress) -> Result<T, AnalysisError> + Send,
) -> PyResult<T> {
    let watch = ReadProgress::new();
    let (outcome, raised) = py.detach(|| {
        std::thread::scope(|scope| {
            let (done, finished) = mpsc::channel();
            let watch = &watch;
            let reader = std::thread::Builder::new()
                .name("ferrotrace-analysis".into())
                .spawn_scoped(scope, move || {
                    let _ = done.send(read(watch));
                });
            if let Err(e) = reader {
                let err = PyRuntimeError::new_err(format!("cannot start a reader thread: {e}"));
                return (None, Some(err));
            }
            let mut raised: Option<PyErr> = None;
            loop {
                match finished.recv_timeout(CHECK_EVERY) {
                    Ok(outcome) => return (Some(outcome), raised),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if raised.is_none() {
                            if let Err(err) = report_progress(callback, watch) {
                                watch.cancel();
                                raised = Some(err);
                            }
                        }
                    }
                    // The reader panicked; the scope re-raises the panic.
                    Err(mpsc::RecvTimeoutError::Disconnected) => return (None, raised),
                }
            }
        })
    });
    if let Some(err) = raised {
        return Err(err);
    }
    match outcome {
        Some(Ok(value)) => Ok(value),
        Some(Err(err)) => Err(analysis_error(err)),
        None => Err(PyRuntimeError::new_err("the analysis reader thread failed")),
    }
}

fn report_progress(callback: Option<&Py<PyAny>>, watch: &ReadProgress) -> PyResult<()> {
    Python::attach(|py| {
        py.check_signals()?;
        if let Some(callback) = callback {
            callback.call1(py, (watch.bytes_read(), watch.bytes_total()))?;
        }
        Ok(())
    })
}

/// The engine's error as the matching Python OSError subclass, with
/// `errno`, `strerror` and `filename` set.
fn analysis_error(err: AnalysisError) -> PyErr {
    let filename = err.path().to_string_lossy().into_owned();
    match &err {
        AnalysisError::NotFound(_) => PyFileNotFoundError::new_err((
            libc::ENOENT,
            "No such file or directory (expected a directory of spans*.jsonl files, or one file)",
            filename,
        )),
        AnalysisError::Io { source, .. } => match source.raw_os_error() {
            // OSError(errno, ...) picks the subclass (PermissionError, ...).
            Some(errno) => {
                let message = io::Error::from_raw_os_error(errno).to_string();
                let message = match message.find(" (os error") {
                    Some(end) => message[..end].to_string(),
                    None => message,
                };
                PyOSError::new_err((errno, message, filename))
            }
            None => PyOSError::new_err(err.to_string()),
        },
        AnalysisError::Cancelled(_) => PyRuntimeError::new_err(err.to_string()),
    }
}
