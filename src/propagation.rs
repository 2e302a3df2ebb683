//! Context propagation between processes: reading and writing a span's
//! identity in message headers.
//!
//! Four formats, selectable per tracer and tried in order on extraction:
//!
//! | name           | headers                                                        |
//! | -------------- | -------------------------------------------------------------- |
//! | `tracecontext` | `traceparent`, `tracestate` (W3C Trace Context)                 |
//! | `b3`           | `b3: {trace}-{span}[-{sampling}[-{parent}]]` (B3 single header) |
//! | `b3multi`      | `x-b3-traceid`, `x-b3-spanid`, `x-b3-sampled`, `x-b3-flags`     |
//! | `xtrace`       | `x-trace-id`, `x-span-id`, `x-sampled`                          |
//!
//! Headers arrive from whoever sent the request, so every parser here is
//! written for hostile input: lengths are checked before anything is looked
//! at, nothing allocates in proportion to the input, nothing panics, and an
//! id that is not well formed (wrong length, upper case where the format
//! forbids it, all zero) never gets out: the header is ignored and the
//! receiver starts a new trace.
//!
//! W3C Trace Context Level 2 adds the `random` trace flag (0x02): the
//! trace id's rightmost 7 bytes are random. It belongs to the trace, not to
//! a span: set on the traces ferrotrace starts (its ids are random, see
//! `ids.rs`), carried unchanged through a continued trace (set or not, as it
//! arrived), and false when a format cannot say (B3, X-Trace-ID).
//!
//! Header names are matched case-insensitively by the caller's getter, which
//! returns every value received under a name (HTTP allows a header to be
//! repeated). A header that may appear once and appears more often is
//! invalid; `tracestate` values are combined as one comma-separated list.

use std::fmt;

use crate::ids::{SpanId, TraceId};

/// A context read from headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extracted {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub sampled: bool,
    /// W3C Level 2 `random` flag (0x02) as received; false for formats
    /// without it.
    pub random: bool,
    /// The W3C `tracestate`, validated and normalised (`k=v` members joined
    /// by `,`); None when absent, empty or invalid.
    pub tracestate: Option<String>,
}

impl Extracted {
    /// This context as [`inject`](Propagator::inject) takes it.
    pub fn as_context(&self) -> Context<'_> {
        Context {
            trace_id: self.trace_id,
            span_id: self.span_id,
            sampled: self.sampled,
            random: self.random,
            tracestate: self.tracestate.as_deref(),
        }
    }
}

/// A span's identity as written into headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Context<'a> {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub sampled: bool,
    /// The W3C `random` flag of the trace (written by `tracecontext` only).
    pub random: bool,
    /// Passed through unchanged by `tracecontext` (ferrotrace has no vendor
    /// key of its own to put first); other formats have no place for it.
    pub tracestate: Option<&'a str>,
}

/// A header format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Propagator {
    /// W3C Trace Context: `traceparent` and `tracestate`.
    TraceContext,
    /// Zipkin B3, one `b3` header.
    B3Single,
    /// Zipkin B3, one header per field (`X-B3-TraceId`, ...).
    B3Multi,
    /// `X-Trace-ID` / `X-Span-ID`, as the services ferrotrace replaces sent them.
    XTrace,
}

/// Every format, in the order their names are listed in messages.
pub const ALL: [Propagator; 4] = [
    Propagator::TraceContext,
    Propagator::B3Single,
    Propagator::B3Multi,
    Propagator::XTrace,
];

/// The formats used when nothing is configured.
pub const DEFAULT: [Propagator; 1] = [Propagator::TraceContext];

