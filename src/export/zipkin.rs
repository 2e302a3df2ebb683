//! Zipkin v2 JSON (`POST /api/v2/spans`), mapped as the OpenTelemetry
//! specification's "OpenTelemetry to Zipkin Transformation" says:
//! - ids in lowercase hex; `timestamp` and `duration` in whole
//!   microseconds, the duration at least 1 (Zipkin reads 0 as unknown);
//! - `kind` in upper case, left out for internal spans;
//! - `localEndpoint.serviceName` is the resource's `service.name`;
//! - `remoteEndpoint` for client and producer spans (the only ones Zipkin
//!   draws as dependencies) from, by rank, `peer.service`,
//!   `server.address` (+ `server.port`), `net.peer.name`,
//!   `network.peer.address` (+ `network.peer.port`); an IP address goes to
//!   `ipv4`/`ipv6`, a name to `serviceName`;
//! - attributes as string tags (lists as JSON lists), plus
//!   `otel.status_code` (OK/ERROR, none when unset), `error` with the
//!   status description only on failed spans, `otel.scope.name`/`version`,
//!   and the `otel.dropped_*_count` tags when something was dropped;
//! - events (and an error's `exception` event) as annotations whose value
//!   is the event name, followed by its attributes as JSON when it has any:
//!   `cache miss: {"key":"u:1"}`.
//!
//! Not mapped, as the specification leaves them: links and tracestate, and
//! `shared` (ferrotrace never shares a span id between client and server).

use std::net::IpAddr;
use std::sync::Arc;

use crate::attributes::AttrValue;
use crate::config::ConfigError;
use crate::export::config::{Compression, ZipkinConfig};
use crate::export::http::HttpClient;
use crate::export::otlp_json::write_str;
use crate::export::otlp_model::{event_level, exception_attributes, status_description};
use crate::export::retry::{self, RetryPolicy};
use crate::export::{Resource, MAX_REQUEST_BYTES, SDK_VERSION};
use crate::sinks::{Batch, Delivery, Sink, SinkControl};
use crate::span::{SpanKind, SpanRecord, Status};

/// Sends kept spans to a Zipkin server (or anything that speaks its v2
/// API: Jaeger's Zipkin port, the Collector's zipkin receiver).
pub struct ZipkinExporter {
    config: ZipkinConfig,
    resource: Arc<Resource>,
    client: HttpClient,
    retry: RetryPolicy,
    max_request_bytes: usize,
    /// The request body, reused.
    body: Vec<u8>,
}

impl ZipkinExporter {
    pub fn new(config: ZipkinConfig, resource: Arc<Resource>) -> Result<Self, ConfigError> {
        let client = HttpClient::new(
            &config.endpoint,
            "application/json",
            &[],
            Compression::None,
            None,
        )
        .map_err(|why| ConfigError(format!("zipkin exporter: {why}")))?;
        Ok(ZipkinExporter {
            config,
            resource,
            client,
            retry: RetryPolicy::default(),
            max_request_bytes: MAX_REQUEST_BYTES,
            body: Vec::new(),
        })
    }

    /// Replaces the waits between attempts (tests use short ones).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Cuts requests at this many bytes instead of [`MAX_REQUEST_BYTES`].
    pub fn with_max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes.max(1);
        self
    }

    pub fn config(&self) -> &ZipkinConfig {
        &self.config
    }

    fn send(
        &self,
        body: &mut Vec<u8>,
        spans: u64,
        deadline: std::time::Instant,
        control: &SinkControl,
        delivery: &mut Delivery,
    ) {
        body.push(b']');
        let sent = retry::send_with_retry(&self.retry, deadline, control, |d| {
            retry::classify(self.client.post(body, d))
        });
        body.clear();
        match sent {
            Ok(_) => delivery.delivered += spans,
            Err(error) => {
                delivery.lost += spans;
                delivery.error.get_or_insert(error);
            }
        }
    }
}

