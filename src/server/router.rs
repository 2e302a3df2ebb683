//! Which request goes where. The edge checks (Host, CORS, body limits,
//! decompression, see `edge.rs`) run here once, before any handler.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE, ALLOW, ORIGIN, VARY,
    X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Method, Request, StatusCode};
use serde_json::json;

use super::edge::{self, AllowedHosts};
use super::index::Index;
use super::span_log::SpanLog;
use super::status::{reply, Protocol, Reject, Reply};
use super::{
    otlp_receiver, query_api, static_files, stats_api, zipkin_receiver, ServeError, ServeOptions,
};

/// Which socket a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// `--port`: everything.
    Main,
    /// `--otlp-port`: `POST /v1/traces` only.
    Otlp,
}

pub struct State {
    index: Arc<Index>,
    log: SpanLog,
    hosts: AllowedHosts,
    cors_origin: Option<HeaderValue>,
    max_body: usize,
    spans_received: AtomicU64,
    spans_rejected: AtomicU64,
    requests_rejected: AtomicU64,
}

impl State {
    pub fn new(
        options: &ServeOptions,
        addr: SocketAddr,
        otlp_addr: Option<SocketAddr>,
        index: Arc<Index>,
    ) -> Result<State, ServeError> {
        let bound: Vec<SocketAddr> = std::iter::once(addr).chain(otlp_addr).collect();
        let cors_origin = match &options.cors_origin {
            None => None,
            Some(o) => Some(HeaderValue::from_str(o).map_err(|_| {
                ServeError::Option(format!("--cors-origin {o:?} is not a valid origin"))
            })?),
        };
        Ok(State {
            index,
            log: SpanLog::new(&options.dir),
            hosts: AllowedHosts::new(&options.host, &bound),
            cors_origin,
            max_body: options.max_body_bytes,
            spans_received: AtomicU64::new(0),
            spans_rejected: AtomicU64::new(0),
            requests_rejected: AtomicU64::new(0),
        })
    }

    /// Writes received spans to the directory, then indexes them. A write
    /// error is a 503, which OTLP clients retry; the lines already written
    /// stay, are indexed and counted.
    pub fn store_received(
        &self,
        mut rows: Vec<crate::analysis::SpanRow>,
        rejected: u64,
    ) -> Result<(), Reject> {
        self.spans_rejected.fetch_add(rejected, Ordering::Relaxed);
        let outcome = self.log.append(&rows);
        let written = match &outcome {
            Ok(()) => rows.len(),
            Err((written, _)) => *written,
        };
        rows.truncate(written);
        self.spans_received
            .fetch_add(written as u64, Ordering::Relaxed);
        self.index.add(rows);
        outcome.map_err(|(_, e)| {
            Reject::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("could not write the spans to the traces directory: {e}"),
            )
        })
    }

    fn status(&self) -> Reply {
        let data = json!({
            "index": self.index.counters(),
            "spans_received": self.spans_received.load(Ordering::Relaxed),
            "spans_rejected": self.spans_rejected.load(Ordering::Relaxed),
            "requests_rejected": self.requests_rejected.load(Ordering::Relaxed),
        });
        query_api::envelope(data, 1)
    }
}

/// The protocol whose error shape a request gets.
fn protocol_of(path: &str, headers: &hyper::HeaderMap) -> Protocol {
    match path {
        "/v1/traces" => {
            otlp_receiver::protocol(&edge::media_type(headers)).unwrap_or(Protocol::OtlpProtobuf)
        }
        "/api/v2/spans" => Protocol::Zipkin,
        p if p.starts_with("/api/") => Protocol::Api,
        _ => Protocol::Page,
    }
}

pub async fn handle(state: &State, which: Listener, req: Request<Incoming>) -> Reply {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let protocol = protocol_of(&path, &parts.headers);
    let cors = state.cors_origin.as_ref().filter(|allowed| {
        parts
            .headers
            .get(ORIGIN)
            .is_some_and(|o| o == *allowed || allowed.as_bytes() == b"*")
    });
    let result = match state.hosts.check(&parts.headers) {
        Err(r) => Err(r),
        Ok(()) if parts.method == Method::OPTIONS && cors.is_some() => Ok(preflight()),
        Ok(()) => route(state, which, &parts, &path, protocol, body).await,
    };
    let mut response = result.unwrap_or_else(|r| {
        if r.status.is_client_error() && protocol != Protocol::Api && protocol != Protocol::Page {
            state.requests_rejected.fetch_add(1, Ordering::Relaxed);
        }
        r.render(protocol)
    });
    let h = response.headers_mut();
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Some(origin) = cors {
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(VARY, HeaderValue::from_static("Origin"));
    }
    response
}

fn preflight() -> Reply {
    let mut r = reply(StatusCode::NO_CONTENT, "text/plain", "");
    let h = r.headers_mut();
    h.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type, Content-Encoding"),
    );
    h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    r
}

fn method_not_allowed(allow: &'static str) -> Reject {
    Reject::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed here (allowed: {allow})"),
    )
}

async fn route(
    state: &State,
    which: Listener,
    parts: &hyper::http::request::Parts,
    path: &str,
    protocol: Protocol,
    body: Incoming,
) -> Result<Reply, Reject> {
    let receiver = match path {
        "/v1/traces" => true,
        "/api/v2/spans" if which == Listener::Main => true,
        _ => false,
    };
    if receiver {
        if parts.method != Method::POST {
            let mut r = method_not_allowed("POST").render(protocol);
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST"));
            return Ok(r);
        }
        let media_type = edge::media_type(&parts.headers);
        let accepted = match path {
            "/v1/traces" => otlp_receiver::protocol(&media_type).is_some(),
            _ => media_type == "application/json" || media_type.is_empty(),
        };
        if !accepted {
            let want = if path == "/v1/traces" {
                "application/x-protobuf or application/json"
            } else {
                "application/json"
            };
            return Err(Reject::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Type {media_type:?} is not supported here (use {want})"),
            ));
        }
        // Refused before reading when the client says up front it is too big.
        let declared = parts
            .headers
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > state.max_body as u64) {
            return Err(Reject::too_large(state.max_body));
        }
        let raw = edge::read_body(body, state.max_body).await?;
        let body = edge::decode(raw, &parts.headers, state.max_body)?;
        return match path {
            "/v1/traces" => otlp_receiver::receive(state, protocol, &body),
            _ => zipkin_receiver::receive(state, &body),
        };
    }
    if which == Listener::Otlp {
        return Err(Reject::not_found(format!(
            "{path}: this port serves only POST /v1/traces"
        )));
    }
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return Err(method_not_allowed("GET"));
    }
    if path == "/api/ferrotrace/status" {
        return Ok(state.status());
    }
    if let Some(answer) = stats_api::answer(&state.index, path, parts.uri.query()) {
        return answer;
    }
    if let Some(answer) = query_api::answer(&state.index, path, parts.uri.query()) {
        return answer;
    }
    if static_files::is_page(path) {
        return Ok(static_files::page());
    }
    if let Some(file) = path.strip_prefix("/ui/").and_then(static_files::file) {
        return Ok(file);
    }
    Err(Reject::not_found(format!("{path} not found")))
}
