//! The reverse of [`otlp_model`](super::otlp_model)'s mapping: OTLP spans
//! received by `ferrotrace serve` become span records ([`SpanRow`]), the
//! same lines the tracers write (see README.md, "Viewing traces").
//!
//! Both OTLP/HTTP encodings decode to the one prost model: protobuf with
//! prost, JSON here by hand after the OTLP specification's "JSON Protobuf
//! Encoding" rules, read leniently as receivers must: ids are hex, 64-bit
//! integers may be strings or numbers, enums integers or names, unknown
//! fields are ignored.
//!
//! A span that cannot be a record (bad id, end before start) is rejected
//! alone and counted in the response's `partial_success`; the rest of its
//! batch is kept.

use std::sync::Arc;

use compact_str::CompactString;
use prost::Message;
use serde_json::{Map, Number, Value as Json};

use crate::analysis::{ErrorRow, EventRow, LinkRow, ScopeRow, SpanRow};
use crate::export::otlp_model::{
    AnyValue, ArrayValue, Event, ExportTraceServiceRequest, InstrumentationScope, KeyValue,
    KeyValueList, Resource, ResourceSpans, ScopeSpans, Span, Status, Value,
    SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK, SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK,
};
use crate::ids::{SpanId, TraceId};

/// The service name of a resource without `service.name`, as the OpenTelemetry
/// SDKs name it.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// Decodes an OTLP/HTTP protobuf body.
pub fn decode_protobuf(body: &[u8]) -> Result<ExportTraceServiceRequest, String> {
    ExportTraceServiceRequest::decode(body).map_err(|e| format!("invalid OTLP protobuf: {e}"))
}

/// Decodes an OTLP/HTTP JSON body.
pub fn decode_json(body: &[u8]) -> Result<ExportTraceServiceRequest, String> {
    let doc: Json = serde_json::from_slice(body).map_err(|e| format!("invalid OTLP JSON: {e}"))?;
    let root = object(&doc, "the request")?;
    Ok(ExportTraceServiceRequest {
        resource_spans: list(root, "resourceSpans", resource_spans)?,
    })
}

/// What a request's spans became.
#[derive(Debug, Default)]
pub struct Received {
    pub rows: Vec<SpanRow>,
    pub rejected: i64,
    /// Why the first rejected span was rejected.
    pub first_error: Option<String>,
}

/// Maps every span of `request` to a record, rejecting those that cannot be one.
pub fn to_rows(request: ExportTraceServiceRequest) -> Received {
    let mut out = Received::default();
    for rs in request.resource_spans {
        let resource = rs.resource.map(|r| key_values_to_map(r.attributes));
        let service = resource
            .as_ref()
            .and_then(|r| r.get("service.name"))
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(UNKNOWN_SERVICE);
        let service = CompactString::from(service);
        let resource = resource.filter(|r| !r.is_empty()).map(Arc::new);
        for ss in rs.scope_spans {
            let scope = ss.scope.filter(|s| !s.name.is_empty()).map(|s| ScopeRow {
                name: s.name.into(),
                version: Some(s.version).filter(|v| !v.is_empty()).map(Into::into),
                schema_url: Some(ss.schema_url.clone())
                    .filter(|u| !u.is_empty())
                    .map(Into::into),
            });
            for span in ss.spans {
                match span_row(span, &service, &resource, &scope) {
                    Ok(row) => out.rows.push(row),
                    Err(why) => {
                        out.rejected += 1;
                        out.first_error.get_or_insert(why);
                    }
                }
            }
        }
    }
    out
}

