//! The span record: everything one finished span writes to JSONL.

use compact_str::CompactString;

use crate::attributes::{truncate_chars, AttrValue, Attributes, Limits};
use crate::ids::{SpanId, TraceId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SpanKind {
    #[default]
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    /// Every kind, in declaration order (so `ALL[kind as usize] == kind`).
    pub const ALL: [SpanKind; 5] = [
        SpanKind::Internal,
        SpanKind::Server,
        SpanKind::Client,
        SpanKind::Producer,
        SpanKind::Consumer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }

    /// Accepts the five OpenTelemetry kind names, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Status {
    #[default]
    Unset,
    Ok,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unset => "unset",
            Status::Ok => "ok",
            Status::Error => "error",
        }
    }

    /// What JSONL records: a span is either fine or failed.
    pub fn as_written(self) -> &'static str {
        match self {
            Status::Error => "error",
            _ => "ok",
        }
    }

    /// An HTTP-like status code as a span status. 5xx always fails; 4xx fails
    /// a client span (its request was refused) but not a server span (the
    /// caller erred), as the OpenTelemetry HTTP conventions have it.
    pub fn from_code(code: i64, kind: SpanKind) -> Self {
        match code {
            500.. => Status::Error,
            400..=499 if kind != SpanKind::Server => Status::Error,
            _ if code < 100 && code != 0 => Status::Error,
            _ => Status::Ok,
        }
    }
}

/// A timestamped event inside a span (a "log" in the seeds' terms).
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub name: CompactString,
    pub ts_ns: u64,
    pub level: CompactString,
    pub attributes: Attributes,
}

/// An exception or error message recorded on a span.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ErrorInfo {
    pub error_type: String,
    pub message: String,
    pub stack: Option<String>,
}

/// The instrumentation scope that made a span: the library (or OpenTelemetry
/// tracer) name and version. Shared by every span of one scoped tracer.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Scope {
    pub name: CompactString,
    pub version: Option<CompactString>,
    pub schema_url: Option<CompactString>,
}

/// A link from a span to another span's context (e.g. the messages a batch
/// consumer processed), with attributes of its own.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub sampled: bool,
    /// The linked context's W3C `random` trace flag.
    pub random: bool,
    pub tracestate: Option<std::sync::Arc<str>>,
    pub attributes: Attributes,
}

/// Errors' stacks can be long; this bounds what one span carries.
pub const MAX_STACK_CHARS: usize = 32 * 1024;

/// Links kept per span (OpenTelemetry's default link count limit); more are
/// counted in `dropped_links`.
pub const MAX_LINKS: usize = 128;

#[derive(Clone, Debug, PartialEq)]
pub struct SpanRecord {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_id: Option<SpanId>,
    pub name: CompactString,
    pub kind: SpanKind,
    /// Monotonic clock readings; wall time is derived via `clock::to_wall_ns`.
    pub start_mono: u64,
    pub end_mono: u64,
    /// Wall-clock epoch ns, fixed at start.
    pub start_ns: u64,
    pub status: Status,
    pub attributes: Attributes,
    pub events: Vec<Event>,
    pub dropped_events: u32,
    pub error: Option<Box<ErrorInfo>>,
    /// First span of its trace in this process: no parent, or a remote one.
    pub is_local_root: bool,
    /// The parent came from another process (extracted from a carrier).
    pub remote_parent: bool,
    pub sampled: bool,
    /// The trace's W3C Level 2 `random` flag: set for traces this process
    /// started (random ids), as received for continued ones (see
    /// `propagation.rs`). Exported in OTLP's span flags.
    pub random: bool,
    /// Set by `finish(duration_ms=...)`: replaces the measured duration.
    pub duration_override_ns: Option<u64>,
    /// The parent's service, when the parent is a span of another tracer
    /// (service) in this process: an edge of the service graph.
    pub parent_service: Option<CompactString>,
    /// Who made the span; None for ferrotrace's own API (the tracer itself).
    pub scope: Option<std::sync::Arc<Scope>>,
    /// The W3C `tracestate` of the trace, passed on to children and exports.
    pub tracestate: Option<std::sync::Arc<str>>,
    pub links: Vec<Link>,
    pub dropped_links: u32,
}

