//! The query API in Jaeger's shapes (Jaeger's `/api/*`, as Jaeger UI and
//! Grafana's Jaeger data source call it), over the index. Every answer is
//! the envelope `{data, total, limit, offset, errors}`; a parameter that
//! cannot be understood is a 400 saying which and why, never a guess.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use hyper::StatusCode;
use serde_json::{json, Value};

use crate::ids::TraceId;
use crate::query::{TraceQueries, TraceQuery, TraceStore};

use super::index::Index;
use super::jaeger_model;
use super::status::{reply, Reject, Reply};

/// Traces returned by a search that names no limit.
const DEFAULT_LIMIT: usize = 20;
/// Dependencies over the last day unless `lookback` says otherwise.
const DEFAULT_LOOKBACK_MS: u64 = 24 * 3600 * 1000;

/// Answers a GET under `/api/`; `None` for a path that is not an endpoint.
pub fn answer(index: &Index, path: &str, query: Option<&str>) -> Option<Result<Reply, Reject>> {
    let params = Params::parse(query.unwrap_or(""));
    let rest = path.strip_prefix("/api/")?;
    Some(match rest {
        "services" => services(index),
        "operations" => operations(index, &params),
        "traces" => search(index, &params),
        "dependencies" => dependencies(index, &params),
        _ => {
            if let Some(id) = rest.strip_prefix("traces/") {
                get_trace(index, &percent_decode(id))
            } else if let Some(service) = rest
                .strip_prefix("services/")
                .and_then(|s| s.strip_suffix("/operations"))
            {
                service_operations(index, &percent_decode(service))
            } else {
                return None;
            }
        }
    })
}

pub fn envelope(data: Value, total: usize) -> Reply {
    let body = json!({"data": data, "total": total, "limit": 0, "offset": 0, "errors": null});
    reply(
        StatusCode::OK,
        "application/json",
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

fn services(index: &Index) -> Result<Reply, Reject> {
    let services = index.read().services();
    let n = services.len();
    Ok(envelope(json!(services), n))
}

/// Jaeger's older endpoint: the names only.
fn service_operations(index: &Index, service: &str) -> Result<Reply, Reject> {
    let mut names: Vec<String> = index
        .read()
        .span_names(service)
        .into_iter()
        .map(|n| n.name.to_string())
        .collect();
    names.dedup();
    let n = names.len();
    Ok(envelope(json!(names), n))
}

/// `/api/operations?service=&spanKind=`: `{name, spanKind}` per name and kind.
fn operations(index: &Index, params: &Params) -> Result<Reply, Reject> {
    let service = params
        .one("service")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Reject::bad_request("parameter 'service' is required"))?;
    let kind = params.one("spanKind")?.filter(|k| !k.is_empty());
    const KINDS: [&str; 5] = ["internal", "server", "client", "producer", "consumer"];
    if let Some(k) = kind {
        if !KINDS.contains(&k) {
            return Err(Reject::bad_request(format!(
                "spanKind must be one of {KINDS:?}, not {k:?}"
            )));
        }
    }
    let ops: Vec<Value> = index
        .read()
        .span_names(service)
        .into_iter()
        .filter(|n| kind.is_none_or(|k| n.kind == k))
        .map(|n| json!({"name": n.name.as_str(), "spanKind": n.kind.as_str()}))
        .collect();
    let n = ops.len();
    Ok(envelope(Value::Array(ops), n))
}

fn get_trace(index: &Index, id: &str) -> Result<Reply, Reject> {
    let trace_id = parse_trace_id(id)?;
    let store = index.read();
    let trace = store
        .get_trace(trace_id)
        .ok_or_else(|| Reject::not_found(format!("trace {id} not found")))?;
    Ok(envelope(json!([jaeger_model::trace(&trace.view())]), 1))
}

/// 1 to 32 hex digits (Jaeger accepts short ids, zero-padded), not all zeros.
pub(super) fn parse_trace_id(id: &str) -> Result<TraceId, Reject> {
    let bad = || {
        Reject::bad_request(format!(
            "{id:?} is not a trace id (1 to 32 hex digits, not all zeros)"
        ))
    };
    if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let n = u128::from_str_radix(id, 16).map_err(|_| bad())?;
    if n == 0 {
        return Err(bad());
    }
    Ok(TraceId(n))
}

fn search(index: &Index, params: &Params) -> Result<Reply, Reject> {
    let mut query = TraceQuery {
        limit: Some(DEFAULT_LIMIT),
        ..TraceQuery::default()
    };
    query.service = params
        .one("service")?
        .filter(|s| !s.is_empty())
        .map(String::from);
    query.operation = params
        .one("operation")?
        .filter(|s| !s.is_empty())
        .map(String::from);
    for text in params.all("tags") {
        let map: BTreeMap<String, Value> = serde_json::from_str(text).map_err(|e| {
            Reject::bad_request(format!(
                "tags must be a JSON object of key to value, like {{\"http.status_code\":\"500\"}}: {e}"
            ))
        })?;
        for (k, v) in map {
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            query.tags.insert(k, text);
        }
    }
    // Jaeger UI's older form: tag=key:value, repeatable.
    for text in params.all("tag") {
        let (k, v) = text
            .split_once(':')
            .ok_or_else(|| Reject::bad_request(format!("tag {text:?} is not key:value")))?;
        query.tags.insert(k.to_string(), v.to_string());
    }
    if let Some(d) = params.one("minDuration")?.filter(|s| !s.is_empty()) {
        query.min_duration_ms = Some(parse_go_duration("minDuration", d)?);
    }
    if let Some(d) = params.one("maxDuration")?.filter(|s| !s.is_empty()) {
        query.max_duration_ms = Some(parse_go_duration("maxDuration", d)?);
    }
    if let Some(s) = params.one("start")?.filter(|s| !s.is_empty()) {
        query.start_ns = Some(micros("start", s)?.saturating_mul(1000));
    }
    if let Some(s) = params.one("end")?.filter(|s| !s.is_empty()) {
        query.end_ns = Some(micros("end", s)?.saturating_mul(1000));
    }
    if let Some(l) = params.one("limit")?.filter(|s| !s.is_empty()) {
        let n: usize = l.parse().map_err(|_| {
            Reject::bad_request(format!("limit must be a non-negative integer, not {l:?}"))
        })?;
        // 0 means "no limit" to Jaeger.
        query.limit = (n > 0).then_some(n);
    }
    if let Some(o) = params.one("order")?.filter(|s| !s.is_empty()) {
        query.order = o.parse().map_err(|e| Reject::bad_request(format!("{e}")))?;
    }
    let store = index.read();
    let found = store
        .matching_traces(&query)
        .map_err(|e| Reject::bad_request(e.to_string()))?;
    let data: Vec<Value> = found
        .iter()
        .map(|t| jaeger_model::trace(&t.view()))
        .collect();
    let n = data.len();
    Ok(envelope(Value::Array(data), n))
}

fn dependencies(index: &Index, params: &Params) -> Result<Reply, Reject> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let end_ms = match params.one("endTs")?.filter(|s| !s.is_empty()) {
        Some(t) => whole("endTs", t)?,
        None => now_ms,
    };
    let lookback_ms = match params.one("lookback")?.filter(|s| !s.is_empty()) {
        Some(l) => whole("lookback", l)?,
        None => DEFAULT_LOOKBACK_MS,
    };
    let (from, to) = (
        end_ms.saturating_sub(lookback_ms).saturating_mul(1_000_000),
        end_ms.saturating_mul(1_000_000),
    );
    let store = index.read();
    let in_window = |start: u64| start >= from && start <= to;
    let everything = store.views().all(|t| in_window(t.start_ns()));
    let edges = if everything {
        store.service_dependencies()
    } else {
        let window: TraceStore = store
            .views()
            .filter(|t| in_window(t.start_ns()))
            .flat_map(|t| t.spans().cloned().collect::<Vec<_>>())
            .collect();
        window.service_dependencies()
    };
    let data: Vec<Value> = edges
        .iter()
        .map(|e| json!({"parent": e.caller.as_str(), "child": e.callee.as_str(), "callCount": e.calls}))
        .collect();
    let n = data.len();
    Ok(envelope(Value::Array(data), n))
}

