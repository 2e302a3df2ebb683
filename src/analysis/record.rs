//! One span line of a `spans*.jsonl` file, parsed into an owned [`SpanRow`].
//!
//! Parsing is strict about the keys README.md ("Files") shows (a file written by an
//! older or foreign writer should fail loudly line by line, not yield spans
//! with invented values) and lenient about what it does not pin: unknown keys
//! are ignored, attribute values may be any JSON.

use std::borrow::Cow;
use std::fmt;

use compact_str::CompactString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::ids::{SpanId, TraceId};
use crate::span::SpanRecord;

/// A finished span as read back from JSONL (or converted from an in-process
/// [`SpanRecord`]). Serialises to the same JSON object the writer produced.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpanRow {
    #[serde(serialize_with = "hex_trace_id")]
    pub trace_id: TraceId,
    #[serde(serialize_with = "hex_span_id")]
    pub span_id: SpanId,
    #[serde(serialize_with = "hex_parent_id")]
    pub parent_id: Option<SpanId>,
    pub name: CompactString,
    pub service: CompactString,
    pub kind: CompactString,
    pub start_ns: u64,
    pub end_ns: u64,
    pub duration_ms: f64,
    /// As written: "ok" or "error" (the in-process tracer may also say "unset").
    pub status: CompactString,
    pub attributes: Map<String, Value>,
    pub events: Vec<EventRow>,
    pub error: Option<ErrorRow>,
    #[serde(skip_serializing_if = "is_false")]
    pub remote_parent: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub dropped_attributes_count: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub dropped_events_count: u64,
    /// The OpenTelemetry resource attributes of the process that recorded
    /// the span, when it came from elsewhere (`ferrotrace serve`'s
    /// receivers); the key is written only when present. Shared by the
    /// spans of one batch, as the process's resource is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<std::sync::Arc<Map<String, Value>>>,
    /// The instrumentation scope (an OpenTelemetry tracer's name and
    /// version); absent for spans of ferrotrace's own API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<ScopeRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkRow>,
    #[serde(skip_serializing_if = "is_zero")]
    pub dropped_links_count: u64,
}

/// Who made a span: an instrumentation library's name and version.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScopeRow {
    pub name: CompactString,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<CompactString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_url: Option<CompactString>,
}

/// A link from a span to another span's context.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinkRow {
    #[serde(serialize_with = "hex_trace_id")]
    pub trace_id: TraceId,
    #[serde(serialize_with = "hex_span_id")]
    pub span_id: SpanId,
    pub attributes: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

/// A timestamped event inside a span.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    pub name: CompactString,
    pub ts_ns: u64,
    #[serde(default = "default_level")]
    pub level: CompactString,
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

/// The exception (or error message) recorded on a failed span.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorRow {
    #[serde(rename = "type")]
    pub error_type: String,
    pub message: String,
    #[serde(default)]
    pub stack: Option<String>,
}

/// Why a line is not a span record.
#[derive(Clone, Debug, PartialEq)]
pub enum RecordError {
    /// Not JSON, a torn line, or a pinned key missing or of the wrong type.
    Json(String),
    /// An id that is not 32 (trace) or 16 (span) lowercase hex digits, or is all zeros.
    InvalidId { key: &'static str, value: String },
    /// `end_ns` earlier than `start_ns`.
    EndBeforeStart { start_ns: u64, end_ns: u64 },
    /// A negative `duration_ms`.
    NegativeDuration(f64),
    /// A `.gz` file whose data ends early or is damaged (a crash during
    /// compression, a copy cut short): what came before was read, nothing
    /// after this point can be.
    Damaged(String),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Json(msg) => write!(f, "not a span record: {msg}"),
            RecordError::InvalidId { key, value } => {
                let digits = if *key == "trace_id" { 32 } else { 16 };
                write!(
                    f,
                    "{key} {value:?} is not {digits} lowercase hex digits (and not all zeros)"
                )
            }
            RecordError::EndBeforeStart { start_ns, end_ns } => {
                write!(f, "end_ns {end_ns} is before start_ns {start_ns}")
            }
            RecordError::NegativeDuration(d) => write!(f, "duration_ms {d} is negative"),
            RecordError::Damaged(why) => write!(
                f,
                "compressed data cut short or damaged ({why}); the rest of the file is unreadable"
            ),
        }
    }
}