fn span_row(
    span: Span,
    service: &CompactString,
    resource: &Option<Arc<Map<String, Json>>>,
    scope: &Option<ScopeRow>,
) -> Result<SpanRow, String> {
    let trace_id = <[u8; 16]>::try_from(span.trace_id.as_slice())
        .ok()
        .map(|b| TraceId(u128::from_be_bytes(b)))
        .filter(|id| id.0 != 0)
        .ok_or("a span has an invalid trace id (not 16 bytes, or all zeros)")?;
    let span_id = span_id(&span.span_id)
        .filter(|id| id.0 != 0)
        .ok_or("a span has an invalid span id (not 8 bytes, or all zeros)")?;
    let parent_id = match span.parent_span_id.len() {
        0 => None,
        _ => Some(span_id_of(&span.parent_span_id).ok_or("a span has an invalid parent span id")?),
    }
    .filter(|id| id.0 != 0);
    if span.end_time_unix_nano < span.start_time_unix_nano {
        return Err(format!(
            "span {} ends before it starts",
            span_id.to_hex().as_str()
        ));
    }
    let failed = span.status.as_ref().is_some_and(|s| s.code == 2);
    let mut attributes = key_values_to_map(span.attributes);
    let mut events = Vec::with_capacity(span.events.len());
    let mut error = None;
    for event in span.events {
        let mut attrs = key_values_to_map(event.attributes);
        // The first exception event of a failed span is its error (as the
        // exporter writes a ferrotrace error); any other stays an event.
        if failed && error.is_none() && event.name == "exception" {
            let mut take = |k: &str| match attrs.remove(k) {
                Some(Json::String(s)) => Some(s),
                Some(other) => Some(other.to_string()),
                None => None,
            };
            error = Some(ErrorRow {
                error_type: take("exception.type").unwrap_or_default(),
                message: take("exception.message").unwrap_or_default(),
                stack: take("exception.stacktrace"),
            });
            continue;
        }
        let level = match attrs.remove("level") {
            Some(Json::String(level)) => level.into(),
            Some(other) => {
                attrs.insert("level".into(), other);
                CompactString::const_new("info")
            }
            None => CompactString::const_new("info"),
        };
        events.push(EventRow {
            name: event.name.into(),
            ts_ns: event.time_unix_nano,
            level,
            attributes: attrs,
        });
    }
    if failed && error.is_none() {
        if let Some(message) = span.status.as_ref().map(|s| &s.message) {
            if !message.is_empty() {
                attributes
                    .entry("status_description")
                    .or_insert_with(|| Json::String(message.clone()));
            }
        }
    }
    let kind = match span.kind {
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "internal",
    };
    // A link with ids of the wrong size is one the span no longer has.
    let mut malformed_links = 0u64;
    let links = span
        .links
        .into_iter()
        .filter_map(|l| {
            let ids = <[u8; 16]>::try_from(l.trace_id.as_slice())
                .ok()
                .zip(span_id_of(&l.span_id));
            malformed_links += u64::from(ids.is_none());
            let (trace, span_id) = ids?;
            Some(LinkRow {
                trace_id: TraceId(u128::from_be_bytes(trace)),
                span_id,
                attributes: key_values_to_map(l.attributes),
                tracestate: Some(l.trace_state).filter(|t| !t.is_empty()),
            })
        })
        .collect();
    let remote_parent = span.flags & SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK != 0
        && span.flags & SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK != 0;
    Ok(SpanRow {
        trace_id,
        span_id,
        parent_id,
        name: span.name.into(),
        service: service.clone(),
        kind: kind.into(),
        start_ns: span.start_time_unix_nano,
        end_ns: span.end_time_unix_nano,
        duration_ms: (span.end_time_unix_nano - span.start_time_unix_nano) as f64 / 1e6,
        status: if failed { "error" } else { "ok" }.into(),
        attributes,
        events,
        error,
        remote_parent,
        dropped_attributes_count: u64::from(span.dropped_attributes_count),
        dropped_events_count: u64::from(span.dropped_events_count),
        resource: resource.clone(),
        scope: scope.clone(),
        links,
        dropped_links_count: u64::from(span.dropped_links_count) + malformed_links,
    })
}

fn span_id(bytes: &[u8]) -> Option<SpanId> {
    span_id_of(bytes)
}

fn span_id_of(bytes: &[u8]) -> Option<SpanId> {
    <[u8; 8]>::try_from(bytes)
        .ok()
        .map(|b| SpanId(u64::from_be_bytes(b)))
}

fn key_values_to_map(kvs: Vec<KeyValue>) -> Map<String, Json> {
    kvs.into_iter()
        .map(|kv| (kv.key, kv.value.map_or(Json::Null, any_to_json)))
        .collect()
}