impl Propagator {
    /// Parses one name: `tracecontext`, `b3`, `b3multi` or `xtrace`
    /// (ASCII case and surrounding whitespace ignored).
    ///
    /// ```
    /// use _core::propagation::Propagator;
    /// assert_eq!(Propagator::parse("b3multi"), Ok(Propagator::B3Multi));
    /// assert!(Propagator::parse("jaeger").is_err());
    /// ```
    pub fn parse(name: &str) -> Result<Propagator, String> {
        let trimmed = name.trim();
        ALL.into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(trimmed))
            .ok_or_else(|| {
                format!(
                    "unknown propagator {trimmed:?}: use tracecontext, b3, b3multi or xtrace \
                     (or none)"
                )
            })
    }

    /// The name `parse` accepts for this format.
    pub fn name(self) -> &'static str {
        match self {
            Propagator::TraceContext => "tracecontext",
            Propagator::B3Single => "b3",
            Propagator::B3Multi => "b3multi",
            Propagator::XTrace => "xtrace",
        }
    }

    /// The header names this format reads, lower case.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Propagator::TraceContext => &[TRACEPARENT, TRACESTATE],
            Propagator::B3Single => &[B3],
            Propagator::B3Multi => &[B3_TRACE_ID, B3_SPAN_ID, B3_SAMPLED, B3_FLAGS],
            Propagator::XTrace => &[X_TRACE_ID, X_SPAN_ID, X_SAMPLED],
        }
    }

    /// Reads a context from headers. `get` returns every value received
    /// under a lower-case header name, in the order received (empty when the
    /// header is absent). None when the headers carry no valid context.
    ///
    /// ```
    /// use _core::propagation::Propagator;
    /// let ctx = Propagator::TraceContext
    ///     .extract(|name| match name {
    ///         "traceparent" => vec!["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
    ///         _ => vec![],
    ///     })
    ///     .unwrap();
    /// assert_eq!(ctx.trace_id.to_hex().as_str(), "4bf92f3577b34da6a3ce929d0e0e4736");
    /// assert!(ctx.sampled);
    /// ```
    pub fn extract<'a>(&self, get: impl Fn(&str) -> Vec<&'a str>) -> Option<Extracted> {
        match self {
            Propagator::TraceContext => extract_trace_context(&get),
            Propagator::B3Single => one(&get(B3)).and_then(parse_b3_single),
            Propagator::B3Multi => extract_b3_multi(&get),
            Propagator::XTrace => extract_xtrace(&get),
        }
    }

    /// Writes `ctx` as headers through `set(name, value)`; names are lower
    /// case (HTTP/2 and gRPC metadata require it; HTTP/1 ignores case).
    ///
    /// ```
    /// use _core::ids::{SpanId, TraceId};
    /// use _core::propagation::{Context, Propagator};
    /// let ctx = Context {
    ///     trace_id: TraceId(0x4bf92f3577b34da6a3ce929d0e0e4736),
    ///     span_id: SpanId(0x00f067aa0ba902b7),
    ///     sampled: true,
    ///     random: true,
    ///     tracestate: None,
    /// };
    /// let mut headers = Vec::new();
    /// Propagator::B3Single.inject(ctx, |name, value| headers.push((name, value)));
    /// assert_eq!(
    ///     headers,
    ///     [("b3", "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1".to_string())]
    /// );
    /// ```
    pub fn inject(&self, ctx: Context<'_>, mut set: impl FnMut(&'static str, String)) {
        let trace = ctx.trace_id.to_hex();
        let span = ctx.span_id.to_hex();
        let (trace, span) = (trace.as_str(), span.as_str());
        match self {
            Propagator::TraceContext => {
                let flags = trace_flags(ctx.sampled, ctx.random);
                set(TRACEPARENT, format!("00-{trace}-{span}-{flags:02x}"));
                if let Some(state) = ctx.tracestate.filter(|s| !s.is_empty()) {
                    set(TRACESTATE, state.to_owned());
                }
            }
            Propagator::B3Single => {
                let sampled = if ctx.sampled { '1' } else { '0' };
                set(B3, format!("{trace}-{span}-{sampled}"));
            }
            Propagator::B3Multi => {
                set(B3_TRACE_ID, trace.to_owned());
                set(B3_SPAN_ID, span.to_owned());
                set(B3_SAMPLED, sampled_digit(ctx.sampled));
            }
            Propagator::XTrace => {
                set(X_TRACE_ID, trace.to_owned());
                set(X_SPAN_ID, span.to_owned());
                set(X_SAMPLED, sampled_digit(ctx.sampled));
            }
        }
    }
}

