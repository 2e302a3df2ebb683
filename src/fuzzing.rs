//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`
//! only; normal builds do not carry this module).
//!
//! Each function takes the fuzzer's bytes, runs one parser that reads
//! input from outside the process (headers, span files, environment
//! variables, `ferrotrace serve` request bodies) and panics when the
//! parser breaks a rule it promises, not only when it crashes:
//!
//! - what a propagator extracts it can inject and extract again, unchanged;
//! - every line the JSONL reader counts is a span or a skipped line;
//! - a span record a receiver makes is one `ferrotrace serve` can write
//!   and read back (its span log is JSONL), equal to itself;
//! - a duration parsed is a number of milliseconds, never negative or NaN.
//!
//! Internals stay private: this module reaches them from inside the crate.

use std::io::Cursor;
use std::path::Path;

use crate::analysis::{read_span_lines, ReadReport, SpanRow};
use crate::config::Env;
use crate::export::otlp_receive;
use crate::propagation::{self, Extracted, Propagator, ALL};

/// Header pairs from bytes: one `name: value` per line (names lower-cased,
/// as the carrier adapters hand them over). Lines without `:` are skipped.
fn header_pairs(text: &str) -> Vec<(String, &str)> {
    text.split('\n')
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value))
        .collect()
}

fn assert_round_trips(p: Propagator, got: &Extracted) {
    assert!(
        got.trace_id.is_valid() && got.span_id.is_valid(),
        "{p}: {got:?}"
    );
    let mut headers: Vec<(&'static str, String)> = Vec::new();
    p.inject(got.as_context(), |name, value| headers.push((name, value)));
    let again = p
        .extract(|name| {
            headers
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
                .collect()
        })
        .unwrap_or_else(|| panic!("{p}: {got:?} injected as {headers:?} does not extract"));
    assert_eq!(
        (again.trace_id, again.span_id, again.sampled),
        (got.trace_id, got.span_id, got.sampled),
        "{p}: {headers:?}"
    );
    if p == Propagator::TraceContext {
        assert_eq!(again, *got, "{headers:?}");
    }
}

/// Every propagator's header parsing (and the `Retry-After` header of an
/// exporter's collector, and the propagator-name lists of the options).
pub fn propagation(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let pairs = header_pairs(text);
    let get = |name: &str| -> Vec<&str> {
        pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .collect()
    };
    for p in ALL {
        if let Some(got) = p.extract(get) {
            assert_round_trips(p, &got);
        }
    }
    if let Some(first) = propagation::extract_first(&ALL, get) {
        assert_round_trips(Propagator::TraceContext, &first);
    }
    // The whole input as one value of each header.
    if let Some(tp) = propagation::parse_traceparent(text) {
        assert!(tp.trace_id.is_valid() && tp.span_id.is_valid() && tp.version != 0xff);
    }
    if let Some(state) = propagation::parse_tracestate(&[text]) {
        let again = propagation::parse_tracestate(&[&state]);
        assert_eq!(
            again.as_deref(),
            Some(state.as_str()),
            "normal form is stable"
        );
    }
    if let Some(got) = propagation::parse_b3_single(text) {
        assert_round_trips(Propagator::B3Single, &got);
    }
    let _ = propagation::parse_propagator_list(text);
    let _ = propagation::parse_propagator_env(text);
    let _ = crate::export::retry::parse_retry_after(text, std::time::SystemTime::UNIX_EPOCH);
}

/// `Env` over `KEY=VALUE` lines.
struct LinesEnv<'a>(Vec<(&'a str, &'a str)>);

impl Env for LinesEnv<'_> {
    fn var(&self, key: &str) -> Option<String> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
            .filter(|v| !v.trim().is_empty())
    }
}

