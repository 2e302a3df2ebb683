//! Where spans and trace summaries are serialised: one JSON object per line.
//!
//! Records are appended to a reused byte buffer. Every string that could
//! need escaping goes through serde_json's escaper, so whatever a span
//! carries, each line is strict UTF-8 JSON.

use crate::analysis::SpanRow;
use crate::attributes::{AttrValue, Attributes};
use crate::clock;
use crate::ids::{SpanId, TraceId};
use crate::span::{SpanKind, SpanRecord, Status};
use crate::trace_summary::TraceSummary;

/// Appends `record` as one JSON line to `out`.
///
/// Hand-written rather than derived: the fixed keys and hex ids never need
/// escaping and are copied as bytes, so only user-supplied text (names,
/// attribute keys and values, messages) goes through serde_json's escaper.
/// This keeps the writer thread well above a million spans per second.
pub fn write_span(out: &mut Vec<u8>, record: &SpanRecord, service: &JsonString) {
    let r = record;
    write_head(
        out,
        &Head {
            trace_id: r.trace_id,
            span_id: r.span_id,
            parent_id: r.parent_id,
            name: &r.name,
            service: Text::Json(&service.0),
            kind: Text::Json(kind_json(r.kind)),
            start_ns: r.start_ns,
            end_ns: r.end_ns(),
        },
    );
    write_duration_ms(out, r.duration_ns());
    // What `Status::as_written` names, as constant JSON.
    out.extend_from_slice(match r.status {
        Status::Error => b",\"status\":\"error\"",
        Status::Ok | Status::Unset => b",\"status\":\"ok\"",
    });
    out.extend_from_slice(b",\"attributes\":");
    write_attributes(out, &r.attributes);
    out.extend_from_slice(b",\"events\":[");
    for (i, e) in r.events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_event_head(out, &e.name, e.ts_ns, &e.level);
        write_attributes(out, &e.attributes);
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"error\":");
    match r.error.as_deref() {
        Some(e) => write_error(out, &e.error_type, &e.message, e.stack.as_deref()),
        None => out.extend_from_slice(b"null"),
    }
    write_counts(
        out,
        r.remote_parent,
        u64::from(r.attributes.dropped),
        u64::from(r.dropped_events),
    );
    // Written only when present, so spans of ferrotrace's own API (no
    // scope, no links) keep the lines readers already know.
    if let Some(scope) = r.scope.as_deref() {
        write_scope(
            out,
            &scope.name,
            scope.version.as_deref(),
            scope.schema_url.as_deref(),
        );
    }
    if !r.links.is_empty() {
        out.extend_from_slice(b",\"links\":[");
        for (i, link) in r.links.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_link_head(out, link.trace_id, link.span_id);
            write_attributes(out, &link.attributes);
            write_link_tail(out, link.tracestate.as_deref());
        }
        out.push(b']');
    }
    write_dropped_links(out, u64::from(r.dropped_links));
}

