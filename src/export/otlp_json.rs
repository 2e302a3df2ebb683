//! OTLP/JSON: the OTLP messages in the protobuf-JSON mapping with OTLP's
//! own exceptions (the OTLP specification, "JSON Protobuf Encoding"):
//! - trace and span ids are lowercase hex strings, not base64;
//! - enums (span kind, status code) are integers, not names;
//! - keys are the lowerCamelCase field names;
//! - 64-bit integers (timestamps, `intValue`) are decimal strings, 32-bit
//!   ones (flags, dropped counts) plain numbers;
//! - fields at their default value (empty, zero) are left out.
//!
//! Written by hand over the [`otlp_model`](super::otlp_model) types (so
//! both encodings come from the one mapping), with serde_json escaping all
//! text.

use crate::export::otlp_model::{
    AnyValue, Event, ExportTracePartialSuccess, ExportTraceServiceRequest, InstrumentationScope,
    KeyValue, Link, Resource, ResourceSpans, ScopeSpans, Span, Status, Value,
};

/// Appends `request` as one JSON document to `out`.
pub fn write_request(out: &mut Vec<u8>, request: &ExportTraceServiceRequest) {
    let mut o = Obj::open(out);
    o.array(
        "resourceSpans",
        &request.resource_spans,
        write_resource_spans,
    );
    o.close();
}

/// The partial success in a JSON export response, if any: accepts
/// `rejectedSpans` as a string (the protobuf-JSON form) or a number.
pub fn parse_partial_success(body: &[u8]) -> Option<ExportTracePartialSuccess> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let p = v.get("partialSuccess")?;
    let rejected = match p.get("rejectedSpans") {
        Some(serde_json::Value::String(s)) => s.trim().parse().ok()?,
        Some(n) => n.as_i64()?,
        None => 0,
    };
    let message = p
        .get("errorMessage")
        .and_then(|m| m.as_str())
        .unwrap_or_default();
    Some(ExportTracePartialSuccess {
        rejected_spans: rejected,
        error_message: message.to_string(),
    })
}

fn write_resource_spans(out: &mut Vec<u8>, rs: &ResourceSpans) {
    let mut o = Obj::open(out);
    if let Some(r) = &rs.resource {
        o.key("resource");
        write_resource(o.out, r);
    }
    o.array("scopeSpans", &rs.scope_spans, write_scope_spans);
    o.string("schemaUrl", &rs.schema_url);
    o.close();
}

fn write_resource(out: &mut Vec<u8>, r: &Resource) {
    let mut o = Obj::open(out);
    o.array("attributes", &r.attributes, write_key_value);
    o.uint("droppedAttributesCount", r.dropped_attributes_count);
    o.close();
}

fn write_scope_spans(out: &mut Vec<u8>, ss: &ScopeSpans) {
    let mut o = Obj::open(out);
    if let Some(scope) = &ss.scope {
        o.key("scope");
        write_scope(o.out, scope);
    }
    o.array("spans", &ss.spans, write_span);
    o.string("schemaUrl", &ss.schema_url);
    o.close();
}

fn write_scope(out: &mut Vec<u8>, s: &InstrumentationScope) {
    let mut o = Obj::open(out);
    o.string("name", &s.name);
    o.string("version", &s.version);
    o.array("attributes", &s.attributes, write_key_value);
    o.uint("droppedAttributesCount", s.dropped_attributes_count);
    o.close();
}

fn write_span(out: &mut Vec<u8>, s: &Span) {
    let mut o = Obj::open(out);
    o.hex("traceId", &s.trace_id);
    o.hex("spanId", &s.span_id);
    o.string("traceState", &s.trace_state);
    o.hex("parentSpanId", &s.parent_span_id);
    o.uint("flags", s.flags);
    o.string("name", &s.name);
    o.int("kind", s.kind);
    o.u64_string("startTimeUnixNano", s.start_time_unix_nano);
    o.u64_string("endTimeUnixNano", s.end_time_unix_nano);
    o.array("attributes", &s.attributes, write_key_value);
    o.uint("droppedAttributesCount", s.dropped_attributes_count);
    o.array("events", &s.events, write_event);
    o.uint("droppedEventsCount", s.dropped_events_count);
    o.array("links", &s.links, write_link);
    o.uint("droppedLinksCount", s.dropped_links_count);
    if let Some(status) = &s.status {
        o.key("status");
        write_status(o.out, status);
    }
    o.close();
}

fn write_event(out: &mut Vec<u8>, e: &Event) {
    let mut o = Obj::open(out);
    o.u64_string("timeUnixNano", e.time_unix_nano);
    o.string("name", &e.name);
    o.array("attributes", &e.attributes, write_key_value);
    o.uint("droppedAttributesCount", e.dropped_attributes_count);
    o.close();
}