impl Sink for ZipkinExporter {
    fn name(&self) -> &'static str {
        "zipkin"
    }

    fn deliver(&mut self, batch: &Batch, control: &SinkControl) -> Delivery {
        let mut delivery = Delivery::default();
        if batch.spans.is_empty() {
            return delivery;
        }
        let deadline = retry::deadline(self.config.timeout, control);
        let service = self.resource.service_name().to_string();
        let mut body = std::mem::take(&mut self.body);
        let mut in_body = 0u64;
        for record in &batch.spans {
            body.push(if in_body == 0 { b'[' } else { b',' });
            write_span(&mut body, record, &service);
            in_body += 1;
            // Cut after the span that crossed the limit: a request holds at
            // most one span more than the limit allows.
            if body.len() >= self.max_request_bytes {
                self.send(&mut body, in_body, deadline, control, &mut delivery);
                in_body = 0;
            }
        }
        if in_body > 0 {
            self.send(&mut body, in_body, deadline, control, &mut delivery);
        }
        self.body = body;
        delivery
    }
}

/// Appends one span as a Zipkin v2 JSON object.
pub fn write_span(out: &mut Vec<u8>, r: &SpanRecord, service: &str) {
    out.extend_from_slice(b"{\"traceId\":\"");
    out.extend_from_slice(r.trace_id.to_hex().as_bytes());
    out.extend_from_slice(b"\",\"id\":\"");
    out.extend_from_slice(r.span_id.to_hex().as_bytes());
    out.push(b'"');
    if let Some(parent) = r.parent_id {
        out.extend_from_slice(b",\"parentId\":\"");
        out.extend_from_slice(parent.to_hex().as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b",\"name\":");
    write_str(out, &r.name);
    if let Some(kind) = zipkin_kind(r.kind) {
        out.extend_from_slice(b",\"kind\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b",\"timestamp\":");
    write_u64(out, r.start_ns / 1_000);
    out.extend_from_slice(b",\"duration\":");
    write_u64(out, (r.duration_ns() / 1_000).max(1));
    out.extend_from_slice(b",\"localEndpoint\":{\"serviceName\":");
    write_str(out, service);
    out.push(b'}');
    if matches!(r.kind, SpanKind::Client | SpanKind::Producer) {
        write_remote_endpoint(out, r);
    }
    write_annotations(out, r);
    write_tags(out, r);
    out.push(b'}');
}

fn zipkin_kind(kind: SpanKind) -> Option<&'static str> {
    match kind {
        SpanKind::Internal => None,
        SpanKind::Server => Some("SERVER"),
        SpanKind::Client => Some("CLIENT"),
        SpanKind::Producer => Some("PRODUCER"),
        SpanKind::Consumer => Some("CONSUMER"),
    }
}

fn write_remote_endpoint(out: &mut Vec<u8>, r: &SpanRecord) {
    let text = |key| match r.attributes.get(key) {
        Some(AttrValue::Str(s)) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    };
    let port = |key| match r.attributes.get(key) {
        Some(AttrValue::Int(p)) if (1..=65_535).contains(p) => Some(*p),
        Some(AttrValue::Str(s)) => s.parse::<u16>().ok().filter(|p| *p > 0).map(i64::from),
        _ => None,
    };
    let (name, port) = if let Some(peer) = text("peer.service") {
        (peer, port("server.port"))
    } else if let Some(host) = text("server.address") {
        (host, port("server.port"))
    } else if let Some(host) = text("net.peer.name") {
        (host, port("net.peer.port"))
    } else if let Some(addr) = text("network.peer.address") {
        (addr, port("network.peer.port"))
    } else {
        return;
    };
    out.extend_from_slice(b",\"remoteEndpoint\":{");
    match name.trim_matches(['[', ']']).parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => {
            out.extend_from_slice(b"\"ipv4\":");
            write_str(out, &ip.to_string());
        }
        Ok(IpAddr::V6(ip)) => {
            out.extend_from_slice(b"\"ipv6\":");
            write_str(out, &ip.to_string());
        }
        Err(_) => {
            out.extend_from_slice(b"\"serviceName\":");
            write_str(out, name);
        }
    }
    if let Some(port) = port {
        out.extend_from_slice(b",\"port\":");
        write_u64(out, port as u64);
    }
    out.push(b'}');
}