impl fmt::Display for Propagator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses a comma-separated list of names, as `OTEL_PROPAGATORS` holds
/// them: `"tracecontext,b3"`. `"none"` names no format (the list is empty);
/// repeats are dropped; an unknown name is an error naming it.
///
/// ```
/// use _core::propagation::{parse_propagator_list, Propagator};
/// assert_eq!(
///     parse_propagator_list("tracecontext, b3multi"),
///     Ok(vec![Propagator::TraceContext, Propagator::B3Multi])
/// );
/// assert_eq!(parse_propagator_list("none"), Ok(vec![]));
/// assert!(parse_propagator_list("tracecontext,jaeger").is_err());
/// ```
pub fn parse_propagator_list(list: &str) -> Result<Vec<Propagator>, String> {
    let (found, unknown) = parse_names(list.split(','));
    match unknown.first() {
        Some(_) => Err(format!(
            "unknown propagator{} {}: use tracecontext, b3, b3multi or xtrace (or none)",
            if unknown.len() > 1 { "s" } else { "" },
            unknown
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        None => Ok(found),
    }
}

/// Like [`parse_propagator_list`] but for an environment variable: unknown
/// names are returned beside the formats instead of failing the whole list,
/// so the caller can warn and carry on. `baggage` (in OpenTelemetry's
/// default `tracecontext,baggage`) is not a trace-context format and is
/// skipped silently.
pub fn parse_propagator_env(list: &str) -> (Vec<Propagator>, Vec<String>) {
    let (found, mut unknown) = parse_names(list.split(','));
    unknown.retain(|n| !n.eq_ignore_ascii_case("baggage"));
    (found, unknown)
}

fn parse_names<'a>(names: impl Iterator<Item = &'a str>) -> (Vec<Propagator>, Vec<String>) {
    let mut found = Vec::new();
    let mut unknown = Vec::new();
    for name in names.map(str::trim).filter(|n| !n.is_empty()) {
        if name.eq_ignore_ascii_case("none") {
            continue;
        }
        match Propagator::parse(name) {
            Ok(p) if !found.contains(&p) => found.push(p),
            Ok(_) => {}
            Err(_) => unknown.push(name.chars().take(64).collect()),
        }
    }
    (found, unknown)
}

/// Tries each format in order; the first valid context wins.
pub fn extract_first<'a>(
    propagators: &[Propagator],
    get: impl Fn(&str) -> Vec<&'a str>,
) -> Option<Extracted> {
    propagators.iter().find_map(|p| p.extract(&get))
}

/// Writes `ctx` in every format of `propagators`.
pub fn inject_all(
    propagators: &[Propagator],
    ctx: Context<'_>,
    mut set: impl FnMut(&'static str, String),
) {
    for p in propagators {
        p.inject(ctx, &mut set);
    }
}

// Header names, lower case.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";
pub const B3: &str = "b3";
pub const B3_TRACE_ID: &str = "x-b3-traceid";
pub const B3_SPAN_ID: &str = "x-b3-spanid";
pub const B3_SAMPLED: &str = "x-b3-sampled";
pub const B3_FLAGS: &str = "x-b3-flags";
pub const X_TRACE_ID: &str = "x-trace-id";
pub const X_SPAN_ID: &str = "x-span-id";
pub const X_SAMPLED: &str = "x-sampled";

/// Longest `traceparent` considered. Version 00 is 55 characters; future
/// versions may append fields, which this leaves room for. Anything longer
/// is junk and is rejected before it is read.
pub const MAX_TRACEPARENT_LEN: usize = 512;

/// Longest combined `tracestate` considered: 32 members of the longest key
/// (256) and value (256) come to 16,447 characters; the rest is room for
/// optional whitespace and empty members.
pub const MAX_TRACESTATE_LEN: usize = 32 * 1024;

/// Most list members a `tracestate` may hold (W3C).
pub const MAX_TRACESTATE_MEMBERS: usize = 32;

/// Longest value of any other header considered (B3, X-Trace-ID, ...). The
/// longest valid one, a full `b3` header, is 68 characters.
pub const MAX_ID_HEADER_LEN: usize = 256;

/// Longest header value any format reads; a carrier adapter can refuse
/// longer values before converting them.
pub const MAX_HEADER_VALUE_LEN: usize = MAX_TRACESTATE_LEN;

/// W3C trace flag bit 0: the caller may have recorded the trace.
pub const FLAG_SAMPLED: u8 = 0x01;
/// W3C Trace Context Level 2 trace flag bit 1: the trace id's rightmost
/// 7 bytes are random.
pub const FLAG_RANDOM: u8 = 0x02;

/// The W3C trace-flags byte of a context (the flags ferrotrace knows; the
/// others are unused in version 00 and written as zero).
pub fn trace_flags(sampled: bool, random: bool) -> u8 {
    (if sampled { FLAG_SAMPLED } else { 0 }) | (if random { FLAG_RANDOM } else { 0 })
}

fn sampled_digit(sampled: bool) -> String {
    (if sampled { "1" } else { "0" }).to_owned()
}

/// The single value of a header that may appear only once.
fn one<'a>(values: &[&'a str]) -> Option<&'a str> {
    match values {
        [value] => Some(*value),
        _ => None,
    }
}

