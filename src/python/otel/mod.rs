//! The OpenTelemetry API bridge: spans made through `opentelemetry.trace`
//! (and so by every `opentelemetry-instrumentation-*` package) are ferrotrace
//! spans, started on the same hot path (`provider::new_span`), sampled by
//! the same sampler, written by the same collector.
//!
//! - `tracer.rs`: `OTelTracer` (what `TracerProvider.get_tracer` returns) and
//!   the class-based context manager of `start_as_current_span`;
//! - `span.rs`: `OTelSpan`, a ferrotrace `Span` subclass with the
//!   OpenTelemetry semantics where the two APIs differ (`kind` is a
//!   `SpanKind`, entering does not activate, `set_status` follows the
//!   specification's rules);
//! - here: the handles on the `opentelemetry` package, imported once, and the
//!   conversions between its values and ours (span contexts, parents, links).
//!
//! One current span for both APIs comes from `context.rs` (bridge mode).
//! Nothing here is imported or run unless `ferrotrace.otel` is used, so
//! `import ferrotrace` never imports `opentelemetry`.

mod span;
mod tracer;

pub use span::OtelSpanPy;
pub use tracer::{CurrentSpanPy, OtelTracerPy};

use std::sync::Arc;

use crate::python::once::{interned, GilOnceCell};
use compact_str::CompactString;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyType};

use crate::attributes::{Attributes, Limits};
use crate::ids::{SpanId, TraceId};
use crate::propagation;
use crate::span::{Link, SpanKind, Status};

use super::context;
use super::convert;
use super::span::SpanPy;
use super::span_context::RemoteParent;
use super::span_context::SpanContextPy;

/// What the bridge uses of `opentelemetry.trace`, imported once.
struct Api {
    span_context: Py<PyType>,
    /// `TraceFlags(0)` to `TraceFlags(3)`, indexed by the flags byte
    /// (sampled 0x01, W3C Level 2 random 0x02).
    trace_flags: [Py<PyAny>; 4],
    trace_state: Py<PyType>,
    default_trace_state: Py<PyAny>,
    /// The `SpanKind` members in [`SpanKind`]'s order.
    span_kinds: [Py<PyAny>; 5],
    /// `StatusCode.UNSET`, `OK`, `ERROR`.
    status_codes: [Py<PyAny>; 3],
}

static API: GilOnceCell<Api> = GilOnceCell::new();

const KINDS: [SpanKind; 5] = [
    SpanKind::Internal,
    SpanKind::Server,
    SpanKind::Client,
    SpanKind::Producer,
    SpanKind::Consumer,
];

fn api(py: Python<'_>) -> PyResult<&Api> {
    API.get_or_try_init(py, || {
        let trace = py.import("opentelemetry.trace")?;
        let flags = trace.getattr("TraceFlags")?;
        let kind = trace.getattr("SpanKind")?;
        let code = trace.getattr("StatusCode")?;
        let member = |owner: &Bound<'_, PyAny>, name: &str| owner.getattr(name).map(Bound::unbind);
        Ok::<_, PyErr>(Api {
            span_context: trace
                .getattr("SpanContext")?
                .cast_into::<PyType>()?
                .unbind(),
            trace_flags: [
                flags.call1((0,))?.unbind(),
                flags.call1((1,))?.unbind(),
                flags.call1((2,))?.unbind(),
                flags.call1((3,))?.unbind(),
            ],
            trace_state: trace.getattr("TraceState")?.cast_into::<PyType>()?.unbind(),
            default_trace_state: trace.getattr("DEFAULT_TRACE_STATE")?.unbind(),
            span_kinds: [
                member(&kind, "INTERNAL")?,
                member(&kind, "SERVER")?,
                member(&kind, "CLIENT")?,
                member(&kind, "PRODUCER")?,
                member(&kind, "CONSUMER")?,
            ],
            status_codes: [
                member(&code, "UNSET")?,
                member(&code, "OK")?,
                member(&code, "ERROR")?,
            ],
        })
    })
}

/// Installs the bridge: one current span for both APIs (see `context.rs`),
/// and ferrotrace's span and tracer classes registered as implementations
/// of the `opentelemetry.trace` abstract classes (`trace.use_span` checks).
#[pyfunction]
pub fn _otel_install(py: Python<'_>) -> PyResult<()> {
    api(py)?;
    let trace = py.import("opentelemetry.trace")?;
    trace
        .getattr("Span")?
        .call_method1("register", (py.get_type::<SpanPy>(),))?;
    trace
        .getattr("Tracer")?
        .call_method1("register", (py.get_type::<OtelTracerPy>(),))?;
    context::install_otel(py)
}