impl SpanRecord {
    pub fn new(trace_id: TraceId, parent_id: Option<SpanId>, name: CompactString) -> Self {
        SpanRecord {
            trace_id,
            span_id: SpanId::random(),
            parent_id,
            name,
            kind: SpanKind::Internal,
            start_mono: 0,
            end_mono: 0,
            start_ns: 0,
            status: Status::Unset,
            attributes: Attributes::default(),
            events: Vec::new(),
            dropped_events: 0,
            error: None,
            is_local_root: parent_id.is_none(),
            remote_parent: false,
            sampled: true,
            random: false,
            duration_override_ns: None,
            parent_service: None,
            scope: None,
            tracestate: None,
            links: Vec::new(),
            dropped_links: 0,
        }
    }

    /// Drops what a finished span held, keeping the allocations: done by
    /// whoever hands the record back to the pool (the collector or a sink,
    /// which have it in cache), so that [`Self::reuse`] on the traced
    /// thread only writes the fixed-size fields.
    pub fn clear_for_reuse(&mut self) {
        self.name = CompactString::default();
        self.attributes.clear();
        self.events.clear();
        self.error = None;
        self.parent_service = None;
        self.scope = None;
        self.tracestate = None;
        self.links.clear();
    }

    /// Makes a record cleared by [`Self::clear_for_reuse`] a new span, as
    /// [`Self::new`] would (every field is named: a new one must be reset
    /// here too).
    #[inline]
    pub fn reuse(&mut self, trace_id: TraceId, parent_id: Option<SpanId>, name: CompactString) {
        let SpanRecord {
            trace_id: trace,
            span_id,
            parent_id: parent,
            name: own_name,
            kind,
            start_mono,
            end_mono,
            start_ns,
            status,
            attributes,
            events,
            dropped_events,
            error,
            is_local_root,
            remote_parent,
            sampled,
            random,
            duration_override_ns,
            parent_service,
            scope,
            tracestate,
            links,
            dropped_links,
        } = self;
        debug_assert!(
            own_name.is_empty()
                && attributes.is_empty()
                && attributes.dropped == 0
                && events.is_empty()
                && error.is_none()
                && parent_service.is_none()
                && scope.is_none()
                && tracestate.is_none()
                && links.is_empty(),
            "reuse of a record that was not cleared"
        );
        *trace = trace_id;
        *span_id = SpanId::random();
        *parent = parent_id;
        *own_name = name;
        *kind = SpanKind::Internal;
        *start_mono = 0;
        *end_mono = 0;
        *start_ns = 0;
        *status = Status::Unset;
        *dropped_events = 0;
        *is_local_root = parent_id.is_none();
        *remote_parent = false;
        *sampled = true;
        *random = false;
        *duration_override_ns = None;
        *dropped_links = 0;
    }

    pub fn is_finished(&self) -> bool {
        self.end_mono != 0
    }

    pub fn duration_ns(&self) -> u64 {
        match self.duration_override_ns {
            Some(d) => d,
            None => self.end_mono.saturating_sub(self.start_mono),
        }
    }

    pub fn end_ns(&self) -> u64 {
        self.start_ns + self.duration_ns()
    }

    pub fn duration_ms(&self) -> f64 {
        self.duration_ns() as f64 / 1e6
    }

    pub fn add_event(&mut self, mut event: Event, limits: &Limits) {
        if self.events.len() >= limits.max_events {
            self.dropped_events += 1;
            return;
        }
        truncate_chars(&mut event.name, limits.max_attribute_length);
        self.events.push(event);
    }

    /// Records an error: status becomes error, and the error's text is cut to
    /// the configured limits.
    pub fn set_error(&mut self, error: ErrorInfo, limits: &Limits) {
        self.note_error(error, limits);
        self.status = Status::Error;
    }

    /// Records an error's details and leaves the status alone: OpenTelemetry's
    /// `record_exception` notes an exception (perhaps handled) without
    /// deciding that the span failed; `set_status` decides that.
    pub fn note_error(&mut self, mut error: ErrorInfo, limits: &Limits) {
        truncate_string(&mut error.message, limits.max_attribute_length);
        truncate_string(&mut error.error_type, limits.max_attribute_length);
        if let Some(stack) = error.stack.as_mut() {
            truncate_string(stack, MAX_STACK_CHARS.max(limits.max_attribute_length));
        }
        self.error = Some(Box::new(error));
    }

    /// Adds a link, or counts it in `dropped_links` past [`MAX_LINKS`].
    pub fn add_link(&mut self, link: Link) {
        if self.links.len() >= MAX_LINKS {
            self.dropped_links += 1;
            return;
        }
        self.links.push(link);
    }