fn whole(name: &str, text: &str) -> Result<u64, Reject> {
    text.parse().map_err(|_| {
        Reject::bad_request(format!(
            "{name} must be a whole number of milliseconds, not {text:?}"
        ))
    })
}

fn micros(name: &str, text: &str) -> Result<u64, Reject> {
    text.parse().map_err(|_| {
        Reject::bad_request(format!(
            "{name} must be a time in microseconds since the Unix epoch, not {text:?}"
        ))
    })
}

/// A Go duration (`1.5s`, `100ms`, `1h30m`, `250us`) in milliseconds.
pub fn parse_go_duration(name: &str, text: &str) -> Result<f64, Reject> {
    let bad = || {
        Reject::bad_request(format!(
            "{name} must be a duration like 100ms, 1.5s or 1h30m, not {text:?}"
        ))
    };
    let mut rest = text.trim();
    if rest.is_empty() || rest.starts_with('-') {
        return Err(bad());
    }
    rest = rest.strip_prefix('+').unwrap_or(rest);
    if rest == "0" {
        return Ok(0.0);
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-6,
            "us" | "µs" | "μs" => 1e-3,
            "ms" => 1.0,
            "s" => 1e3,
            "m" => 60e3,
            "h" => 3600e3,
            _ => return Err(bad()),
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Query parameters, percent-decoded, in order.
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub(super) fn parse(query: &str) -> Params {
        Params(
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    /// The one value of `key`; given twice is an error (which to believe?).
    pub(super) fn one<'a>(&'a self, key: &'a str) -> Result<Option<&'a str>, Reject> {
        let mut values = self.all(key);
        let first = values.next();
        if values.next().is_some() {
            return Err(Reject::bad_request(format!(
                "parameter {key:?} is given more than once"
            )));
        }
        Ok(first)
    }

    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// `%XX` and `+` decoded; invalid escapes kept as they are; invalid UTF-8
/// replaced (it can only fail to match).
pub(super) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push((hi * 16 + lo) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("d", "100ms").unwrap(), 100.0);
        assert_eq!(parse_go_duration("d", "1.5s").unwrap(), 1500.0);
        assert_eq!(parse_go_duration("d", "1h30m").unwrap(), 5_400_000.0);
        assert_eq!(parse_go_duration("d", "250us").unwrap(), 0.25);
        assert_eq!(parse_go_duration("d", "0").unwrap(), 0.0);
        for bad in ["", "10", "-1s", "1x", "s", "1..2s", "1s2"] {
            assert!(parse_go_duration("d", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("%7B%22k%22%3A1%7D"), "{\"k\":1}");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%\u{e9}\u{e9}"), "%\u{e9}\u{e9}");
    }

    #[test]
    fn trace_ids() {
        assert_eq!(parse_trace_id("ab").unwrap(), TraceId(0xab));
        for bad in ["", "0", "xyz", &"a".repeat(33), "-1"] {
            assert!(parse_trace_id(bad).is_err(), "{bad}");
        }
    }
}
