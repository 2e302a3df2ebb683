//! Where spans and trace summaries are serialised: one JSON object per line.
//!
//! Records are written through serde's `Serialize` into a reused byte
//! buffer; every string goes through serde_json's escaper, so whatever a span
//! carries, each line is strict UTF-8 JSON.

use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;

use crate::attributes::{AttrValue, Attributes};
use crate::clock;
use crate::span::{ErrorInfo, Event, SpanRecord};
use crate::trace_summary::TraceSummary;

/// A span record together with the service that produced it.
pub struct SpanLine<'a> {
    pub record: &'a SpanRecord,
    pub service: &'a str,
}

/// Appends `record` as one JSON line to `out`.
pub fn write_span(out: &mut Vec<u8>, record: &SpanRecord, service: &str) {
    write_line(out, &SpanLine { record, service });
}

/// Appends a trace summary as one JSON line to `out`.
pub fn write_trace_summary(out: &mut Vec<u8>, summary: &TraceSummary) {
    write_line(out, summary);
}

fn write_line<T: Serialize>(out: &mut Vec<u8>, value: &T) {
    let mark = out.len();
    if serde_json::to_writer(&mut *out, value).is_ok() {
        out.push(b'\n');
    } else {
        // Serialisation into a Vec cannot fail for these types; if it ever
        // did, leave no half line behind.
        out.truncate(mark);
    }
}

impl Serialize for SpanLine<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.record;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("trace_id", r.trace_id.to_hex().as_str())?;
        map.serialize_entry("span_id", r.span_id.to_hex().as_str())?;
        match r.parent_id {
            Some(p) => map.serialize_entry("parent_id", p.to_hex().as_str())?,
            None => map.serialize_entry("parent_id", &None::<&str>)?,
        }
        map.serialize_entry("name", r.name.as_str())?;
        map.serialize_entry("service", self.service)?;
        map.serialize_entry("kind", r.kind.as_str())?;
        map.serialize_entry("start_ns", &r.start_ns)?;
        map.serialize_entry("end_ns", &r.end_ns())?;
        map.serialize_entry("duration_ms", &r.duration_ms())?;
        map.serialize_entry("status", r.status.as_written())?;
        map.serialize_entry("attributes", &AttributesJson(&r.attributes))?;
        map.serialize_entry("events", &EventsJson(&r.events))?;
        map.serialize_entry("error", &r.error.as_deref().map(ErrorJson))?;
        if r.remote_parent {
            map.serialize_entry("remote_parent", &true)?;
        }
        if r.attributes.dropped > 0 {
            map.serialize_entry("dropped_attributes_count", &r.attributes.dropped)?;
        }
        if r.dropped_events > 0 {
            map.serialize_entry("dropped_events_count", &r.dropped_events)?;
        }
        map.end()
    }
}

struct AttributesJson<'a>(&'a Attributes);

impl Serialize for AttributesJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0.iter() {
            map.serialize_entry(key, &ValueJson(value))?;
        }
        map.end()
    }
}

struct ValueJson<'a>(&'a AttrValue);

impl Serialize for ValueJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            AttrValue::Str(s) => serializer.serialize_str(s),
            AttrValue::Bool(b) => serializer.serialize_bool(*b),
            AttrValue::Int(i) => serializer.serialize_i64(*i),
            AttrValue::Float(f) => serializer.serialize_f64(*f),
            AttrValue::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&ValueJson(item))?;
                }
                seq.end()
            }
        }
    }
}

struct EventsJson<'a>(&'a [Event]);

impl Serialize for EventsJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for event in self.0 {
            seq.serialize_element(&EventJson(event))?;
        }
        seq.end()
    }
}

struct EventJson<'a>(&'a Event);

impl Serialize for EventJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("name", e.name.as_str())?;
        map.serialize_entry("ts_ns", &e.ts_ns)?;
        map.serialize_entry("level", e.level.as_str())?;
        map.serialize_entry("attributes", &AttributesJson(&e.attributes))?;
        map.end()
    }
}

struct ErrorJson<'a>(&'a ErrorInfo);

impl Serialize for ErrorJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("type", &e.error_type)?;
        map.serialize_entry("message", &e.message)?;
        map.serialize_entry("stack", &e.stack)?;
        map.end()
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
    use crate::ids::{SpanId, TraceId};
    use crate::span::Status;

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
            AttrValue::List(vec![AttrValue::Bool(true), AttrValue::Str("\u{fffd}".into())]),
            &limits,
        );
        r
    }

    #[test]
    fn span_line_is_valid_json_with_the_contract_keys() {
        let mut out = Vec::new();
        write_span(&mut out, &record(), "svc");
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
    }
}
