//! What the web UI needs beyond Jaeger's API, under `/api/ferrotrace/`:
//! the operations table (`ferrotrace stats`), error groups (`ferrotrace
//! errors`), a trace's critical path, and the service graph with error
//! rates on its edges. Every answer comes from the query layer
//! ([`TraceQueries`]) in the same envelope as the Jaeger endpoints; a
//! parameter that cannot be understood is a 400 saying why.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::analysis::TraceView;
use crate::query::{OperationQuery, TraceQueries, TraceStore};

use super::index::Index;
use super::query_api::{envelope, parse_trace_id, percent_decode, Params};
use super::status::{Reject, Reply};

/// Answers a GET under `/api/ferrotrace/`; `None` for a path that is not
/// one of these endpoints.
pub fn answer(index: &Index, path: &str, query: Option<&str>) -> Option<Result<Reply, Reject>> {
    let rest = path.strip_prefix("/api/ferrotrace/")?;
    let params = Params::parse(query.unwrap_or(""));
    Some(match rest {
        "operations" => operations(index, &params),
        "errors" => errors(index, &params),
        "service-graph" => service_graph(index),
        _ => {
            let id = rest.strip_prefix("critical-path/")?;
            critical_path(index, &percent_decode(id))
        }
    })
}

/// `?service=&order=&limit=`: rows as `ferrotrace stats` prints them.
fn operations(index: &Index, params: &Params) -> Result<Reply, Reject> {
    let mut query = OperationQuery {
        service: service(params)?,
        limit: limit(params)?,
        ..OperationQuery::default()
    };
    if let Some(order) = params.one("order")?.filter(|s| !s.is_empty()) {
        query.order = order
            .parse()
            .map_err(|e| Reject::bad_request(format!("{e}")))?;
    }
    let rows = index.read().operations(&query);
    let n = rows.len();
    Ok(envelope(json!(rows), n))
}

/// `?service=&limit=`: error groups as `ferrotrace errors` prints them.
fn errors(index: &Index, params: &Params) -> Result<Reply, Reject> {
    let service = service(params)?;
    let limit = limit(params)?;
    let groups = index.read().error_groups(service.as_deref(), limit);
    let n = groups.len();
    Ok(envelope(json!(groups), n))
}

fn critical_path(index: &Index, id: &str) -> Result<Reply, Reject> {
    let trace_id = parse_trace_id(id)?;
    let path = index
        .read()
        .critical_path(trace_id)
        .ok_or_else(|| Reject::not_found(format!("trace {id} not found")))?;
    let n = path.len();
    Ok(envelope(json!(path), n))
}

/// Services (spans, failed spans) and the calls between them, each edge
/// with how many of its calls failed.
fn service_graph(index: &Index) -> Result<Reply, Reject> {
    let store = index.read();
    let mut nodes: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for op in store.operations(&OperationQuery::default()) {
        let node = nodes.entry(op.service.to_string()).or_default();
        node.0 += op.count;
        node.1 += op.error_count;
    }
    let failed = failed_calls(&store);
    let edges: Vec<Value> = store
        .service_dependencies()
        .into_iter()
        .map(|e| {
            let errors = failed
                .get(&(e.caller.to_string(), e.callee.to_string()))
                .copied()
                .unwrap_or(0)
                .min(e.calls);
            let rate = if e.calls == 0 {
                0.0
            } else {
                errors as f64 / e.calls as f64
            };
            json!({
                "parent": e.caller.as_str(),
                "child": e.callee.as_str(),
                "callCount": e.calls,
                "errorCount": errors,
                "errorRate": rate,
            })
        })
        .collect();
    let nodes: Vec<Value> = nodes
        .into_iter()
        .map(|(service, (spans, errors))| {
            json!({"service": service, "spanCount": spans, "errorCount": errors})
        })
        .collect();
    Ok(envelope(json!({"services": nodes, "edges": edges}), 1))
}

/// Failed calls per (caller, callee), counted by the rule that makes the
/// query layer's edges: a span under a parent of another service is a
/// call that failed when the span did; a client or producer span without
/// such a child that names a `peer.service` is a call to that peer that
/// failed when the client span did.
fn failed_calls(store: &TraceStore) -> BTreeMap<(String, String), u64> {
    let mut failed: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut add = |caller: &str, callee: &str| {
        *failed
            .entry((caller.to_string(), callee.to_string()))
            .or_default() += 1;
    };
    for trace in store.views() {
        let calls_out = calls_out(&trace);
        for (position, span) in trace.spans().enumerate() {
            if let Some(parent) = trace.parent_of(position).map(|p| trace.span(p)) {
                if parent.service != span.service && span.is_error() {
                    add(&parent.service, &span.service);
                }
            }
            if calls_out[position]
                || !(span.kind == "client" || span.kind == "producer")
                || !span.is_error()
            {
                continue;
            }
            if let Some(peer) = span.attributes.get("peer.service").and_then(|v| v.as_str()) {
                if !peer.is_empty() && peer != span.service {
                    add(&span.service, peer);
                }
            }
        }
    }
    failed
}

/// Which spans have a child in another service.
fn calls_out(trace: &TraceView<'_>) -> Vec<bool> {
    let mut out = vec![false; trace.span_count()];
    for (position, span) in trace.spans().enumerate() {
        if let Some(parent) = trace.parent_of(position) {
            if trace.span(parent).service != span.service {
                out[parent] = true;
            }
        }
    }
    out
}

fn service(params: &Params) -> Result<Option<String>, Reject> {
    Ok(params
        .one("service")?
        .filter(|s| !s.is_empty())
        .map(String::from))
}

/// `limit`: a non-negative integer; 0 or absent means all.
fn limit(params: &Params) -> Result<Option<usize>, Reject> {
    match params.one("limit")?.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(l) => {
            let n: usize = l.parse().map_err(|_| {
                Reject::bad_request(format!("limit must be a non-negative integer, not {l:?}"))
            })?;
            Ok((n > 0).then_some(n))
        }
    }
}
