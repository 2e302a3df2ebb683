//! `Span` and `SpanContext` as Python sees them.
//!
//! A span's ids are immutable and read without locking (children read their
//! parent's on every start). Its record is mutable until `finish()`: it lives
//! in a `UniqueArc` (no reference counting while mutable), which becomes a
//! shared `Arc` at finish so both the writer thread and this object can read
//! it afterwards without a copy.

use super::once::{interned, GilOnceCell};
use crate::sync::Mutex;
use compact_str::CompactString;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use triomphe::{Arc, UniqueArc};

use crate::attributes::AttrValue;
use crate::clock;
use crate::ids::{SpanId, TraceId};
use crate::jsonl;
use crate::span::{ErrorInfo, Event, SpanKind, SpanRecord, Status};

use crate::analysis::SpanRow;

use super::context;
use super::convert;
use super::otel;
use super::registry;
use super::span_context::SpanContextPy;
use super::tracer_core::TracerCore;
use super::values;

enum Record {
    Active(UniqueArc<SpanRecord>),
    Finished(Arc<SpanRecord>),
    /// Head-sampled out: the ids still propagate and the span still counts
    /// in metrics, but nothing is recorded or written.
    Unrecorded(Unrecorded),
}

/// Timed with the coarse clock (a few ms resolution, several times cheaper):
/// nothing is written for these spans, their timing is informational only.
struct Unrecorded {
    name: CompactString,
    kind: SpanKind,
    start_mono: u64,
    end_mono: u64,
    local_root: bool,
    /// Kept as for a recorded span: an unsampled failure still counts in
    /// `metrics()["errors"]` and shows in `span.status`.
    status: Status,
}

struct SpanState {
    /// None only transiently, while `finish` swaps Active for Finished.
    record: Option<Record>,
    /// The context token of the innermost `activate`.
    token: Option<Py<PyAny>>,
    /// Tokens of outer activations when a span is entered again inside its
    /// own `with` block (rare: kept apart so the usual case never allocates).
    outer_tokens: Vec<Py<PyAny>>,
}

/// `subclass`: the OpenTelemetry bridge's `OTelSpan` extends it.
#[pyclass(
    name = "Span",
    module = "ferrotrace._core",
    frozen,
    subclass,
    freelist = 1024
)]
pub struct SpanPy {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_id: Option<SpanId>,
    pub sampled: bool,
    /// The trace's W3C Level 2 `random` flag, passed on by `inject` (see
    /// [`SpanPy::with_trace_flags`]).
    pub random: bool,
    /// The W3C `tracestate` this span's trace arrived with, passed on by
    /// `inject` (see [`SpanPy::with_trace_flags`]).
    pub tracestate: Option<std::sync::Arc<str>>,
    /// Whether attributes, events and errors are kept (false for spans
    /// head-sampled out with no tail rules: they skip all conversion work).
    recording: bool,
    /// The provider that started it: collector, limits, service name.
    pub core: Py<TracerCore>,
    /// Spans started before a fork are the parent's to write.
    fork_epoch: u32,
    state: Mutex<SpanState>,
    /// The OpenTelemetry `SpanContext` of `get_span_context()`, made once:
    /// instrumentations ask for it on every inject and log record.
    otel_context: GilOnceCell<Py<PyAny>>,
}

impl SpanPy {
    pub fn new(core: Py<TracerCore>, record: UniqueArc<SpanRecord>) -> Self {
        SpanPy {
            trace_id: record.trace_id,
            span_id: record.span_id,
            parent_id: record.parent_id,
            sampled: record.sampled,
            random: record.random,
            tracestate: None,
            recording: true,
            core,
            fork_epoch: registry::epoch(),
            state: Mutex::new(SpanState {
                record: Some(Record::Active(record)),
                token: None,
                outer_tokens: Vec::new(),
            }),
            otel_context: GilOnceCell::new(),
        }
    }

