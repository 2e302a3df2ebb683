//! The OTLP trace messages and the one mapping from span records to them.
//!
//! The messages are those of opentelemetry-proto (`collector/trace/v1`,
//! `trace/v1`, `resource/v1`, `common/v1`), written as prost structs with
//! the same names, field numbers and types, so they encode and decode the
//! wire format without protoc or generated code. Only what traces use is
//! here. A receiver's reverse mapping (OTLP → span records) belongs next to
//! [`span`].
//!
//! Mapping decisions, where OpenTelemetry leaves a choice:
//! - a record without a scope comes from ferrotrace's own API: scope
//!   `ferrotrace` with the crate version;
//! - status: error → `STATUS_CODE_ERROR` with the error's message as
//!   description, else the `status_description` attribute; ok → OK; unset
//!   stays UNSET (JSONL writes it "ok", OTLP keeps the difference);
//! - an error also becomes an `exception` event (`exception.type`,
//!   `exception.message`, `exception.stacktrace`) at the span's end, unless
//!   the span already has an `exception` event;
//! - an event's level becomes a `level` attribute unless it is the default
//!   "info", so ordinary events carry nothing extra and a reader mapping
//!   back takes a missing `level` as "info";
//! - flags: the W3C sampled bit, and the "parent is remote" bits
//!   (`SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK` always, `..._IS_REMOTE_MASK`
//!   when the parent came from another process).

use crate::attributes::{AttrValue, Attributes};
use crate::export::SDK_VERSION;
use crate::span::{ErrorInfo, Event as SpanEvent, Link as SpanLink, SpanKind, SpanRecord};

/// `opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest`:
/// the body of `POST /v1/traces`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportTraceServiceRequest {
    #[prost(message, repeated, tag = "1")]
    pub resource_spans: Vec<ResourceSpans>,
}

/// The response of a successful export.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportTraceServiceResponse {
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<ExportTracePartialSuccess>,
}

/// Set when the backend refused part of a request it otherwise accepted.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportTracePartialSuccess {
    #[prost(int64, tag = "1")]
    pub rejected_spans: i64,
    #[prost(string, tag = "2")]
    pub error_message: String,
}

/// `google.rpc.Status`: what OTLP/HTTP servers send with an error status
/// (details, field 3, are skipped when decoding).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceSpans {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    pub scope_spans: Vec<ScopeSpans>,
    #[prost(string, tag = "3")]
    pub schema_url: String,
}

/// `opentelemetry.proto.resource.v1.Resource`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Resource {
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
    #[prost(uint32, tag = "2")]
    pub dropped_attributes_count: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ScopeSpans {
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    #[prost(message, repeated, tag = "2")]
    pub spans: Vec<Span>,
    #[prost(string, tag = "3")]
    pub schema_url: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct InstrumentationScope {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub version: String,
    #[prost(message, repeated, tag = "3")]
    pub attributes: Vec<KeyValue>,
    #[prost(uint32, tag = "4")]
    pub dropped_attributes_count: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Span {
    /// 16 bytes, big-endian (the hex id's byte order).
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    /// 8 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub span_id: Vec<u8>,
    #[prost(string, tag = "3")]
    pub trace_state: String,
    /// Empty for a root span.
    #[prost(bytes = "vec", tag = "4")]
    pub parent_span_id: Vec<u8>,
    #[prost(string, tag = "5")]
    pub name: String,
    #[prost(enumeration = "SpanKindProto", tag = "6")]
    pub kind: i32,
    #[prost(fixed64, tag = "7")]
    pub start_time_unix_nano: u64,
    #[prost(fixed64, tag = "8")]
    pub end_time_unix_nano: u64,
    #[prost(message, repeated, tag = "9")]
    pub attributes: Vec<KeyValue>,
    #[prost(uint32, tag = "10")]
    pub dropped_attributes_count: u32,
    #[prost(message, repeated, tag = "11")]
    pub events: Vec<Event>,
    #[prost(uint32, tag = "12")]
    pub dropped_events_count: u32,
    #[prost(message, repeated, tag = "13")]
    pub links: Vec<Link>,
    #[prost(uint32, tag = "14")]
    pub dropped_links_count: u32,
    #[prost(message, optional, tag = "15")]
    pub status: Option<Status>,
    /// Declared last so that fields encode in field-number order.
    #[prost(fixed32, tag = "16")]
    pub flags: u32,
}

/// `Span.Event`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    #[prost(fixed64, tag = "1")]
    pub time_unix_nano: u64,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(message, repeated, tag = "3")]
    pub attributes: Vec<KeyValue>,
    #[prost(uint32, tag = "4")]
    pub dropped_attributes_count: u32,
}

/// `Span.Link`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Link {
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub span_id: Vec<u8>,
    #[prost(string, tag = "3")]
    pub trace_state: String,
    #[prost(message, repeated, tag = "4")]
    pub attributes: Vec<KeyValue>,
    #[prost(uint32, tag = "5")]
    pub dropped_attributes_count: u32,
    #[prost(fixed32, tag = "6")]
    pub flags: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(enumeration = "StatusCode", tag = "3")]
    pub code: i32,
}