impl std::error::Error for RecordError {}

impl SpanRow {
    /// Parses one JSONL line (with or without its trailing newline).
    ///
    /// ```
    /// use _core::analysis::SpanRow;
    /// let line = r#"{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7",
    ///   "parent_id":null,"name":"GET /","service":"api","kind":"server","start_ns":10,
    ///   "end_ns":2000010,"duration_ms":2.0,"status":"ok","attributes":{},"events":[],"error":null}"#;
    /// let row = SpanRow::parse(line).unwrap();
    /// assert_eq!(row.name, "GET /");
    /// assert!(SpanRow::parse("{\"trace_id\":").is_err());
    /// ```
    pub fn parse(line: &str) -> Result<SpanRow, RecordError> {
        Self::parse_bytes(line.as_bytes())
    }

    /// Parses one JSONL line given as bytes; invalid UTF-8 is an error.
    pub fn parse_bytes(line: &[u8]) -> Result<SpanRow, RecordError> {
        let raw: RawRow<'_> =
            serde_json::from_slice(line).map_err(|e| RecordError::Json(e.to_string()))?;
        raw.validate()
    }

    /// Converts a span finished in this process, so the in-process tracer and
    /// the file reader share one analysis engine.
    pub fn from_record(record: &SpanRecord, service: &str) -> SpanRow {
        SpanRow {
            trace_id: record.trace_id,
            span_id: record.span_id,
            parent_id: record.parent_id,
            name: record.name.clone(),
            service: service.into(),
            kind: record.kind.as_str().into(),
            start_ns: record.start_ns,
            end_ns: record.end_ns(),
            duration_ms: record.duration_ms(),
            status: record.status.as_written().into(),
            attributes: attributes_to_map(&record.attributes),
            events: record
                .events
                .iter()
                .map(|e| EventRow {
                    name: e.name.clone(),
                    ts_ns: e.ts_ns,
                    level: e.level.clone(),
                    attributes: attributes_to_map(&e.attributes),
                })
                .collect(),
            error: record.error.as_deref().map(|e| ErrorRow {
                error_type: e.error_type.clone(),
                message: e.message.clone(),
                stack: e.stack.clone(),
            }),
            remote_parent: record.remote_parent,
            dropped_attributes_count: u64::from(record.attributes.dropped),
            dropped_events_count: u64::from(record.dropped_events),
            scope: record.scope.as_deref().map(|s| ScopeRow {
                name: s.name.clone(),
                version: s.version.clone(),
                schema_url: s.schema_url.clone(),
            }),
            links: record
                .links
                .iter()
                .map(|l| LinkRow {
                    trace_id: l.trace_id,
                    span_id: l.span_id,
                    attributes: attributes_to_map(&l.attributes),
                    tracestate: l.tracestate.as_deref().map(str::to_owned),
                })
                .collect(),
            dropped_links_count: u64::from(record.dropped_links),
            resource: None,
        }
    }

    /// Whether the span failed (`status` is "error").
    pub fn is_error(&self) -> bool {
        self.status == "error"
    }