/// An attribute value as the JSONL files hold it. A key-value list (which
/// ferrotrace's own attributes cannot be) becomes a JSON object, bytes
/// their lowercase hex.
fn any_to_json(value: AnyValue) -> Json {
    match value.value {
        None => Json::Null,
        Some(Value::StringValue(s)) => Json::String(s),
        Some(Value::BoolValue(b)) => Json::Bool(b),
        Some(Value::IntValue(i)) => Json::from(i),
        Some(Value::DoubleValue(f)) => Number::from_f64(f)
            .map(Json::Number)
            // JSON has no NaN or infinity: keep them as their names.
            .unwrap_or_else(|| Json::String(f.to_string())),
        Some(Value::ArrayValue(a)) => Json::Array(a.values.into_iter().map(any_to_json).collect()),
        Some(Value::KvlistValue(l)) => Json::Object(key_values_to_map(l.values)),
        Some(Value::BytesValue(b)) => {
            Json::String(b.iter().map(|byte| format!("{byte:02x}")).collect())
        }
    }
}

// ---- OTLP/JSON -----------------------------------------------------------

type Fields = Map<String, Json>;

fn object<'a>(v: &'a Json, what: &str) -> Result<&'a Fields, String> {
    v.as_object()
        .ok_or_else(|| format!("invalid OTLP JSON: {what} is not an object"))
}

/// The list at `key` (missing or null: empty), each item mapped by `item`.
fn list<T>(
    o: &Fields,
    key: &str,
    item: impl Fn(&Fields) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    match o.get(key) {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(items)) => items.iter().map(|i| item(object(i, key)?)).collect(),
        Some(_) => Err(format!("invalid OTLP JSON: {key} is not a list")),
    }
}

fn string(o: &Fields, key: &str) -> Result<String, String> {
    match o.get(key) {
        None | Some(Json::Null) => Ok(String::new()),
        Some(Json::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("invalid OTLP JSON: {key} is not a string")),
    }
}

/// An integer given as a number or a decimal string.
fn integer<T: TryFrom<i128>>(o: &Fields, key: &str) -> Result<T, String> {
    let bad = || format!("invalid OTLP JSON: {key} is not an integer in range");
    let n: i128 = match o.get(key) {
        None | Some(Json::Null) => 0,
        Some(Json::Number(n)) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .ok_or_else(bad)?,
        Some(Json::String(s)) => s.trim().parse().map_err(|_| bad())?,
        Some(_) => return Err(bad()),
    };
    T::try_from(n).map_err(|_| bad())
}

/// An enum given as its number or its name (`SPAN_KIND_SERVER`).
fn enumeration(o: &Fields, key: &str, names: &[&str]) -> Result<i32, String> {
    match o.get(key) {
        Some(Json::String(s)) if s.parse::<i32>().is_err() => names
            .iter()
            .position(|n| n == s)
            .map(|p| p as i32)
            .ok_or_else(|| format!("invalid OTLP JSON: {key} {s:?} is not a known value")),
        _ => integer(o, key),
    }
}

/// Hex ids; text that is not hex decodes to no bytes, which the mapping
/// then rejects as an invalid id for that span alone.
fn hex_bytes(o: &Fields, key: &str) -> Result<Vec<u8>, String> {
    let text = string(o, key)?;
    if text.len() % 2 != 0 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(vec![0xff; 3]);
    }
    Ok((0..text.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect())
}

fn resource_spans(o: &Fields) -> Result<ResourceSpans, String> {
    let resource = match o.get("resource") {
        None | Some(Json::Null) => None,
        Some(r) => {
            let r = object(r, "resource")?;
            Some(Resource {
                attributes: list(r, "attributes", key_value)?,
                dropped_attributes_count: integer(r, "droppedAttributesCount")?,
            })
        }
    };
    // `instrumentationLibrarySpans` is the name before OTLP 1.0.
    let key = if o.contains_key("scopeSpans") {
        "scopeSpans"
    } else {
        "instrumentationLibrarySpans"
    };
    Ok(ResourceSpans {
        resource,
        scope_spans: list(o, key, scope_spans)?,
        schema_url: string(o, "schemaUrl")?,
    })
}

fn scope_spans(o: &Fields) -> Result<ScopeSpans, String> {
    let scope = match o.get("scope") {
        Some(Json::Object(scope)) => Some(InstrumentationScope {
            name: string(scope, "name")?,
            version: string(scope, "version")?,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
        }),
        _ => None,
    };
    Ok(ScopeSpans {
        scope,
        spans: list(o, "spans", span)?,
        schema_url: String::new(),
    })
}

