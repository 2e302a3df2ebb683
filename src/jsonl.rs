//! Where spans and trace summaries are serialised: one JSON object per line.
//!
//! Records are appended to a reused byte buffer. Every string that could
//! need escaping goes through serde_json's escaper, so whatever a span
//! carries, each line is strict UTF-8 JSON.

use std::mem::MaybeUninit;

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
pub fn write_span(out: &mut Vec<u8>, record: &SpanRecord, service: &ServiceJson) {
    let r = record;
    write_head(
        out,
        &Head {
            trace_id: r.trace_id,
            span_id: r.span_id,
            parent_id: r.parent_id,
            name: &r.name,
            service_and_kind: Text::Json(service.with_kind(r.kind)),
            start_ns: r.start_ns,
            end_ns: r.end_ns(),
        },
    );
    Chunk::write::<{ DURATION_MAX + 31 }>(out, |middle| {
        middle.put_duration_ms(r.duration_ns());
        // What `Status::as_written` names, as constant JSON.
        match r.status {
            Status::Error => middle.put(b",\"status\":\"error\",\"attributes\":"),
            Status::Ok | Status::Unset => middle.put(b",\"status\":\"ok\",\"attributes\":"),
        }
    });
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
            service_and_kind: Text::Plain {
                service: &row.service,
                kind: &row.kind,
            },
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
    service_and_kind: Text<'a>,
    start_ns: u64,
    end_ns: u64,
}

/// A tracer's service name written as JSON once (escaped as needed), with
/// each span kind after it: `,"service":"..","kind":".."`, the part of a
/// span line between its name and its times, which every line repeats.
pub struct ServiceJson {
    by_kind: [Box<[u8]>; SpanKind::ALL.len()],
}

impl ServiceJson {
    pub fn new(service: &str) -> Self {
        let by_kind = SpanKind::ALL.map(|kind| {
            let mut json = Vec::with_capacity(service.len() + 32);
            Text::Plain {
                service,
                kind: kind.as_str(),
            }
            .write(&mut json);
            json.into_boxed_slice()
        });
        ServiceJson { by_kind }
    }

    #[inline]
    fn with_kind(&self, kind: SpanKind) -> &[u8] {
        &self.by_kind[kind as usize]
    }
}

/// `,"service":..,"kind":..` of a line: as given (escaped on the way), or
/// already JSON.
#[derive(Clone, Copy)]
enum Text<'a> {
    Plain { service: &'a str, kind: &'a str },
    Json(&'a [u8]),
}

impl Text<'_> {
    #[inline]
    fn write(self, out: &mut Vec<u8>) {
        match self {
            Text::Plain { service, kind } => {
                out.extend_from_slice(b",\"service\":");
                write_str(out, service);
                out.extend_from_slice(b",\"kind\":");
                write_str(out, kind);
            }
            Text::Json(json) => out.extend_from_slice(json),
        }
    }
}

/// `{"trace_id":..` through `"duration_ms":` (the caller writes the value).
fn write_head(out: &mut Vec<u8>, h: &Head) {
    Chunk::write::<{ 13 + 32 + 13 + 16 + 15 + 16 + 10 }>(out, |ids| {
        ids.put(b"{\"trace_id\":\"");
        ids.put(h.trace_id.to_hex().as_array());
        ids.put(b"\",\"span_id\":\"");
        ids.put(h.span_id.to_hex().as_array());
        match h.parent_id {
            Some(p) => {
                ids.put(b"\",\"parent_id\":\"");
                ids.put(p.to_hex().as_array());
                ids.put(b"\",\"name\":");
            }
            None => ids.put(b"\",\"parent_id\":null,\"name\":"),
        }
    });
    write_str(out, h.name);
    h.service_and_kind.write(out);
    Chunk::write::<{ 12 + 20 + 10 + 20 + 15 }>(out, |times| {
        times.put(b",\"start_ns\":");
        times.put_u64(h.start_ns);
        times.put(b",\"end_ns\":");
        times.put_u64(h.end_ns);
        times.put(b",\"duration_ms\":");
    });
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
    Chunk::write::<{ 13 + 32 + 18 + 16 + 12 }>(out, |ids| {
        ids.put(b"{\"trace_id\":\"");
        ids.put(summary.trace_id.to_hex().as_array());
        ids.put(b"\",\"root_span_id\":\"");
        ids.put(summary.root_span_id.to_hex().as_array());
        ids.put(b"\",\"service\":");
    });
    write_str(out, &summary.service);
    out.extend_from_slice(b",\"operation\":");
    write_str(out, &summary.operation);
    Chunk::write::<{ 12 + 20 + 15 + DURATION_MAX + 14 + 20 + 15 + 20 + 22 }>(out, |counts| {
        counts.put(b",\"start_ns\":");
        counts.put_u64(summary.start_ns);
        counts.put(b",\"duration_ms\":");
        counts.put_duration_ms(summary.duration_ns);
        counts.put(b",\"span_count\":");
        counts.put_u64(summary.span_count);
        counts.put(b",\"error_count\":");
        counts.put_u64(summary.error_count);
        match summary.status {
            "ok" => counts.put(b",\"status\":\"ok\"}\n"),
            "error" => counts.put(b",\"status\":\"error\"}\n"),
            _ => {}
        }
    });
    if !matches!(summary.status, "ok" | "error") {
        out.extend_from_slice(b",\"status\":");
        write_str(out, summary.status);
        out.extend_from_slice(b"}\n");
    }
}

