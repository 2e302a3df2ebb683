//! The provider behind every tracer object: one collector, sampler and set
//! of propagators, shared (`Arc<TracerCore>`) by the `Tracer` that made it,
//! by every span it starts, and by cheap per-scope tracers (an
//! instrumentation library's name and version, as OpenTelemetry's
//! `get_tracer(name, version)` asks for). Spans hold this handle rather
//! than the Python `Tracer`, so `span.rs` needs nothing from `tracer.rs`.
//!
//! Span starting lives here: it is the one hot path every API (the `with`
//! block, `@traced`, the ASGI middleware) goes through.

use std::sync::Arc;

use compact_str::CompactString;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::attributes::{AttrValue, Limits};
use crate::clock;
use crate::collector::Collector;
use crate::config::Config;
use crate::ids::{SpanId, TraceId};
use crate::propagation::Propagator;
use crate::sampling::Sampler;
use crate::span::{Scope, SpanKind};

use super::context;
use super::convert;
use super::logging;
use super::otel;
use super::span::SpanPy;
use super::span_context::SpanContextPy;

pub struct TracerCore {
    pub collector: Arc<Collector>,
    /// The service name as a Python str, made once (read by `span.service`).
    pub service: Py<PyString>,
    sampler: Sampler,
    /// Header formats of `ft.inject`/`ft.extract` when this is the global
    /// tracer, and of the integrations given this tracer (resolved once).
    pub propagators: Vec<Propagator>,
    /// `OTEL_SDK_DISABLED=true`: spans are counted, nothing is recorded.
    disabled: bool,
}

impl TracerCore {
    pub fn new(py: Python<'_>, collector: Arc<Collector>) -> Self {
        let config: &Config = &collector.config;
        TracerCore {
            propagators: config.propagators.clone(),
            service: PyString::new(py, &config.service_name).unbind(),
            sampler: Sampler::new(
                config.sample_rate,
                config.max_traces_per_second,
                config.parent_based,
            ),
            disabled: config.disabled,
            collector,
        }
    }

    #[inline]
    pub fn limits(&self) -> Limits {
        self.collector.config.limits
    }

    #[inline]
    pub fn log_pending_warnings(&self, py: Python<'_>) {
        if self.collector.has_warnings() {
            for message in self.collector.take_warnings() {
                logging::warning(py, &message);
            }
        }
    }
}

/// Where a new span's parent comes from.
pub enum Parent<'a> {
    /// The active span of this thread or task, else none (a new trace).
    Current,
    /// A span of this process (of any tracer).
    Span(&'a SpanPy),
    /// A context from another process (extracted from headers).
    Remote(RemoteParent),
    /// None: a new trace, whatever is active (an OpenTelemetry context
    /// without a valid span).
    Root,
}

/// A parent context read from a carrier, without a Python object.
#[derive(Clone)]
pub struct RemoteParent {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub sampled: bool,
    /// A `SpanContext(is_remote=False)` continues a trace as a local parent.
    pub remote: bool,
    pub tracestate: Option<Arc<str>>,
}

impl<'a> Parent<'a> {
    /// The `parent=` argument: None (the active span), a Span or a SpanContext.
    pub fn from_arg(parent: Option<&'a Bound<'_, PyAny>>) -> PyResult<Self> {
        let Some(p) = parent.filter(|p| !p.is_none()) else {
            return Ok(Parent::Current);
        };
        if let Ok(span) = p.cast::<SpanPy>() {
            return Ok(Parent::Span(span.get()));
        }
        if let Ok(ctx) = p.cast::<SpanContextPy>() {
            return Ok(Parent::Remote(ctx.get().as_parent()));
        }
        Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "parent must be a Span, a SpanContext or None, not {}",
            convert::display(&p.get_type().into_any())
        )))
    }
}

