//! `Tracer`: configuration, span creation and the pipeline's controls.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use compact_str::CompactString;
use parking_lot::RwLock;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString};

use crate::analysis::merge_dependencies;
use crate::attributes::{AttrValue, Limits};
use crate::clock;
use crate::collector::Collector;
use crate::config::{ConfigOverrides, OutputDir, ProcessEnv};
use crate::ids::{SpanId, TraceId};
use crate::live::LiveAnalysis;
use crate::propagation::Propagator;
use crate::query::TraceQueries;
use crate::sampling::Sampler;
use crate::span::SpanKind;

use super::context;
use super::convert;
use super::fork;
use super::propagation;
use super::query;
use super::span::{parse_kind, SpanContextPy, SpanPy};
use super::values;

/// `output_dir=`: absent (environment/default), None (no files), or a path.
pub struct OutputDirArg(OutputDir);

impl<'a, 'py> FromPyObject<'a, 'py> for OutputDirArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if obj.is_none() {
            return Ok(OutputDirArg(OutputDir::Disabled));
        }
        let path = obj
            .py()
            .import("os")?
            .call_method1("fspath", (obj,))
            .map_err(|_| PyTypeError::new_err("output_dir must be a str, a path, or None"))?;
        let text: String = path.extract().map_err(|_| {
            PyTypeError::new_err("output_dir must be a str path (bytes paths are not supported)")
        })?;
        Ok(OutputDirArg(OutputDir::Path(PathBuf::from(text))))
    }
}

#[pyclass(name = "Tracer", module = "ferrotrace._core", frozen)]
pub struct TracerPy {
    pub collector: Arc<Collector>,
    pub service: Py<PyString>,
    sampler: Sampler,
    /// Header formats for `ft.inject`/`ft.extract` when this is the global
    /// tracer, if given as `propagators=`; otherwise the environment decides.
    pub propagators: Option<Vec<Propagator>>,
}

static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Logs through `logging.getLogger("ferrotrace")`; never raises.
pub fn log_warning(py: Python<'_>, message: &str) {
    let logger = LOGGER.get_or_try_init(py, || {
        py.import("logging")
            .and_then(|m| m.call_method1("getLogger", ("ferrotrace",)))
            .map(Bound::unbind)
    });
    match logger {
        Ok(logger) => {
            if logger
                .bind(py)
                .call_method1("warning", ("%s", message))
                .is_err()
            {
                let _ = PyErr::take(py);
            }
        }
        Err(_) => {
            let _ = PyErr::take(py);
        }
    }
}

static GLOBAL_TRACER: RwLock<Option<Py<TracerPy>>> = RwLock::new(None);