fn write_link(out: &mut Vec<u8>, l: &Link) {
    let mut o = Obj::open(out);
    o.hex("traceId", &l.trace_id);
    o.hex("spanId", &l.span_id);
    o.string("traceState", &l.trace_state);
    o.array("attributes", &l.attributes, write_key_value);
    o.uint("droppedAttributesCount", l.dropped_attributes_count);
    o.uint("flags", l.flags);
    o.close();
}

fn write_status(out: &mut Vec<u8>, s: &Status) {
    let mut o = Obj::open(out);
    o.string("message", &s.message);
    o.int("code", s.code);
    o.close();
}

fn write_key_value(out: &mut Vec<u8>, kv: &KeyValue) {
    let mut o = Obj::open(out);
    // The key is written even when empty: a key-value without its key
    // would read as a different attribute.
    o.key("key");
    write_str(o.out, &kv.key);
    if let Some(v) = &kv.value {
        o.key("value");
        write_any_value(o.out, v);
    }
    o.close();
}

fn write_any_value(out: &mut Vec<u8>, v: &AnyValue) {
    let mut o = Obj::open(out);
    match &v.value {
        None => {}
        Some(Value::StringValue(s)) => {
            o.key("stringValue");
            write_str(o.out, s);
        }
        Some(Value::BoolValue(b)) => {
            o.key("boolValue");
            o.out.extend_from_slice(if *b { b"true" } else { b"false" });
        }
        Some(Value::IntValue(i)) => {
            o.key("intValue");
            o.out.push(b'"');
            o.out
                .extend_from_slice(itoa::Buffer::new().format(*i).as_bytes());
            o.out.push(b'"');
        }
        Some(Value::DoubleValue(d)) => {
            o.key("doubleValue");
            write_f64(o.out, *d);
        }
        Some(Value::ArrayValue(a)) => {
            o.key("arrayValue");
            let mut inner = Obj::open(o.out);
            inner.array("values", &a.values, write_any_value);
            inner.close();
        }
        Some(Value::KvlistValue(l)) => {
            o.key("kvlistValue");
            let mut inner = Obj::open(o.out);
            inner.array("values", &l.values, write_key_value);
            inner.close();
        }
        Some(Value::BytesValue(b)) => {
            o.key("bytesValue");
            o.out.push(b'"');
            write_base64(o.out, b);
            o.out.push(b'"');
        }
    }
    o.close();
}

/// A JSON object being written: takes care of braces and commas.
struct Obj<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Obj<'a> {
    fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Obj { out, empty: true }
    }

    fn close(self) {
        self.out.push(b'}');
    }

    /// `"name":`, after a comma unless first. Names are fixed ASCII.
    fn key(&mut self, name: &str) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn string(&mut self, name: &str, value: &str) {
        if !value.is_empty() {
            self.key(name);
            write_str(self.out, value);
        }
    }

    fn uint(&mut self, name: &str, value: u32) {
        if value != 0 {
            self.key(name);
            self.out
                .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        }
    }

    fn int(&mut self, name: &str, value: i32) {
        if value != 0 {
            self.key(name);
            self.out
                .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        }
    }

    fn u64_string(&mut self, name: &str, value: u64) {
        if value != 0 {
            self.key(name);
            self.out.push(b'"');
            self.out
                .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
            self.out.push(b'"');
        }
    }

    fn hex(&mut self, name: &str, bytes: &[u8]) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        if !bytes.is_empty() {
            self.key(name);
            self.out.push(b'"');
            for b in bytes {
                self.out.push(DIGITS[usize::from(b >> 4)]);
                self.out.push(DIGITS[usize::from(b & 0xf)]);
            }
            self.out.push(b'"');
        }
    }

    fn array<T>(&mut self, name: &str, items: &[T], write: fn(&mut Vec<u8>, &T)) {
        if items.is_empty() {
            return;
        }
        self.key(name);
        self.out.push(b'[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            write(self.out, item);
        }
        self.out.push(b']');
    }
}

/// A JSON string; text with nothing to escape is copied as is.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    } else {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// Protobuf-JSON doubles: numbers, or the strings "NaN", "Infinity" and
/// "-Infinity" (which ferrotrace's attributes never hold, but a decoded
/// request could).
fn write_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    } else if v.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if v > 0.0 {
        out.extend_from_slice(b"\"Infinity\"");
    } else {
        out.extend_from_slice(b"\"-Infinity\"");
    }
}