/// At most one value: None if absent, Err if repeated.
fn optional_one<'a>(values: &[&'a str]) -> Result<Option<&'a str>, ()> {
    match values {
        [] => Ok(None),
        [value] => Ok(Some(*value)),
        _ => Err(()),
    }
}

/// Strips HTTP optional whitespace (spaces and tabs) from both ends.
fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    &s[start..end]
}

/// A short header value, bounded and trimmed.
fn id_header(value: &str) -> Option<&[u8]> {
    (value.len() <= MAX_ID_HEADER_LEN).then(|| trim_ows(value.as_bytes()))
}

#[inline]
fn hex_digit(b: u8, any_case: bool) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' if any_case => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Up to 32 hex digits as a number; None for any other byte.
fn hex_value(bytes: &[u8], any_case: bool) -> Option<u128> {
    if bytes.is_empty() || bytes.len() > 32 {
        return None;
    }
    bytes.iter().try_fold(0u128, |acc, &b| {
        hex_digit(b, any_case).map(|d| (acc << 4) | u128::from(d))
    })
}

fn trace_id_from(bytes: &[u8], any_case: bool) -> Option<TraceId> {
    hex_value(bytes, any_case)
        .map(TraceId)
        .filter(|id| id.is_valid())
}

fn span_id_from(bytes: &[u8], any_case: bool) -> Option<SpanId> {
    if bytes.len() != 16 {
        return None;
    }
    hex_value(bytes, any_case)
        .map(|v| SpanId(v as u64))
        .filter(|id| id.is_valid())
}

// ---------------------------------------------------------------------------
// W3C Trace Context

/// A parsed `traceparent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceParent {
    pub version: u8,
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub flags: u8,
}

impl TraceParent {
    pub fn sampled(&self) -> bool {
        self.flags & FLAG_SAMPLED != 0
    }

    /// W3C Level 2: the trace id's rightmost 7 bytes are random.
    pub fn random(&self) -> bool {
        self.flags & FLAG_RANDOM != 0
    }
}

/// Parses a `traceparent` value per W3C Trace Context:
///
/// - optional whitespace (spaces, tabs) around the value is ignored;
/// - `version-traceid-parentid-flags`, lower-case hex only, of 2, 32, 16 and
///   2 digits;
/// - version `ff` is invalid; version `00` must be exactly 55 characters;
///   a later version may be longer, provided the 56th character is `-`
///   (its extra fields are ignored and the ids kept);
/// - an all-zero trace id or parent id is invalid.
///
/// ```
/// use _core::propagation::parse_traceparent;
/// let tp = parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-xyz").unwrap();
/// assert_eq!(tp.version, 0xcc);
/// assert!(tp.sampled());
/// assert!(parse_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01").is_none());
/// ```
pub fn parse_traceparent(value: &str) -> Option<TraceParent> {
    if value.len() > MAX_TRACEPARENT_LEN {
        return None;
    }
    let b = trim_ows(value.as_bytes());
    if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let version = hex_value(&b[0..2], false)? as u8;
    if version == 0xff {
        return None;
    }
    if b.len() > 55 && (version == 0 || b[55] != b'-') {
        return None;
    }
    Some(TraceParent {
        version,
        trace_id: trace_id_from(&b[3..35], false)?,
        span_id: span_id_from(&b[36..52], false)?,
        flags: hex_value(&b[53..55], false)? as u8,
    })
}