/// What a new span takes from its parent.
struct Inherited {
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
fn inherit_from_span(me: &Arc<TracerCore>, parent: &SpanPy) -> Inherited {
    let service = if Arc::ptr_eq(&parent.core, me) {
        None
    } else {
        let theirs = &parent.core.collector.config.service_name;
        (*theirs != me.collector.config.service_name).then(|| CompactString::from(theirs.as_str()))
    };
    Inherited {
        trace_id: parent.trace_id,
        span_id: parent.span_id,
        sampled: parent.sampled,
        remote: false,
        service,
        tracestate: parent.tracestate.clone(),
    }
}

#[inline]
fn inherit_remote(r: RemoteParent) -> Inherited {
    Inherited {
        trace_id: r.trace_id,
        span_id: r.span_id,
        sampled: r.sampled,
        remote: r.remote,
        service: None,
        tracestate: r.tracestate,
    }
}

pub const TAGS_NOT_A_MAPPING: &str = "tags must be a mapping of attribute names to values";

/// Starts a span (does not activate it).
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn start_span<'py>(
    py: Python<'py>,
    core: &Arc<TracerCore>,
    name: CompactString,
    kind: SpanKind,
    parent: Parent<'_>,
    tags: impl IntoIterator<Item = (CompactString, AttrValue)>,
    extra_tags: Option<&Bound<'py, PyAny>>,
    scope: Option<&Arc<Scope>>,
) -> PyResult<Bound<'py, SpanPy>> {
    let span = new_span(py, core, name, kind, parent, tags, extra_tags, scope)?;
    Bound::new(py, span)
}

/// The span [`start_span`] starts, before it becomes a Python object (the
/// OpenTelemetry bridge wraps it in its subclass).
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn new_span<'py>(
    py: Python<'py>,
    core: &Arc<TracerCore>,
    name: CompactString,
    kind: SpanKind,
    parent: Parent<'_>,
    tags: impl IntoIterator<Item = (CompactString, AttrValue)>,
    extra_tags: Option<&Bound<'py, PyAny>>,
    scope: Option<&Arc<Scope>>,
) -> PyResult<SpanPy> {
    let inherited = match parent {
        Parent::Span(span) => Some(inherit_from_span(core, span)),
        Parent::Remote(r) => Some(inherit_remote(r)),
        Parent::Current => match context::get(py)? {
            Some(current) => match current.cast::<SpanPy>() {
                Ok(span) => Some(inherit_from_span(core, span.get())),
                // Another SDK's span, or an extracted remote context, current
                // in OpenTelemetry's context (bridge mode only).
                Err(_) => otel::foreign_parent(&current).map(inherit_remote),
            },
            None => None,
        },
        Parent::Root => None,
    };
    let (trace_id, sampled) = match &inherited {
        _ if core.disabled => (
            inherited
                .as_ref()
                .map_or_else(TraceId::random, |p| p.trace_id),
            false,
        ),
        Some(p) if p.remote => (
            p.trace_id,
            core.sampler.sample_remote_child(p.trace_id, p.sampled),
        ),
        Some(p) => (p.trace_id, p.sampled),
        None => {
            let trace_id = TraceId::random();
            (trace_id, core.sampler.sample_new_trace(trace_id))
        }
    };
    let local_root = inherited.as_ref().is_none_or(|p| p.remote);
    let tracestate = inherited.as_ref().and_then(|p| p.tracestate.clone());
    if !sampled && (core.disabled || !core.collector.config.tail.enabled()) {
        // Nothing will be written: skip the record and all conversions.
        core.collector.span_started(local_root);
        let span = SpanPy::unrecorded(
            Arc::clone(core),
            trace_id,
            inherited.map(|p| p.span_id),
            name,
            kind,
            local_root,
            clock::monotonic_coarse_ns(),
        )
        .with_tracestate(tracestate);
        return Ok(span);
    }
    let pool = &core.collector.pipeline().pool;
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
    record.tracestate.clone_from(&tracestate);
    record.scope = scope.cloned();
    let limits = core.limits();
    for (k, v) in tags {
        record.attributes.set(k, v, &limits);
    }
    if let Some(extra) = extra_tags.filter(|t| !t.is_none()) {
        convert::for_each_item(extra, TAGS_NOT_A_MAPPING, |k, v| {
            record
                .attributes
                .set(convert::key(k), convert::value(v), &limits);
            Ok(())
        })?;
    }
    let mono = clock::monotonic_ns();
    record.start_mono = mono;
    record.start_ns = clock::to_wall_ns(mono);
    core.collector.span_started(record.is_local_root);
    Ok(SpanPy::new(Arc::clone(core), record).with_tracestate(tracestate))
}