/// The longest duration [`Chunk::put_duration_ms`] writes: 20 integer
/// digits, a point and 6 decimals (longer ones go through the float
/// formatter, which writes at most 24 bytes).
const DURATION_MAX: usize = 27;

/// Two decimal digits per entry, for writing integers a pair at a time.
const DIGIT_PAIRS: [[u8; 2]; 100] = {
    let mut pairs = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        pairs[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    pairs
};

/// `dst.write_copy_of_slice(src)` (stable only since Rust 1.93): with the
/// lengths known at compile time, as in every `put`, it compiles to the
/// same few moves.
#[inline(always)]
fn copy_into(dst: &mut [MaybeUninit<u8>], src: &[u8]) {
    debug_assert_eq!(dst.len(), src.len());
    for (slot, &byte) in dst.iter_mut().zip(src) {
        slot.write(byte);
    }
}

/// A run of a line's fixed-width parts (keys, hex ids, integers) written
/// straight into the line's reserved spare capacity. Each `put` of a
/// constant key is a copy of known size, which compiles to a few moves;
/// appended one by one with `Vec::extend_from_slice`, every key was a
/// `memmove` call and a capacity check, a third of the serialiser's time
/// (`benches/writer.rs`). Made by [`Chunk::write`], which reserves `CAP`
/// bytes: a `put` past them panics (it is a bounds-checked slice write),
/// and every caller's `CAP` is the sum of its parts' maxima.
struct Chunk<'a> {
    spare: &'a mut [MaybeUninit<u8>],
    len: usize,
}

impl Chunk<'_> {
    /// Runs `fill` on a chunk over `out`'s next `CAP` bytes, then makes what
    /// it put part of `out`.
    #[inline(always)]
    fn write<const CAP: usize>(out: &mut Vec<u8>, fill: impl FnOnce(&mut Chunk)) {
        out.reserve(CAP);
        let mut chunk = Chunk {
            spare: &mut out.spare_capacity_mut()[..CAP],
            len: 0,
        };
        fill(&mut chunk);
        let written = chunk.len;
        // SAFETY: `len` only ever grows by the bytes a `put` has just
        // written, through bounds-checked slices of the spare capacity, so
        // the first `written` spare bytes are initialised and within it.
        unsafe { out.set_len(out.len() + written) };
    }

    #[inline(always)]
    fn put<const N: usize>(&mut self, bytes: &[u8; N]) {
        copy_into(&mut self.spare[self.len..self.len + N], bytes);
        self.len += N;
    }

    /// Decimal digits, four at a time from the end (like `itoa`), written
    /// in place.
    #[inline(always)]
    fn put_u64(&mut self, value: u64) {
        let digits = value.checked_ilog10().unwrap_or(0) as usize + 1;
        let out = &mut self.spare[self.len..self.len + digits];
        let mut end = digits;
        let mut rest = value;
        while rest >= 10_000 {
            let four = (rest % 10_000) as usize;
            rest /= 10_000;
            end -= 4;
            copy_into(&mut out[end..end + 2], &DIGIT_PAIRS[four / 100]);
            copy_into(&mut out[end + 2..end + 4], &DIGIT_PAIRS[four % 100]);
        }
        let mut rest = rest as usize;
        if rest >= 100 {
            end -= 2;
            copy_into(&mut out[end..end + 2], &DIGIT_PAIRS[rest % 100]);
            rest /= 100;
        }
        if rest >= 10 {
            copy_into(&mut out[..2], &DIGIT_PAIRS[rest]);
        } else {
            out[0].write(b'0' + rest as u8);
        }
        self.len += digits;
    }

    #[inline(always)]
    fn put_i64(&mut self, value: i64) {
        if value < 0 {
            self.put(b"-");
        }
        self.put_u64(value.unsigned_abs());
    }

    /// Nanoseconds as a millisecond decimal ("0.02588", "45.0"), written
    /// with integer arithmetic: the same number `ns as f64 / 1e6` would
    /// print as (division is correctly rounded and such decimals
    /// round-trip), without the float formatter, which was the writer's
    /// costliest call.
    #[inline(always)]
    fn put_duration_ms(&mut self, ns: u64) {
        if ns >= 1 << 53 {
            let mut float = ryu::Buffer::new();
            let text = float.format_finite(ns as f64 / 1e6).as_bytes();
            copy_into(&mut self.spare[self.len..self.len + text.len()], text);
            self.len += text.len();
            return;
        }
        self.put_u64(ns / 1_000_000);
        let mut frac = ns % 1_000_000;
        if frac == 0 {
            self.put(b".0");
            return;
        }
        let mut digits = [b'0'; 7];
        digits[0] = b'.';
        for slot in digits[1..].iter_mut().rev() {
            *slot = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
        let len = 7 - digits.iter().rev().take_while(|&&d| d == b'0').count();
        // All seven are copied (a copy of known size); `len` of them count.
        copy_into(&mut self.spare[self.len..self.len + 7], &digits);
        self.len += len;
    }
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
    Chunk::write::<20>(out, |digits| digits.put_u64(v));
}