    /// The record as a JSON object, keys as in the JSONL file.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The same JSON values the writer produces for each attribute.
fn attributes_to_map(attrs: &crate::attributes::Attributes) -> Map<String, Value> {
    attrs
        .iter()
        .map(|(k, v)| (k.to_string(), attr_value_to_json(v)))
        .collect()
}

fn attr_value_to_json(value: &crate::attributes::AttrValue) -> Value {
    use crate::attributes::AttrValue;
    match value {
        AttrValue::Str(s) => Value::String(s.to_string()),
        AttrValue::Bool(b) => Value::Bool(*b),
        AttrValue::Int(i) => Value::from(*i),
        AttrValue::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        AttrValue::List(items) => Value::Array(items.iter().map(attr_value_to_json).collect()),
    }
}

/// The line as serde sees it; ids stay borrowed text until validated.
#[derive(Deserialize)]
struct RawRow<'a> {
    #[serde(borrow)]
    trace_id: Cow<'a, str>,
    #[serde(borrow)]
    span_id: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "required_nullable")]
    parent_id: Option<Cow<'a, str>>,
    name: CompactString,
    service: CompactString,
    kind: CompactString,
    start_ns: u64,
    end_ns: u64,
    duration_ms: f64,
    status: CompactString,
    attributes: Map<String, Value>,
    events: Vec<EventRow>,
    #[serde(deserialize_with = "required_nullable")]
    error: Option<ErrorRow>,
    #[serde(default)]
    remote_parent: bool,
    #[serde(default)]
    dropped_attributes_count: u64,
    #[serde(default)]
    dropped_events_count: u64,
    #[serde(default)]
    resource: Option<std::sync::Arc<Map<String, Value>>>,
    /// Read leniently (README, "Files": not a pinned key): a scope or link
    /// of the wrong shape is left out, never a reason to lose the span.
    #[serde(default)]
    scope: Option<Value>,
    #[serde(default)]
    links: Option<Value>,
    #[serde(default)]
    dropped_links_count: u64,
}

/// A `scope` object with a string `name`, else nothing.
fn scope_row(value: Option<Value>) -> Option<ScopeRow> {
    let Value::Object(mut map) = value? else {
        return None;
    };
    let mut text = |key: &str| match map.remove(key) {
        Some(Value::String(s)) => Some(CompactString::from(s)),
        _ => None,
    };
    Some(ScopeRow {
        name: text("name")?,
        version: text("version"),
        schema_url: text("schema_url"),
    })
}

/// The well-formed links of a `links` array, and how many were not.
fn link_rows(value: Option<Value>) -> (Vec<LinkRow>, u64) {
    let Some(Value::Array(items)) = value else {
        return (Vec::new(), 0);
    };
    let mut malformed = 0;
    let links = items
        .into_iter()
        .filter_map(|item| {
            let row = link_row(item);
            malformed += u64::from(row.is_none());
            row
        })
        .collect();
    (links, malformed)
}

fn link_row(item: Value) -> Option<LinkRow> {
    let Value::Object(mut map) = item else {
        return None;
    };
    let trace_id = TraceId::from_hex(map.get("trace_id")?.as_str()?)?;
    let span_id = SpanId::from_hex(map.get("span_id")?.as_str()?)?;
    let attributes = match map.remove("attributes") {
        Some(Value::Object(attributes)) => attributes,
        None | Some(Value::Null) => Map::new(),
        Some(_) => return None,
    };
    let tracestate = match map.remove("tracestate") {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    Some(LinkRow {
        trace_id,
        span_id,
        attributes,
        tracestate,
    })
}

impl RawRow<'_> {
    fn validate(self) -> Result<SpanRow, RecordError> {
        let trace_id = TraceId::from_hex(&self.trace_id).ok_or_else(|| RecordError::InvalidId {
            key: "trace_id",
            value: self.trace_id.to_string(),
        })?;
        let span_id = SpanId::from_hex(&self.span_id).ok_or_else(|| RecordError::InvalidId {
            key: "span_id",
            value: self.span_id.to_string(),
        })?;
        let parent_id = match self.parent_id {
            None => None,
            Some(p) => Some(SpanId::from_hex(&p).ok_or_else(|| RecordError::InvalidId {
                key: "parent_id",
                value: p.to_string(),
            })?),
        };
        if self.end_ns < self.start_ns {
            return Err(RecordError::EndBeforeStart {
                start_ns: self.start_ns,
                end_ns: self.end_ns,
            });
        }
        // serde_json never yields a non-finite float, so only the sign is left.
        if self.duration_ms < 0.0 {
            return Err(RecordError::NegativeDuration(self.duration_ms));
        }
        let (links, malformed_links) = link_rows(self.links);
        Ok(SpanRow {
            trace_id,
            span_id,
            parent_id,
            name: self.name,
            service: self.service,
            kind: self.kind,
            start_ns: self.start_ns,
            end_ns: self.end_ns,
            duration_ms: self.duration_ms,
            status: self.status,
            attributes: self.attributes,
            events: self.events,
            error: self.error,
            remote_parent: self.remote_parent,
            dropped_attributes_count: self.dropped_attributes_count,
            dropped_events_count: self.dropped_events_count,
            scope: scope_row(self.scope),
            links,
            // A link that could not be read is one the span no longer has.
            dropped_links_count: self.dropped_links_count.saturating_add(malformed_links),
            resource: self.resource,
        })
    }
}