    /// A span that records nothing (see [`Record::Unrecorded`]).
    #[allow(clippy::too_many_arguments)]
    pub fn unrecorded(
        core: Py<TracerCore>,
        trace_id: TraceId,
        parent_id: Option<SpanId>,
        name: CompactString,
        kind: SpanKind,
        local_root: bool,
        start_mono: u64,
    ) -> Self {
        SpanPy {
            trace_id,
            span_id: SpanId::random(),
            parent_id,
            sampled: false,
            random: false,
            tracestate: None,
            recording: false,
            core,
            fork_epoch: registry::epoch(),
            state: Mutex::new(SpanState {
                record: Some(Record::Unrecorded(Unrecorded {
                    name,
                    kind,
                    start_mono,
                    end_mono: 0,
                    local_root,
                    status: Status::Unset,
                })),
                token: None,
                outer_tokens: Vec::new(),
            }),
            otel_context: GilOnceCell::new(),
        }
    }

    /// Sets what the span propagates of its trace besides the ids: the W3C
    /// `random` flag and the `tracestate`. A span continuing a remote
    /// context, or a child of a span that did, passes them on unchanged.
    pub fn with_trace_flags(
        mut self,
        random: bool,
        tracestate: Option<std::sync::Arc<str>>,
    ) -> Self {
        self.random = random;
        self.tracestate = tracestate;
        self
    }

    /// Runs `f` on the record if the span is still open; returns whether it ran.
    #[inline]
    fn with_active(&self, f: impl FnOnce(&mut SpanRecord)) -> bool {
        let mut state = self.state.lock();
        match state.record.as_mut() {
            Some(Record::Active(record)) => {
                f(record);
                true
            }
            _ => false,
        }
    }

    /// Sets the status of an open span, recorded or not (an unsampled span
    /// keeps its status so its failure is counted); `detail` runs on a
    /// recorded span's record only.
    fn update_status(
        &self,
        status: impl FnOnce(SpanKind) -> Status,
        detail: impl FnOnce(&mut SpanRecord),
    ) {
        let mut state = self.state.lock();
        match state.record.as_mut() {
            Some(Record::Active(r)) => {
                r.status = status(r.kind);
                detail(r);
            }
            Some(Record::Unrecorded(u)) if u.end_mono == 0 => u.status = status(u.kind),
            _ => {}
        }
    }

    fn read<R>(&self, f: impl FnOnce(&SpanRecord) -> R) -> R {
        let state = self.state.lock();
        match state.record.as_ref() {
            Some(Record::Active(r)) => f(r),
            Some(Record::Finished(r)) => f(r),
            Some(Record::Unrecorded(u)) => {
                // A stand-in with what an unrecorded span knows.
                let mut r = SpanRecord::new(self.trace_id, self.parent_id, u.name.clone());
                r.span_id = self.span_id;
                r.kind = u.kind;
                r.sampled = false;
                r.random = self.random;
                r.start_mono = u.start_mono;
                r.start_ns = clock::to_wall_ns(u.start_mono);
                r.end_mono = u.end_mono;
                r.status = u.status;
                f(&r)
            }
            None => f(&SpanRecord::new(
                self.trace_id,
                self.parent_id,
                CompactString::default(),
            )),
        }
    }

    pub fn kind_value(&self) -> SpanKind {
        self.read(|r| r.kind)
    }