/// Nanoseconds as a millisecond decimal: see [`Chunk::put_duration_ms`].
#[inline]
fn write_duration_ms(out: &mut Vec<u8>, ns: u64) {
    Chunk::write::<DURATION_MAX>(out, |duration| duration.put_duration_ms(ns));
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
        AttrValue::Int(i) => Chunk::write::<20>(out, |digits| digits.put_i64(*i)),
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
                write_span(&mut out, &r, &ServiceJson::new("svc"));
                let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
                assert_eq!(v["kind"], kind.as_str());
                assert_eq!(v["status"], status.as_written());
            }
        }
    }

    #[test]
    fn span_line_is_valid_json_with_the_contract_keys() {
        let mut out = Vec::new();
        write_span(&mut out, &record(), &ServiceJson::new("svc"));
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
        write_span(&mut out, &r, &ServiceJson::new("svc"));
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
    fn integers_print_as_to_string_does() {
        let mut unsigned = vec![0u64, u64::MAX, u64::MAX - 1];
        let mut power = 1u64;
        loop {
            unsigned.extend([
                power - 1,
                power,
                power + 1,
                power.saturating_mul(3).saturating_add(7),
            ]);
            match power.checked_mul(10) {
                Some(next) => power = next,
                None => break,
            }
        }
        unsigned
            .extend((0..10_000).map(|i: u64| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (i % 64)));
        for v in unsigned {
            let mut out = b"x".to_vec();
            write_u64(&mut out, v);
            assert_eq!(std::str::from_utf8(&out[1..]).unwrap(), v.to_string());
            for signed in [v as i64, (v as i64).wrapping_neg()] {
                let mut out = Vec::new();
                write_value(&mut out, &AttrValue::Int(signed));
                assert_eq!(std::str::from_utf8(&out).unwrap(), signed.to_string());
            }
        }
        let mut out = Vec::new();
        write_value(&mut out, &AttrValue::Int(i64::MIN));
        assert_eq!(out, i64::MIN.to_string().as_bytes());
    }

    #[test]
    fn trace_summary_line_matches_its_serde_form() {
        // "ok" and "error" are written as constants; anything else as text.
        for status in ["error", "ok", "odd\"status"] {
            let summary = TraceSummary {
                trace_id: TraceId(0xabc),
                root_span_id: SpanId(0x12),
                service: "s\"vc".into(),
                operation: "GET /x".into(),
                start_ns: 1_700_000_000_000_000_000,
                duration_ns: 12_500_000,
                span_count: 3,
                error_count: 1,
                status,
            };
            let mut out = Vec::new();
            write_trace_summary(&mut out, &summary);
            assert_eq!(out.last(), Some(&b'\n'));
            assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
            let ours: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(ours, serde_json::to_value(&summary).unwrap());
        }
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
        write_span(&mut out, &r, &ServiceJson::new("s\"vc"));
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
