//! `OTelTracer`, what `ferrotrace.otel.TracerProvider.get_tracer` returns:
//! an instrumentation scope over a ferrotrace tracer (or the global one,
//! resolved per span so a later `ft.configure()` takes effect), and the
//! class-based context manager `start_as_current_span` returns (the API's
//! generator-based one costs several microseconds per span).

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::attributes::AttrValue;
use crate::span::Scope;

use super::super::context;
use super::super::convert;
use super::super::global;
use super::super::provider::{self, Parent};
use super::super::span::SpanPy;
use super::super::tracer::TracerPy;
use super::super::tracer_core::TracerCore;
use super::span::{exception_escaped, OtelSpanPy};
use super::{kind_from_py, links_from, parent_in_context, ContextParent};

#[pyclass(name = "OTelTracer", module = "ferrotrace._core", frozen)]
pub struct OtelTracerPy {
    /// None: the global tracer, looked up at each span start.
    tracer: Option<Py<TracerPy>>,
    scope: Arc<Scope>,
}

/// `start_span`'s arguments besides the name, as Python passed them.
struct StartArgs<'a, 'py> {
    context: Option<&'a Bound<'py, PyAny>>,
    kind: Option<&'a Bound<'py, PyAny>>,
    attributes: Option<&'a Bound<'py, PyAny>>,
    links: Option<&'a Bound<'py, PyAny>>,
    start_time: Option<u64>,
    record_exception: bool,
    set_status_on_exception: bool,
}

impl OtelTracerPy {
    fn core(&self, py: Python<'_>) -> PyResult<Py<TracerCore>> {
        Ok(match &self.tracer {
            Some(t) => t.get().core.clone_ref(py),
            None => global::tracer(py)?.get().core.clone_ref(py),
        })
    }

    fn start<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        args: StartArgs<'_, 'py>,
    ) -> PyResult<Bound<'py, OtelSpanPy>> {
        let core = self.core(py)?;
        let name = convert::span_name(name)?;
        let kind = kind_from_py(args.kind)?;
        // Attributes set to None are left out (the SDK drops them).
        let mut tags: Vec<(compact_str::CompactString, AttrValue)> = Vec::new();
        if let Some(attributes) = args.attributes.filter(|a| !a.is_none()) {
            convert::for_each_item(attributes, provider::TAGS_NOT_A_MAPPING, |k, v| {
                if !v.is_none() {
                    tags.push((convert::key(k), convert::value(v)));
                }
                Ok(())
            })?;
        }
        let named = match args.context.filter(|c| !c.is_none()) {
            Some(ctx) => Some(parent_in_context(ctx)?),
            None => None,
        };
        let parent = match &named {
            None => Parent::Current,
            Some(ContextParent::Span(span)) => Parent::Span(span.get()),
            Some(ContextParent::Remote(remote)) => Parent::Remote(remote.clone()),
            Some(ContextParent::Root) => Parent::Root,
        };
        // Everything that can fail is read before the span starts, so a
        // misused call leaves no span open.
        let links = match args.links.filter(|l| !l.is_none()) {
            Some(links) => links_from(links, core.get().limits())?,
            None => Vec::new(),
        };
        let span =
            provider::new_span(py, &core, name, kind, parent, tags, None, Some(&self.scope))?;
        if let Some(start_ns) = args.start_time {
            span.set_start_time(start_ns);
        }
        span.add_links(links);
        let otel = OtelSpanPy {
            record_exception: args.record_exception,
            set_status_on_exception: args.set_status_on_exception,
        };
        Bound::new(py, PyClassInitializer::from(span).add_subclass(otel))
    }
}

#[pymethods]
impl OtelTracerPy {
    #[new]
    #[pyo3(signature = (tracer, name, version=None, schema_url=None))]
    fn py_new(
        tracer: Option<Py<TracerPy>>,
        name: &Bound<'_, PyAny>,
        version: Option<&Bound<'_, PyAny>>,
        schema_url: Option<&Bound<'_, PyAny>>,
    ) -> Self {
        let text = |v: Option<&Bound<'_, PyAny>>| v.filter(|v| !v.is_none()).map(convert::display);
        OtelTracerPy {
            tracer,
            scope: Arc::new(Scope {
                name: text(Some(name)).unwrap_or_default(),
                version: text(version),
                schema_url: text(schema_url),
            }),
        }
    }

    /// The instrumentation scope's name.
    #[getter]
    fn name(&self) -> &str {
        &self.scope.name
    }

    #[getter]
    fn version(&self) -> Option<&str> {
        self.scope.version.as_deref()
    }