    /// This span's context as the propagation formats write it.
    pub fn propagated(&self) -> crate::propagation::Context<'_> {
        crate::propagation::Context {
            trace_id: self.trace_id,
            span_id: self.span_id,
            sampled: self.sampled,
            random: self.random,
            tracestate: self.tracestate.as_deref(),
        }
    }

    /// Makes this span the active one (used by `with` and traced calls).
    #[inline]
    pub fn activate<'py>(slf: &Bound<'py, Self>) -> PyResult<()> {
        let token = context::set(slf.py(), slf.as_any())?;
        let mut state = slf.get().state.lock();
        if let Some(outer) = state.token.replace(token.unbind()) {
            state.outer_tokens.push(outer);
        }
        Ok(())
    }

    /// An HTTP server response's status code: kept as
    /// `http.response.status_code`; 5xx fails the span.
    pub fn set_server_status(&self, code: i64) {
        let limits = self.core.get().limits();
        let mut state = self.state.lock();
        match state.record.as_mut() {
            Some(Record::Active(r)) => {
                r.set_attribute(
                    "http.response.status_code".into(),
                    AttrValue::Int(code),
                    limits,
                );
                if code >= 500 {
                    r.status = Status::Error;
                }
            }
            Some(Record::Unrecorded(u)) if code >= 500 => u.status = Status::Error,
            _ => {}
        }
    }

    /// Names a server span after its matched route and records `http.route`.
    pub fn set_route(&self, template: CompactString) {
        let limits = self.core.get().limits();
        let mut state = self.state.lock();
        let rename = |name: &mut CompactString| {
            let method = name.split(' ').next().unwrap_or("").to_owned();
            *name = compact_str::format_compact!("{method} {template}");
        };
        match state.record.as_mut() {
            Some(Record::Active(r)) => {
                rename(&mut r.name);
                r.set_attribute(
                    "http.route".into(),
                    AttrValue::Str(template.clone()),
                    limits,
                );
            }
            Some(Record::Unrecorded(u)) => rename(&mut u.name),
            _ => {}
        }
    }

    pub fn record_error(&self, error: ErrorInfo) {
        let limits = self.core.get().limits();
        let mut state = self.state.lock();
        match state.record.as_mut() {
            Some(Record::Active(r)) => r.set_error(error, limits),
            Some(Record::Unrecorded(u)) if u.end_mono == 0 => u.status = Status::Error,
            _ => {}
        }
    }

    /// Moves the start to `start_ns` (Unix epoch ns), as OpenTelemetry's
    /// `start_time=` asks; the duration is measured from there.
    pub fn set_start_time(&self, start_ns: u64) {
        let mut state = self.state.lock();
        let shift = |mono: u64| {
            let wall = i128::from(clock::to_wall_ns(mono));
            (i128::from(mono) - (wall - i128::from(start_ns))).clamp(1, i128::from(u64::MAX)) as u64
        };
        match state.record.as_mut() {
            Some(Record::Active(r)) => {
                r.start_mono = shift(r.start_mono);
                r.start_ns = start_ns;
            }
            Some(Record::Unrecorded(u)) if u.end_mono == 0 => u.start_mono = shift(u.start_mono),
            _ => {}
        }
    }

    pub fn add_links(&self, links: Vec<crate::span::Link>) {
        if links.is_empty() {
            return;
        }
        self.with_active(|r| {
            for link in links {
                r.add_link(link);
            }
        });
    }

    /// The status rules of OpenTelemetry's `set_status`: UNSET is ignored
    /// and OK is final. A failed span gets the description (as
    /// `status_description`) and `error.type` (semantic conventions) unless
    /// an instrumentation set one: the escaping exception's type, else the
    /// recorded exception's.
    pub fn set_otel_status(
        &self,
        status: Status,
        description: Option<CompactString>,
        error_type: Option<CompactString>,
    ) {
        if status == Status::Unset {
            return;
        }
        let limits = self.core.get().limits();
        let mut state = self.state.lock();
        match state.record.as_mut() {
            Some(Record::Active(r)) if r.status != Status::Ok => {
                r.status = status;
                if status != Status::Error {
                    return;
                }
                if let Some(d) = description {
                    r.set_attribute("status_description".into(), AttrValue::Str(d), limits);
                }
                if r.attributes.get("error.type").is_none() {
                    let recorded = r
                        .error
                        .as_deref()
                        .map(|e| CompactString::from(&e.error_type));
                    if let Some(t) = error_type.or(recorded) {
                        r.set_attribute("error.type".into(), AttrValue::Str(t), limits);
                    }
                }
            }
            Some(Record::Unrecorded(u)) if u.end_mono == 0 && u.status != Status::Ok => {
                u.status = status
            }
            _ => {}
        }
    }

    /// OpenTelemetry's `record_exception`: an `exception` event (type,
    /// message, stack trace, escaped, and `attributes`) and ferrotrace's
    /// `error`. `fail`: whether the span fails by it (ferrotrace's own API)
    /// or keeps its status until `set_status` (OpenTelemetry's).
    pub fn record_exception_event(
        &self,
        py: Python<'_>,
        exception: &Bound<'_, PyAny>,
        attributes: Option<&Bound<'_, PyAny>>,
        timestamp: Option<u64>,
        escaped: bool,
        fail: bool,
    ) -> PyResult<()> {
        if !self.recording {
            if fail {
                self.record_error(ErrorInfo::default());
            }
            return Ok(());
        }
        let info = convert::error_argument(py, exception);
        let limits = self.core.get().limits();
        let mut event = Event {
            name: "exception".into(),
            ts_ns: timestamp.unwrap_or_else(jsonl::event_timestamp_ns),
            level: "error".into(),
            attributes: Default::default(),
        };
        let mut put = |k: &str, v: &str| {
            event
                .attributes
                .set(k.into(), AttrValue::Str(v.into()), limits);
        };
        put("exception.type", &info.error_type);
        put("exception.message", &info.message);
        if let Some(stack) = &info.stack {
            put("exception.stacktrace", stack);
        }
        put("exception.escaped", if escaped { "True" } else { "False" });
        if let Some(attrs) = attributes.filter(|a| !a.is_none()) {
            convert::for_each_item(attrs, "exception attributes must be a mapping", |k, v| {
                event
                    .attributes
                    .set(convert::key(k), convert::value(v), limits);
                Ok(())
            })?;
        }
        self.with_active(|r| {
            r.add_event(event, limits);
            if fail {
                r.set_error(info, limits);
            } else {
                r.note_error(info, limits);
            }
        });
        Ok(())
    }

    /// Ends the span (once) and hands it to the tracer's writer.
    #[inline]
    pub fn end_span(&self, py: Python<'_>, duration_override_ns: Option<u64>) {
        let ended = end_locked(&mut self.state.lock(), duration_override_ns);
        self.publish(py, ended);
    }

    /// Leaves the span's `with` block (or traced call): restores the
    /// previous active span and ends this one, under a single lock. A token
    /// from another context (span entered in one task, exited in another)
    /// cannot be reset; that is not the traced code's problem, so it is
    /// ignored.
    #[inline]
    pub fn exit(&self, py: Python<'_>) {
        let (token, ended) = {
            let mut state = self.state.lock();
            let token = state.token.take();
            state.token = state.outer_tokens.pop();
            (token, end_locked(&mut state, None))
        };
        if let Some(token) = token {
            if context::reset(py, token.bind(py)).is_err() {
                let _ = PyErr::take(py);
            }
        }
        self.publish(py, ended);
    }

    /// Hands what `end_locked` produced to the tracer (outside the lock).
    #[inline]
    fn publish(&self, py: Python<'_>, ended: Ended) {
        if self.fork_epoch != registry::epoch() {
            return; // started before a fork: the parent process writes it
        }
        let core = self.core.get();
        match ended {
            Ended::Recorded(record) => {
                let _ = core.collector.submit(record);
                core.log_pending_warnings(py);
            }
            Ended::Unrecorded { local_root, failed } => {
                core.collector.unrecorded_span_finished(local_root, failed)
            }
            Ended::Already => {}
        }
    }
}