/// Validates and normalises `tracestate` header values (each one a list;
/// repeated headers are one list, in order): members are `key=value`
/// separated by commas, with optional whitespace around each member and
/// empty members skipped. None when there is no member or when any rule is
/// broken, since W3C asks for the whole `tracestate` to be dropped then:
/// more than 32 members, a key or value outside the grammar. A repeated key
/// keeps its first member (vendors "MAY discard duplicate keys").
///
/// ```
/// use _core::propagation::parse_tracestate;
/// assert_eq!(
///     parse_tracestate(&["rojo=00f067aa0ba902b7 , ,", "congo=t61rcWkgMzE"]).as_deref(),
///     Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
/// );
/// assert_eq!(parse_tracestate(&["foo=1,foo=2"]).as_deref(), Some("foo=1"));
/// assert_eq!(parse_tracestate(&["@foo=1,bar=2"]), None);
/// ```
pub fn parse_tracestate(values: &[&str]) -> Option<String> {
    let total: usize = values.iter().map(|v| v.len() + 1).sum();
    if total > MAX_TRACESTATE_LEN {
        return None;
    }
    let mut keys: [&[u8]; MAX_TRACESTATE_MEMBERS] = [&[]; MAX_TRACESTATE_MEMBERS];
    let mut count = 0;
    let mut out = String::new();
    for value in values {
        for member in value.split(',') {
            let member = trim_ows(member.as_bytes());
            if member.is_empty() {
                continue;
            }
            if count == MAX_TRACESTATE_MEMBERS {
                return None;
            }
            let eq = member.iter().position(|&b| b == b'=')?;
            let (key, val) = (&member[..eq], &member[eq + 1..]);
            if !valid_tracestate_key(key) || !valid_tracestate_value(val) {
                return None;
            }
            if keys[..count].contains(&key) {
                continue;
            }
            keys[count] = key;
            count += 1;
            if !out.is_empty() {
                out.push(',');
            }
            // Only ASCII passed validation, so this is valid UTF-8.
            out.push_str(std::str::from_utf8(member).ok()?);
        }
    }
    (count > 0).then_some(out)
}

fn is_key_char(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/' | b'@')
}

/// `key = (lcalpha / DIGIT) 0*255(keychar)`, keychar being lcalpha, DIGIT,
/// `_`, `-`, `*`, `/` or `@` (the current W3C grammar, which replaced the
/// older `tenant@system` form with this simpler one).
fn valid_tracestate_key(key: &[u8]) -> bool {
    (1..=256).contains(&key.len())
        && (key[0].is_ascii_lowercase() || key[0].is_ascii_digit())
        && key[1..].iter().all(|&b| is_key_char(b))
}

/// 1-256 printable ASCII characters other than `,` and `=`, not ending in a
/// space.
fn valid_tracestate_value(value: &[u8]) -> bool {
    (1..=256).contains(&value.len())
        && value
            .iter()
            .all(|&b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
        && value.last() != Some(&b' ')
}

fn extract_trace_context<'a>(get: &impl Fn(&str) -> Vec<&'a str>) -> Option<Extracted> {
    let parent = parse_traceparent(one(&get(TRACEPARENT))?)?;
    Some(Extracted {
        trace_id: parent.trace_id,
        span_id: parent.span_id,
        sampled: parent.sampled(),
        random: parent.random(),
        tracestate: parse_tracestate(&get(TRACESTATE)),
    })
}

// ---------------------------------------------------------------------------
// B3

/// A B3 trace id: 16 or 32 lower-case hex digits (16 are the low half).
fn b3_trace_id(bytes: &[u8]) -> Option<TraceId> {
    match bytes.len() {
        16 | 32 => trace_id_from(bytes, false),
        _ => None,
    }
}

