//! Starting a span: the one hot path every API (the `with` block,
//! `@traced`, the ASGI middleware, scoped tracers) goes through, over the
//! provider core (`tracer_core.rs`) and a [`Parent`].

use std::sync::Arc;

use compact_str::CompactString;
use pyo3::prelude::*;

use crate::attributes::AttrValue;
use crate::clock;
use crate::ids::{SpanId, TraceId};
use crate::span::{Scope, SpanKind};

use super::context;
use super::convert;
use super::otel;
use super::span::SpanPy;
use super::span_context::{RemoteParent, SpanContextPy};
use super::tracer_core::TracerCore;

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
    /// The trace's W3C `random` flag, passed on unchanged.
    random: bool,
    remote: bool,
    /// Set when the parent belongs to another service traced in this process.
    service: Option<CompactString>,
    /// The W3C tracestate to pass on (from a remote context, or inherited).
    tracestate: Option<Arc<str>>,
}

#[inline]
fn inherit_from_span(me: &Py<TracerCore>, parent: &SpanPy) -> Inherited {
    let service = if parent.core.is(me) {
        None
    } else {
        let theirs = &parent.core.get().collector.config.service_name;
        (*theirs != me.get().collector.config.service_name)
            .then(|| CompactString::from(theirs.as_str()))
    };
    Inherited {
        trace_id: parent.trace_id,
        span_id: parent.span_id,
        sampled: parent.sampled,
        random: parent.random,
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
        random: r.random,
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
    core: &Py<TracerCore>,
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
    core: &Py<TracerCore>,
    name: CompactString,
    kind: SpanKind,
    parent: Parent<'_>,
    tags: impl IntoIterator<Item = (CompactString, AttrValue)>,
    extra_tags: Option<&Bound<'py, PyAny>>,
    scope: Option<&Arc<Scope>>,
) -> PyResult<SpanPy> {
    let c = core.get();
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
        _ if c.disabled => (
            inherited
                .as_ref()
                .map_or_else(TraceId::random, |p| p.trace_id),
            false,
        ),
        Some(p) if p.remote => (
            p.trace_id,
            c.sampler.sample_remote_child(p.trace_id, p.sampled),
        ),
        Some(p) => (p.trace_id, p.sampled),
        None => {
            let trace_id = TraceId::random();
            (trace_id, c.sampler.sample_new_trace(trace_id))
        }
    };
    // W3C Level 2: a trace this process starts has a random id (ids.rs),
    // so it carries the random flag; a continued trace keeps its own.
    let random = inherited.as_ref().is_none_or(|p| p.random);
    let local_root = inherited.as_ref().is_none_or(|p| p.remote);
    let tracestate = inherited.as_ref().and_then(|p| p.tracestate.clone());
    if !sampled && (c.disabled || !c.collector.config.tail.enabled()) {
        // Nothing will be written: skip the record and all conversions.
        c.collector.span_started(local_root);
        let span = SpanPy::unrecorded(
            core.clone_ref(py),
            trace_id,
            inherited.map(|p| p.span_id),
            name,
            kind,
            local_root,
            clock::monotonic_coarse_ns(),
        )
        .with_trace_flags(random, tracestate);
        return Ok(span);
    }
    let pool = &c.collector.pipeline().pool;
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
    record.random = random;
    record.is_local_root = local_root;
    record.kind = kind;
    record.tracestate.clone_from(&tracestate);
    record.scope = scope.cloned();
    let limits = c.limits();
    for (k, v) in tags {
        record.attributes.set(k, v, limits);
    }
    if let Some(extra) = extra_tags.filter(|t| !t.is_none()) {
        convert::for_each_item(extra, TAGS_NOT_A_MAPPING, |k, v| {
            record
                .attributes
                .set(convert::key(k), convert::value(v), limits);
            Ok(())
        })?;
    }
    let mono = clock::monotonic_ns();
    record.start_mono = mono;
    record.start_ns = clock::to_wall_ns(mono);
    c.collector.span_started(record.is_local_root);
    Ok(SpanPy::new(core.clone_ref(py), record).with_trace_flags(random, tracestate))
}