/// Standard base64 with padding, protobuf-JSON's form for bytes.
fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(ALPHABET[(n >> 18) as usize & 63]);
        out.push(ALPHABET[(n >> 12) as usize & 63]);
        out.push(if chunk.len() > 1 {
            ALPHABET[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if chunk.len() > 2 {
            ALPHABET[n as usize & 63]
        } else {
            b'='
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::otlp_model::{self, tests::full_record, tests::resource, ArrayValue};
    use serde_json::json;

    fn to_json(req: &ExportTraceServiceRequest) -> serde_json::Value {
        let mut out = Vec::new();
        write_request(&mut out, req);
        serde_json::from_slice(&out).expect("valid JSON")
    }

    #[test]
    fn span_follows_the_otlp_json_rules() {
        let resource = resource();
        let r = full_record();
        let v = to_json(&otlp_model::request([(&resource, None, &r)]));
        let rs = &v["resourceSpans"][0];
        assert_eq!(rs["resource"]["attributes"][0]["key"], "service.name");
        assert_eq!(
            rs["resource"]["attributes"][0]["value"],
            json!({"stringValue": "api"})
        );
        let scope = &rs["scopeSpans"][0]["scope"];
        assert_eq!(scope["name"], "ferrotrace");
        let s = &rs["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(s["spanId"], "00f067aa0ba902b7");
        assert_eq!(s["parentSpanId"], "b7ad6b7169203331");
        assert_eq!(s["traceState"], "congo=t61rcWkgMzE");
        assert_eq!(s["flags"], 0x301);
        assert_eq!(s["kind"], 2, "enums are integers");
        assert_eq!(s["startTimeUnixNano"], "1700000000000000000");
        assert_eq!(s["endTimeUnixNano"], "1700000000002500000");
        assert_eq!(s["droppedAttributesCount"], 1);
        assert_eq!(s["droppedEventsCount"], 2);
        assert_eq!(s["droppedLinksCount"], 1);
        assert_eq!(s["status"], json!({"message": "bad order id", "code": 2}));
        let attrs: std::collections::HashMap<String, serde_json::Value> = s["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| (kv["key"].as_str().unwrap().to_string(), kv["value"].clone()))
            .collect();
        assert_eq!(
            attrs["http.response.status_code"],
            json!({"intValue": "500"})
        );
        assert_eq!(attrs["cache.hit"], json!({"boolValue": false}));
        assert_eq!(attrs["ratio"], json!({"doubleValue": 0.25}));
        assert_eq!(
            attrs["tags"],
            json!({"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "2"}]}})
        );
        assert_eq!(s["events"][0]["timeUnixNano"], "1700000000000001000");
        assert_eq!(s["events"][0]["name"], "cache miss");
        assert_eq!(s["events"][2]["name"], "exception");
        assert_eq!(s["links"][0]["spanId"], "0000000000000008");
        assert_eq!(s["links"][0]["flags"], 1);
        // No snake_case key anywhere.
        let text = v.to_string();
        for snake in [
            "trace_id",
            "span_id",
            "start_time",
            "resource_spans",
            "int_value",
        ] {
            assert!(!text.contains(snake), "{snake} in {text}");
        }
    }

    #[test]
    fn defaults_are_left_out() {
        let resource = resource();
        let r = crate::span::SpanRecord::new(crate::ids::TraceId(1), None, "root".into());
        let v = to_json(&otlp_model::request([(&resource, None, &r)]));
        let s = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        for absent in [
            "parentSpanId",
            "traceState",
            "status",
            "events",
            "links",
            "droppedAttributesCount",
        ] {
            assert!(s.get(absent).is_none(), "{absent} in {s}");
        }
        assert_eq!(s["kind"], 1);
    }

    #[test]
    fn hostile_text_and_other_values_stay_valid_json() {
        let value = |v: Value| AnyValue { value: Some(v) };
        let kv = KeyValue {
            key: "k\"\n\\".into(),
            value: Some(value(Value::ArrayValue(ArrayValue {
                values: vec![
                    value(Value::StringValue("\u{0}é😀".into())),
                    value(Value::DoubleValue(f64::NAN)),
                    value(Value::DoubleValue(f64::NEG_INFINITY)),
                    value(Value::BytesValue(b"hello".to_vec())),
                    value(Value::IntValue(i64::MIN)),
                ],
            }))),
        };
        let mut out = Vec::new();
        write_key_value(&mut out, &kv);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["key"], "k\"\n\\");
        let values = &v["value"]["arrayValue"]["values"];
        assert_eq!(values[0]["stringValue"], "\u{0}é😀");
        assert_eq!(values[1]["doubleValue"], "NaN");
        assert_eq!(values[2]["doubleValue"], "-Infinity");
        assert_eq!(values[3]["bytesValue"], "aGVsbG8=");
        assert_eq!(values[4]["intValue"], "-9223372036854775808");
    }

    #[test]
    fn base64_padding() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
        ] {
            let mut out = Vec::new();
            write_base64(&mut out, input.as_bytes());
            assert_eq!(out, expected.as_bytes());
        }
    }

    #[test]
    fn partial_success_responses() {
        let p = parse_partial_success(
            br#"{"partialSuccess":{"rejectedSpans":"4","errorMessage":"bad"}}"#,
        )
        .unwrap();
        assert_eq!((p.rejected_spans, p.error_message.as_str()), (4, "bad"));
        let p = parse_partial_success(br#"{"partialSuccess":{"rejectedSpans":2}}"#).unwrap();
        assert_eq!(p.rejected_spans, 2);
        assert!(parse_partial_success(b"{}").is_none());
        assert!(parse_partial_success(b"").is_none());
        assert!(parse_partial_success(b"not json").is_none());
    }
}