/// `Span.SpanKind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum SpanKindProto {
    Unspecified = 0,
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

/// `Status.StatusCode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum StatusCode {
    Unset = 0,
    Ok = 1,
    Error = 2,
}

/// `SpanFlags`: the W3C trace flags (sampled is bit 0, random bit 1).
pub const SPAN_FLAGS_TRACE_FLAGS_MASK: u32 = 0x0000_00ff;
/// The remote bit below is meaningful.
pub const SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK: u32 = 0x0000_0100;
/// The parent span context came from another process.
pub const SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK: u32 = 0x0000_0200;

#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AnyValue {
    #[prost(oneof = "Value", tags = "1, 2, 3, 4, 5, 6, 7")]
    pub value: Option<Value>,
}

/// `AnyValue.value`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Value {
    #[prost(string, tag = "1")]
    StringValue(String),
    #[prost(bool, tag = "2")]
    BoolValue(bool),
    #[prost(int64, tag = "3")]
    IntValue(i64),
    #[prost(double, tag = "4")]
    DoubleValue(f64),
    #[prost(message, tag = "5")]
    ArrayValue(ArrayValue),
    #[prost(message, tag = "6")]
    KvlistValue(KeyValueList),
    #[prost(bytes = "vec", tag = "7")]
    BytesValue(Vec<u8>),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ArrayValue {
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<AnyValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValueList {
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<KeyValue>,
}

// ---------------------------------------------------------------------------
// The mapping: span records → OTLP.

/// The scope of spans made through ferrotrace's own API.
pub const DEFAULT_SCOPE_NAME: &str = "ferrotrace";

/// Maps one finished span.
pub fn span(r: &SpanRecord) -> Span {
    let mut s = Span::default();
    span_into(r, &mut s);
    s
}

/// Maps one finished span into `s`, reusing the strings and vectors it
/// already holds: an exporter recycles each request's spans into the next
/// (see [`SpanPool`]), so steady-state mapping allocates next to nothing.
pub fn span_into(r: &SpanRecord, s: &mut Span) {
    set_bytes(&mut s.trace_id, &r.trace_id.0.to_be_bytes());
    set_bytes(&mut s.span_id, &r.span_id.0.to_be_bytes());
    set_string(
        &mut s.trace_state,
        r.tracestate.as_deref().unwrap_or_default(),
    );
    match r.parent_id {
        Some(p) => set_bytes(&mut s.parent_span_id, &p.0.to_be_bytes()),
        None => s.parent_span_id.clear(),
    }
    s.flags = span_flags(r.sampled, r.random, r.remote_parent);
    set_string(&mut s.name, &r.name);
    s.kind = kind(r.kind) as i32;
    s.start_time_unix_nano = r.start_ns;
    s.end_time_unix_nano = r.end_ns();
    set_key_values(&mut s.attributes, r.attributes.iter());
    s.dropped_attributes_count = r.attributes.dropped;
    let exception = r
        .error
        .as_deref()
        .filter(|_| !r.events.iter().any(|e| e.name == "exception"))
        .map(|error| EventSource::Exception(error, r.end_ns()));
    fill(
        &mut s.events,
        r.events.iter().map(EventSource::Recorded).chain(exception),
        event_into,
    );
    s.dropped_events_count = r.dropped_events;
    fill(&mut s.links, r.links.iter(), link_into);
    s.dropped_links_count = r.dropped_links;
    s.status = status(r);
}

pub fn kind(kind: SpanKind) -> SpanKindProto {
    match kind {
        SpanKind::Internal => SpanKindProto::Internal,
        SpanKind::Server => SpanKindProto::Server,
        SpanKind::Client => SpanKindProto::Client,
        SpanKind::Producer => SpanKindProto::Producer,
        SpanKind::Consumer => SpanKindProto::Consumer,
    }
}

/// OTLP span flags: the W3C trace flags in bits 0-7 (sampled, random),
/// then whether the parent is remote.
pub fn span_flags(sampled: bool, random: bool, remote_parent: bool) -> u32 {
    let w3c = u32::from(crate::propagation::trace_flags(sampled, random));
    let mut flags = SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK | w3c;
    if remote_parent {
        flags |= SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK;
    }
    flags
}

/// None for an unset status without description (the proto's default).
fn status(r: &SpanRecord) -> Option<Status> {
    use crate::span::Status as S;
    let code = match r.status {
        S::Unset => return None,
        S::Ok => StatusCode::Ok,
        S::Error => StatusCode::Error,
    };
    let message = if r.status == S::Error {
        status_description(r).unwrap_or_default().to_string()
    } else {
        // The specification keeps descriptions for errors only.
        String::new()
    };
    Some(Status {
        message,
        code: code as i32,
    })
}

/// A failed span's description: the error's message, else what
/// `set_status(..., description)` recorded. Zipkin's `error` tag is the same.
pub fn status_description(r: &SpanRecord) -> Option<&str> {
    if let Some(e) = r.error.as_deref() {
        if !e.message.is_empty() {
            return Some(&e.message);
        }
    }
    match r.attributes.get("status_description") {
        Some(AttrValue::Str(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// What becomes an OTLP event: one the span recorded, or its error.
enum EventSource<'a> {
    Recorded(&'a SpanEvent),
    /// The error and the span's end time.
    Exception(&'a ErrorInfo, u64),
}

fn event_into(dst: &mut Event, source: EventSource<'_>) {
    match source {
        EventSource::Recorded(e) => {
            dst.time_unix_nano = e.ts_ns;
            set_string(&mut dst.name, &e.name);
            let level = event_level(e).map(|l| AttrValue::Str(l.into()));
            set_key_values(
                &mut dst.attributes,
                e.attributes
                    .iter()
                    .chain(level.as_ref().map(|l| ("level", l))),
            );
            dst.dropped_attributes_count = e.attributes.dropped;
        }
        EventSource::Exception(error, at_ns) => {
            // The OpenTelemetry `exception` event.
            dst.time_unix_nano = at_ns;
            set_string(&mut dst.name, "exception");
            fill(
                &mut dst.attributes,
                exception_attributes(error),
                |kv, (k, v)| {
                    set_string(&mut kv.key, k);
                    match kv.value.get_or_insert_with(AnyValue::default) {
                        AnyValue {
                            value: Some(Value::StringValue(s)),
                        } => set_string(s, v),
                        other => other.value = Some(Value::StringValue(v.to_string())),
                    }
                },
            );
            dst.dropped_attributes_count = 0;
        }
    }
}

/// The level to record as a `level` attribute: not the default "info", not
/// when the event already has a `level` attribute of its own, and not on an
/// `exception` event (its level is implied; the semantic conventions define
/// its attributes).
pub fn event_level(e: &SpanEvent) -> Option<&str> {
    (e.level != "info"
        && !e.level.is_empty()
        && e.name != "exception"
        && e.attributes.get("level").is_none())
    .then_some(e.level.as_str())
}

/// The `exception.*` attributes of an error, in the semantic conventions'
/// order; empty parts left out. Shared with Zipkin's annotation.
pub fn exception_attributes(error: &ErrorInfo) -> impl Iterator<Item = (&'static str, &str)> {
    [
        ("exception.type", error.error_type.as_str()),
        ("exception.message", error.message.as_str()),
        ("exception.stacktrace", error.stack.as_deref().unwrap_or("")),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
}

fn link_into(dst: &mut Link, l: &SpanLink) {
    set_bytes(&mut dst.trace_id, &l.trace_id.0.to_be_bytes());
    set_bytes(&mut dst.span_id, &l.span_id.0.to_be_bytes());
    set_string(
        &mut dst.trace_state,
        l.tracestate.as_deref().unwrap_or_default(),
    );
    set_key_values(&mut dst.attributes, l.attributes.iter());
    dst.dropped_attributes_count = l.attributes.dropped;
    dst.flags = u32::from(crate::propagation::trace_flags(l.sampled, l.random));
}

pub fn key_values(attributes: &Attributes) -> Vec<KeyValue> {
    attributes.iter().map(|(k, v)| key_value(k, v)).collect()
}

pub fn key_value(key: &str, value: &AttrValue) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(any_value(value)),
    }
}

/// Attribute values with their OpenTelemetry types. Ints beyond 64 bits
/// reach here already as strings (the binding layer's rule).
pub fn any_value(value: &AttrValue) -> AnyValue {
    let mut v = AnyValue::default();
    set_any_value(&mut v, value);
    v
}

fn set_key_values<'v>(
    dst: &mut Vec<KeyValue>,
    src: impl Iterator<Item = (&'v str, &'v AttrValue)>,
) {
    fill(dst, src, |kv, (k, v)| {
        set_string(&mut kv.key, k);
        set_any_value(kv.value.get_or_insert_with(AnyValue::default), v);
    });
}

fn set_any_value(dst: &mut AnyValue, value: &AttrValue) {
    match (value, &mut dst.value) {
        (AttrValue::Str(s), Some(Value::StringValue(d))) => set_string(d, s),
        (AttrValue::List(items), Some(Value::ArrayValue(a))) => {
            fill(&mut a.values, items.iter(), set_any_value);
        }
        (AttrValue::Str(s), slot) => *slot = Some(Value::StringValue(s.to_string())),
        (AttrValue::Bool(b), slot) => *slot = Some(Value::BoolValue(*b)),
        (AttrValue::Int(i), slot) => *slot = Some(Value::IntValue(*i)),
        (AttrValue::Float(f), slot) => *slot = Some(Value::DoubleValue(*f)),
        (AttrValue::List(items), slot) => {
            *slot = Some(Value::ArrayValue(ArrayValue {
                values: items.iter().map(any_value).collect(),
            }))
        }
    }
}

/// Makes `dst` hold one element per item of `src`, reusing the elements
/// (and their allocations) it already has.
fn fill<T: Default, S>(
    dst: &mut Vec<T>,
    src: impl Iterator<Item = S>,
    mut set: impl FnMut(&mut T, S),
) {
    let mut n = 0;
    for item in src {
        if n == dst.len() {
            dst.push(T::default());
        }
        set(&mut dst[n], item);
        n += 1;
    }
    dst.truncate(n);
}

fn set_string(dst: &mut String, src: &str) {
    dst.clear();
    dst.push_str(src);
}

fn set_bytes(dst: &mut Vec<u8>, src: &[u8]) {
    dst.clear();
    dst.extend_from_slice(src);
}

/// Mapped spans kept between requests so that their allocations are
/// reused: [`take`](Self::take) one to map into, [`recycle`](Self::recycle)
/// a sent request's.
#[derive(Default)]
pub struct SpanPool {
    spare: Vec<Span>,
}

impl SpanPool {
    /// Maps `record` into a recycled span (or a new one).
    pub fn map(&mut self, record: &SpanRecord) -> Span {
        let mut s = self.spare.pop().unwrap_or_default();
        span_into(record, &mut s);
        s
    }

    /// Keeps the spans of a request that is done with.
    pub fn recycle(&mut self, request: ExportTraceServiceRequest) {
        for rs in request.resource_spans {
            for ss in rs.scope_spans {
                self.spare.extend(ss.spans);
            }
        }
    }
}

/// The OTLP form of ferrotrace's resource.
pub fn resource(r: &crate::export::Resource) -> Resource {
    Resource {
        attributes: r.attributes().map(|(k, v)| key_value(k, v)).collect(),
        dropped_attributes_count: 0,
    }
}

pub fn scope(s: Option<&crate::span::Scope>) -> InstrumentationScope {
    match s {
        None => InstrumentationScope {
            name: DEFAULT_SCOPE_NAME.to_string(),
            version: SDK_VERSION.to_string(),
            ..Default::default()
        },
        Some(s) => InstrumentationScope {
            name: s.name.to_string(),
            version: s.version.as_deref().unwrap_or_default().to_string(),
            ..Default::default()
        },
    }
}

/// Gathers mapped spans into one request, grouped by resource and, within
/// a resource, by instrumentation scope (OTLP's nesting), in arrival order.
/// Also tracks the encoded size so that callers can cut requests to a size.
#[derive(Default)]
pub struct TraceRequestBuilder<'a> {
    groups: Vec<ResourceGroup<'a>>,
    spans: usize,
    encoded_len: usize,
}

struct ResourceGroup<'a> {
    resource: &'a crate::export::Resource,
    scopes: Vec<(Option<&'a crate::span::Scope>, Vec<Span>)>,
}

impl<'a> TraceRequestBuilder<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a mapped span made under `resource` by `scope`.
    pub fn push(
        &mut self,
        resource: &'a crate::export::Resource,
        scope: Option<&'a crate::span::Scope>,
        span: Span,
    ) {
        use prost::Message;
        let len = span.encoded_len();
        self.push_measured(resource, scope, span, len);
    }

    /// [`push`](Self::push) for a caller that already has the span's
    /// `encoded_len()` (to decide where to cut requests).
    pub fn push_measured(
        &mut self,
        resource: &'a crate::export::Resource,
        scope: Option<&'a crate::span::Scope>,
        span: Span,
        encoded_len: usize,
    ) {
        // A span's share of the request: its bytes plus its field header.
        self.encoded_len += encoded_len + 4;
        self.spans += 1;
        let group = match self
            .groups
            .iter()
            .position(|g| std::ptr::eq(g.resource, resource) || g.resource == resource)
        {
            Some(i) => &mut self.groups[i],
            None => {
                self.groups.push(ResourceGroup {
                    resource,
                    scopes: Vec::new(),
                });
                self.groups.last_mut().expect("just pushed")
            }
        };
        match group.scopes.iter_mut().find(|(s, _)| *s == scope) {
            Some((_, spans)) => spans.push(span),
            None => group.scopes.push((scope, vec![span])),
        }
    }

    /// Spans added since the last [`build`](Self::build).
    pub fn span_count(&self) -> usize {
        self.spans
    }

    /// Roughly the encoded size of the spans added so far (resources and
    /// scopes add a few hundred bytes each).
    pub fn encoded_len(&self) -> usize {
        self.encoded_len
    }

    /// The request, leaving the builder empty for the next one.
    pub fn build(&mut self) -> ExportTraceServiceRequest {
        self.spans = 0;
        self.encoded_len = 0;
        ExportTraceServiceRequest {
            resource_spans: self
                .groups
                .drain(..)
                .map(|g| ResourceSpans {
                    resource: Some(resource(g.resource)),
                    scope_spans: g
                        .scopes
                        .into_iter()
                        .map(|(s, spans)| ScopeSpans {
                            scope: Some(scope(s)),
                            spans,
                            schema_url: s
                                .and_then(|s| s.schema_url.as_deref())
                                .unwrap_or_default()
                                .to_string(),
                        })
                        .collect(),
                    schema_url: String::new(),
                })
                .collect(),
        }
    }
}

/// Encodes `request` to the bytes `request.encode_to_vec()` gives, faster:
/// prost's derived encoding sizes each nested message again at every level
/// above it (a span four times), this sizes the spans once for the two
/// levels above them.
pub fn encode_request(request: &ExportTraceServiceRequest, out: &mut Vec<u8>) {
    use prost::Message;
    // Keys of fields 1, 2 and 3 with the length-delimited wire type.
    const FIELD_1: u8 = 0x0a;
    const FIELD_2: u8 = 0x12;
    const FIELD_3: u8 = 0x1a;
    fn field_len(len: usize) -> usize {
        1 + prost::length_delimiter_len(len) + len
    }
    fn string_len(s: &str) -> usize {
        if s.is_empty() {
            0
        } else {
            field_len(s.len())
        }
    }
    fn put_string(out: &mut Vec<u8>, key: u8, s: &str) {
        if !s.is_empty() {
            out.push(key);
            let _ = prost::encode_length_delimiter(s.len(), out);
            out.extend_from_slice(s.as_bytes());
        }
    }
    // Writing to a Vec cannot run out of room: the Results below are Ok.
    let mut scope_lens = Vec::new();
    for rs in &request.resource_spans {
        scope_lens.clear();
        let mut rs_len = rs
            .resource
            .as_ref()
            .map_or(0, |r| field_len(r.encoded_len()))
            + string_len(&rs.schema_url);
        for ss in &rs.scope_spans {
            let mut ss_len = ss.scope.as_ref().map_or(0, |s| field_len(s.encoded_len()))
                + string_len(&ss.schema_url);
            for span in &ss.spans {
                ss_len += field_len(span.encoded_len());
            }
            scope_lens.push(ss_len);
            rs_len += field_len(ss_len);
        }
        out.push(FIELD_1);
        let _ = prost::encode_length_delimiter(rs_len, out);
        if let Some(r) = &rs.resource {
            out.push(FIELD_1);
            let _ = r.encode_length_delimited(out);
        }
        for (ss, &ss_len) in rs.scope_spans.iter().zip(&scope_lens) {
            out.push(FIELD_2);
            let _ = prost::encode_length_delimiter(ss_len, out);
            if let Some(scope) = &ss.scope {
                out.push(FIELD_1);
                let _ = scope.encode_length_delimited(out);
            }
            for span in &ss.spans {
                out.push(FIELD_2);
                let _ = span.encode_length_delimited(out);
            }
            put_string(out, FIELD_3, &ss.schema_url);
        }
        put_string(out, FIELD_3, &rs.schema_url);
    }
}

/// Maps and groups spans into one request.
pub fn request<'a>(
    spans: impl IntoIterator<
        Item = (
            &'a crate::export::Resource,
            Option<&'a crate::span::Scope>,
            &'a SpanRecord,
        ),
    >,
) -> ExportTraceServiceRequest {
    let mut builder = TraceRequestBuilder::new();
    for (resource, scope, record) in spans {
        builder.push(resource, scope, span(record));
    }
    builder.build()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::attributes::Limits;
    use crate::export::test_env::MapEnv;
    use crate::ids::{SpanId, TraceId};
    use crate::span::{Scope, Status as SpanStatus};
    use prost::Message;
    use std::sync::Arc;

    /// A span using every field the mapping handles.
    pub(crate) fn full_record() -> SpanRecord {
        let limits = Limits {
            max_attributes: 5,
            ..Limits::default()
        };
        let mut r = SpanRecord::new(
            TraceId(0x0af7651916cd43dd8448eb211c80319c),
            Some(SpanId(0xb7ad6b7169203331)),
            "GET /orders/{id}".into(),
        );
        r.span_id = SpanId(0x00f067aa0ba902b7);
        r.kind = SpanKind::Server;
        r.start_ns = 1_700_000_000_000_000_000;
        r.start_mono = 1_000;
        r.end_mono = 1_000 + 2_500_000;
        r.remote_parent = true;
        r.tracestate = Some(Arc::from("congo=t61rcWkgMzE"));
        r.set_attribute(
            "http.request.method".into(),
            AttrValue::Str("GET".into()),
            &limits,
        );
        r.set_attribute(
            "http.response.status_code".into(),
            AttrValue::Int(500),
            &limits,
        );
        r.set_attribute("cache.hit".into(), AttrValue::Bool(false), &limits);
        r.set_attribute("ratio".into(), AttrValue::Float(0.25), &limits);
        r.set_attribute(
            "tags".into(),
            AttrValue::List(vec![AttrValue::Str("a".into()), AttrValue::Int(2)]),
            &limits,
        );
        r.set_attribute("over.limit".into(), AttrValue::Int(1), &limits);
        r.add_event(
            SpanEvent {
                name: "cache miss".into(),
                ts_ns: r.start_ns + 1_000,
                level: "warning".into(),
                attributes: {
                    let mut a = Attributes::default();
                    a.set("key".into(), AttrValue::Str("u:1".into()), &limits);
                    a
                },
            },
            &limits,
        );
        r.add_event(
            SpanEvent {
                name: "plain".into(),
                ts_ns: r.start_ns + 2_000,
                level: "info".into(),
                attributes: Attributes::default(),
            },
            &limits,
        );
        r.dropped_events = 2;
        r.set_error(
            ErrorInfo {
                error_type: "ValueError".into(),
                message: "bad order id".into(),
                stack: Some("Traceback (most recent call last):\n  ...".into()),
            },
            &limits,
        );
        r.links.push(SpanLink {
            trace_id: TraceId(7),
            span_id: SpanId(8),
            sampled: true,
            random: false,
            tracestate: None,
            attributes: Attributes::default(),
        });
        r.dropped_links = 1;
        r
    }

    pub(crate) fn resource() -> crate::export::Resource {
        crate::export::Resource::new("api", &[], &MapEnv::new(&[]), &mut Vec::new())
    }

    fn attr<'k>(kvs: &'k [KeyValue], key: &str) -> Option<&'k Value> {
        kvs.iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
    }

    #[test]
    fn every_field_maps() {
        let r = full_record();
        let s = span(&r);
        assert_eq!(
            s.trace_id,
            [
                0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80,
                0x31, 0x9c
            ]
        );
        assert_eq!(s.span_id, [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
        assert_eq!(
            s.parent_span_id,
            [0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31]
        );
        assert_eq!(s.trace_state, "congo=t61rcWkgMzE");
        assert_eq!(s.flags, 0x01 | 0x100 | 0x200);
        assert_eq!(s.name, "GET /orders/{id}");
        assert_eq!(s.kind, SpanKindProto::Server as i32);
        assert_eq!(s.start_time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(s.end_time_unix_nano, 1_700_000_000_002_500_000);
        assert_eq!(s.attributes.len(), 5);
        assert_eq!(s.dropped_attributes_count, 1);
        assert_eq!(
            attr(&s.attributes, "http.request.method"),
            Some(&Value::StringValue("GET".into()))
        );
        assert_eq!(
            attr(&s.attributes, "http.response.status_code"),
            Some(&Value::IntValue(500))
        );
        assert_eq!(
            attr(&s.attributes, "cache.hit"),
            Some(&Value::BoolValue(false))
        );
        assert_eq!(
            attr(&s.attributes, "ratio"),
            Some(&Value::DoubleValue(0.25))
        );
        match attr(&s.attributes, "tags") {
            Some(Value::ArrayValue(a)) => {
                assert_eq!(a.values[0].value, Some(Value::StringValue("a".into())));
                assert_eq!(a.values[1].value, Some(Value::IntValue(2)));
            }
            other => panic!("tags: {other:?}"),
        }
        // Events: the level is kept only when not "info"; the error adds
        // an exception event at the end time.
        assert_eq!(s.events.len(), 3);
        assert_eq!(s.events[0].name, "cache miss");
        assert_eq!(s.events[0].time_unix_nano, r.start_ns + 1_000);
        assert_eq!(
            attr(&s.events[0].attributes, "level"),
            Some(&Value::StringValue("warning".into()))
        );
        assert_eq!(attr(&s.events[1].attributes, "level"), None);
        let exception = &s.events[2];
        assert_eq!(exception.name, "exception");
        assert_eq!(exception.time_unix_nano, r.end_ns());
        assert_eq!(
            attr(&exception.attributes, "exception.type"),
            Some(&Value::StringValue("ValueError".into()))
        );
        assert_eq!(
            attr(&exception.attributes, "exception.message"),
            Some(&Value::StringValue("bad order id".into()))
        );
        assert!(matches!(
            attr(&exception.attributes, "exception.stacktrace"),
            Some(Value::StringValue(st)) if st.starts_with("Traceback")
        ));
        assert_eq!(s.dropped_events_count, 2);
        assert_eq!(s.links.len(), 1);
        assert_eq!(s.links[0].span_id, 8u64.to_be_bytes());
        assert_eq!(s.links[0].flags, 1);
        assert_eq!(s.dropped_links_count, 1);
        let status = s.status.unwrap();
        assert_eq!(status.code, StatusCode::Error as i32);
        assert_eq!(status.message, "bad order id");
    }

    #[test]
    fn the_random_trace_flag_is_exported_in_span_and_link_flags() {
        let mut r = full_record();
        r.random = true;
        r.links[0].random = true;
        let s = span(&r);
        assert_eq!(s.flags, 0x01 | 0x02 | 0x100 | 0x200);
        assert_eq!(s.links[0].flags, 0x03);
        r.sampled = false;
        r.remote_parent = false;
        assert_eq!(span(&r).flags, 0x02 | 0x100);
    }

    #[test]
    fn statuses_and_roots() {
        let mut r = SpanRecord::new(TraceId(1), None, "root".into());
        r.sampled = false;
        let s = span(&r);
        assert!(s.parent_span_id.is_empty());
        assert_eq!(s.flags, SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK);
        assert_eq!(s.kind, SpanKindProto::Internal as i32);
        assert_eq!(s.status, None, "unset stays unset");
        assert!(s.events.is_empty());
        r.status = SpanStatus::Ok;
        assert_eq!(span(&r).status.unwrap().code, StatusCode::Ok as i32);
        // An error without an exception takes the recorded description.
        r.status = SpanStatus::Error;
        r.set_attribute(
            "status_description".into(),
            AttrValue::Str("upstream timed out".into()),
            &Limits::default(),
        );
        let status = span(&r).status.unwrap();
        assert_eq!(status.code, StatusCode::Error as i32);
        assert_eq!(status.message, "upstream timed out");
        assert!(
            span(&r).events.is_empty(),
            "no error info, no exception event"
        );
    }

    #[test]
    fn an_existing_exception_event_is_not_doubled() {
        let mut r = full_record();
        r.events.push(SpanEvent {
            name: "exception".into(),
            ts_ns: r.start_ns + 5,
            level: "error".into(),
            attributes: Attributes::default(),
        });
        let s = span(&r);
        assert_eq!(s.events.iter().filter(|e| e.name == "exception").count(), 1);
    }

    #[test]
    fn a_recycled_span_maps_like_a_new_one() {
        let full = full_record();
        let mut small = SpanRecord::new(TraceId(9), None, "small".into());
        small.set_attribute("only".into(), AttrValue::Bool(true), &Limits::default());
        small.set_attribute(
            "tags".into(),
            AttrValue::List(vec![AttrValue::Int(1)]),
            &Limits::default(),
        );
        let mut pool = SpanPool::default();
        let resource = resource();
        for (first, second) in [(&full, &small), (&small, &full), (&full, &full)] {
            let mut builder = TraceRequestBuilder::new();
            builder.push(&resource, None, pool.map(first));
            pool.recycle(builder.build());
            let reused = pool.map(second);
            assert_eq!(reused, span(second));
            pool.recycle(ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    scope_spans: vec![ScopeSpans {
                        spans: vec![reused],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            });
        }
    }

    #[test]
    fn spans_are_grouped_by_resource_then_scope() {
        let resource = resource();
        let other = crate::export::Resource::new("worker", &[], &MapEnv::new(&[]), &mut Vec::new());
        let lib = Scope {
            name: "opentelemetry.instrumentation.httpx".into(),
            version: Some("0.48b0".into()),
            schema_url: Some("https://opentelemetry.io/schemas/1.21.0".into()),
        };
        let records: Vec<SpanRecord> = (0..4)
            .map(|i| SpanRecord::new(TraceId(1), None, format!("s{i}").into()))
            .collect();
        let req = request([
            (&resource, None, &records[0]),
            (&resource, Some(&lib), &records[1]),
            (&other, None, &records[2]),
            (&resource, None, &records[3]),
        ]);
        assert_eq!(req.resource_spans.len(), 2);
        let first = &req.resource_spans[0];
        assert_eq!(
            attr(&first.resource.as_ref().unwrap().attributes, "service.name"),
            Some(&Value::StringValue("api".into()))
        );
        assert_eq!(first.scope_spans.len(), 2);
        let own = &first.scope_spans[0];
        assert_eq!(own.scope.as_ref().unwrap().name, "ferrotrace");
        assert_eq!(own.scope.as_ref().unwrap().version, SDK_VERSION);
        let names: Vec<_> = own.spans.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["s0", "s3"]);
        let httpx = &first.scope_spans[1];
        assert_eq!(httpx.scope.as_ref().unwrap().version, "0.48b0");
        assert_eq!(httpx.schema_url, "https://opentelemetry.io/schemas/1.21.0");
        assert_eq!(httpx.spans[0].name, "s1");
        assert_eq!(
            attr(
                &req.resource_spans[1].resource.as_ref().unwrap().attributes,
                "service.name"
            ),
            Some(&Value::StringValue("worker".into()))
        );
    }

    #[test]
    fn protobuf_round_trips_through_the_same_types() {
        let resource = resource();
        let r = full_record();
        let req = request([(&resource, None, &r)]);
        let bytes = req.encode_to_vec();
        let decoded = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
        assert_eq!(decoded, req);
        // The builder's size estimate is close to the real size.
        let mut builder = TraceRequestBuilder::new();
        builder.push(&resource, None, span(&r));
        let estimate = builder.encoded_len();
        assert!(
            estimate <= bytes.len() && bytes.len() < estimate + 1024,
            "{estimate} vs {}",
            bytes.len()
        );
    }

    #[test]
    fn the_fast_encoding_is_prosts() {
        let resource = resource();
        let other = crate::export::Resource::new("w", &[], &MapEnv::new(&[]), &mut Vec::new());
        let lib = Scope {
            name: "lib".into(),
            version: None,
            schema_url: Some("https://opentelemetry.io/schemas/1.21.0".into()),
        };
        let full = full_record();
        let small = SpanRecord::new(TraceId(3), None, "s".into());
        let big = {
            let mut r = full_record();
            r.name = "n".repeat(300).into();
            r
        };
        let cases = [
            request([(&resource, None, &full)]),
            request([
                (&resource, None, &full),
                (&resource, Some(&lib), &small),
                (&other, Some(&lib), &big),
                (&resource, None, &small),
            ]),
            ExportTraceServiceRequest::default(),
            ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: None,
                    scope_spans: vec![ScopeSpans::default()],
                    schema_url: "x".into(),
                }],
            },
        ];
        for req in cases {
            let mut ours = Vec::new();
            encode_request(&req, &mut ours);
            assert_eq!(ours, req.encode_to_vec());
        }
    }

    fn attr_value() -> impl proptest::strategy::Strategy<Value = AttrValue> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            "\\PC{0,12}".prop_map(|s| AttrValue::Str(s.into())),
            any::<bool>().prop_map(AttrValue::Bool),
            any::<i64>().prop_map(AttrValue::Int),
            any::<f64>().prop_map(AttrValue::float),
        ];
        leaf.prop_recursive(2, 8, 4, |inner| {
            proptest::collection::vec(inner, 0..4).prop_map(AttrValue::List)
        })
    }

    proptest::proptest! {
        /// Any attributes and names survive the protobuf encoding (ours and
        /// prost's agree) and decode to the same values.
        #[test]
        fn any_span_round_trips(
            name in "\\PC{0,20}",
            attrs in proptest::collection::vec(("\\PC{1,10}", attr_value()), 0..6),
        ) {
            let limits = Limits::default();
            let mut r = SpanRecord::new(TraceId(5), Some(SpanId(6)), name.into());
            for (k, v) in attrs {
                r.set_attribute(k.into(), v, &limits);
            }
            let resource = resource();
            let req = request([(&resource, None, &r)]);
            let mut ours = Vec::new();
            encode_request(&req, &mut ours);
            proptest::prop_assert_eq!(&ours, &req.encode_to_vec());
            let decoded = ExportTraceServiceRequest::decode(ours.as_slice()).unwrap();
            let span = &decoded.resource_spans[0].scope_spans[0].spans[0];
            proptest::prop_assert_eq!(span.name.as_str(), r.name.as_str());
            proptest::prop_assert_eq!(span.attributes.len(), r.attributes.len());
            for (kv, (k, v)) in span.attributes.iter().zip(r.attributes.iter()) {
                proptest::prop_assert_eq!(kv.key.as_str(), k);
                proptest::prop_assert_eq!(kv.value.as_ref().unwrap(), &any_value(v));
            }
            // And the JSON form is valid JSON whatever the text.
            let mut json = Vec::new();
            crate::export::otlp_json::write_request(&mut json, &decoded);
            let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
            let s = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
            proptest::prop_assert_eq!(s["name"].as_str().unwrap_or(""), r.name.as_str());
        }
    }

    #[test]
    fn known_wire_bytes_for_a_minimal_span() {
        // Hand-assembled from the proto's field numbers: a guard against a
        // wrong tag or type that a round trip through our own types misses.
        let mut r = SpanRecord::new(TraceId(1), None, "x".into());
        r.span_id = SpanId(2);
        r.start_ns = 3;
        r.start_mono = 1;
        r.end_mono = 2;
        r.sampled = true;
        let bytes = span(&r).encode_to_vec();
        let mut expected = vec![0x0a, 16];
        expected.extend_from_slice(&1u128.to_be_bytes());
        expected.extend_from_slice(&[0x12, 8]);
        expected.extend_from_slice(&2u64.to_be_bytes());
        expected.extend_from_slice(&[0x2a, 1, b'x']); // name = 5
        expected.extend_from_slice(&[0x30, 1]); // kind = 6, INTERNAL
        expected.push(0x39); // start = 7, fixed64
        expected.extend_from_slice(&3u64.to_le_bytes());
        expected.push(0x41); // end = 8, fixed64
        expected.extend_from_slice(&4u64.to_le_bytes());
        expected.extend_from_slice(&[0x85, 0x01]); // flags = 16, fixed32
        expected.extend_from_slice(&0x101u32.to_le_bytes());
        assert_eq!(bytes, expected);
    }

    #[test]
    fn partial_success_and_rpc_status_decode() {
        let response = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 3,
                error_message: "too old".into(),
            }),
        };
        let decoded =
            ExportTraceServiceResponse::decode(response.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded.partial_success.unwrap().rejected_spans, 3);
        // google.rpc.Status with details (field 3) still decodes.
        let mut bytes = RpcStatus {
            code: 3,
            message: "invalid".into(),
        }
        .encode_to_vec();
        bytes.extend_from_slice(&[0x1a, 2, 0x0a, 0]);
        assert_eq!(
            RpcStatus::decode(bytes.as_slice()).unwrap().message,
            "invalid"
        );
    }
}
