//! `POST /api/v2/spans`, Zipkin v2 JSON (a list of spans), answered 202.
//! A batch is taken whole or refused whole (400 naming the first bad span):
//! Zipkin has no partial success to report a loss in.

use bytes::Bytes;
use compact_str::CompactString;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::analysis::{EventRow, SpanRow};
use crate::export::otlp_receive::UNKNOWN_SERVICE;
use crate::ids::{SpanId, TraceId};

use super::router::State;
use super::status::{reply, Reject, Reply};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ZipkinSpan {
    trace_id: String,
    id: String,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    timestamp: Option<u64>,
    #[serde(default)]
    duration: Option<u64>,
    #[serde(default)]
    local_endpoint: Option<Endpoint>,
    #[serde(default)]
    remote_endpoint: Option<Endpoint>,
    #[serde(default)]
    annotations: Vec<Annotation>,
    #[serde(default)]
    tags: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Endpoint {
    #[serde(default)]
    service_name: Option<String>,
}

#[derive(Deserialize)]
struct Annotation {
    timestamp: u64,
    value: String,
}

pub fn receive(state: &State, body: &Bytes) -> Result<Reply, Reject> {
    let rows = decode(body).map_err(Reject::bad_request)?;
    state.store_received(rows, 0)?;
    Ok(reply(hyper::StatusCode::ACCEPTED, "text/plain", ""))
}

/// A request body's spans as records, or why the batch is refused.
pub(crate) fn decode(body: &[u8]) -> Result<Vec<SpanRow>, String> {
    let spans: Vec<ZipkinSpan> = serde_json::from_slice(body)
        .map_err(|e| format!("not a Zipkin v2 JSON list of spans: {e}"))?;
    spans.into_iter().map(row).collect()
}

/// A 16-digit Zipkin trace id is the low half of a 128-bit one.
fn trace_id(hex: &str) -> Option<TraceId> {
    let ok = (hex.len() == 16 || hex.len() == 32) && hex.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| u128::from_str_radix(hex, 16).ok())
        .flatten()
        .filter(|&n| n != 0)
        .map(TraceId)
}

fn span_id(hex: &str) -> Option<SpanId> {
    let ok = hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
        .filter(|&n| n != 0)
        .map(SpanId)
}

fn row(span: ZipkinSpan) -> Result<SpanRow, String> {
    let bad = |what: &str, value: &str| format!("span {:?}: invalid {what} {value:?}", span.id);
    let trace = trace_id(&span.trace_id.to_ascii_lowercase())
        .ok_or_else(|| bad("traceId", &span.trace_id))?;
    let id = span_id(&span.id.to_ascii_lowercase()).ok_or_else(|| bad("id", &span.id))?;
    let parent = match span.parent_id.as_deref() {
        None | Some("") => None,
        Some(p) => Some(span_id(&p.to_ascii_lowercase()).ok_or_else(|| bad("parentId", p))?),
    };
    let start_ns = span.timestamp.unwrap_or(0).saturating_mul(1000);
    let duration_ns = span.duration.unwrap_or(0).saturating_mul(1000);
    let mut attributes = span.tags;
    let error_text = attributes.remove("error");
    let failed = error_text.is_some()
        || attributes.get("otel.status_code").and_then(Value::as_str) == Some("ERROR");
    if let Some(Value::String(text)) = error_text {
        if !text.is_empty() {
            attributes
                .entry("status_description")
                .or_insert(Value::String(text));
        }
    }
    if let Some(peer) = span.remote_endpoint.and_then(|e| e.service_name) {
        attributes
            .entry("peer.service")
            .or_insert(Value::String(peer));
    }
    let service = span
        .local_endpoint
        .and_then(|e| e.service_name)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| UNKNOWN_SERVICE.to_string());
    let kind = match span.kind.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some(k @ ("server" | "client" | "producer" | "consumer")) => CompactString::from(k),
        _ => CompactString::const_new("internal"),
    };
    Ok(SpanRow {
        trace_id: trace,
        span_id: id,
        parent_id: parent,
        name: span.name.unwrap_or_default().into(),
        service: service.into(),
        kind,
        start_ns,
        end_ns: start_ns.saturating_add(duration_ns),
        duration_ms: duration_ns as f64 / 1e6,
        status: if failed { "error" } else { "ok" }.into(),
        attributes,
        events: span
            .annotations
            .into_iter()
            .map(|a| EventRow {
                name: a.value.into(),
                ts_ns: a.timestamp.saturating_mul(1000),
                level: CompactString::const_new("info"),
                attributes: Map::new(),
            })
            .collect(),
        error: None,
        remote_parent: false,
        dropped_attributes_count: 0,
        dropped_events_count: 0,
        resource: None,
        scope: None,
        links: Vec::new(),
        dropped_links_count: 0,
    })
}
