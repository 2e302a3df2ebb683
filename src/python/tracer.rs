//! `Tracer`: the Python face of a provider (`provider.rs`): configuration,
//! span creation, flush/shutdown/metrics, and the in-process queries.

use std::borrow::Cow;
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::analysis::merge_dependencies;
use crate::collector::Collector;
use crate::ids::TraceId;
use crate::live::LiveAnalysis;
use crate::options;
use crate::query::TraceQueries;
use crate::sinks;

use super::convert;
use super::logging;
use super::options as option_args;
use super::provider::{self, Parent};
use super::query;
use super::registry;
use super::span::{parse_kind, SpanPy};
use super::tracer_core::TracerCore;
use super::values;

#[pyclass(name = "Tracer", module = "ferrotrace._core", frozen)]
pub struct TracerPy {
    pub core: Py<TracerCore>,
}

impl TracerPy {
    /// Queries reflect every span finished before they were asked.
    fn flush_for_query(&self, py: Python<'_>) {
        let collector = Arc::clone(&self.core.get().collector);
        py.detach(move || collector.flush(QUERY_FLUSH_TIMEOUT));
    }

    /// Flushes, then runs `f` on the in-process analysis without the GIL.
    fn query<R: Send>(&self, py: Python<'_>, f: impl FnOnce(&LiveAnalysis) -> R + Send) -> R {
        self.flush_for_query(py);
        let collector = &self.core.get().collector;
        py.detach(|| collector.with_analysis(f))
    }
}

const QUERY_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[pymethods]
impl TracerPy {
    /// `Tracer(service_name=None, output_dir=..., **options)`: every option
    /// is declared in the option table (README, "Configuration").
    #[new]
    #[pyo3(signature = (*args, **options))]
    fn py_new(
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        if args.len() > 2 {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "Tracer() takes at most 2 positional arguments (service_name, output_dir), \
                 {} were given; the other options are keyword-only",
                args.len()
            )));
        }
        let mut given: Vec<(String, Bound<'_, PyAny>)> = Vec::new();
        for (position, name) in ["service_name", "output_dir"].iter().enumerate() {
            if let Ok(value) = args.get_item(position) {
                given.push((name.to_string(), value));
            }
        }
        if let Some(options) = options {
            for (k, v) in options.iter() {
                let name: String = k.extract()?;
                if given.iter().any(|(n, _)| *n == name) {
                    return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                        "Tracer() got multiple values for argument {name:?}"
                    )));
                }
                given.push((name, v));
            }
        }
        let given: Vec<(&str, Bound<'_, PyAny>)> =
            given.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        let (config, warnings) = option_args::resolve(py, &given)?;
        for w in &warnings {
            logging::warning(py, w);
        }
        if let Err(e) = sinks::check(&config) {
            // Options given here are the caller's to fix; ones from the
            // environment must not stop the service (the exporter is off).
            let given_here = given
                .iter()
                .any(|(name, _)| name.starts_with("otlp_") || name.starts_with("zipkin_"));
            if given_here {
                return Err(PyValueError::new_err(e.0));
            }
        }
        let collector = Collector::new(config);
        registry::register(py, &collector);
        Ok(TracerPy {
            core: Py::new(py, TracerCore::new(py, collector))?,
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
        let parent = Parent::from_arg(parent)?;
        provider::start_span(
            slf.py(),
            &slf.get().core,
            name,
            kind,
            parent,
            [],
            tags,
            None,
        )
    }

    #[getter]
    fn service_name<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        self.core.get().service.bind(py).clone()
    }

    /// The header formats `ft.inject`/`ft.extract` use with this tracer
    /// global ("tracecontext", "b3", "b3multi", "xtrace").
    #[getter]
    fn propagators(&self) -> Vec<&'static str> {
        self.core
            .get()
            .propagators
            .iter()
            .map(|p| p.name())
            .collect()
    }

    #[getter]
    fn output_dir(&self) -> Option<String> {
        self.core
            .get()
            .collector
            .config
            .output_dir
            .as_ref()
            .map(|p| p.display().to_string())
    }

    /// The resolved configuration, as a dict (every option in the table).
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = &self.core.get().collector.config;
        let d = PyDict::new(py);
        for spec in options::OPTIONS {
            d.set_item(spec.name, option_args::to_py(py, spec.read(c))?)?;
        }
        Ok(d)
    }

    /// The tracer's files on disk (spans and trace summaries), oldest
    /// first: a rotated file under its `.gz` name once compressed, and
    /// without the files `max_files` deleted.
    fn files<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let paths: Vec<String> = self
            .core
            .get()
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
        let timeout = registry::timeout_arg(timeout)?;
        let collector = Arc::clone(&self.core.get().collector);
        let done = py.detach(move || collector.flush(timeout));
        self.core.get().log_pending_warnings(py);
        Ok(done)
    }

    /// Flushes and stops the background thread. Spans finished afterwards
    /// are counted as dropped.
    #[pyo3(signature = (timeout=5.0))]
    fn shutdown(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
        let timeout = registry::timeout_arg(timeout)?;
        let collector = Arc::clone(&self.core.get().collector);
        let done = py.detach(move || collector.shutdown(timeout));
        self.core.get().log_pending_warnings(py);
        Ok(done)
    }

    /// Counters: spans and traces started/finished/dropped/written, errors.
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.core.get().log_pending_warnings(py);
        let dict = PyDict::new(py);
        for (key, value) in self.core.get().collector.metrics().entries {
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
        let collectors = registry::live_collectors(py);
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
            self.core.get().collector.config.service_name,
            self.output_dir()
        )
    }
}