/// The `SpanKind` member of `kind`.
fn kind_to_py(py: Python<'_>, kind: SpanKind) -> PyResult<Bound<'_, PyAny>> {
    let i = KINDS.iter().position(|k| *k == kind).unwrap_or(0);
    Ok(api(py)?.span_kinds[i].bind(py).clone())
}

/// A `SpanKind` member (compared by identity first: the common case), or
/// anything ferrotrace's own `kind=` takes.
fn kind_from_py(kind: Option<&Bound<'_, PyAny>>) -> PyResult<SpanKind> {
    let Some(kind) = kind.filter(|k| !k.is_none()) else {
        return Ok(SpanKind::Internal);
    };
    let py = kind.py();
    if let Some(i) = api(py)?.span_kinds.iter().position(|k| k.bind(py).is(kind)) {
        return Ok(KINDS[i]);
    }
    super::span::parse_kind(Some(kind))
}

/// A `Status` or `StatusCode` as our status and description; None for
/// anything else (ferrotrace's own `set_status` values).
fn status_from_py(
    status: &Bound<'_, PyAny>,
    description: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<(Status, Option<CompactString>)>> {
    let py = status.py();
    let codes = &api(py)?.status_codes;
    let code_of = |code: &Bound<'_, PyAny>| {
        codes
            .iter()
            .position(|c| c.bind(py).is(code))
            .map(|i| [Status::Unset, Status::Ok, Status::Error][i])
    };
    if let Some(parsed) = code_of(status) {
        let description = description.filter(|d| !d.is_none()).map(convert::display);
        return Ok(Some((parsed, description)));
    }
    // A `Status`: its code and description (the argument is ignored, as
    // the SDK does).
    if let Some(code) = status.getattr_opt(interned!(py, "status_code"))? {
        if let Some(parsed) = code_of(&code) {
            let description = status
                .getattr_opt(interned!(py, "description"))?
                .filter(|d| !d.is_none())
                .map(|d| convert::display(&d));
            return Ok(Some((parsed, description)));
        }
    }
    Ok(None)
}

/// A span's `SpanContext`, as `get_span_context()` returns it.
pub fn span_context<'py>(
    py: Python<'py>,
    trace_id: TraceId,
    span_id: SpanId,
    sampled: bool,
    random: bool,
    tracestate: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    let api = api(py)?;
    let state = match tracestate {
        Some(header) => api
            .trace_state
            .bind(py)
            .call_method1(interned!(py, "from_header"), (vec![header],))?,
        None => api.default_trace_state.bind(py).clone(),
    };
    api.span_context.bind(py).call1((
        trace_id.0,
        span_id.0,
        false,
        api.trace_flags[usize::from(propagation::trace_flags(sampled, random))].bind(py),
        state,
    ))
}

/// The ids, sampled flag and tracestate of an OpenTelemetry `SpanContext`
/// (or of anything with its attributes), if it is valid.
fn read_span_context(ctx: &Bound<'_, PyAny>) -> PyResult<Option<RemoteParent>> {
    let py = ctx.py();
    if !ctx.getattr(interned!(py, "is_valid"))?.is_truthy()? {
        return Ok(None);
    }
    let trace_id: u128 = ctx.getattr(interned!(py, "trace_id"))?.extract()?;
    let span_id: u64 = ctx.getattr(interned!(py, "span_id"))?.extract()?;
    let flags: i64 = ctx.getattr(interned!(py, "trace_flags"))?.extract()?;
    let is_remote = ctx.getattr(interned!(py, "is_remote"))?.is_truthy()?;
    let state = ctx.getattr(interned!(py, "trace_state"))?;
    let tracestate = if state.is_none() || state.len().unwrap_or(0) == 0 {
        None
    } else {
        let header = state.call_method0(interned!(py, "to_header"))?;
        Some(Arc::from(convert::display(&header).as_str()))
    };
    if trace_id == 0 || span_id == 0 {
        return Ok(None);
    }
    Ok(Some(RemoteParent {
        trace_id: TraceId(trace_id),
        span_id: SpanId(span_id),
        sampled: flags & i64::from(propagation::FLAG_SAMPLED) != 0,
        random: flags & i64::from(propagation::FLAG_RANDOM) != 0,
        remote: is_remote,
        tracestate,
    }))
}

/// The parent a span current in OpenTelemetry's context gives, when it is
/// not one of ours: another SDK's span, or the `NonRecordingSpan` of a
/// context extracted from headers. Its spans are not in our records, so it
/// is a remote parent to us (the child is a local root). Never raises: an
/// object that does not answer like a span is no parent.
pub fn foreign_parent(span: &Bound<'_, PyAny>) -> Option<RemoteParent> {
    let py = span.py();
    let found = span
        .call_method0(interned!(py, "get_span_context"))
        .and_then(|ctx| read_span_context(&ctx));
    match found {
        Ok(parent) => parent.map(|p| RemoteParent { remote: true, ..p }),
        Err(_) => None,
    }
}