const KINDS: [&str; 6] = [
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
];
const STATUS_CODES: [&str; 3] = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];

fn span(o: &Fields) -> Result<Span, String> {
    let status = match o.get("status") {
        None | Some(Json::Null) => None,
        Some(s) => {
            let s = object(s, "status")?;
            Some(Status {
                message: string(s, "message")?,
                code: enumeration(s, "code", &STATUS_CODES)?,
            })
        }
    };
    Ok(Span {
        trace_id: hex_bytes(o, "traceId")?,
        span_id: hex_bytes(o, "spanId")?,
        trace_state: string(o, "traceState")?,
        parent_span_id: hex_bytes(o, "parentSpanId")?,
        name: string(o, "name")?,
        kind: enumeration(o, "kind", &KINDS)?,
        start_time_unix_nano: integer(o, "startTimeUnixNano")?,
        end_time_unix_nano: integer(o, "endTimeUnixNano")?,
        attributes: list(o, "attributes", key_value)?,
        dropped_attributes_count: integer(o, "droppedAttributesCount")?,
        events: list(o, "events", event)?,
        dropped_events_count: integer(o, "droppedEventsCount")?,
        links: Vec::new(),
        dropped_links_count: integer(o, "droppedLinksCount")?,
        status,
        flags: integer(o, "flags")?,
    })
}

fn event(o: &Fields) -> Result<Event, String> {
    Ok(Event {
        time_unix_nano: integer(o, "timeUnixNano")?,
        name: string(o, "name")?,
        attributes: list(o, "attributes", key_value)?,
        dropped_attributes_count: integer(o, "droppedAttributesCount")?,
    })
}

fn key_value(o: &Fields) -> Result<KeyValue, String> {
    let value = match o.get("value") {
        None | Some(Json::Null) => None,
        Some(v) => Some(any_value(object(v, "value")?)?),
    };
    Ok(KeyValue {
        key: string(o, "key")?,
        value,
    })
}

fn any_value(o: &Fields) -> Result<AnyValue, String> {
    let value = if let Some(s) = o.get("stringValue") {
        Value::StringValue(s.as_str().unwrap_or_default().to_string())
    } else if let Some(b) = o.get("boolValue") {
        Value::BoolValue(
            b.as_bool()
                .ok_or("invalid OTLP JSON: boolValue is not a bool")?,
        )
    } else if o.contains_key("intValue") {
        Value::IntValue(integer(o, "intValue")?)
    } else if let Some(d) = o.get("doubleValue") {
        Value::DoubleValue(match d {
            Json::Number(n) => n.as_f64().unwrap_or(f64::NAN),
            // The protobuf JSON mapping writes "NaN", "Infinity", "-Infinity".
            Json::String(s) => s
                .parse()
                .map_err(|_| "invalid OTLP JSON: doubleValue is not a number")?,
            _ => return Err("invalid OTLP JSON: doubleValue is not a number".into()),
        })
    } else if let Some(a) = o.get("arrayValue") {
        let a = object(a, "arrayValue")?;
        Value::ArrayValue(ArrayValue {
            values: list(a, "values", any_value)?,
        })
    } else if let Some(l) = o.get("kvlistValue") {
        let l = object(l, "kvlistValue")?;
        Value::KvlistValue(KeyValueList {
            values: list(l, "values", key_value)?,
        })
    } else if let Some(b) = o.get("bytesValue") {
        Value::BytesValue(base64(b.as_str().unwrap_or_default())?)
    } else {
        return Ok(AnyValue { value: None });
    };
    Ok(AnyValue { value: Some(value) })
}