/// The global tracer, configured from the environment on first use.
pub fn global_tracer(py: Python<'_>) -> PyResult<Bound<'_, TracerPy>> {
    if let Some(t) = GLOBAL_TRACER.read().as_ref() {
        return Ok(t.bind(py).clone());
    }
    // `ferrotrace.get_tracer()` creates it and registers it through
    // `_set_global_tracer` (it also owns the lock against double creation).
    let tracer = py.import("ferrotrace")?.call_method0("get_tracer")?;
    Ok(tracer.cast_into::<TracerPy>()?)
}

#[pyfunction]
pub fn _set_global_tracer(tracer: Option<Py<TracerPy>>) {
    *GLOBAL_TRACER.write() = tracer;
}

#[pyfunction]
pub fn _global_tracer(py: Python<'_>) -> Option<Py<TracerPy>> {
    GLOBAL_TRACER.read().as_ref().map(|t| t.clone_ref(py))
}

impl TracerPy {
    #[inline]
    pub fn limits(&self) -> Limits {
        self.collector.config.limits
    }

    #[inline]
    pub fn log_pending_warnings(&self, py: Python<'_>) {
        if self.collector.has_warnings() {
            for message in self.collector.take_warnings() {
                log_warning(py, &message);
            }
        }
    }

    /// Starts a span: a child of `parent` if given, else of the active span,
    /// else the root of a new trace.
    #[inline]
    pub fn start<'py>(
        slf: &Bound<'py, Self>,
        name: CompactString,
        kind: SpanKind,
        parent: Option<&Bound<'py, PyAny>>,
        tags: impl IntoIterator<Item = (CompactString, AttrValue)>,
        extra_tags: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, SpanPy>> {
        let py = slf.py();
        let me = slf.get();
        let explicit = parent.filter(|p| !p.is_none());
        let inherited = match explicit {
            Some(p) => Some(parent_of(me, p)?),
            None => match context::get(py)? {
                Some(current) => current
                    .cast::<SpanPy>()
                    .ok()
                    .map(|s| span_parent(me, s.get())),
                None => None,
            },
        };
        let (trace_id, sampled) = match &inherited {
            Some(p) if p.remote => (
                p.trace_id,
                me.sampler.sample_remote_child(p.trace_id, p.sampled),
            ),
            Some(p) => (p.trace_id, p.sampled),
            None => {
                let trace_id = TraceId::random();
                (trace_id, me.sampler.sample_new_trace(trace_id))
            }
        };
        let local_root = inherited.as_ref().is_none_or(|p| p.remote);
        let tracestate = inherited.as_ref().and_then(|p| p.tracestate.clone());
        if !sampled && !me.collector.config.tail.enabled() {
            // Nothing will be written: skip the record and all conversions.
            me.collector.span_started(local_root);
            let span = SpanPy::unrecorded(
                slf.clone().unbind(),
                trace_id,
                inherited.map(|p| p.span_id),
                name,
                kind,
                local_root,
                clock::monotonic_coarse_ns(),
            )
            .with_tracestate(tracestate);
            return Bound::new(py, span);
        }
        let pool = &me.collector.pipeline().pool;
        let mut record = match inherited {
            Some(parent) => {
                let mut r = pool.record(trace_id, Some(parent.span_id), name);
                r.remote_parent = parent.remote;
                r.parent_service = parent.service;
                r
            }
            None => pool.record(trace_id, None, name),
        };
        record.sampled = sampled;
        record.is_local_root = local_root;
        record.kind = kind;
        let limits = me.limits();
        for (k, v) in tags {
            record.attributes.set(k, v, &limits);
        }
        if let Some(extra) = extra_tags.filter(|t| !t.is_none()) {
            let items = extra.call_method0("items").map_err(|_| {
                PyTypeError::new_err("tags must be a mapping of attribute names to values")
            })?;
            for item in items.try_iter()? {
                let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
                record
                    .attributes
                    .set(convert::key(&k), convert::value(&v), &limits);
            }
        }
        let mono = clock::monotonic_ns();
        record.start_mono = mono;
        record.start_ns = clock::to_wall_ns(mono);
        me.collector.span_started(record.is_local_root);
        Bound::new(
            py,
            SpanPy::new(slf.clone().unbind(), record).with_tracestate(tracestate),
        )
    }
}

impl TracerPy {
    /// Queries reflect every span finished before they were asked.
    fn flush_for_query(&self, py: Python<'_>) {
        let collector = Arc::clone(&self.collector);
        py.detach(move || collector.flush(QUERY_FLUSH_TIMEOUT));
    }

    /// Flushes, then runs `f` on the in-process analysis without the GIL.
    fn query<R: Send>(&self, py: Python<'_>, f: impl FnOnce(&LiveAnalysis) -> R + Send) -> R {
        self.flush_for_query(py);
        let collector = &self.collector;
        py.detach(|| collector.with_analysis(f))
    }
}

const QUERY_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What a new span takes from its parent.
struct Parent {
    trace_id: TraceId,
    span_id: SpanId,
    sampled: bool,
    remote: bool,
    /// Set when the parent belongs to another service traced in this process.
    service: Option<CompactString>,
    /// The W3C tracestate to pass on (from a remote context, or inherited).
    tracestate: Option<Arc<str>>,
}

#[inline]
fn span_parent(me: &TracerPy, parent: &SpanPy) -> Parent {
    let parent_tracer = parent.tracer.get();
    let service = if std::ptr::eq(parent_tracer, me) {
        None
    } else {
        let theirs = &parent_tracer.collector.config.service_name;
        (*theirs != me.collector.config.service_name).then(|| CompactString::from(theirs.as_str()))
    };
    Parent {
        trace_id: parent.trace_id,
        span_id: parent.span_id,
        sampled: parent.sampled,
        remote: false,
        service,
        tracestate: parent.tracestate.clone(),
    }
}

/// The parent given as `parent=`: a Span or a SpanContext.
fn parent_of(me: &TracerPy, parent: &Bound<'_, PyAny>) -> PyResult<Parent> {
    if let Ok(span) = parent.cast::<SpanPy>() {
        return Ok(span_parent(me, span.get()));
    }
    if let Ok(ctx) = parent.cast::<SpanContextPy>() {
        let c = ctx.get();
        return Ok(Parent {
            trace_id: c.trace_id,
            span_id: c.span_id,
            sampled: c.sampled,
            remote: c.remote,
            service: None,
            tracestate: c.tracestate.as_deref().map(Arc::from),
        });
    }
    Err(PyTypeError::new_err(format!(
        "parent must be a Span, a SpanContext or None, not {}",
        convert::display(&parent.get_type().into_any())
    )))
}

#[pymethods]
impl TracerPy {
    #[new]
    #[pyo3(signature = (
        service_name=None,
        output_dir=OutputDirArg(OutputDir::FromEnv),
        *,
        buffer_size=None,
        flush_interval_ms=None,
        sample_rate=None,
        max_attributes=None,
        max_attribute_length=None,
        max_events=None,
        max_file_size_mb=None,
        max_recent_traces=None,
        max_traces_per_second=None,
        parent_based=None,
        keep_errors=None,
        keep_slower_than_ms=None,
        propagators=None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        py: Python<'_>,
        service_name: Option<&Bound<'_, PyAny>>,
        output_dir: OutputDirArg,
        buffer_size: Option<i64>,
        flush_interval_ms: Option<f64>,
        sample_rate: Option<f64>,
        max_attributes: Option<i64>,
        max_attribute_length: Option<i64>,
        max_events: Option<i64>,
        max_file_size_mb: Option<f64>,
        max_recent_traces: Option<i64>,
        max_traces_per_second: Option<f64>,
        parent_based: Option<bool>,
        keep_errors: Option<bool>,
        keep_slower_than_ms: Option<f64>,
        propagators: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let propagators = match propagators.filter(|p| !p.is_none()) {
            Some(names) => Some(propagation::resolve_propagators(py, Some(names))?),
            None => None,
        };
        let service_name = match service_name.filter(|s| !s.is_none()) {
            None => None,
            Some(s) => Some(
                s.cast::<PyString>()
                    .map(|s| convert::text(s).to_string())
                    .map_err(|_| PyTypeError::new_err("service_name must be a str"))?,
            ),
        };
        let overrides = ConfigOverrides {
            service_name,
            output_dir: output_dir.0,
            buffer_size,
            flush_interval_ms,
            sample_rate,
            max_attributes,
            max_attribute_length,
            max_events,
            max_file_size_mb,
            max_recent_traces,
            max_traces_per_second,
            parent_based,
            keep_errors,
            keep_slower_than_ms,
        };
        let (config, warnings) = overrides
            .resolve(&ProcessEnv)
            .map_err(|e| PyValueError::new_err(e.0))?;
        for w in &warnings {
            log_warning(py, w);
        }
        let sampler = Sampler::new(
            config.sample_rate,
            config.max_traces_per_second,
            config.parent_based,
        );
        let service = PyString::new(py, &config.service_name).unbind();
        let collector = Collector::new(config);
        fork::register(&collector);
        Ok(TracerPy {
            collector,
            service,
            sampler,
            propagators,
        })
    }

    /// Starts a span. Use it in a `with` block, or call `finish()` on it.
    #[pyo3(signature = (name, kind=None, tags=None, parent=None))]
    fn start_span<'py>(
        slf: &Bound<'py, Self>,
        name: &Bound<'py, PyAny>,
        kind: Option<&Bound<'py, PyAny>>,
        tags: Option<&Bound<'py, PyAny>>,
        parent: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, SpanPy>> {
        let name = convert::span_name(name)?;
        let kind = parse_kind(kind)?;
        TracerPy::start(slf, name, kind, parent, [], tags)
    }

    #[getter]
    fn service_name<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        self.service.bind(py).clone()
    }

    /// The header formats `ft.inject`/`ft.extract` use with this tracer
    /// global ("tracecontext", "b3", "b3multi", "xtrace").
    #[getter]
    fn propagators(&self, py: Python<'_>) -> Vec<&'static str> {
        let env;
        let list = match &self.propagators {
            Some(list) => list,
            None => {
                env = propagation::env_propagators(py);
                &env
            }
        };
        list.iter().map(|p| p.name()).collect()
    }

    #[getter]
    fn output_dir(&self) -> Option<String> {
        self.collector
            .config
            .output_dir
            .as_ref()
            .map(|p| p.display().to_string())
    }

    /// The resolved configuration, as a dict.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = &self.collector.config;
        let d = PyDict::new(py);
        d.set_item("service_name", &c.service_name)?;
        d.set_item("output_dir", self.output_dir())?;
        d.set_item("buffer_size", c.buffer_size)?;
        d.set_item("flush_interval_ms", c.flush_interval_ms)?;
        d.set_item("sample_rate", c.sample_rate)?;
        d.set_item("max_attributes", c.limits.max_attributes)?;
        d.set_item("max_attribute_length", c.limits.max_attribute_length)?;
        d.set_item("max_events", c.limits.max_events)?;
        d.set_item(
            "max_file_size_mb",
            c.max_file_bytes as f64 / (1024.0 * 1024.0),
        )?;
        d.set_item("max_recent_traces", c.live.max_recent_traces)?;
        d.set_item("max_traces_per_second", c.max_traces_per_second)?;
        d.set_item("parent_based", c.parent_based)?;
        d.set_item("keep_errors", c.tail.keep_errors)?;
        d.set_item("keep_slower_than_ms", c.tail.keep_slower_than_ms)?;
        d.set_item("propagators", self.propagators(py))?;
        Ok(d)
    }

    /// Files written so far (spans and trace summaries).
    fn files<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let paths: Vec<String> = self
            .collector
            .files()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        PyList::new(py, paths)
    }

    /// Waits until every span finished so far is written (or `timeout`
    /// seconds pass); returns whether it got there.
    #[pyo3(signature = (timeout=5.0))]
    fn flush(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
        let timeout = fork::timeout_arg(timeout)?;
        let collector = Arc::clone(&self.collector);
        let done = py.detach(move || collector.flush(timeout));
        self.log_pending_warnings(py);
        Ok(done)
    }

    /// Flushes and stops the background thread. Spans finished afterwards
    /// are counted as dropped.
    #[pyo3(signature = (timeout=5.0))]
    fn shutdown(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
        let timeout = fork::timeout_arg(timeout)?;
        let collector = Arc::clone(&self.collector);
        let done = py.detach(move || collector.shutdown(timeout));
        self.log_pending_warnings(py);
        Ok(done)
    }

    /// Counters: spans and traces started/finished/dropped/written, errors.
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.log_pending_warnings(py);
        let dict = PyDict::new(py);
        for (key, value) in self.collector.metrics().entries {
            dict.set_item(key, value)?;
        }
        Ok(dict)
    }

    /// A finished trace kept in memory (its spans in this process), or None.
    /// Like every query, it first waits for buffered spans to be processed.
    fn get_trace<'py>(
        &self,
        py: Python<'py>,
        trace_id: &str,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some(id) = TraceId::from_hex(trace_id) else {
            return Ok(None);
        };
        let trace = self.query(py, |live| live.get_trace(id).map(Cow::into_owned));
        trace.map(|t| values::to_py(py, &t)).transpose()
    }

    /// count, min, max, avg, p50, p95, p99 (ms) over every span finished
    /// since start (a quantile sketch: percentiles within 1%).
    #[pyo3(signature = (operation=None, service=None))]
    fn latency_stats<'py>(
        &self,
        py: Python<'py>,
        operation: Option<&str>,
        service: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let stats = self.query(py, |live| live.latency_stats(operation, service));
        values::to_py(py, &stats)
    }

    /// Recent failed traces, most recent first.
    #[pyo3(signature = (limit=None))]
    fn error_traces<'py>(
        &self,
        py: Python<'py>,
        limit: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let limit = query::limit_arg(limit)?;
        // Under the writer's lock only pointers are copied; the records
        // become rows after it is released.
        let traces = self.query(py, |live| live.trace_snapshot());
        let value = py.detach(|| query::serialize(&traces.into_store().error_traces(limit)))?;
        Ok(values::json_to_py(py, &value)?.cast_into::<PyList>()?)
    }

    /// Recent traces that took at least `threshold_ms`, slowest first.
    fn slow_traces<'py>(&self, py: Python<'py>, threshold_ms: f64) -> PyResult<Bound<'py, PyList>> {
        let traces = self.query(py, |live| live.trace_snapshot());
        let value = py.detach(|| match traces.into_store().slow_traces(threshold_ms) {
            Ok(found) => query::serialize(&found),
            Err(err) => Err(query::query_error(err)),
        })?;
        Ok(values::json_to_py(py, &value)?.cast_into::<PyList>()?)
    }

    /// Caller -> callee service edges with call counts, over every tracer in
    /// this process: from spans whose parent belongs to another service, and
    /// client spans naming their callee in `peer.service`.
    fn service_dependencies<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let collectors = fork::live_collectors();
        let merged = py.detach(|| {
            for c in &collectors {
                c.flush(QUERY_FLUSH_TIMEOUT);
            }
            merge_dependencies(
                collectors
                    .iter()
                    .flat_map(|c| c.with_analysis(|live| live.service_dependencies())),
            )
        });
        values::to_py(py, &merged)
    }

    /// A decorator that traces calls of the function it wraps:
    /// `@tracer.traced()`, `@tracer.traced("name", kind="client", tags={...})`.
    #[pyo3(signature = (name=None, *, kind=None, tags=None))]
    fn traced<'py>(
        slf: &Bound<'py, Self>,
        name: Option<&Bound<'py, PyAny>>,
        kind: Option<&Bound<'py, PyAny>>,
        tags: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let kwargs = PyDict::new(py);
        kwargs.set_item("kind", kind)?;
        kwargs.set_item("tags", tags)?;
        kwargs.set_item("tracer", slf)?;
        py.import("ferrotrace._decorators")?
            .getattr("traced")?
            .call((name,), Some(&kwargs))
    }

    fn __repr__(&self) -> String {
        format!(
            "<Tracer service_name={:?} output_dir={:?}>",
            self.collector.config.service_name,
            self.output_dir()
        )
    }
}
