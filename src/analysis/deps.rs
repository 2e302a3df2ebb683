//! The service graph: who calls whom, and how often.
//!
//! An edge is counted for every span whose parent (in the same trace)
//! belongs to another service. A process that only sees its own spans (the
//! in-process tracer) would find no edges that way, so a client or producer
//! span with no child from another service also counts an edge to the callee
//! it names (see [`callee`]), when it names one.

use std::collections::BTreeMap;

use compact_str::CompactString;
use serde::Serialize;

use super::traces::TraceView;

/// The callee a client or producer span names, by the OpenTelemetry
/// conventions, first found wins: the logical service (`peer.service`), else
/// the host called (`server.address`, or `net.peer.name` as instrumentations
/// still write it by default, before the stable conventions), else the host
/// of the URL requested (`url.full`, `http.url`). `attribute` reads a string
/// attribute of the span.
pub(crate) fn callee<'a>(attribute: impl Fn(&str) -> Option<&'a str>) -> Option<&'a str> {
    let named = ["peer.service", "server.address", "net.peer.name"]
        .into_iter()
        .find_map(|key| attribute(key).filter(|v| !v.is_empty()));
    named.or_else(|| {
        ["url.full", "http.url"]
            .into_iter()
            .find_map(|key| attribute(key).and_then(url_host))
    })
}

/// The host of an absolute URL (`scheme://[user@]host[:port]/...`).
fn url_host(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => host_port.split(':').next()?,
    };
    (!host.is_empty()).then_some(host)
}

/// Calls from one service to another.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DependencyEdge {
    pub caller: CompactString,
    pub callee: CompactString,
    pub calls: u64,
}

/// Every service-to-service edge in `traces`, sorted by caller then callee.
pub(crate) fn service_dependencies<'a>(
    traces: impl IntoIterator<Item = TraceView<'a>>,
) -> Vec<DependencyEdge> {
    let mut edges: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for trace in traces {
        let mut calls_out = vec![false; trace.span_count()];
        for (position, span) in trace.spans().enumerate() {
            let Some(parent_position) = trace.parent_of(position) else {
                continue;
            };
            let parent = trace.span(parent_position);
            if parent.service != span.service {
                calls_out[parent_position] = true;
                *edges
                    .entry((parent.service.as_str(), span.service.as_str()))
                    .or_default() += 1;
            }
        }
        for (position, span) in trace.spans().enumerate() {
            if calls_out[position] || !(span.kind == "client" || span.kind == "producer") {
                continue;
            }
            if let Some(peer) = callee(|key| span.attributes.get(key).and_then(|v| v.as_str())) {
                if !peer.is_empty() && peer != span.service {
                    *edges.entry((span.service.as_str(), peer)).or_default() += 1;
                }
            }
        }
    }
    edges
        .into_iter()
        .map(|((caller, callee), calls)| DependencyEdge {
            caller: caller.into(),
            callee: callee.into(),
            calls,
        })
        .collect()
}

/// Edges from several sources (tracers of one process, say) added up:
/// one edge per (caller, callee), sorted.
pub fn merge_dependencies(edges: impl IntoIterator<Item = DependencyEdge>) -> Vec<DependencyEdge> {
    let mut merged: BTreeMap<(CompactString, CompactString), u64> = BTreeMap::new();
    for e in edges {
        *merged.entry((e.caller, e.callee)).or_default() += e.calls;
    }
    merged
        .into_iter()
        .map(|((caller, callee), calls)| DependencyEdge {
            caller,
            callee,
            calls,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::traces::tests::{checkout_rows, row};
    use crate::query::TraceStore;

    fn edge(caller: &str, callee: &str, calls: u64) -> DependencyEdge {
        DependencyEdge {
            caller: caller.into(),
            callee: callee.into(),
            calls,
        }
    }

    #[test]
    fn edges_from_cross_service_parents() {
        let mut rows = checkout_rows();
        // A second trace with two auth calls.
        rows.extend([
            row(3, 1, None, "GET /checkout", "frontend", 0, 10),
            row(3, 2, Some(1), "POST /api/order", "api", 1, 9),
            row(3, 3, Some(2), "auth.verify", "auth", 2, 3),
            row(3, 4, Some(2), "auth.verify", "auth", 4, 5),
            // Orphan: its parent is not in the trace, so no edge.
            row(3, 5, Some(99), "stray", "cache", 4, 5),
        ]);
        let deps = service_dependencies(TraceStore::from_iter(rows).views());
        assert_eq!(
            deps,
            vec![
                edge("api", "auth", 3),
                edge("api", "orders", 1),
                edge("frontend", "api", 2),
            ]
        );
        let v = serde_json::to_value(&deps[0]).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"caller": "api", "callee": "auth", "calls": 3})
        );
    }

    #[test]
    fn peer_service_of_client_spans_without_remote_children() {
        let mut call = row(1, 2, Some(1), "GET payments", "api", 1, 5);
        call.kind = "client".into();
        call.attributes
            .insert("peer.service".into(), "payments".into());
        let mut traced_call = row(1, 3, Some(1), "GET users", "api", 5, 9);
        traced_call.kind = "client".into();
        traced_call
            .attributes
            .insert("peer.service".into(), "users".into());
        let rows = vec![
            row(1, 1, None, "GET /", "api", 0, 10),
            call,
            traced_call,
            // The users service's own span is here: counted once, via it.
            row(1, 4, Some(3), "GET /users", "users", 6, 8),
        ];
        let deps = service_dependencies(TraceStore::from_iter(rows).views());
        assert_eq!(
            deps,
            vec![edge("api", "payments", 1), edge("api", "users", 1)]
        );
    }

    #[test]
    fn client_spans_name_their_callee_by_peer_service_then_address_then_url() {
        let client = |span: u64, attrs: &[(&str, &str)]| {
            let mut r = row(1, span, Some(1), "call", "api", 1, 2);
            r.kind = "client".into();
            for (k, v) in attrs {
                r.attributes.insert(k.to_string(), (*v).into());
            }
            r
        };
        let rows = vec![
            row(1, 1, None, "GET /", "api", 0, 10),
            client(
                2,
                &[
                    ("server.address", "db.internal"),
                    ("peer.service", "orders-db"),
                ],
            ),
            client(3, &[("server.address", "search.internal")]),
            client(4, &[("net.peer.name", "legacy.internal")]),
            client(7, &[("http.url", "https://user@pay.internal:8443/v1?x=1")]),
            client(8, &[("url.full", "http://[::1]:8080/")]),
            // Naming nothing, or itself: no edge.
            client(5, &[("db.system", "sqlite")]),
            client(6, &[("server.address", "api")]),
        ];
        let deps = service_dependencies(TraceStore::from_iter(rows).views());
        assert_eq!(
            deps,
            vec![
                edge("api", "::1", 1),
                edge("api", "legacy.internal", 1),
                edge("api", "orders-db", 1),
                edge("api", "pay.internal", 1),
                edge("api", "search.internal", 1),
            ]
        );
    }
}