/// The parent a `context=` argument names.
enum ContextParent<'py> {
    Span(Bound<'py, SpanPy>),
    Remote(RemoteParent),
    /// No span, or an invalid one: an explicit context without a span
    /// starts a new trace, whatever is current.
    Root,
}

fn parent_in_context<'py>(ctx: &Bound<'py, PyAny>) -> PyResult<ContextParent<'py>> {
    let py = ctx.py();
    let key = match context::otel_span_key(py) {
        Some(key) => key.clone(),
        None => py
            .import("opentelemetry.trace.propagation")?
            .getattr("_SPAN_KEY")?
            .cast_into::<PyString>()?,
    };
    let found = match ctx.cast::<PyDict>() {
        Ok(dict) => dict.get_item(&key)?,
        Err(_) => Some(
            ctx.call_method1(interned!(py, "get"), (&key,))
                .map_err(|_| {
                    PyTypeError::new_err(format!(
                        "context must be an opentelemetry.context.Context, not {}",
                        convert::display(&ctx.get_type().into_any())
                    ))
                })?,
        ),
    };
    let Some(found) = found.filter(|f| !f.is_none()) else {
        return Ok(ContextParent::Root);
    };
    Ok(match found.cast_into::<SpanPy>() {
        Ok(span) => ContextParent::Span(span),
        Err(e) => {
            foreign_parent(&e.into_inner()).map_or(ContextParent::Root, ContextParent::Remote)
        }
    })
}

/// A link to `target` (an OpenTelemetry `SpanContext`, or a ferrotrace
/// `Span` or `SpanContext`) with `attributes`; None for an invalid context.
pub fn link(
    target: &Bound<'_, PyAny>,
    attributes: Option<&Bound<'_, PyAny>>,
    limits: &Limits,
) -> PyResult<Option<Link>> {
    let linked = if let Ok(span) = target.cast::<SpanPy>() {
        let s = span.get();
        Some((
            s.trace_id,
            s.span_id,
            s.sampled,
            s.random,
            s.tracestate.clone(),
        ))
    } else if let Ok(ctx) = target.cast::<SpanContextPy>() {
        let c = ctx.get();
        let state = c.tracestate.as_deref().map(Arc::from);
        Some((c.trace_id, c.span_id, c.sampled, c.random, state))
    } else {
        let not_a_context = || {
            PyTypeError::new_err(format!(
                "a link's context must be a SpanContext (OpenTelemetry's or ferrotrace's) or \
                 a Span, not {}",
                convert::display(&target.get_type().into_any())
            ))
        };
        if target
            .getattr_opt(interned!(target.py(), "is_valid"))?
            .is_none()
        {
            return Err(not_a_context());
        }
        read_span_context(target)
            .map_err(|_| not_a_context())?
            .map(|p| (p.trace_id, p.span_id, p.sampled, p.random, p.tracestate))
    };
    let Some((trace_id, span_id, sampled, random, tracestate)) = linked else {
        return Ok(None);
    };
    let mut link_attributes = Attributes::default();
    if let Some(attrs) = attributes.filter(|a| !a.is_none()) {
        convert::for_each_item(attrs, "link attributes must be a mapping", |k, v| {
            if !v.is_none() {
                link_attributes.set(convert::key(k), convert::value(v), limits);
            }
            Ok(())
        })?;
    }
    Ok(Some(Link {
        trace_id,
        span_id,
        sampled,
        random,
        tracestate,
        attributes: link_attributes,
    }))
}

/// The links of a `links=` argument: `opentelemetry.trace.Link` objects
/// (a `context` and `attributes` each).
fn links_from(links: &Bound<'_, PyAny>, limits: &Limits) -> PyResult<Vec<Link>> {
    let py = links.py();
    let mut out = Vec::new();
    let not_links = || {
        PyTypeError::new_err(
            "links must be a sequence of opentelemetry.trace.Link (a context and attributes)",
        )
    };
    for item in links.try_iter().map_err(|_| not_links())? {
        let item = item?;
        let context = item
            .getattr(interned!(py, "context"))
            .map_err(|_| not_links())?;
        let attributes = item.getattr_opt(interned!(py, "attributes"))?;
        if let Some(link) = link(&context, attributes.as_ref(), limits)? {
            out.push(link);
        }
    }
    Ok(out)
}
