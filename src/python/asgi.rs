//! The per-request work of `ferrotrace.asgi.TracingMiddleware`, in Rust: one
//! call reads the ASGI scope, continues the caller's trace from its headers
//! and starts the server span with the OpenTelemetry HTTP server attributes.
//! Doing this in Python cost several microseconds per request.

use super::once::interned;
use compact_str::CompactString;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::attributes::AttrValue;
use crate::propagation as propagation_core;
use crate::span::SpanKind;

use super::convert;
use super::provider::{self, Parent};
use super::span::SpanPy;
use super::span_context::RemoteParent;
use super::tracer::TracerPy;

fn text_of(value: &Bound<'_, PyAny>) -> Option<CompactString> {
    if let Ok(s) = value.cast::<PyString>() {
        return Some(convert::text(s));
    }
    Some(convert::latin1(value.cast::<PyBytes>().ok()?.as_bytes()))
}

/// `(host, port)` pairs of `scope["server"]` / `scope["client"]`.
fn address(
    scope: &Bound<'_, PyDict>,
    key: &Bound<'_, PyString>,
) -> PyResult<Option<(CompactString, Option<i64>)>> {
    let Some(pair) = scope.get_item(key)? else {
        return Ok(None);
    };
    let Ok(pair) = pair.cast::<PyTuple>() else {
        return Ok(None);
    };
    if pair.len() != 2 {
        return Ok(None);
    }
    let host = pair.get_item(0).ok().and_then(|h| text_of(&h));
    let port = pair.get_item(1).ok().and_then(|p| p.extract::<i64>().ok());
    Ok(host.map(|h| (h, port)))
}