/// Standard or URL-safe base64, padding optional (protobuf JSON bytes).
fn base64(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return Err("invalid OTLP JSON: bytesValue is not base64".into()),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::otlp_model::{span as to_otlp, ExportTraceServiceRequest};

    fn request_json() -> &'static str {
        r#"{"resourceSpans":[{"resource":{"attributes":[
            {"key":"service.name","value":{"stringValue":"checkout"}},
            {"key":"host.name","value":{"stringValue":"h1"}}]},
          "scopeSpans":[{"scope":{"name":"x"},"spans":[
            {"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7",
             "parentSpanId":"","name":"GET /","kind":"SPAN_KIND_SERVER",
             "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":1700000000002000000,
             "attributes":[{"key":"n","value":{"intValue":"7"}},
                           {"key":"f","value":{"doubleValue":1.5}},
                           {"key":"l","value":{"arrayValue":{"values":[{"boolValue":true}]}}},
                           {"key":"b","value":{"bytesValue":"AQL/"}}],
             "events":[{"timeUnixNano":"1700000000001000000","name":"exception","attributes":[
                {"key":"exception.type","value":{"stringValue":"ValueError"}},
                {"key":"exception.message","value":{"stringValue":"bad"}}]},
                {"timeUnixNano":"1700000000001500000","name":"note","attributes":[
                {"key":"level","value":{"stringValue":"warning"}}]}],
             "status":{"code":2,"message":"bad"},"unknownField":{"x":1}},
            {"traceId":"zz","spanId":"00f067aa0ba902b8","name":"bad id"}]}]}]}"#
    }

    #[test]
    fn json_maps_every_field_and_rejects_only_the_bad_span() {
        let received = to_rows(decode_json(request_json().as_bytes()).unwrap());
        assert_eq!(received.rejected, 1);
        assert!(received.first_error.unwrap().contains("trace id"));
        let row = &received.rows[0];
        assert_eq!(row.service, "checkout");
        assert_eq!(row.kind, "server");
        assert_eq!(row.status, "error");
        assert_eq!(row.duration_ms, 2.0);
        assert_eq!(row.attributes["n"], 7);
        assert_eq!(row.attributes["f"], 1.5);
        assert_eq!(row.attributes["l"], serde_json::json!([true]));
        assert_eq!(row.attributes["b"], "0102ff");
        let error = row.error.as_ref().unwrap();
        assert_eq!(
            (error.error_type.as_str(), error.message.as_str()),
            ("ValueError", "bad")
        );
        assert_eq!(row.events.len(), 1);
        assert_eq!(row.events[0].level, "warning");
        assert_eq!(row.resource.as_ref().unwrap()["host.name"], "h1");
    }

    #[test]
    fn json_type_errors_are_reported() {
        for body in [
            "[]",
            r#"{"resourceSpans":3}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"NOPE"}]}]}]}"#,
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"-1"}]}]}]}"#,
            "not json",
        ] {
            assert!(decode_json(body.as_bytes()).is_err(), "{body}");
        }
        // Unknown fields and an empty request are fine.
        assert!(decode_json(br#"{"other":1}"#)
            .unwrap()
            .resource_spans
            .is_empty());
    }

    #[test]
    fn a_ferrotrace_span_survives_the_protobuf_round_trip() {
        use crate::attributes::{AttrValue, Attributes, Limits};
        use crate::span::{ErrorInfo, Event as SpanEvent, SpanKind, SpanRecord, Status as S};
        let limits = Limits::default();
        let mut record = SpanRecord::new(
            TraceId(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
            Some(SpanId(7)),
            "fetch".into(),
        );
        record.kind = SpanKind::Client;
        record.start_ns = 1_700_000_000_000_000_000;
        record.start_mono = 10;
        record.end_mono = 10 + 3_000_000;
        record.status = S::Error;
        record.set_attribute("rows".into(), AttrValue::Int(3), &limits);
        record.set_attribute("ratio".into(), AttrValue::Float(0.5), &limits);
        record.add_event(
            SpanEvent {
                name: "retry".into(),
                ts_ns: record.start_ns + 5,
                level: "warning".into(),
                attributes: Attributes::default(),
            },
            &limits,
        );
        record.set_error(
            ErrorInfo {
                error_type: "TimeoutError".into(),
                message: "too slow".into(),
                stack: Some("Traceback ...".into()),
            },
            &limits,
        );
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue {
                            value: Some(Value::StringValue("db".into())),
                        }),
                    }],
                    dropped_attributes_count: 0,
                }),
                scope_spans: vec![ScopeSpans {
                    scope: None,
                    spans: vec![to_otlp(&record)],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let bytes = request.encode_to_vec();
        let received = to_rows(decode_protobuf(&bytes).unwrap());
        let row = &received.rows[0];
        let mut expected = SpanRow::from_record(&record, "db");
        expected.resource = row.resource.clone();
        assert_eq!(row, &expected);
        assert_eq!(row.resource.as_ref().unwrap()["service.name"], "db");
        assert!(decode_protobuf(b"\xff\xff\xff").is_err());
    }
}