/// What ending a span produced.
enum Ended {
    Recorded(Arc<SpanRecord>),
    Unrecorded {
        local_root: bool,
        failed: bool,
    },
    /// It had ended before: `finish()` is idempotent.
    Already,
}

#[inline]
fn end_locked(state: &mut SpanState, duration_override_ns: Option<u64>) -> Ended {
    match state.record.take() {
        Some(Record::Active(mut record)) => {
            record.end_mono = clock::monotonic_ns().max(record.start_mono + 1);
            record.duration_override_ns = duration_override_ns;
            let shared = UniqueArc::shareable(record);
            state.record = Some(Record::Finished(shared.clone()));
            Ended::Recorded(shared)
        }
        Some(Record::Unrecorded(mut u)) => {
            let ended = if u.end_mono == 0 {
                u.end_mono = clock::monotonic_coarse_ns().max(u.start_mono + 1);
                Ended::Unrecorded {
                    local_root: u.local_root,
                    failed: u.status == Status::Error,
                }
            } else {
                Ended::Already
            };
            state.record = Some(Record::Unrecorded(u));
            ended
        }
        other => {
            state.record = other;
            Ended::Already
        }
    }
}

impl Drop for SpanPy {
    fn drop(&mut self) {
        // If the writer is done with the record, this is its last holder:
        // give it back for reuse instead of freeing it.
        if let Some(Record::Finished(record)) = self.state.get_mut().record.take() {
            if self.fork_epoch == registry::epoch() {
                self.core.get().collector.pipeline().pool.recycle(record);
            }
        }
    }
}