/// Starts (does not enter) the server span of an HTTP request.
#[pyfunction]
pub fn _start_server_span<'py>(
    tracer: &Bound<'py, TracerPy>,
    scope: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, SpanPy>> {
    let py = tracer.py();
    let method = match scope.get_item(interned!(py, "method"))? {
        Some(m) => text_of(&m).unwrap_or_else(|| "GET".into()),
        None => "GET".into(),
    };
    let mut tags: Vec<(CompactString, AttrValue)> = Vec::with_capacity(12);
    let mut put = |key: &str, value: AttrValue| tags.push((key.into(), value));
    put("http.request.method", AttrValue::Str(method.clone()));
    if let Some(path) = scope
        .get_item(interned!(py, "path"))?
        .and_then(|p| text_of(&p))
    {
        put("url.path", AttrValue::Str(path));
    }
    let scheme = scope
        .get_item(interned!(py, "scheme"))?
        .and_then(|s| text_of(&s));
    put(
        "url.scheme",
        AttrValue::Str(scheme.unwrap_or_else(|| "http".into())),
    );
    if let Some(query) = scope
        .get_item(interned!(py, "query_string"))?
        .and_then(|q| text_of(&q))
    {
        if !query.is_empty() {
            put("url.query", AttrValue::Str(query));
        }
    }
    if let Some(version) = scope
        .get_item(interned!(py, "http_version"))?
        .and_then(|v| text_of(&v))
    {
        put("network.protocol.version", AttrValue::Str(version));
    }
    // One pass over the headers: host, user agent, and whatever the formats
    // of the tracer the span is recorded into read (resolved when that
    // tracer was made; ASGI header names are lower-case bytes).
    let propagators = tracer.get().core.get().propagators.as_slice();
    let mut trace_headers: Vec<(&'static str, String)> = Vec::new();
    let mut host = None;
    if let Some(headers) = scope.get_item(interned!(py, "headers"))? {
        if let Ok(items) = headers.try_iter() {
            for item in items.flatten() {
                let Ok(pair) = item.cast::<PyTuple>() else {
                    continue;
                };
                if pair.len() != 2 {
                    continue;
                }
                let (Ok(name), Ok(value)) = (pair.get_item(0), pair.get_item(1)) else {
                    continue;
                };
                let Ok(name) = name.cast::<PyBytes>() else {
                    continue;
                };
                match name.as_bytes() {
                    b"host" => host = text_of(&value),
                    b"user-agent" => {
                        if let Some(agent) = text_of(&value) {
                            put("user_agent.original", AttrValue::Str(agent));
                        }
                    }
                    other => {
                        let field = propagators
                            .iter()
                            .flat_map(|p| p.fields())
                            .find(|f| f.as_bytes() == other);
                        if let (Some(field), Some(value)) = (field, text_of(&value)) {
                            // Bounded: a flood of repeated headers is not kept.
                            if trace_headers.len() < 64 {
                                trace_headers.push((field, value.to_string()));
                            }
                        }
                    }
                }
            }
        }
    }
    match host {
        Some(host) => {
            // "name:port", but not a bare IPv6 address.
            let split = host.rsplit_once(':').filter(|(name, port)| {
                !name.contains(':') && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
            });
            match split {
                Some((name, port)) => {
                    put("server.address", AttrValue::Str(name.into()));
                    if let Ok(port) = port.parse::<i64>() {
                        put("server.port", AttrValue::Int(port));
                    }
                }
                None => put("server.address", AttrValue::Str(host)),
            }
        }
        None => {
            if let Some((name, port)) = address(scope, interned!(py, "server"))? {
                put("server.address", AttrValue::Str(name));
                if let Some(port) = port {
                    put("server.port", AttrValue::Int(port));
                }
            }
        }
    }
    if let Some((name, port)) = address(scope, interned!(py, "client"))? {
        put("client.address", AttrValue::Str(name));
        if let Some(port) = port {
            put("client.port", AttrValue::Int(port));
        }
    }
    let parent = if trace_headers.is_empty() {
        None
    } else {
        let found = propagation_core::extract_first(propagators, |name| {
            trace_headers
                .iter()
                .filter(|(field, _)| *field == name)
                .map(|(_, value)| value.as_str())
                .collect()
        });
        found.map(|ctx| RemoteParent {
            trace_id: ctx.trace_id,
            span_id: ctx.span_id,
            sampled: ctx.sampled,
            random: ctx.random,
            remote: true,
            tracestate: ctx.tracestate.as_deref().map(std::sync::Arc::from),
        })
    };
    let parent = match parent {
        Some(remote) => Parent::Remote(remote),
        None => Parent::Current,
    };
    provider::start_span(
        py,
        &tracer.get().core,
        method,
        SpanKind::Server,
        parent,
        tags,
        None,
        None,
    )
}

/// Records `http.response.start` on the server span: the status code (5xx
/// fails the span) and, if `header` is given, the trace id as a response
/// header appended to the message's headers (a new list: the application's
/// own list is left alone).
#[pyfunction]
pub fn _server_response_start(
    span: &Bound<'_, SpanPy>,
    message: &Bound<'_, PyDict>,
    header: Option<&Bound<'_, PyBytes>>,
) -> PyResult<()> {
    let py = span.py();
    let s = span.get();
    if let Some(code) = message
        .get_item(interned!(py, "status"))?
        .and_then(|c| c.extract::<i64>().ok())
    {
        s.set_server_status(code);
    }
    if let Some(name) = header {
        let headers = PyList::empty(py);
        if let Some(existing) = message.get_item(interned!(py, "headers"))? {
            for item in existing.try_iter()? {
                headers.append(item?)?;
            }
        }
        let value = PyBytes::new(py, s.trace_id.to_hex().as_bytes());
        headers.append((name, value))?;
        message.set_item(interned!(py, "headers"), headers)?;
    }
    Ok(())
}

/// Once the application has run: names the span `METHOD route-template`
/// from the route the framework matched (`scope["route"]`, as Starlette and
/// FastAPI record it; routes inside a Mount are relative to its prefix) and
/// records `http.route`. Without a matched route the name stays `METHOD`.
#[pyfunction]
pub fn _finish_server_span(span: &Bound<'_, SpanPy>, scope: &Bound<'_, PyDict>) -> PyResult<()> {
    let py = span.py();
    let Some(route) = scope.get_item(interned!(py, "route"))? else {
        return Ok(());
    };
    let path = [interned!(py, "path"), interned!(py, "path_format")]
        .into_iter()
        .find_map(|attr| {
            route
                .getattr(attr)
                .ok()
                .and_then(|p| p.cast_into::<PyString>().ok())
                .map(|p| convert::text(&p))
                .filter(|p| !p.is_empty())
        });
    let Some(path) = path else {
        return Ok(());
    };
    let root_path = scope
        .get_item(interned!(py, "root_path"))?
        .and_then(|p| text_of(&p))
        .unwrap_or_default();
    let app_root = scope
        .get_item(interned!(py, "app_root_path"))?
        .and_then(|p| text_of(&p))
        .unwrap_or_else(|| root_path.clone());
    let mut template = CompactString::from(root_path.strip_prefix(app_root.as_str()).unwrap_or(""));
    template.push_str(&path);
    span.get().set_route(template);
    Ok(())
}