/// A key that must be present but may be `null` (serde would otherwise
/// treat a missing `Option` key as `None`).
fn required_nullable<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}

fn default_level() -> CompactString {
    CompactString::const_new("info")
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Serialises a trace id as its 32 hex digits.
pub(crate) fn hex_trace_id<S: Serializer>(id: &TraceId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(id.to_hex().as_str())
}

/// Serialises a span id as its 16 hex digits.
pub(crate) fn hex_span_id<S: Serializer>(id: &SpanId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(id.to_hex().as_str())
}

/// Serialises an optional span id as 16 hex digits or `null`.
pub(crate) fn hex_parent_id<S: Serializer>(id: &Option<SpanId>, s: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => s.serialize_str(id.to_hex().as_str()),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::attributes::{AttrValue, Limits};
    use crate::span::{ErrorInfo, Status};

    pub(crate) const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn line() -> Value {
        serde_json::json!({
            "trace_id": TRACE,
            "span_id": "00f067aa0ba902b7",
            "parent_id": "00000000000000aa",
            "name": "GET /users/{id}",
            "service": "api",
            "kind": "server",
            "start_ns": 1_700_000_000_000_000_000u64,
            "end_ns": 1_700_000_000_012_500_000u64,
            "duration_ms": 12.5,
            "status": "error",
            "attributes": {"http.status_code": 500, "tags": ["a", 1, true], "f": 1.5},
            "events": [{"name": "cache miss", "ts_ns": 1_700_000_000_001_000_000u64,
                        "level": "warning", "attributes": {"key": "u:1"}}],
            "error": {"type": "KeyError", "message": "'u:1'", "stack": "Traceback..."},
        })
    }

    fn parse_value(v: &Value) -> Result<SpanRow, RecordError> {
        SpanRow::parse(&serde_json::to_string(v).unwrap())
    }

    #[test]
    fn parses_every_pinned_key() {
        let row = parse_value(&line()).unwrap();
        assert_eq!(row.trace_id, TraceId::from_hex(TRACE).unwrap());
        assert_eq!(row.span_id, SpanId(0x00f0_67aa_0ba9_02b7));
        assert_eq!(row.parent_id, Some(SpanId(0xaa)));
        assert_eq!(row.name, "GET /users/{id}");
        assert_eq!(row.service, "api");
        assert_eq!(row.kind, "server");
        assert_eq!(row.end_ns - row.start_ns, 12_500_000);
        assert_eq!(row.duration_ms, 12.5);
        assert!(row.is_error());
        assert_eq!(row.attributes["http.status_code"], 500);
        assert_eq!(row.events.len(), 1);
        assert_eq!(row.events[0].level, "warning");
        let err = row.error.as_ref().unwrap();
        assert_eq!(err.error_type, "KeyError");
        assert_eq!(err.stack.as_deref(), Some("Traceback..."));
        assert!(!row.remote_parent);
    }

    #[test]
    fn serialises_back_to_the_same_record() {
        let original = line();
        let row = parse_value(&original).unwrap();
        assert_eq!(row.to_json(), original);
    }

    #[test]
    fn durations_read_back_to_the_same_bits() {
        // Found by proptest: serde_json's default float parser is off by an
        // ulp here; exact percentiles need the `float_roundtrip` feature.
        let mut v = line();
        v["duration_ms"] = 188_926_031.115_976_78.into();
        let row = parse_value(&v).unwrap();
        assert_eq!(
            row.duration_ms.to_bits(),
            188_926_031.115_976_78f64.to_bits()
        );
    }

    #[test]
    fn null_parent_and_null_error_are_fine() {
        let mut v = line();
        v["parent_id"] = Value::Null;
        v["error"] = Value::Null;
        v["status"] = "ok".into();
        let row = parse_value(&v).unwrap();
        assert_eq!(row.parent_id, None);
        assert!(row.error.is_none());
        assert!(!row.is_error());
        assert_eq!(row.to_json()["parent_id"], Value::Null);
    }

    #[test]
    fn extra_keys_are_kept_or_ignored() {
        let mut v = line();
        v["remote_parent"] = true.into();
        v["dropped_events_count"] = 3.into();
        v["something_new"] = "x".into();
        let row = parse_value(&v).unwrap();
        assert!(row.remote_parent);
        assert_eq!(row.dropped_events_count, 3);
        assert_eq!(row.to_json()["remote_parent"], true);
    }

    #[test]
    fn scope_and_links_read_back() {
        let mut v = line();
        v["scope"] = serde_json::json!({"name": "opentelemetry.instrumentation.sqlalchemy",
                                        "version": "0.66b1"});
        v["links"] = serde_json::json!([
            {"trace_id": TRACE, "span_id": "00000000000000bb", "attributes": {"n": 1},
             "tracestate": "k=v"},
            {"trace_id": TRACE, "span_id": "00000000000000cc", "attributes": {}},
        ]);
        v["dropped_links_count"] = 4.into();
        let row = parse_value(&v).unwrap();
        let scope = row.scope.as_ref().unwrap();
        assert_eq!(scope.name, "opentelemetry.instrumentation.sqlalchemy");
        assert_eq!(scope.version.as_deref(), Some("0.66b1"));
        assert_eq!(row.links.len(), 2);
        assert_eq!(row.links[0].span_id, SpanId(0xbb));
        assert_eq!(row.links[0].attributes["n"], 1);
        assert_eq!(row.links[0].tracestate.as_deref(), Some("k=v"));
        assert_eq!(row.dropped_links_count, 4);
        assert_eq!(row.to_json(), v);
    }

    #[test]
    fn malformed_scope_and_links_never_lose_the_span() {
        let mut v = line();
        v["scope"] = serde_json::json!({"version": "1"});
        v["links"] = serde_json::json!([
            {"trace_id": "nothex", "span_id": "00000000000000bb"},
            {"trace_id": TRACE, "span_id": "00000000000000cc", "attributes": []},
            "junk",
            {"trace_id": TRACE, "span_id": "00000000000000dd"},
        ]);
        let row = parse_value(&v).unwrap();
        assert!(row.scope.is_none());
        assert_eq!(row.links.len(), 1);
        assert_eq!(row.links[0].span_id, SpanId(0xdd));
        assert!(row.links[0].attributes.is_empty());
        // The three unreadable links are counted as the span's lost links.
        assert_eq!(row.dropped_links_count, 3);
        v["links"] = "not a list".into();
        v["scope"] = 7.into();
        let row = parse_value(&v).unwrap();
        assert!(row.links.is_empty() && row.scope.is_none());
    }

    #[test]
    fn missing_keys_are_errors() {
        for key in [
            "trace_id",
            "span_id",
            "parent_id",
            "name",
            "service",
            "kind",
            "start_ns",
            "end_ns",
            "duration_ms",
            "status",
            "attributes",
            "events",
            "error",
        ] {
            let mut v = line();
            v.as_object_mut().unwrap().remove(key);
            let err = parse_value(&v).unwrap_err();
            assert!(matches!(err, RecordError::Json(_)), "{key}: {err}");
            assert!(err.to_string().contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn ill_typed_keys_are_errors() {
        let cases: [(&str, Value); 7] = [
            ("start_ns", "10".into()),
            ("start_ns", (-5).into()),
            ("end_ns", 1.5e18.into()),
            ("duration_ms", "12".into()),
            ("name", 3.into()),
            ("attributes", Value::Array(vec![])),
            ("error", "boom".into()),
        ];
        for (key, value) in cases {
            let mut v = line();
            v[key] = value.clone();
            assert!(parse_value(&v).is_err(), "{key} = {value}");
        }
    }

    #[test]
    fn bad_ids_are_errors() {
        let cases = [
            ("trace_id", "4BF92F3577B34DA6A3CE929D0E0E4736"),
            ("trace_id", "4bf92f3577b34da6"),
            ("trace_id", "00000000000000000000000000000000"),
            ("span_id", "00f067aa0ba902b"),
            ("span_id", "00f067aa0ba902bz"),
            ("parent_id", "0000000000000000"),
        ];
        for (key, value) in cases {
            let mut v = line();
            v[key] = value.into();
            match parse_value(&v) {
                Err(RecordError::InvalidId { key: k, value: val }) => {
                    assert_eq!(k, key);
                    assert_eq!(val, value);
                }
                other => panic!("{key}={value}: {other:?}"),
            }
        }
    }

    #[test]
    fn inconsistent_times_are_errors() {
        let mut v = line();
        v["end_ns"] = 1.into();
        assert!(matches!(
            parse_value(&v),
            Err(RecordError::EndBeforeStart { .. })
        ));
        let mut v = line();
        v["duration_ms"] = (-1.0).into();
        assert!(matches!(
            parse_value(&v),
            Err(RecordError::NegativeDuration(_))
        ));
    }

    #[test]
    fn torn_and_garbage_lines_are_errors_not_panics() {
        let full = serde_json::to_string(&line()).unwrap();
        for cut in (0..full.len()).filter(|&c| full.is_char_boundary(c)) {
            assert!(SpanRow::parse(&full[..cut]).is_err(), "cut at {cut}");
        }
        for garbage in ["", "null", "[]", "42", "{}", "\u{0}", "{\"trace_id\": 1}"] {
            assert!(SpanRow::parse(garbage).is_err(), "{garbage:?}");
        }
        assert!(SpanRow::parse_bytes(b"{\"name\": \"\xff\"}").is_err());
        // The trailing newline the writer adds is fine.
        assert!(SpanRow::parse(&format!("{full}\n")).is_ok());
    }

    #[test]
    fn from_record_matches_what_the_writer_writes() {
        let limits = Limits::default();
        let mut rec = SpanRecord::new(TraceId(0xabc), Some(SpanId(0x12)), "op".into());
        rec.start_ns = 1_000;
        rec.start_mono = 10;
        rec.end_mono = 2_500_010;
        rec.status = Status::Ok;
        rec.set_attribute("n".into(), AttrValue::Int(-3), &limits);
        rec.set_error(
            ErrorInfo {
                error_type: "ValueError".into(),
                message: "bad".into(),
                stack: None,
            },
            &limits,
        );
        let row = SpanRow::from_record(&rec, "svc");
        let mut written = Vec::new();
        crate::jsonl::write_span(&mut written, &rec, &crate::jsonl::ServiceJson::new("svc"));
        let reparsed = SpanRow::parse_bytes(&written).unwrap();
        assert_eq!(row, reparsed);
        assert_eq!(row.duration_ms, 2.5);
        assert_eq!(row.end_ns, 2_501_000);
        assert!(row.is_error());
    }

    /// Any text, control characters, quotes and newlines included.
    const TEXT: &str = "(?s).{0,24}";

    fn attr_value() -> impl proptest::strategy::Strategy<Value = AttrValue> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            TEXT.prop_map(|s| AttrValue::Str(s.into())),
            any::<bool>().prop_map(AttrValue::Bool),
            any::<i64>().prop_map(AttrValue::Int),
            // NaN and the infinities become strings, as the binding stores them.
            any::<f64>().prop_map(AttrValue::float),
        ];
        prop_oneof![
            3 => leaf.clone(),
            1 => proptest::collection::vec(leaf, 0..4).prop_map(AttrValue::List),
        ]
    }

    fn attributes() -> impl proptest::strategy::Strategy<Value = Vec<(String, AttrValue)>> {
        proptest::collection::vec((TEXT, attr_value()), 0..6)
    }

    /// Small limits, so that truncated values and dropped attributes and
    /// events are written too (no redaction: the keys are arbitrary).
    fn small_limits() -> Limits {
        Limits {
            max_attributes: 3,
            max_attribute_length: 16,
            max_events: 2,
            redact: crate::redact::Redactor::new([]),
        }
    }

    proptest::prop_compose! {
        /// A finished span and its service, as the collector hands them to
        /// the writer.
        fn written_span()(
            trace in 1u128..,
            span in 1u64..,
            parent in proptest::option::of(1u64..),
            name in TEXT,
            service in TEXT,
            kind in proptest::sample::select(vec!["internal", "server", "client", "producer", "consumer"]),
            status in proptest::sample::select(vec![Status::Unset, Status::Ok, Status::Error]),
            start_ns in 0u64..(1 << 62),
            measured_ns in 0u64..(1 << 40),
            // Overrides reach past 2^53 ns, where durations print as floats.
            override_ns in proptest::option::of(0u64..(1 << 62)),
            attributes in attributes(),
            events in proptest::collection::vec((TEXT, proptest::num::u64::ANY, TEXT, attributes()), 0..4),
            error in proptest::option::of((TEXT, TEXT, proptest::option::of(TEXT))),
            remote_parent in proptest::bool::ANY,
            scope in proptest::option::of((TEXT, proptest::option::of(TEXT), proptest::option::of(TEXT))),
            links in proptest::collection::vec(
                (1u128.., 1u64.., proptest::option::of("[a-z]{1,8}=[a-z0-9]{1,8}"), attributes()),
                0..3,
            ),
        ) -> (SpanRecord, String) {
            let mut record = SpanRecord::new(TraceId(trace), parent.map(SpanId), name.into());
            record.span_id = SpanId(span);
            record.kind = crate::span::SpanKind::parse(kind).unwrap();
            record.status = status;
            record.start_ns = start_ns;
            record.start_mono = 1;
            record.end_mono = 1 + measured_ns;
            record.duration_override_ns = override_ns;
            record.remote_parent = remote_parent;
            for (key, value) in attributes {
                record.set_attribute(key.into(), value, &small_limits());
            }
            for (name, ts_ns, level, attrs) in events {
                let mut event_attributes = crate::attributes::Attributes::default();
                for (key, value) in attrs {
                    event_attributes.set(key.into(), value, &small_limits());
                }
                let event = crate::span::Event {
                    name: name.into(),
                    ts_ns,
                    level: level.into(),
                    attributes: event_attributes,
                };
                record.add_event(event, &small_limits());
            }
            if let Some((error_type, message, stack)) = error {
                let info = ErrorInfo { error_type, message, stack };
                record.set_error(info, &small_limits());
            }
            record.scope = scope.map(|(name, version, schema_url)| {
                std::sync::Arc::new(crate::span::Scope {
                    name: name.into(),
                    version: version.map(Into::into),
                    schema_url: schema_url.map(Into::into),
                })
            });
            for (trace, span, tracestate, attrs) in links {
                let mut link_attributes = crate::attributes::Attributes::default();
                for (key, value) in attrs {
                    link_attributes.set(key.into(), value, &small_limits());
                }
                record.add_link(crate::span::Link {
                    trace_id: TraceId(trace),
                    span_id: SpanId(span),
                    sampled: true,
                    random: false,
                    tracestate: tracestate.map(|t| std::sync::Arc::from(t.as_str())),
                    attributes: link_attributes,
                });
            }
            (record, service)
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_is_an_error_or_a_span_never_a_panic(text in ".{0,200}") {
            let _ = SpanRow::parse(&text);
        }

        /// What the real writer (`jsonl::write_span`) puts in a file, the
        /// analysis reader reads back as the very span that was written.
        #[test]
        fn spans_the_writer_writes_the_reader_reads_back(
            records in proptest::collection::vec(written_span(), 1..5),
        ) {
            let mut file = Vec::new();
            for (record, service) in &records {
                crate::jsonl::write_span(&mut file, record, &crate::jsonl::ServiceJson::new(service));
            }
            let mut report = crate::analysis::ReadReport::default();
            let mut rows = Vec::new();
            crate::analysis::read_span_lines(
                file.as_slice(),
                std::path::Path::new("spans-test.jsonl"),
                &mut report,
                &mut |row| rows.push(row),
            )
            .unwrap();
            proptest::prop_assert_eq!(report.skipped, 0, "{:?}", report.first_skipped);
            proptest::prop_assert_eq!(rows.len(), records.len());
            for (row, (record, service)) in rows.iter().zip(&records) {
                proptest::prop_assert_eq!(row.trace_id, record.trace_id);
                proptest::prop_assert_eq!(row.span_id, record.span_id);
                proptest::prop_assert_eq!(row.parent_id, record.parent_id);
                proptest::prop_assert_eq!(row.name.as_str(), record.name.as_str());
                proptest::prop_assert_eq!(row.service.as_str(), service.as_str());
                proptest::prop_assert_eq!(row.kind.as_str(), record.kind.as_str());
                proptest::prop_assert_eq!(row.start_ns, record.start_ns);
                proptest::prop_assert_eq!(row.end_ns, record.start_ns + record.duration_ns());
                let duration_ms = record.duration_ns() as f64 / 1e6;
                proptest::prop_assert_eq!(row.duration_ms.to_bits(), duration_ms.to_bits());
                proptest::prop_assert_eq!(row.status.as_str(), record.status.as_written());
                proptest::prop_assert_eq!(row.attributes.len(), record.attributes.len());
                proptest::prop_assert_eq!(row.events.len(), record.events.len());
                proptest::prop_assert_eq!(
                    row.error.as_ref().map(|e| (&e.error_type, &e.message, &e.stack)),
                    record.error.as_deref().map(|e| (&e.error_type, &e.message, &e.stack))
                );
                proptest::prop_assert_eq!(row.remote_parent, record.remote_parent);
                proptest::prop_assert_eq!(
                    row.dropped_attributes_count,
                    u64::from(record.attributes.dropped)
                );
                proptest::prop_assert_eq!(row.dropped_events_count, u64::from(record.dropped_events));
                proptest::prop_assert_eq!(row.links.len(), record.links.len());
                proptest::prop_assert_eq!(
                    row.scope.as_ref().map(|s| s.name.as_str()),
                    record.scope.as_deref().map(|s| s.name.as_str())
                );
                // And every value, attributes and events included, as the
                // in-process analysis sees the same span.
                proptest::prop_assert_eq!(row, &SpanRow::from_record(record, service));
            }
        }
    }
}