fn write_annotations(out: &mut Vec<u8>, r: &SpanRecord) {
    let exception = r
        .error
        .as_deref()
        .filter(|_| !r.events.iter().any(|e| e.name == "exception"));
    if r.events.is_empty() && exception.is_none() {
        return;
    }
    out.extend_from_slice(b",\"annotations\":[");
    let mut value = String::new();
    for (i, e) in r.events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        value.clear();
        value.push_str(&e.name);
        let level = event_level(e).map(|l| ("level", AttrValue::Str(l.into())));
        let attributes: Vec<(&str, AttrValue)> = e
            .attributes
            .iter()
            .map(|(k, v)| (k, v.clone()))
            .chain(level)
            .collect();
        append_attributes_json(&mut value, attributes.iter().map(|(k, v)| (*k, v)));
        write_annotation(out, e.ts_ns, &value);
    }
    if let Some(error) = exception {
        if !r.events.is_empty() {
            out.push(b',');
        }
        let attributes: Vec<(&str, AttrValue)> = exception_attributes(error)
            .map(|(k, v)| (k, AttrValue::Str(v.into())))
            .collect();
        value.clear();
        value.push_str("exception");
        append_attributes_json(&mut value, attributes.iter().map(|(k, v)| (*k, v)));
        write_annotation(out, r.end_ns(), &value);
    }
    out.push(b']');
}

/// `: {"k":"v",...}` after an event's name, when it has attributes.
fn append_attributes_json<'a>(
    value: &mut String,
    attributes: impl Iterator<Item = (&'a str, &'a AttrValue)>,
) {
    let mut map = serde_json::Map::new();
    for (k, v) in attributes {
        map.insert(k.to_string(), attr_json(v));
    }
    if !map.is_empty() {
        value.push_str(": ");
        value.push_str(&serde_json::Value::Object(map).to_string());
    }
}

fn write_annotation(out: &mut Vec<u8>, ts_ns: u64, value: &str) {
    out.extend_from_slice(b"{\"timestamp\":");
    write_u64(out, ts_ns / 1_000);
    out.extend_from_slice(b",\"value\":");
    write_str(out, value);
    out.push(b'}');
}

fn write_tags(out: &mut Vec<u8>, r: &SpanRecord) {
    out.extend_from_slice(b",\"tags\":{");
    let mut first = true;
    let mut tag = |out: &mut Vec<u8>, key: &str, value: &str| {
        if !first {
            out.push(b',');
        }
        first = false;
        write_str(out, key);
        out.push(b':');
        write_str(out, value);
    };
    let mut text = String::new();
    for (key, value) in r.attributes.iter() {
        // Zipkin reads any `error` tag as failure: only the status sets it.
        if key == "error" {
            continue;
        }
        text.clear();
        tag_text(&mut text, value);
        tag(out, key, &text);
    }
    match r.status {
        Status::Unset => {}
        Status::Ok => tag(out, "otel.status_code", "OK"),
        Status::Error => {
            tag(out, "otel.status_code", "ERROR");
            tag(out, "error", status_description(r).unwrap_or(""));
        }
    }
    match r.scope.as_deref() {
        Some(scope) => {
            tag(out, "otel.scope.name", &scope.name);
            if let Some(version) = scope.version.as_deref() {
                tag(out, "otel.scope.version", version);
            }
        }
        None => {
            tag(out, "otel.scope.name", "ferrotrace");
            tag(out, "otel.scope.version", SDK_VERSION);
        }
    }
    for (key, count) in [
        ("otel.dropped_attributes_count", r.attributes.dropped),
        ("otel.dropped_events_count", r.dropped_events),
        ("otel.dropped_links_count", r.dropped_links),
    ] {
        if count > 0 {
            tag(out, key, itoa::Buffer::new().format(count));
        }
    }
    out.push(b'}');
}