/// Exceptions that end a span without meaning it failed.
fn is_failure(exc: &Bound<'_, PyAny>) -> bool {
    if exc.is_instance_of::<pyo3::exceptions::PyGeneratorExit>() {
        return false;
    }
    if exc.is_instance_of::<pyo3::exceptions::PyStopIteration>()
        || exc.is_instance_of::<pyo3::exceptions::PyStopAsyncIteration>()
    {
        return false;
    }
    if exc.is_instance_of::<pyo3::exceptions::PySystemExit>() {
        // sys.exit() and sys.exit(0) are normal endings.
        return match exc.getattr("code") {
            Ok(code) => !(code.is_none() || code.extract::<i64>().map(|c| c == 0).unwrap_or(false)),
            Err(_) => true,
        };
    }
    true
}

/// Records an exception escaping a span or a traced call.
pub fn record_exception(
    py: Python<'_>,
    span: &SpanPy,
    exc: &Bound<'_, PyAny>,
    traceback: Option<&Bound<'_, PyAny>>,
) {
    if is_failure(exc) {
        span.record_error(convert::exception_with_traceback(py, exc, traceback));
    }
}

fn attr_to_py<'py>(py: Python<'py>, value: &AttrValue) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        AttrValue::Str(s) => PyString::new(py, s).into_any(),
        AttrValue::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        AttrValue::Int(i) => i.into_pyobject(py)?.into_any(),
        AttrValue::Float(f) => f.into_pyobject(py)?.into_any(),
        AttrValue::List(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(attr_to_py(py, item)?)?;
            }
            list.into_any()
        }
    })
}

fn parse_level(level: Option<&Bound<'_, PyAny>>) -> CompactString {
    match level {
        None => "info".into(),
        Some(l) => {
            let mut s = convert::display(l);
            s.make_ascii_lowercase();
            s
        }
    }
}

#[pymethods]
impl SpanPy {
    #[getter]
    fn trace_id(&self) -> String {
        self.trace_id.to_hex().as_str().to_owned()
    }

    #[getter]
    fn span_id(&self) -> String {
        self.span_id.to_hex().as_str().to_owned()
    }

    #[getter]
    fn parent_id(&self) -> Option<String> {
        self.parent_id.map(|p| p.to_hex().as_str().to_owned())
    }

    #[getter]
    fn name(&self) -> String {
        self.read(|r| r.name.to_string())
    }

