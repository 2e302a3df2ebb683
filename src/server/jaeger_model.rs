//! Jaeger's JSON shapes (the query service's `/api/*` as Jaeger UI and
//! Grafana's Jaeger data source read them), made from span records:
//! times and durations in microseconds, typed `tags`, `logs` for events,
//! one `processes` entry per service.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::analysis::{SpanRow, TraceView};

/// A trace as `GET /api/traces/{id}` returns it inside `data`.
pub fn trace(view: &TraceView<'_>) -> Value {
    // Process ids in order of first appearance: p1, p2, ...
    let mut process_ids: BTreeMap<&str, String> = BTreeMap::new();
    let mut processes = Map::new();
    let trace_id = view.trace_id().to_hex();
    let spans: Vec<Value> = view
        .spans()
        .map(|span| {
            let next = process_ids.len() + 1;
            let pid = process_ids
                .entry(span.service.as_str())
                .or_insert_with(|| {
                    let pid = format!("p{next}");
                    processes.insert(pid.clone(), process(span));
                    pid
                })
                .clone();
            span_json(span, trace_id.as_str(), &pid)
        })
        .collect();
    json!({
        "traceID": trace_id.as_str(),
        "spans": spans,
        "processes": processes,
        "warnings": null,
    })
}

fn process(span: &SpanRow) -> Value {
    let tags: Vec<Value> = span
        .resource
        .iter()
        .flat_map(|r| r.iter())
        .filter(|(k, _)| k.as_str() != "service.name")
        .map(|(k, v)| tag(k, v))
        .collect();
    json!({"serviceName": span.service.as_str(), "tags": tags})
}

fn span_json(span: &SpanRow, trace_id: &str, pid: &str) -> Value {
    let references: Vec<Value> = span
        .parent_id
        .iter()
        .map(|p| json!({"refType": "CHILD_OF", "traceID": trace_id, "spanID": p.to_hex().as_str()}))
        .collect();
    let mut tags: Vec<Value> = span.attributes.iter().map(|(k, v)| tag(k, v)).collect();
    tags.push(tag("span.kind", &Value::from(span.kind.as_str())));
    if span.is_error() {
        tags.push(tag("error", &Value::Bool(true)));
        tags.push(tag("otel.status_code", &Value::from("ERROR")));
    }
    let mut logs: Vec<Value> = span
        .events
        .iter()
        .map(|e| {
            let mut fields = vec![tag("event", &Value::from(e.name.as_str()))];
            if e.level != "info" {
                fields.push(tag("level", &Value::from(e.level.as_str())));
            }
            fields.extend(e.attributes.iter().map(|(k, v)| tag(k, v)));
            json!({"timestamp": e.ts_ns / 1000, "fields": fields})
        })
        .collect();
    if let Some(error) = &span.error {
        // The error as the OpenTelemetry `exception` event Jaeger shows.
        let mut fields = vec![tag("event", &Value::from("exception"))];
        for (k, v) in [
            ("exception.type", Some(&error.error_type)),
            ("exception.message", Some(&error.message)),
            ("exception.stacktrace", error.stack.as_ref()),
        ] {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                fields.push(tag(k, &Value::from(v.as_str())));
            }
        }
        logs.push(json!({"timestamp": span.end_ns / 1000, "fields": fields}));
    }
    json!({
        "traceID": trace_id,
        "spanID": span.span_id.to_hex().as_str(),
        "flags": 1,
        "operationName": span.name.as_str(),
        "references": references,
        "startTime": span.start_ns / 1000,
        "duration": (span.end_ns - span.start_ns) / 1000,
        "tags": tags,
        "logs": logs,
        "processID": pid,
        "warnings": null,
    })
}

/// `{key, type, value}` with Jaeger's type names; lists and objects (which
/// Jaeger's tags cannot hold) as their JSON text.
fn tag(key: &str, value: &Value) -> Value {
    let (kind, value) = match value {
        Value::String(_) => ("string", value.clone()),
        Value::Bool(_) => ("bool", value.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => ("int64", value.clone()),
        Value::Number(_) => ("float64", value.clone()),
        Value::Null => ("string", Value::from("")),
        other => ("string", Value::from(other.to_string())),
    };
    json!({"key": key, "type": kind, "value": value})
}