/// An attribute as tag text: strings as they are, numbers and booleans
/// printed, lists as JSON lists.
fn tag_text(out: &mut String, value: &AttrValue) {
    match value {
        AttrValue::Str(s) => out.push_str(s),
        AttrValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        AttrValue::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
        AttrValue::Float(f) => out.push_str(ryu::Buffer::new().format(*f)),
        AttrValue::List(_) => out.push_str(&attr_json(value).to_string()),
    }
}

fn attr_json(value: &AttrValue) -> serde_json::Value {
    match value {
        AttrValue::Str(s) => serde_json::Value::String(s.to_string()),
        AttrValue::Bool(b) => serde_json::Value::Bool(*b),
        AttrValue::Int(i) => serde_json::Value::from(*i),
        AttrValue::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        AttrValue::List(items) => serde_json::Value::Array(items.iter().map(attr_json).collect()),
    }
}

fn write_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::Limits;
    use crate::export::otlp_model::tests::full_record;
    use crate::ids::{SpanId, TraceId};
    use crate::span::Scope;
    use serde_json::{json, Value};

    fn zipkin(r: &SpanRecord) -> Value {
        let mut out = Vec::new();
        write_span(&mut out, r, "api");
        serde_json::from_slice(&out).expect("valid JSON")
    }

    #[test]
    fn a_failed_server_span() {
        let r = full_record();
        let v = zipkin(&r);
        assert_eq!(v["traceId"], "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(v["id"], "00f067aa0ba902b7");
        assert_eq!(v["parentId"], "b7ad6b7169203331");
        assert_eq!(v["name"], "GET /orders/{id}");
        assert_eq!(v["kind"], "SERVER");
        assert_eq!(v["timestamp"], 1_700_000_000_000_000u64);
        assert_eq!(v["duration"], 2_500);
        assert_eq!(v["localEndpoint"], json!({"serviceName": "api"}));
        assert!(v.get("remoteEndpoint").is_none(), "server spans have none");
        assert!(v.get("shared").is_none());
        let tags = &v["tags"];
        assert_eq!(tags["http.request.method"], "GET");
        assert_eq!(tags["http.response.status_code"], "500");
        assert_eq!(tags["cache.hit"], "false");
        assert_eq!(tags["ratio"], "0.25");
        assert_eq!(tags["tags"], "[\"a\",2]");
        assert_eq!(tags["otel.status_code"], "ERROR");
        assert_eq!(tags["error"], "bad order id");
        assert_eq!(tags["otel.scope.name"], "ferrotrace");
        assert_eq!(tags["otel.dropped_attributes_count"], "1");
        assert_eq!(tags["otel.dropped_events_count"], "2");
        assert_eq!(tags["otel.dropped_links_count"], "1");
        let annotations = v["annotations"].as_array().unwrap();
        assert_eq!(annotations.len(), 3);
        assert_eq!(annotations[0]["timestamp"], 1_700_000_000_000_001u64);
        assert_eq!(
            annotations[0]["value"],
            "cache miss: {\"key\":\"u:1\",\"level\":\"warning\"}"
        );
        assert_eq!(annotations[1]["value"], "plain");
        let exception = annotations[2]["value"].as_str().unwrap();
        assert!(exception.starts_with("exception: {"), "{exception}");
        let attrs: Value = serde_json::from_str(&exception["exception: ".len()..]).unwrap();
        assert_eq!(attrs["exception.type"], "ValueError");
        assert_eq!(annotations[2]["timestamp"], r.end_ns() / 1_000);
    }

    #[test]
    fn a_short_internal_ok_span() {
        let mut r = SpanRecord::new(TraceId(1), None, "tick".into());
        r.start_ns = 5_000;
        r.start_mono = 1;
        r.end_mono = 300; // 299 ns
        r.status = Status::Ok;
        // A user attribute named "error" must not mark the span failed.
        r.set_attribute("error".into(), AttrValue::Bool(false), &Limits::default());
        r.scope = Some(Arc::new(Scope {
            name: "lib".into(),
            version: Some("1.2".into()),
            schema_url: None,
        }));
        let v = zipkin(&r);
        assert!(v.get("kind").is_none(), "internal spans have no kind");
        assert!(v.get("parentId").is_none());
        assert!(v.get("annotations").is_none());
        assert_eq!(v["duration"], 1, "at least one microsecond");
        assert_eq!(v["timestamp"], 5);
        assert_eq!(v["tags"]["otel.status_code"], "OK");
        assert!(v["tags"].get("error").is_none());
        assert_eq!(v["tags"]["otel.scope.name"], "lib");
        assert_eq!(v["tags"]["otel.scope.version"], "1.2");
        r.status = Status::Unset;
        assert!(zipkin(&r)["tags"].get("otel.status_code").is_none());
    }

    #[test]
    fn remote_endpoints_by_rank() {
        let limits = Limits::default();
        let client = |attrs: &[(&str, AttrValue)]| {
            let mut r = SpanRecord::new(TraceId(1), Some(SpanId(2)), "call".into());
            r.kind = SpanKind::Client;
            for (k, v) in attrs {
                r.set_attribute((*k).into(), v.clone(), &limits);
            }
            zipkin(&r)
        };
        let v = client(&[
            ("server.address", AttrValue::Str("orders.internal".into())),
            ("server.port", AttrValue::Int(8080)),
            ("peer.service", AttrValue::Str("orders".into())),
        ]);
        assert_eq!(v["kind"], "CLIENT");
        assert_eq!(
            v["remoteEndpoint"],
            json!({"serviceName": "orders", "port": 8080})
        );
        let v = client(&[
            ("server.address", AttrValue::Str("10.1.2.3".into())),
            ("server.port", AttrValue::Int(5432)),
        ]);
        assert_eq!(
            v["remoteEndpoint"],
            json!({"ipv4": "10.1.2.3", "port": 5432})
        );
        let v = client(&[("network.peer.address", AttrValue::Str("::1".into()))]);
        assert_eq!(v["remoteEndpoint"], json!({"ipv6": "::1"}));
        let v = client(&[]);
        assert!(v.get("remoteEndpoint").is_none());
    }

    proptest::proptest! {
        #[test]
        fn any_text_makes_valid_zipkin_json(
            name in "\\PC{0,20}",
            key in "\\PC{1,10}",
            value in "\\PC{0,20}",
            event in "\\PC{0,10}",
        ) {
            let limits = Limits::default();
            let mut r = SpanRecord::new(TraceId(1), None, name.clone().into());
            r.kind = SpanKind::Client;
            r.set_attribute(key.clone().into(), AttrValue::Str(value.clone().into()), &limits);
            r.set_attribute("peer.service".into(), AttrValue::Str(value.clone().into()), &limits);
            let mut attributes = crate::attributes::Attributes::default();
            attributes.set(key.clone().into(), AttrValue::Str(value.clone().into()), &limits);
            r.add_event(
                crate::span::Event { name: event.into(), ts_ns: 1, level: "info".into(), attributes },
                &limits,
            );
            let v = zipkin(&r);
            proptest::prop_assert_eq!(v["name"].as_str().unwrap(), name.as_str());
            if key != "error" && key != "peer.service" {
                proptest::prop_assert_eq!(v["tags"][key.as_str()].as_str().unwrap(), value.as_str());
            }
        }
    }

    #[test]
    fn hostile_text_stays_valid_json() {
        let mut r = SpanRecord::new(TraceId(1), None, "a\"b\\c\nd\u{1}".into());
        r.set_attribute(
            "k\"ey".into(),
            AttrValue::Str("\u{0}é😀".into()),
            &Limits::default(),
        );
        let v = zipkin(&r);
        assert_eq!(v["name"], "a\"b\\c\nd\u{1}");
        assert_eq!(v["tags"]["k\"ey"], "\u{0}é😀");
    }
}