    pub fn set_attribute(&mut self, key: CompactString, value: AttrValue, limits: &Limits) -> bool {
        self.attributes.set(key, value, limits)
    }
}

fn truncate_string(s: &mut String, max_chars: usize) {
    if s.len() > max_chars {
        if let Some((i, _)) = s.char_indices().nth(max_chars) {
            s.truncate(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_parsing() {
        assert_eq!(SpanKind::parse("SERVER"), Some(SpanKind::Server));
        assert_eq!(SpanKind::parse("client"), Some(SpanKind::Client));
        assert_eq!(SpanKind::parse("bogus"), None);
    }

    #[test]
    fn status_from_http_codes() {
        assert_eq!(Status::from_code(200, SpanKind::Server), Status::Ok);
        assert_eq!(Status::from_code(404, SpanKind::Server), Status::Ok);
        assert_eq!(Status::from_code(404, SpanKind::Client), Status::Error);
        assert_eq!(Status::from_code(503, SpanKind::Server), Status::Error);
    }

    #[test]
    fn duration_override_wins() {
        let mut r = SpanRecord::new(TraceId(1), None, "x".into());
        r.start_mono = 100;
        r.end_mono = 200;
        assert_eq!(r.duration_ns(), 100);
        r.duration_override_ns = Some(45_000_000);
        assert_eq!(r.duration_ms(), 45.0);
        assert!(r.is_local_root);
    }

    #[test]
    fn noted_errors_keep_the_status_set_errors_fail_the_span() {
        let limits = Limits::default();
        let error = ErrorInfo {
            error_type: "KeyError".into(),
            message: "k".into(),
            stack: None,
        };
        let mut r = SpanRecord::new(TraceId(1), None, "x".into());
        r.note_error(error.clone(), &limits);
        assert_eq!(r.status, Status::Unset);
        assert_eq!(r.error.as_deref(), Some(&error));
        r.set_error(error, &limits);
        assert_eq!(r.status, Status::Error);
    }

    #[test]
    fn links_past_the_limit_are_counted() {
        let mut r = SpanRecord::new(TraceId(1), None, "x".into());
        for i in 0..MAX_LINKS as u64 + 3 {
            r.add_link(Link {
                trace_id: TraceId(7),
                span_id: SpanId(i + 1),
                sampled: true,
                random: false,
                tracestate: None,
                attributes: Attributes::default(),
            });
        }
        assert_eq!(r.links.len(), MAX_LINKS);
        assert_eq!(r.dropped_links, 3);
        r.clear_for_reuse();
        r.reuse(TraceId(2), None, "y".into());
        assert!(r.links.is_empty());
        assert_eq!(r.dropped_links, 0);
    }

    #[test]
    fn a_reused_record_is_a_new_one() {
        let limits = Limits::default();
        let mut r = SpanRecord::new(
            TraceId(1),
            None,
            "a long name that is not inline at all".into(),
        );
        r.kind = SpanKind::Client;
        r.start_mono = 5;
        r.end_mono = 9;
        r.start_ns = 11;
        r.set_attribute("k".into(), AttrValue::Int(1), &limits);
        r.attributes.dropped = 2;
        r.attributes.truncated = 3;
        r.add_event(
            Event {
                name: "e".into(),
                ts_ns: 1,
                level: "info".into(),
                attributes: Attributes::default(),
            },
            &limits,
        );
        r.dropped_events = 4;
        r.set_error(ErrorInfo::default(), &limits);
        r.remote_parent = true;
        r.sampled = false;
        r.random = true;
        r.duration_override_ns = Some(3);
        r.parent_service = Some("other".into());
        r.scope = Some(std::sync::Arc::new(Scope::default()));
        r.tracestate = Some("a=b".into());
        r.add_link(Link {
            trace_id: TraceId(7),
            span_id: SpanId(8),
            sampled: true,
            random: false,
            tracestate: None,
            attributes: Attributes::default(),
        });
        r.dropped_links = 5;
        r.clear_for_reuse();
        r.reuse(TraceId(2), Some(SpanId(6)), "b".into());
        let mut fresh = SpanRecord::new(TraceId(2), Some(SpanId(6)), "b".into());
        fresh.span_id = r.span_id;
        assert_eq!(r, fresh);
    }
}