    #[getter]
    fn service<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        self.core.get().service.bind(py).clone()
    }

    #[getter]
    fn kind(&self) -> &'static str {
        self.read(|r| r.kind.as_str())
    }

    #[getter]
    fn start_ns(&self) -> u64 {
        self.read(|r| r.start_ns)
    }

    #[getter]
    fn end_ns(&self) -> Option<u64> {
        self.read(|r| r.is_finished().then(|| r.end_ns()))
    }

    #[getter]
    fn duration_ms(&self) -> Option<f64> {
        self.read(|r| r.is_finished().then(|| r.duration_ms()))
    }

    #[getter]
    fn status(&self) -> &'static str {
        self.read(|r| r.status.as_str())
    }

    #[getter]
    fn sampled(&self) -> bool {
        self.sampled
    }

    #[getter]
    fn is_finished(&self) -> bool {
        self.read(|r| r.is_finished())
    }

    /// Renames the span (e.g. once a web framework has matched the route).
    fn update_name(&self, name: &Bound<'_, PyAny>) -> PyResult<()> {
        let name = convert::span_name(name)?;
        let mut state = self.state.lock();
        match state.record.as_mut() {
            Some(Record::Active(r)) => r.name = name,
            Some(Record::Unrecorded(u)) if u.end_mono == 0 => u.name = name,
            _ => {}
        }
        Ok(())
    }

    /// A copy of the span's attributes.
    #[getter]
    fn attributes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let pairs: Vec<(String, AttrValue)> = self.read(|r| {
            r.attributes
                .iter()
                .map(|(k, v)| (k.to_owned(), v.clone()))
                .collect()
        });
        let dict = PyDict::new(py);
        for (k, v) in pairs {
            dict.set_item(k, attr_to_py(py, &v)?)?;
        }
        Ok(dict)
    }

    /// The span's ids as a `SpanContext` (what `inject` propagates).
    #[getter]
    fn context(&self) -> SpanContextPy {
        SpanContextPy {
            trace_id: self.trace_id,
            span_id: self.span_id,
            sampled: self.sampled,
            random: self.random,
            remote: false,
            tracestate: self.tracestate.as_deref().map(str::to_owned),
        }
    }

    pub fn is_recording(&self) -> bool {
        self.recording && !self.is_finished()
    }

    #[inline]
    pub fn set_tag(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) {
        if !self.recording {
            return;
        }
        // Convert before locking: str() may run arbitrary Python code.
        let key = convert::key(key);
        let value = convert::value(value);
        let limits = self.core.get().limits();
        self.with_active(|r| {
            r.set_attribute(key, value, limits);
        });
    }

    fn set_attribute(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) {
        self.set_tag(key, value)
    }

    fn set_tags(&self, tags: &Bound<'_, PyAny>) -> PyResult<()> {
        if !self.recording {
            return Ok(());
        }
        convert::for_each_item(
            tags,
            "set_tags() takes a mapping of attribute names to values",
            |k, v| {
                self.set_tag(k, v);
                Ok(())
            },
        )
    }

    fn set_attributes(&self, tags: &Bound<'_, PyAny>) -> PyResult<()> {
        self.set_tags(tags)
    }

    /// A timestamped event: `span.log("cache miss", level="warning", key="u:1")`.
    #[pyo3(signature = (message, attributes=None, *, level=None, timestamp=None, **fields))]
    fn log(
        &self,
        message: &Bound<'_, PyAny>,
        attributes: Option<&Bound<'_, PyAny>>,
        level: Option<&Bound<'_, PyAny>>,
        timestamp: Option<u64>,
        fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        if !self.recording {
            return Ok(());
        }
        let limits = self.core.get().limits();
        let mut event = Event {
            name: convert::display(message),
            ts_ns: timestamp.unwrap_or_else(jsonl::event_timestamp_ns),
            level: parse_level(level),
            attributes: Default::default(),
        };
        let mut add = |k: &Bound<'_, PyAny>, v: &Bound<'_, PyAny>| {
            event
                .attributes
                .set(convert::key(k), convert::value(v), limits);
        };
        if let Some(attrs) = attributes.filter(|a| !a.is_none()) {
            convert::for_each_item(attrs, "event attributes must be a mapping", |k, v| {
                add(k, v);
                Ok(())
            })?;
        }
        if let Some(fields) = fields {
            for (k, v) in fields.iter() {
                add(&k, &v);
            }
        }
        self.with_active(|r| r.add_event(event, limits));
        Ok(())
    }

    /// `add_event(name, attributes=None, timestamp=None)` as OpenTelemetry
    /// has it, with `log`'s keywords too.
    #[pyo3(signature = (name, attributes=None, timestamp=None, *, level=None, **fields))]
    fn add_event(
        &self,
        name: &Bound<'_, PyAny>,
        attributes: Option<&Bound<'_, PyAny>>,
        timestamp: Option<u64>,
        level: Option<&Bound<'_, PyAny>>,
        fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        self.log(name, attributes, level, timestamp, fields)
    }

    /// `set_status(200)`, `set_status("error")`, `set_status("ok")`.
    #[pyo3(signature = (status, description=None))]
    pub fn set_status(
        &self,
        status: &Bound<'_, PyAny>,
        description: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let limits = self.core.get().limits();
        let description = description.filter(|d| !d.is_none()).map(convert::display);
        if status.cast::<pyo3::types::PyBool>().is_err() {
            if let Ok(code) = status.extract::<i64>() {
                self.update_status(
                    |kind| Status::from_code(code, kind),
                    |r| {
                        r.set_attribute("status_code".into(), AttrValue::Int(code), limits);
                        if let Some(d) = description {
                            r.set_attribute("status_description".into(), AttrValue::Str(d), limits);
                        }
                    },
                );
                return Ok(());
            }
        }
        // OpenTelemetry's `Status(code, description)`.
        let status_code = interned!(status.py(), "status_code");
        if let Some(code) = status.getattr_opt(status_code)? {
            if code.hasattr(status_code)? {
                // Not a Status: its code would be read forever.
                return Err(PyTypeError::new_err(
                    "set_status() takes a Status whose status_code is a StatusCode",
                ));
            }
            let description = status
                .getattr_opt(interned!(status.py(), "description"))?
                .filter(|d| !d.is_none());
            return self.set_status(&code, description.as_ref());
        }
        // Strings, and enums like OpenTelemetry's StatusCode (by name).
        let Some(text) = convert::name_or_str(status) else {
            return Err(PyTypeError::new_err(format!(
                "set_status() takes an int status code or \"ok\"/\"error\"/\"unset\", not {}",
                convert::display(&status.get_type().into_any())
            )));
        };
        let parsed = match text.to_ascii_lowercase().as_str() {
            "ok" => Status::Ok,
            "error" => Status::Error,
            "unset" => Status::Unset,
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown span status {other:?}: use \"ok\", \"error\", \"unset\" or an int code"
                )))
            }
        };
        self.update_status(
            |_| parsed,
            |r| {
                if let Some(d) = description {
                    r.set_attribute("status_description".into(), AttrValue::Str(d), limits);
                }
            },
        );
        Ok(())
    }

    /// Records an exception (type, message, stack) or an error message, and
    /// marks the span failed.
    #[pyo3(signature = (error, stack=None))]
    fn set_error(
        &self,
        py: Python<'_>,
        error: &Bound<'_, PyAny>,
        stack: Option<&Bound<'_, PyAny>>,
    ) {
        let mut info = convert::error_argument(py, error);
        if let Some(stack) = stack.filter(|s| !s.is_none()) {
            info.stack = Some(convert::display(stack).to_string());
        }
        self.record_error(info);
    }

    /// Records an exception: its `exception` event (OpenTelemetry's
    /// conventions) and the span's error; the span fails.
    #[pyo3(signature = (exception, attributes=None, timestamp=None, escaped=false))]
    fn record_exception(
        &self,
        py: Python<'_>,
        exception: &Bound<'_, PyAny>,
        attributes: Option<&Bound<'_, PyAny>>,
        timestamp: Option<u64>,
        escaped: bool,
    ) -> PyResult<()> {
        self.record_exception_event(py, exception, attributes, timestamp, escaped, true)
    }

    /// The span's context as OpenTelemetry's `SpanContext` (integer ids,
    /// `TraceFlags`, `TraceState`); needs the `opentelemetry-api` package.
    fn get_span_context<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.otel_context
            .get_or_try_init(py, || {
                otel::span_context(
                    py,
                    self.trace_id,
                    self.span_id,
                    self.sampled,
                    self.random,
                    self.tracestate.as_deref(),
                )
                .map(Bound::unbind)
            })
            .map(|c| c.bind(py).clone())
    }

    /// Links this span to another span's context (OpenTelemetry's or
    /// ferrotrace's `SpanContext`, or a `Span`); an invalid context is
    /// ignored.
    #[pyo3(signature = (context, attributes=None))]
    fn add_link(
        &self,
        context: &Bound<'_, PyAny>,
        attributes: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        if !self.recording {
            return Ok(());
        }
        if let Some(link) = otel::link(context, attributes, self.core.get().limits())? {
            self.with_active(|r| r.add_link(link));
        }
        Ok(())
    }

    /// Ends the span. Idempotent; `duration_ms` replaces the measured duration.
    #[pyo3(signature = (duration_ms=None))]
    fn finish(&self, py: Python<'_>, duration_ms: Option<f64>) -> PyResult<()> {
        let override_ns = match duration_ms {
            None => None,
            Some(ms) if ms.is_finite() && ms >= 0.0 => Some((ms * 1e6).round() as u64),
            Some(ms) => {
                return Err(PyValueError::new_err(format!(
                    "duration_ms must be a finite number >= 0, got {ms}"
                )))
            }
        };
        self.end_span(py, override_ns);
        Ok(())
    }

    /// Alias of `finish()`, as OpenTelemetry names it.
    #[pyo3(signature = (end_time=None))]
    fn end(&self, py: Python<'_>, end_time: Option<u64>) {
        let override_ns = end_time.map(|t| {
            let start = self.read(|r| r.start_ns);
            t.saturating_sub(start)
        });
        self.end_span(py, override_ns);
    }

    fn __enter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        SpanPy::activate(slf)?;
        Ok(slf.clone())
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: &Bound<'_, PyAny>,
        exc_value: &Bound<'_, PyAny>,
        traceback: &Bound<'_, PyAny>,
    ) -> bool {
        if !exc_value.is_none() {
            let tb = Some(traceback).filter(|t| !t.is_none());
            record_exception(py, self, exc_value, tb);
        }
        self.exit(py);
        false
    }

    /// The JSONL record of this span as a dict (end_ns/duration_ms None
    /// while it is open).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let service = &self.core.get().collector.config.service_name;
        let (row, finished) = self.read(|r| (SpanRow::from_record(r, service), r.is_finished()));
        let dict = values::to_py(py, &row)?;
        if !finished {
            dict.set_item("end_ns", py.None())?;
            dict.set_item("duration_ms", py.None())?;
            dict.set_item("status", self.status())?;
        }
        Ok(dict)
    }

    fn __repr__(&self) -> String {
        self.read(|r| {
            format!(
                "<Span name={:?} trace_id={} span_id={} status={}{}>",
                r.name.as_str(),
                self.trace_id,
                self.span_id,
                r.status.as_str(),
                if r.is_finished() {
                    format!(" duration_ms={:.3}", r.duration_ms())
                } else {
                    " open".to_string()
                }
            )
        })
    }
}

pub fn parse_kind(kind: Option<&Bound<'_, PyAny>>) -> PyResult<SpanKind> {
    let Some(kind) = kind.filter(|k| !k.is_none()) else {
        return Ok(SpanKind::Internal);
    };
    // Strings, and enums such as OpenTelemetry's SpanKind.SERVER (by name).
    let Some(text) = convert::name_or_str(kind) else {
        return Err(PyTypeError::new_err(
            "span kind must be a str: internal, server, client, producer or consumer",
        ));
    };
    SpanKind::parse(&text).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown span kind {:?}: use internal, server, client, producer or consumer",
            text.as_str()
        ))
    })
}
