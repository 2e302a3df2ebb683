//! The engine behind `@traced`: one Rust call per traced call that starts
//! the span, activates it, calls the function, and finishes the span. The
//! Python wrapper around it (python/ferrotrace/_decorators.py) is a real
//! function, so signatures, descriptors and pickling behave as before.

use compact_str::CompactString;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::attributes::AttrValue;
use crate::span::SpanKind;

use super::convert;
use super::global;
use super::provider::{self, Parent};
use super::span::{parse_kind, record_exception, SpanPy};
use super::tracer::TracerPy;

#[pyclass(name = "TracedCall", module = "ferrotrace._core", frozen)]
pub struct TracedCallPy {
    func: Py<PyAny>,
    name: CompactString,
    kind: SpanKind,
    tags: Vec<(CompactString, AttrValue)>,
    /// None: the global tracer at call time (so `configure()` after
    /// decoration still takes effect).
    tracer: Option<Py<TracerPy>>,
}

impl TracedCallPy {
    #[inline]
    fn start<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, SpanPy>> {
        let tracer = match &self.tracer {
            Some(t) => t.bind(py).clone(),
            None => global::tracer(py)?,
        };
        provider::start_span(
            py,
            &tracer.get().core,
            self.name.clone(),
            self.kind,
            Parent::Current,
            self.tags.iter().cloned(),
            None,
            None,
        )
    }
}

#[pymethods]
impl TracedCallPy {
    #[new]
    #[pyo3(signature = (func, name, kind=None, tags=None, tracer=None))]
    fn py_new(
        func: Py<PyAny>,
        name: &Bound<'_, PyAny>,
        kind: Option<&Bound<'_, PyAny>>,
        tags: Option<&Bound<'_, PyAny>>,
        tracer: Option<Py<TracerPy>>,
    ) -> PyResult<Self> {
        let name = convert::span_name(name)?;
        let kind = parse_kind(kind)?;
        let mut converted = Vec::new();
        if let Some(tags) = tags.filter(|t| !t.is_none()) {
            convert::for_each_item(tags, provider::TAGS_NOT_A_MAPPING, |k, v| {
                converted.push((convert::key(k), convert::value(v)));
                Ok(())
            })?;
        }
        Ok(TracedCallPy {
            func,
            name,
            kind,
            tags: converted,
            tracer,
        })
    }

    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Calls the wrapped function inside a new active span. The function's
    /// result or exception (the very same object) passes through unchanged.
    #[pyo3(signature = (args, kwargs=None))]
    fn call<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let span = self.start(py)?;
        SpanPy::activate(&span)?;
        let result = self.func.bind(py).call(args, kwargs);
        let s = span.get();
        if let Err(err) = &result {
            let traceback = err.traceback(py).map(|t| t.into_any());
            record_exception(py, s, err.value(py).as_any(), traceback.as_ref());
        }
        s.exit(py);
        result
    }

    /// A new span (not yet active) for the async and generator wrappers,
    /// which enter and leave it themselves.
    fn start_span<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, SpanPy>> {
        self.start(py)
    }
}