/// Appends a span row (a span received by `ferrotrace serve`) as one JSON
/// line: the same line serde would write for it, written as [`write_span`]
/// writes (ids as bytes, text through the fast path, durations with integer
/// arithmetic), since the generic serialiser's per-byte escaper and float
/// formatter were the largest cost of ingest.
pub fn write_row(out: &mut Vec<u8>, row: &SpanRow) {
    write_head(
        out,
        &Head {
            trace_id: row.trace_id,
            span_id: row.span_id,
            parent_id: row.parent_id,
            name: &row.name,
            service: Text::Plain(&row.service),
            kind: Text::Plain(&row.kind),
            start_ns: row.start_ns,
            end_ns: row.end_ns,
        },
    );
    let ns = row.end_ns.saturating_sub(row.start_ns);
    if ns < 1 << 53 && row.duration_ms == ns as f64 / 1e6 {
        write_duration_ms(out, ns);
    } else {
        write_f64(out, row.duration_ms);
    }
    out.extend_from_slice(b",\"status\":");
    write_str(out, &row.status);
    out.extend_from_slice(b",\"attributes\":");
    write_json_map(out, &row.attributes);
    out.extend_from_slice(b",\"events\":[");
    for (i, e) in row.events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_event_head(out, &e.name, e.ts_ns, &e.level);
        write_json_map(out, &e.attributes);
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"error\":");
    match &row.error {
        Some(e) => write_error(out, &e.error_type, &e.message, e.stack.as_deref()),
        None => out.extend_from_slice(b"null"),
    }
    write_counts(
        out,
        row.remote_parent,
        row.dropped_attributes_count,
        row.dropped_events_count,
    );
    if let Some(resource) = &row.resource {
        out.extend_from_slice(b",\"resource\":");
        write_json_map(out, resource);
    }
    if let Some(scope) = &row.scope {
        write_scope(
            out,
            &scope.name,
            scope.version.as_deref(),
            scope.schema_url.as_deref(),
        );
    }
    if !row.links.is_empty() {
        out.extend_from_slice(b",\"links\":[");
        for (i, link) in row.links.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_link_head(out, link.trace_id, link.span_id);
            write_json_map(out, &link.attributes);
            write_link_tail(out, link.tracestate.as_deref());
        }
        out.push(b']');
    }
    write_dropped_links(out, row.dropped_links_count);
}

/// The fields every span line starts with.
struct Head<'a> {
    trace_id: TraceId,
    span_id: SpanId,
    parent_id: Option<SpanId>,
    name: &'a str,
    service: Text<'a>,
    kind: Text<'a>,
    start_ns: u64,
    end_ns: u64,
}

/// A string written as JSON once (quotes included, escaped as needed), for
/// text every line repeats: the service name of a tracer's spans.
pub struct JsonString(Vec<u8>);

impl JsonString {
    pub fn new(text: &str) -> Self {
        let mut json = Vec::with_capacity(text.len() + 2);
        write_str(&mut json, text);
        JsonString(json)
    }
}

/// Text of a line's head: as given (escaped on the way), or already JSON.
#[derive(Clone, Copy)]
enum Text<'a> {
    Plain(&'a str),
    Json(&'a [u8]),
}

impl Text<'_> {
    #[inline]
    fn write(self, out: &mut Vec<u8>) {
        match self {
            Text::Plain(text) => write_str(out, text),
            Text::Json(json) => out.extend_from_slice(json),
        }
    }
}

/// A span kind as its JSON string: constant, so never escaped per line.
fn kind_json(kind: SpanKind) -> &'static [u8] {
    match kind {
        SpanKind::Internal => b"\"internal\"",
        SpanKind::Server => b"\"server\"",
        SpanKind::Client => b"\"client\"",
        SpanKind::Producer => b"\"producer\"",
        SpanKind::Consumer => b"\"consumer\"",
    }
}

/// `{"trace_id":..` through `"duration_ms":` (the caller writes the value).
fn write_head(out: &mut Vec<u8>, h: &Head) {
    out.extend_from_slice(b"{\"trace_id\":\"");
    out.extend_from_slice(h.trace_id.to_hex().as_bytes());
    out.extend_from_slice(b"\",\"span_id\":\"");
    out.extend_from_slice(h.span_id.to_hex().as_bytes());
    match h.parent_id {
        Some(p) => {
            out.extend_from_slice(b"\",\"parent_id\":\"");
            out.extend_from_slice(p.to_hex().as_bytes());
            out.extend_from_slice(b"\",\"name\":");
        }
        None => out.extend_from_slice(b"\",\"parent_id\":null,\"name\":"),
    }
    write_str(out, h.name);
    out.extend_from_slice(b",\"service\":");
    h.service.write(out);
    out.extend_from_slice(b",\"kind\":");
    h.kind.write(out);
    out.extend_from_slice(b",\"start_ns\":");
    write_u64(out, h.start_ns);
    out.extend_from_slice(b",\"end_ns\":");
    write_u64(out, h.end_ns);
    out.extend_from_slice(b",\"duration_ms\":");
}