/// Parses a `b3` single header: `{trace}-{span}[-{sampling}[-{parent}]]`,
/// sampling `1`, `0` or `d` (debug, which implies sampled), absent meaning
/// deferred (taken as sampled). The sampling-only forms (`b3: 0` to deny,
/// `1`, `d`) are valid B3 but carry no ids to continue, so they yield None:
/// the receiver starts a new trace.
pub fn parse_b3_single(value: &str) -> Option<Extracted> {
    let b = id_header(value)?;
    let mut fields = b.split(|&c| c == b'-');
    let trace_id = b3_trace_id(fields.next()?)?;
    let span_id = span_id_from(fields.next()?, false)?;
    let sampled = match fields.next() {
        None => true,
        Some(b"1" | b"d") => true,
        Some(b"0") => false,
        Some(_) => return None,
    };
    if let Some(parent) = fields.next() {
        span_id_from(parent, false)?;
    }
    if fields.next().is_some() {
        return None;
    }
    Some(Extracted {
        trace_id,
        span_id,
        sampled,
        random: false,
        tracestate: None,
    })
}

fn extract_b3_multi<'a>(get: &impl Fn(&str) -> Vec<&'a str>) -> Option<Extracted> {
    let trace_id = b3_trace_id(id_header(one(&get(B3_TRACE_ID))?)?)?;
    let span_id = span_id_from(id_header(one(&get(B3_SPAN_ID))?)?, false)?;
    let sampled = match optional_one(&get(B3_SAMPLED)).ok()? {
        None => None,
        Some(v) => match id_header(v)? {
            b"1" | b"true" => Some(true),
            b"0" | b"false" => Some(false),
            _ => return None,
        },
    };
    let debug = match optional_one(&get(B3_FLAGS)).ok()? {
        None => false,
        Some(v) => id_header(v)? == b"1",
    };
    Some(Extracted {
        trace_id,
        span_id,
        sampled: debug || sampled.unwrap_or(true),
        random: false,
        tracestate: None,
    })
}

// ---------------------------------------------------------------------------
// X-Trace-ID / X-Span-ID

/// Hex digits of an id written as a UUID (`8-4-4-4-12`), dashes removed.
fn uuid_hex(b: &[u8]) -> Option<[u8; 32]> {
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    // A dash anywhere else leaves a zero byte at the end, which no hex
    // parser accepts.
    let mut out = [0u8; 32];
    for (slot, &c) in out.iter_mut().zip(b.iter().filter(|&&c| c != b'-')) {
        *slot = c;
    }
    Some(out)
}

/// An `X-Trace-ID`: 32 hex digits, 16 (the low half), or a UUID; either case.
fn xtrace_trace_id(b: &[u8]) -> Option<TraceId> {
    match b.len() {
        16 | 32 => trace_id_from(b, true),
        36 => trace_id_from(&uuid_hex(b)?, true),
        _ => None,
    }
}

/// An `X-Span-ID`: 16 hex digits, either case. The services ferrotrace
/// replaces sent 128-bit span ids (32 digits or a UUID); those are folded
/// to their low 64 bits so the trace still continues.
fn xtrace_span_id(b: &[u8]) -> Option<SpanId> {
    let wide = match b.len() {
        16 => return span_id_from(b, true),
        32 => hex_value(b, true)?,
        36 => hex_value(&uuid_hex(b)?, true)?,
        _ => return None,
    };
    Some(SpanId(wide as u64)).filter(|id| id.is_valid())
}

fn extract_xtrace<'a>(get: &impl Fn(&str) -> Vec<&'a str>) -> Option<Extracted> {
    let trace_id = xtrace_trace_id(id_header(one(&get(X_TRACE_ID))?)?)?;
    let span_id = xtrace_span_id(id_header(one(&get(X_SPAN_ID))?)?)?;
    let unsampled = get(X_SAMPLED)
        .iter()
        .filter_map(|v| id_header(v))
        .any(|v| v == b"0" || v.eq_ignore_ascii_case(b"false"));
    Some(Extracted {
        trace_id,
        span_id,
        sampled: !unsampled,
        random: false,
        tracestate: None,
    })
}

#[cfg(test)]
mod tests;
