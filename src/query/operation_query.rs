//! [`OperationQuery`]: which rows of the per-operation table, in what
//! order, how many. Applies alike to the table of assembled traces, the
//! streaming one behind `ferrotrace stats` and the in-process one.

use std::str::FromStr;

use crate::analysis::{sort_operations, OperationStats};

use super::trace_query::QueryError;

/// A selection from the per-(service, operation) table.
/// `OperationQuery::default()` is every row, most total time first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperationQuery {
    /// Only this service's operations.
    pub service: Option<String>,
    pub order: OperationOrder,
    /// At most this many rows; `None` for all.
    pub limit: Option<usize>,
}

/// The order of the table: descending on the named figure (ties keep the
/// most-total-time-first order), except `Name` (service, then operation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OperationOrder {
    #[default]
    TotalTime,
    Count,
    /// Error count, then error rate.
    Errors,
    P50,
    P95,
    P99,
    /// Self time (rows without one count as zero).
    SelfTime,
    Name,
}

impl OperationOrder {
    /// The names `from_str` accepts, as the command line spells them.
    pub const NAMES: &'static [&'static str] = &[
        "count", "errors", "name", "p50", "p95", "p99", "self", "total",
    ];
}

impl FromStr for OperationOrder {
    type Err = QueryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "total" => OperationOrder::TotalTime,
            "count" => OperationOrder::Count,
            "errors" => OperationOrder::Errors,
            "p50" => OperationOrder::P50,
            "p95" => OperationOrder::P95,
            "p99" => OperationOrder::P99,
            "self" => OperationOrder::SelfTime,
            "name" => OperationOrder::Name,
            _ => {
                return Err(QueryError::UnknownOrder {
                    given: s.to_string(),
                    known: OperationOrder::NAMES,
                })
            }
        })
    }
}

impl OperationQuery {
    /// The rows of `ops` this query asks for, in its order.
    pub fn apply(&self, mut ops: Vec<OperationStats>) -> Vec<OperationStats> {
        if let Some(service) = &self.service {
            ops.retain(|op| op.service == service.as_str());
        }
        sort_operations(&mut ops);
        // Stable sorts: ties keep the total-time order.
        match self.order {
            OperationOrder::TotalTime => {}
            OperationOrder::Count => ops.sort_by_key(|op| std::cmp::Reverse(op.count)),
            OperationOrder::Errors => ops.sort_by(|a, b| {
                b.error_count
                    .cmp(&a.error_count)
                    .then(b.error_rate.total_cmp(&a.error_rate))
            }),
            OperationOrder::P50 => ops.sort_by(|a, b| b.p50.total_cmp(&a.p50)),
            OperationOrder::P95 => ops.sort_by(|a, b| b.p95.total_cmp(&a.p95)),
            OperationOrder::P99 => ops.sort_by(|a, b| b.p99.total_cmp(&a.p99)),
            OperationOrder::SelfTime => ops.sort_by(|a, b| {
                b.self_ms
                    .unwrap_or(0.0)
                    .total_cmp(&a.self_ms.unwrap_or(0.0))
            }),
            OperationOrder::Name => ops.sort_by(|a, b| {
                (a.service.as_str(), a.operation.as_str())
                    .cmp(&(b.service.as_str(), b.operation.as_str()))
            }),
        }
        if let Some(limit) = self.limit {
            ops.truncate(limit);
        }
        ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::LatencyStats;

    fn op(
        service: &str,
        name: &str,
        count: u64,
        errors: u64,
        p50: f64,
        total: f64,
    ) -> OperationStats {
        let latency = LatencyStats {
            count,
            min: p50,
            max: p50 * 3.0,
            avg: p50,
            p50,
            p95: p50 * 2.0,
            p99: p50 * 3.0,
        };
        let mut op = OperationStats::new(service.into(), name.into(), latency, errors, total);
        op.self_ms = Some(total / count as f64);
        op
    }

    fn table() -> Vec<OperationStats> {
        vec![
            op("api", "b", 10, 1, 5.0, 50.0),
            op("web", "a", 2, 1, 40.0, 80.0),
            op("api", "a", 10, 0, 1.0, 10.0),
            op("db", "q", 100, 0, 0.5, 50.0),
        ]
    }

    fn names(ops: &[OperationStats]) -> Vec<String> {
        ops.iter()
            .map(|o| format!("{}/{}", o.service, o.operation))
            .collect()
    }

    fn apply(order: &str, service: Option<&str>, limit: Option<usize>) -> Vec<String> {
        let q = OperationQuery {
            service: service.map(Into::into),
            order: order.parse().unwrap(),
            limit,
        };
        names(&q.apply(table()))
    }

    #[test]
    fn orders() {
        // Total time; the 50 ms tie broken by service then operation.
        assert_eq!(
            apply("total", None, None),
            ["web/a", "api/b", "db/q", "api/a"]
        );
        // Count; the tie at 10 keeps the total-time order.
        assert_eq!(
            apply("count", None, None),
            ["db/q", "api/b", "api/a", "web/a"]
        );
        // Errors: web/a (1 of 2) before api/b (1 of 10).
        assert_eq!(
            apply("errors", None, None),
            ["web/a", "api/b", "db/q", "api/a"]
        );
        assert_eq!(
            apply("p50", None, None),
            ["web/a", "api/b", "api/a", "db/q"]
        );
        assert_eq!(
            apply("p99", None, None),
            ["web/a", "api/b", "api/a", "db/q"]
        );
        assert_eq!(
            apply("self", None, None),
            ["web/a", "api/b", "api/a", "db/q"]
        );
        assert_eq!(
            apply("name", None, None),
            ["api/a", "api/b", "db/q", "web/a"]
        );
    }

    #[test]
    fn service_and_limit() {
        assert_eq!(apply("total", Some("api"), None), ["api/b", "api/a"]);
        assert_eq!(apply("count", None, Some(2)), ["db/q", "api/b"]);
        assert!(apply("total", None, Some(0)).is_empty());
        assert!(apply("total", Some("nobody"), None).is_empty());
        let err = "fastest".parse::<OperationOrder>().unwrap_err();
        assert!(err
            .to_string()
            .starts_with("order must be one of \"count\""));
    }
}