/// `{"name":..,"ts_ns":..,"level":..,"attributes":` (the caller writes the
/// attributes and the closing brace).
fn write_event_head(out: &mut Vec<u8>, name: &str, ts_ns: u64, level: &str) {
    out.extend_from_slice(b"{\"name\":");
    write_str(out, name);
    out.extend_from_slice(b",\"ts_ns\":");
    write_u64(out, ts_ns);
    out.extend_from_slice(b",\"level\":");
    write_str(out, level);
    out.extend_from_slice(b",\"attributes\":");
}

fn write_error(out: &mut Vec<u8>, error_type: &str, message: &str, stack: Option<&str>) {
    out.extend_from_slice(b"{\"type\":");
    write_str(out, error_type);
    out.extend_from_slice(b",\"message\":");
    write_str(out, message);
    out.extend_from_slice(b",\"stack\":");
    match stack {
        Some(stack) => write_str(out, stack),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
}

/// The optional keys after `error`, each written only when set.
fn write_counts(
    out: &mut Vec<u8>,
    remote_parent: bool,
    dropped_attributes: u64,
    dropped_events: u64,
) {
    if remote_parent {
        out.extend_from_slice(b",\"remote_parent\":true");
    }
    if dropped_attributes > 0 {
        out.extend_from_slice(b",\"dropped_attributes_count\":");
        write_u64(out, dropped_attributes);
    }
    if dropped_events > 0 {
        out.extend_from_slice(b",\"dropped_events_count\":");
        write_u64(out, dropped_events);
    }
}

/// `"scope":{"name":..,"version":..,"schema_url":..}`, the last two only when set.
fn write_scope(out: &mut Vec<u8>, name: &str, version: Option<&str>, schema_url: Option<&str>) {
    out.extend_from_slice(b",\"scope\":{\"name\":");
    write_str(out, name);
    if let Some(version) = version {
        out.extend_from_slice(b",\"version\":");
        write_str(out, version);
    }
    if let Some(url) = schema_url {
        out.extend_from_slice(b",\"schema_url\":");
        write_str(out, url);
    }
    out.push(b'}');
}

/// `{"trace_id":..,"span_id":..,"attributes":` of a link.
fn write_link_head(out: &mut Vec<u8>, trace_id: TraceId, span_id: SpanId) {
    out.extend_from_slice(b"{\"trace_id\":\"");
    out.extend_from_slice(trace_id.to_hex().as_bytes());
    out.extend_from_slice(b"\",\"span_id\":\"");
    out.extend_from_slice(span_id.to_hex().as_bytes());
    out.extend_from_slice(b"\",\"attributes\":");
}

/// The rest of a link: the linked context's `tracestate` when it has one.
fn write_link_tail(out: &mut Vec<u8>, tracestate: Option<&str>) {
    if let Some(state) = tracestate {
        out.extend_from_slice(b",\"tracestate\":");
        write_str(out, state);
    }
    out.push(b'}');
}

/// Then the line's end.
fn write_dropped_links(out: &mut Vec<u8>, dropped_links: u64) {
    if dropped_links > 0 {
        out.extend_from_slice(b",\"dropped_links_count\":");
        write_u64(out, dropped_links);
    }
    out.extend_from_slice(b"}\n");
}

/// Appends a trace summary as one JSON line to `out` (hand-written like
/// spans: one is written per trace, so it is on the writer's hot path too).
pub fn write_trace_summary(out: &mut Vec<u8>, summary: &TraceSummary) {
    out.extend_from_slice(b"{\"trace_id\":\"");
    out.extend_from_slice(summary.trace_id.to_hex().as_bytes());
    out.extend_from_slice(b"\",\"root_span_id\":\"");
    out.extend_from_slice(summary.root_span_id.to_hex().as_bytes());
    out.extend_from_slice(b"\",\"service\":");
    write_str(out, &summary.service);
    out.extend_from_slice(b",\"operation\":");
    write_str(out, &summary.operation);
    out.extend_from_slice(b",\"start_ns\":");
    write_u64(out, summary.start_ns);
    out.extend_from_slice(b",\"duration_ms\":");
    write_duration_ms(out, summary.duration_ns);
    out.extend_from_slice(b",\"span_count\":");
    write_u64(out, summary.span_count);
    out.extend_from_slice(b",\"error_count\":");
    write_u64(out, summary.error_count);
    out.extend_from_slice(b",\"status\":\"");
    out.extend_from_slice(summary.status.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// A JSON string. Text with nothing to escape (the common case: no control
/// characters, quotes or backslashes; any UTF-8 is fine) is copied as is.
#[inline]
fn write_str(out: &mut Vec<u8>, s: &str) {
    let needs_escape = s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
    if needs_escape {
        let _ = serde_json::to_writer(&mut *out, s);
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

#[inline]
fn write_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

#[inline]
fn write_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Nanoseconds as a millisecond decimal ("0.02588", "45.0"), written with
/// integer arithmetic: the same number `ns as f64 / 1e6` would print as
/// (division is correctly rounded and such decimals round-trip), without
/// the float formatter, which was the writer's costliest call.
#[inline]
fn write_duration_ms(out: &mut Vec<u8>, ns: u64) {
    if ns >= 1 << 53 {
        write_f64(out, ns as f64 / 1e6);
        return;
    }
    write_u64(out, ns / 1_000_000);
    out.push(b'.');
    let mut frac = ns % 1_000_000;
    if frac == 0 {
        out.push(b'0');
        return;
    }
    let mut digits = [b'0'; 6];
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    let len = 6 - digits.iter().rev().take_while(|&&d| d == b'0').count();
    out.extend_from_slice(&digits[..len]);
}

/// Finite floats only reach here (`AttrValue::float` turns the others into
/// strings); a non-finite duration cannot happen but would be written null.
#[inline]
fn write_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

fn write_attributes(out: &mut Vec<u8>, attributes: &Attributes) {
    out.push(b'{');
    for (i, (key, value)) in attributes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, key);
        out.push(b':');
        write_value(out, value);
    }
    out.push(b'}');
}

fn write_value(out: &mut Vec<u8>, value: &AttrValue) {
    match value {
        AttrValue::Str(s) => write_str(out, s),
        AttrValue::Bool(true) => out.extend_from_slice(b"true"),
        AttrValue::Bool(false) => out.extend_from_slice(b"false"),
        AttrValue::Int(i) => write_i64(out, *i),
        AttrValue::Float(f) => write_f64(out, *f),
        AttrValue::List(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
    }
}

fn write_json_map(out: &mut Vec<u8>, map: &serde_json::Map<String, serde_json::Value>) {
    out.push(b'{');
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, key);
        out.push(b':');
        write_json_value(out, value);
    }
    out.push(b'}');
}

fn write_json_value(out: &mut Vec<u8>, value: &serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(text) => write_str(out, text),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => write_json_map(out, map),
        // Numbers, booleans and null: serde_json's own text (a Value holds
        // finite numbers only, so this cannot fail).
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

/// Event timestamps are taken from the monotonic clock like span bounds.
pub fn event_timestamp_ns() -> u64 {
    clock::to_wall_ns(clock::monotonic_ns())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::Limits;
    use crate::span::{ErrorInfo, Event, Link, Scope, Status};
    use crate::trace_summary::TraceSummary;

    fn record() -> SpanRecord {
        let mut r = SpanRecord::new(TraceId(0xabc), Some(SpanId(0x12)), "op \"quoted\"".into());
        r.start_ns = 1_700_000_000_000_000_000;
        r.start_mono = 10;
        r.end_mono = 2_500_010;
        r.status = Status::Error;
        let limits = Limits::default();
        r.set_attribute("n".into(), AttrValue::Int(-3), &limits);
        r.set_attribute("f".into(), AttrValue::float(f64::NAN), &limits);
        r.set_attribute(
            "l".into(),
            AttrValue::List(vec![
                AttrValue::Bool(true),
                AttrValue::Str("\u{fffd}".into()),
            ]),
            &limits,
        );
        r
    }

    #[test]
    fn every_kind_and_status_is_written_as_named() {
        use crate::span::{SpanKind, Status};
        for kind in [
            SpanKind::Internal,
            SpanKind::Server,
            SpanKind::Client,
            SpanKind::Producer,
            SpanKind::Consumer,
        ] {
            for status in [Status::Unset, Status::Ok, Status::Error] {
                let mut r = record();
                r.kind = kind;
                r.status = status;
                let mut out = Vec::new();
                write_span(&mut out, &r, &JsonString::new("svc"));
                let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
                assert_eq!(v["kind"], kind.as_str());
                assert_eq!(v["status"], status.as_written());
            }
        }
    }

    #[test]
    fn span_line_is_valid_json_with_the_contract_keys() {
        let mut out = Vec::new();
        write_span(&mut out, &record(), &JsonString::new("svc"));
        assert_eq!(out.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["trace_id"], "00000000000000000000000000000abc");
        assert_eq!(v["parent_id"], "0000000000000012");
        assert_eq!(v["name"], "op \"quoted\"");
        assert_eq!(v["service"], "svc");
        assert_eq!(v["kind"], "internal");
        assert_eq!(v["duration_ms"], 2.5);
        assert_eq!(v["end_ns"], 1_700_000_000_002_500_000u64);
        assert_eq!(v["status"], "error");
        assert_eq!(v["attributes"]["n"], -3);
        assert_eq!(v["attributes"]["f"], "NaN");
        assert_eq!(v["attributes"]["l"][0], true);
        assert_eq!(v["events"], serde_json::json!([]));
        assert!(v["error"].is_null());
        // Only spans that have them carry a scope and links.
        for key in ["scope", "links", "dropped_links_count"] {
            assert!(v.get(key).is_none(), "{key}");
        }
    }

    #[test]
    fn scope_and_links_are_written_when_present() {
        let limits = Limits::default();
        let mut r = record();
        r.scope = Some(std::sync::Arc::new(Scope {
            name: "opentelemetry.instrumentation.requests".into(),
            version: Some("0.66b1".into()),
            schema_url: None,
        }));
        let mut attributes = Attributes::default();
        attributes.set("messaging.batch".into(), AttrValue::Int(3), &limits);
        r.add_link(Link {
            trace_id: TraceId(0xfeed),
            span_id: SpanId(0xbeef),
            sampled: true,
            random: false,
            tracestate: Some("vendor=1".into()),
            attributes,
        });
        r.add_link(Link {
            trace_id: TraceId(0xfeed),
            span_id: SpanId(0xcafe),
            sampled: false,
            random: false,
            tracestate: None,
            attributes: Attributes::default(),
        });
        r.dropped_links = 2;
        let mut out = Vec::new();
        write_span(&mut out, &r, &JsonString::new("svc"));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["scope"],
            serde_json::json!({"name": "opentelemetry.instrumentation.requests", "version": "0.66b1"})
        );
        assert_eq!(
            v["links"],
            serde_json::json!([
                {"trace_id": "0000000000000000000000000000feed", "span_id": "000000000000beef",
                 "attributes": {"messaging.batch": 3}, "tracestate": "vendor=1"},
                {"trace_id": "0000000000000000000000000000feed", "span_id": "000000000000cafe",
                 "attributes": {}},
            ])
        );
        assert_eq!(v["dropped_links_count"], 2);
    }

    #[test]
    fn durations_print_as_their_float_would() {
        let samples = [
            0u64,
            1,
            10,
            999,
            1_000,
            25_880,
            123_456,
            999_999,
            1_000_000,
            45_000_000,
            1_500_001,
            86_400_000_000_000,
            (1 << 53) - 1,
            1 << 53,
            u64::MAX / 3,
        ];
        for ns in samples
            .into_iter()
            .chain((0..10_000).map(|i| i * 7_919 + i * i * 104_729))
        {
            let mut out = Vec::new();
            write_duration_ms(&mut out, ns);
            let text = std::str::from_utf8(&out).unwrap();
            let parsed: f64 = text.parse().unwrap();
            assert_eq!(parsed, ns as f64 / 1e6, "{ns} -> {text}");
            assert!(
                text.contains('.') || text.contains('e'),
                "{text} must read as a float"
            );
        }
    }

    #[test]
    fn trace_summary_line_matches_its_serde_form() {
        let summary = TraceSummary {
            trace_id: TraceId(0xabc),
            root_span_id: SpanId(0x12),
            service: "s\"vc".into(),
            operation: "GET /x".into(),
            start_ns: 1_700_000_000_000_000_000,
            duration_ns: 12_500_000,
            span_count: 3,
            error_count: 1,
            status: "error",
        };
        let mut out = Vec::new();
        write_trace_summary(&mut out, &summary);
        assert_eq!(out.last(), Some(&b'\n'));
        let ours: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(ours, serde_json::to_value(&summary).unwrap());
    }

    #[test]
    fn hostile_text_still_makes_valid_json() {
        let mut r = record();
        let limits = Limits::default();
        r.name = "line\nbreak \"q\" back\\slash \u{1} tab\t".into();
        r.set_attribute(
            "k\"ey".into(),
            AttrValue::Str("\u{0}\u{7f}é😀".into()),
            &limits,
        );
        r.set_error(
            ErrorInfo {
                error_type: "ValueError".into(),
                message: "bad \"x\"".into(),
                stack: Some("Traceback\n  line 1\n".into()),
            },
            &limits,
        );
        r.add_event(
            Event {
                name: "ev".into(),
                ts_ns: 5,
                level: "warning".into(),
                attributes: Attributes::default(),
            },
            &limits,
        );
        let mut out = Vec::new();
        write_span(&mut out, &r, &JsonString::new("s\"vc"));
        let text = std::str::from_utf8(&out).unwrap();
        assert_eq!(text.matches('\n').count(), 1, "one line: {text}");
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["name"], "line\nbreak \"q\" back\\slash \u{1} tab\t");
        assert_eq!(v["attributes"]["k\"ey"], "\u{0}\u{7f}é😀");
        assert_eq!(v["error"]["message"], "bad \"x\"");
        assert_eq!(v["events"][0]["level"], "warning");
        assert_eq!(v["service"], "s\"vc");
    }

    #[test]
    fn span_rows_are_written_as_serde_would_write_them() {
        let lines = [
            r#"{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","parent_id":null,"name":"GET /x","service":"svc","kind":"server","start_ns":1700000000000000000,"end_ns":1700000000002500000,"duration_ms":2.5,"status":"ok","attributes":{"http.route":"/x","n":3,"f":0.25,"ok":true,"l":[1,"a",[null]],"m":{"k":"v"}},"events":[],"error":null}"#,
            r#"{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b8","parent_id":"00f067aa0ba902b7","name":"q\"uote\n\u0001","service":"s\\vc","kind":"client","start_ns":5,"end_ns":9,"duration_ms":7.25,"status":"error","attributes":{"<script>":"\u2028"},"events":[{"name":"exception","ts_ns":7,"level":"error","attributes":{"exception.message":"boom"}}],"error":{"type":"ValueError","message":"bad \"x\"","stack":null},"remote_parent":true,"dropped_attributes_count":2,"dropped_events_count":1,"resource":{"service.name":"svc","host.cpus":4},"scope":{"name":"lib","version":"1.0","schema_url":"https://x"},"links":[{"trace_id":"0af7651916cd43dd8448eb211c80319c","span_id":"b7ad6b7169203331","attributes":{"k":1},"tracestate":"a=b"}],"dropped_links_count":3}"#,
        ];
        for line in lines {
            let row = SpanRow::parse(line).unwrap();
            let mut out = Vec::new();
            write_row(&mut out, &row);
            assert_eq!(out.last(), Some(&b'\n'));
            let ours: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(ours, serde_json::to_value(&row).unwrap(), "{line}");
            // And it reads back as the same row.
            let text = std::str::from_utf8(&out).unwrap().trim_end();
            assert_eq!(SpanRow::parse(text).unwrap(), row);
        }
    }
}