    /// Starts a span, not made current (`opentelemetry.trace.Tracer.start_span`).
    #[pyo3(signature = (
        name,
        context=None,
        kind=None,
        attributes=None,
        links=None,
        start_time=None,
        record_exception=true,
        set_status_on_exception=true,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn start_span<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        context: Option<&Bound<'py, PyAny>>,
        kind: Option<&Bound<'py, PyAny>>,
        attributes: Option<&Bound<'py, PyAny>>,
        links: Option<&Bound<'py, PyAny>>,
        start_time: Option<u64>,
        record_exception: bool,
        set_status_on_exception: bool,
    ) -> PyResult<Bound<'py, OtelSpanPy>> {
        let args = StartArgs {
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        };
        self.start(py, name, args)
    }

    /// A context manager (and decorator) that starts a span when entered,
    /// makes it current, and ends it on exit.
    #[pyo3(signature = (
        name,
        context=None,
        kind=None,
        attributes=None,
        links=None,
        start_time=None,
        record_exception=true,
        set_status_on_exception=true,
        end_on_exit=true,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn start_as_current_span(
        slf: &Bound<'_, Self>,
        name: Py<PyAny>,
        context: Option<Py<PyAny>>,
        kind: Option<Py<PyAny>>,
        attributes: Option<Py<PyAny>>,
        links: Option<Py<PyAny>>,
        start_time: Option<u64>,
        record_exception: bool,
        set_status_on_exception: bool,
        end_on_exit: bool,
    ) -> CurrentSpanPy {
        CurrentSpanPy {
            tracer: slf.clone().unbind(),
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
            end_on_exit,
            span: None,
            token: None,
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "<OTelTracer scope={:?} version={:?}>",
            self.scope.name.as_str(),
            self.scope.version.as_deref()
        )
    }
}

/// `start_as_current_span(...)`: the span starts when the block is entered
/// (so it can also decorate functions, a new span per call).
#[pyclass(name = "CurrentSpan", module = "ferrotrace._core", freelist = 64)]
pub struct CurrentSpanPy {
    tracer: Py<OtelTracerPy>,
    name: Py<PyAny>,
    context: Option<Py<PyAny>>,
    kind: Option<Py<PyAny>>,
    attributes: Option<Py<PyAny>>,
    links: Option<Py<PyAny>>,
    start_time: Option<u64>,
    record_exception: bool,
    set_status_on_exception: bool,
    end_on_exit: bool,
    span: Option<Py<OtelSpanPy>>,
    token: Option<Py<PyAny>>,
}

#[pymethods]
impl CurrentSpanPy {
    fn __enter__<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, OtelSpanPy>> {
        if self.span.is_some() {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "this start_as_current_span() context manager is already entered; \
                 call start_as_current_span() again for another span",
            ));
        }
        let args = StartArgs {
            context: self.context.as_ref().map(|c| c.bind(py)),
            kind: self.kind.as_ref().map(|k| k.bind(py)),
            attributes: self.attributes.as_ref().map(|a| a.bind(py)),
            links: self.links.as_ref().map(|l| l.bind(py)),
            start_time: self.start_time,
            record_exception: self.record_exception,
            set_status_on_exception: self.set_status_on_exception,
        };
        let span = self.tracer.get().start(py, self.name.bind(py), args)?;
        let token = context::set(py, span.as_any())?;
        self.token = Some(token.unbind());
        self.span = Some(span.clone().unbind());
        Ok(span)
    }

    /// Restores the previous current span, records an escaping exception
    /// (an `Exception`, as `use_span` does) and ends the span.
    fn __exit__(
        &mut self,
        py: Python<'_>,
        _exc_type: &Bound<'_, PyAny>,
        exc_value: &Bound<'_, PyAny>,
        _traceback: &Bound<'_, PyAny>,
    ) -> bool {
        let Some(span) = self.span.take() else {
            return false;
        };
        if let Some(token) = self.token.take() {
            // A token from another context (entered in one task, left in
            // another) cannot be reset: not the traced code's problem.
            if context::reset(py, token.bind(py)).is_err() {
                let _ = PyErr::take(py);
            }
        }
        let span = span.bind(py);
        let base: &SpanPy = span.as_super().get();
        if exc_value.is_instance_of::<pyo3::exceptions::PyException>() {
            exception_escaped(
                py,
                base,
                exc_value,
                self.record_exception,
                self.set_status_on_exception,
            );
        }
        if self.end_on_exit {
            base.end_span(py, None);
        }
        false
    }

    /// A new context manager with the same arguments (one per decorated call).
    fn _recreate(&self, py: Python<'_>) -> Self {
        let copy = |o: &Option<Py<PyAny>>| o.as_ref().map(|o| o.clone_ref(py));
        CurrentSpanPy {
            tracer: self.tracer.clone_ref(py),
            name: self.name.clone_ref(py),
            context: copy(&self.context),
            kind: copy(&self.kind),
            attributes: copy(&self.attributes),
            links: copy(&self.links),
            start_time: self.start_time,
            record_exception: self.record_exception,
            set_status_on_exception: self.set_status_on_exception,
            end_on_exit: self.end_on_exit,
            span: None,
            token: None,
        }
    }

    /// As a decorator: each call of `func` (sync or async) runs in a span.
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        func: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        py.import("ferrotrace.otel")?
            .getattr("_decorate")?
            .call1(PyTuple::new(py, [slf.as_any(), func])?)
    }
}
