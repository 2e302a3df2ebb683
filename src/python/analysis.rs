//! `analyze(path)` and `Analysis`: the file analysis engine
//! ([`crate::analysis`]) as Python objects, plus `operation_stats(path)`,
//! the streaming per-operation table behind `ferrotrace stats`.
//!
//! Results cross into Python as plain dicts and lists with the DESIGN.md
//! keys: the engine's types serialise themselves (with the GIL released)
//! into `serde_json::Value`s, which [`to_py`] turns into Python objects.
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

use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use serde::Serialize;
use serde_json::Value;

use crate::analysis::{
    Analysis, AnalysisError, Precision, ReadProgress, ReadReport, StatsOnly, TraceView,
};

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
/// dicts, most total time first; `self_ms` and `time_share` are None, as
/// they need whole traces), `precision` ("exact" or "sketch") and `report`.
///
/// `exact=True` keeps every duration (8 bytes a span) for exact
/// nearest-rank percentiles; `exact=False` keeps one quantile sketch per
/// operation (bounded memory, percentiles within 1%).
#[pyfunction]
#[pyo3(signature = (path, *, exact = true, progress = None))]
pub fn operation_stats<'py>(
    py: Python<'py>,
    path: PathBuf,
    exact: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let precision = if exact {
        Precision::Exact
    } else {
        Precision::Sketch
    };
    let stats = watched_read(py, progress.as_ref(), |watch| {
        StatsOnly::open_with(&path, precision, watch)
    })?;
    let operations = py.detach(|| serialize(&stats.operations()))?;
    let result = PyDict::new(py);
    result.set_item("operations", json_to_py(py, &operations)?)?;
    result.set_item("precision", if exact { "exact" } else { "sketch" })?;
    result.set_item("report", report_dict(py, stats.report(), 0)?)?;
    Ok(result)
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
        let trace_id = trace_id_arg(trace_id)?;
        let value = py.detach(|| self.inner.get_trace(&trace_id).map(|t| serialize(&t)));
        optional(py, value)
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
        let value = py.detach(|| {
            serialize(
                &self
                    .inner
                    .latency_stats(operation.as_deref(), service.as_deref()),
            )
        })?;
        json_to_py(py, &value)
    }

    /// Traces with at least one failed span (trace dicts), most recent
    /// first, at most `limit` of them.
    #[pyo3(signature = (limit = None))]
    fn error_traces<'py>(
        &self,
        py: Python<'py>,
        limit: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let limit = match limit {
            Some(n) if n < 0 => {
                return Err(PyValueError::new_err(format!(
                    "limit must be None or a non-negative int, not {n}"
                )))
            }
            Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            None => None,
        };
        let value = py.detach(|| serialize(&self.inner.error_traces(limit)))?;
        json_to_py(py, &value)
    }

    /// Traces that took at least `threshold_ms` (trace dicts), slowest first.
    fn slow_traces<'py>(&self, py: Python<'py>, threshold_ms: f64) -> PyResult<Bound<'py, PyAny>> {
        let threshold_ms = milliseconds_arg("threshold_ms", threshold_ms)?;
        let value = py.detach(|| serialize(&self.inner.slow_traces(threshold_ms)))?;
        json_to_py(py, &value)
    }

    /// Calls between services: `{"caller", "callee", "calls"}` dicts,
    /// sorted by caller then callee.
    fn service_dependencies<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let value = py.detach(|| serialize(&self.inner.service_dependencies()))?;
        json_to_py(py, &value)
    }

    /// Per-(service, operation) statistics, most total time first: `count`,
    /// `error_count`, `error_rate`, `min`/`max`/`avg`/`p50`/`p95`/`p99`,
    /// `total_ms`, `self_ms` and `time_share`.
    fn operations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let value = py.detach(|| serialize(&self.inner.operations()))?;
        json_to_py(py, &value)
    }

    /// Failed spans grouped by fingerprint (exception type, message with
    /// numbers, ids and quoted values normalised, service and operation),
    /// most frequent first.
    fn error_groups<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let value = py.detach(|| serialize(&self.inner.error_groups()))?;
        json_to_py(py, &value)
    }

    /// The chain of span segments that determined the trace's end-to-end
    /// latency, in time order; None if there is no such trace.
    fn critical_path<'py>(
        &self,
        py: Python<'py>,
        trace_id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let trace_id = trace_id_arg(trace_id)?;
        let value = py.detach(|| self.inner.critical_path(&trace_id).map(|p| serialize(&p)));
        optional(py, value)
    }

    /// The trace drawn as a text tree; None if there is no such trace.
    fn render_tree(&self, py: Python<'_>, trace_id: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
        let trace_id = trace_id_arg(trace_id)?;
        Ok(py.detach(|| self.inner.render_tree(&trace_id)))
    }

    /// Trace summaries (trace dicts without `spans`) matching every filter
    /// given: a span of `service`; a span named `operation` (of `service`,
    /// if given too); failed (`errors=True`); at least `min_duration_ms`
    /// long. `order` is "recent" (latest start first) or "slowest".
    #[pyo3(signature = (
        *, service = None, operation = None, errors = false, min_duration_ms = None,
        limit = None, order = "recent"
    ))]
    #[allow(clippy::too_many_arguments)]
    fn find_traces<'py>(
        &self,
        py: Python<'py>,
        service: Option<String>,
        operation: Option<String>,
        errors: bool,
        min_duration_ms: Option<f64>,
        limit: Option<i64>,
        order: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let min_duration_ms = match min_duration_ms {
            Some(ms) => milliseconds_arg("min_duration_ms", ms)?,
            None => f64::NEG_INFINITY,
        };
        let slowest_first = match order {
            "recent" => false,
            "slowest" => true,
            other => {
                return Err(PyValueError::new_err(format!(
                    "order must be \"recent\" or \"slowest\", not {other:?}"
                )))
            }
        };
        let limit = match limit {
            Some(n) if n < 0 => {
                return Err(PyValueError::new_err(format!(
                    "limit must be None or a non-negative int, not {n}"
                )))
            }
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            None => usize::MAX,
        };
        let value = py.detach(|| {
            let matches = |t: &TraceView<'_>| {
                (!errors || t.is_error())
                    && t.duration_ms() >= min_duration_ms
                    && (service.is_none() && operation.is_none()
                        || t.spans().any(|s| {
                            service.as_deref().is_none_or(|v| s.service == v)
                                && operation.as_deref().is_none_or(|v| s.name == v)
                        }))
            };
            let mut found: Vec<TraceView<'_>> =
                self.inner.traces().iter().filter(matches).collect();
            if slowest_first {
                found.sort_by(|a, b| {
                    b.duration_ms()
                        .total_cmp(&a.duration_ms())
                        .then(b.start_ns().cmp(&a.start_ns()))
                });
            } else {
                found.reverse();
            }
            found.truncate(limit);
            let summaries: Vec<_> = found.iter().map(|t| t.summary()).collect();
            serialize(&summaries)
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
            self.inner.traces().duplicate_spans(),
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

/// A trace id argument: a str (anything else is a TypeError). An invalid
/// id is not an error: no trace has it.
fn trace_id_arg(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    match obj.cast::<PyString>() {
        Ok(s) => Ok(s.to_cow()?.into_owned()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "trace_id must be a str of 32 hex digits, not {}",
            obj.get_type().name()?
        ))),
    }
}

/// A duration threshold: a number of milliseconds, not negative, not NaN.
fn milliseconds_arg(name: &str, ms: f64) -> PyResult<f64> {
    if ms.is_nan() || ms < 0.0 {
        return Err(PyValueError::new_err(format!(
            "{name} must be a non-negative number of milliseconds, not {ms}"
        )));
    }
    Ok(ms)
}

fn serialize<T: Serialize + ?Sized>(value: &T) -> PyResult<Value> {
    serde_json::to_value(value)
        .map_err(|e| PyValueError::new_err(format!("cannot convert analysis result: {e}")))
}

fn optional<'py>(py: Python<'py>, value: Option<PyResult<Value>>) -> PyResult<Bound<'py, PyAny>> {
    match value {
        Some(value) => json_to_py(py, &value?),
        None => Ok(py.None().into_bound(py)),
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