/// Every option read from the environment (`FERROTRACE_*`, `OTEL_*`), the
/// exporters' environment, and the `k=v,...` mappings.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = LinesEnv(text.lines().filter_map(|l| l.split_once('=')).collect());
    // Every variable the options read, given the input's values in turn.
    let _ = crate::options::resolve(&[], &env);
    let mut warnings = Vec::new();
    let _ = crate::export::OtlpOptions::default().resolve(&env, &mut warnings);
    let _ = crate::export::ZipkinOptions::default().resolve(&env, &mut warnings);
    let _ = crate::options::parse_key_values(text);
    let _ = crate::export::parse_key_values(text);
    // And every option's variable set to the whole input.
    let names: Vec<&'static str> = crate::options::OPTIONS
        .iter()
        .flat_map(|spec| spec.env.iter().map(|(name, _)| *name))
        .collect();
    let whole = LinesEnv(names.iter().map(|&n| (n, text)).collect());
    let _ = crate::options::resolve(&[], &whole);
}

/// The Go-style durations of the query API (`minDuration=1.5ms`).
pub fn duration(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ms) = crate::server::fuzzing::parse_go_duration(text) {
        assert!(ms >= 0.0, "{text:?} parsed as {ms}");
    }
}

/// A span file's contents (plain or gzip) through the reader: every
/// non-blank line is a span or a skipped line, and every span read
/// serialises to a line that reads back the same.
pub fn jsonl(data: &[u8]) {
    let mut report = ReadReport::default();
    let mut rows = Vec::new();
    let read = read_span_lines(
        Cursor::new(data),
        Path::new("fuzz.jsonl"),
        &mut report,
        &mut |row| rows.push(row),
    );
    if read.is_ok() {
        assert_eq!(report.lines, report.spans + report.skipped);
        assert_eq!(report.spans, rows.len() as u64);
        assert_eq!(report.skipped > 0, report.first_skipped.is_some());
    }
    for row in &rows {
        assert_reads_back(row);
    }
}

/// What `ferrotrace serve` does with a received span: write it as a JSONL
/// line (its span log) that its readers parse back.
fn assert_reads_back(row: &SpanRow) {
    let line = serde_json::to_vec(row).expect("a span row serialises");
    assert!(!line.contains(&b'\n'), "one line per span");
    let back = SpanRow::parse_bytes(&line).unwrap_or_else(|e| {
        panic!(
            "a span written does not read back: {e}\n{}",
            String::from_utf8_lossy(&line)
        )
    });
    assert_eq!(back, *row, "{}", String::from_utf8_lossy(&line));
}

fn received(request: crate::export::otlp_model::ExportTraceServiceRequest) {
    let spans: usize = request
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum();
    let got = otlp_receive::to_rows(request);
    assert_eq!(
        got.rows.len() + got.rejected as usize,
        spans,
        "each span kept or rejected"
    );
    assert_eq!(got.rejected > 0, got.first_error.is_some());
    for row in &got.rows {
        assert_reads_back(row);
    }
}

/// `POST /v1/traces` with `application/x-protobuf`.
pub fn otlp_protobuf(data: &[u8]) {
    if let Ok(request) = otlp_receive::decode_protobuf(data) {
        received(request);
    }
}

/// `POST /v1/traces` with `application/json`.
pub fn otlp_json(data: &[u8]) {
    if let Ok(request) = otlp_receive::decode_json(data) {
        received(request);
    }
}

/// What `ferrotrace serve` does with a request body before a decoder sees
/// it: the first byte picks the `Content-Encoding` (none, gzip, deflate),
/// the rest is the body, inflated to at most 64 KiB (a bomb stops there),
/// then read by all three decoders.
pub fn serve_body(data: &[u8]) {
    const LIMIT: usize = 64 * 1024;
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let encoding = ["identity", "gzip", "deflate"][usize::from(which % 3)];
    if let Ok(inflated) = crate::server::fuzzing::decode_body(body, encoding, LIMIT) {
        assert!(
            inflated.len() <= LIMIT,
            "{encoding}: {} bytes",
            inflated.len()
        );
        otlp_protobuf(&inflated);
        otlp_json(&inflated);
        zipkin(&inflated);
    }
}

/// `POST /api/v2/spans` (Zipkin v2 JSON).
pub fn zipkin(data: &[u8]) {
    if let Ok(rows) = crate::server::fuzzing::zipkin_rows(data) {
        for row in &rows {
            assert_reads_back(row);
        }
    }
}
