//! [`TraceQuery`]: which traces a search wants, in what order, how many.
//!
//! The criteria split in two, as in Jaeger's search:
//!
//! * span criteria — `service`, `operation` and `tags` — must all hold on
//!   one and the same span of the trace ("a span of `api` named `GET /`
//!   with `http.status_code` = 500");
//! * trace criteria — the duration range, the start-time window and
//!   `errors_only` — apply to the whole trace: its root's duration and
//!   start (see [`crate::analysis::TraceView`]), and whether any span failed.
//!
//! Results come in [`TraceOrder`]: most recent first (latest start), or
//! slowest first (ties: most recent first); equal keys by trace id. `limit`
//! cuts the ordered list. These are the rules behind every trace search of
//! the query layer, so the in-process tracer and the file analysis answer
//! alike (README.md, "Analysis").

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::analysis::{SpanRow, TraceView};
use crate::ids::TraceId;

/// A trace search. `TraceQuery::default()` matches every trace, most recent
/// first, without limit.
///
/// ```text
/// let q = TraceQuery {
///     service: Some("api".into()),
///     tags: [("http.status_code".into(), "500".into())].into(),
///     min_duration_ms: Some(100.0),
///     limit: Some(20),
///     ..TraceQuery::default()
/// };
/// let found = store.find_traces(&q)?;
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraceQuery {
    /// A span of this service...
    pub service: Option<String>,
    /// ... named this ...
    pub operation: Option<String>,
    /// ... with every one of these tags (exact match of the text form, see
    /// [`tag_text`]).
    pub tags: BTreeMap<String, String>,
    /// The trace lasted at least this long.
    pub min_duration_ms: Option<f64>,
    /// The trace lasted at most this long.
    pub max_duration_ms: Option<f64>,
    /// The trace started at or after this (Unix ns).
    pub start_ns: Option<u64>,
    /// The trace started at or before this (Unix ns).
    pub end_ns: Option<u64>,
    /// Only traces with a failed span.
    pub errors_only: bool,
    pub order: TraceOrder,
    /// At most this many results; `None` for all.
    pub limit: Option<usize>,
}

/// The order of search results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TraceOrder {
    /// Latest start first.
    #[default]
    Recent,
    /// Longest first; equal durations most recent first.
    Slowest,
}

/// A query that cannot be answered as asked.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryError {
    /// A duration that is negative or NaN; `name` is the parameter's.
    BadDuration { name: &'static str, value: f64 },
    /// `min_duration_ms` above `max_duration_ms`.
    EmptyDurationRange { min: f64, max: f64 },
    /// `start_ns` after `end_ns`.
    EmptyTimeWindow { start_ns: u64, end_ns: u64 },
    /// An order name none of the known ones.
    UnknownOrder {
        given: String,
        known: &'static [&'static str],
    },
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::BadDuration { name, value } => write!(
                f,
                "{name} must be a non-negative number of milliseconds, not {value}"
            ),
            QueryError::EmptyDurationRange { min, max } => write!(
                f,
                "min_duration_ms ({min}) is above max_duration_ms ({max}): nothing can match"
            ),
            QueryError::EmptyTimeWindow { start_ns, end_ns } => write!(
                f,
                "start_ns ({start_ns}) is after end_ns ({end_ns}): nothing can match"
            ),
            QueryError::UnknownOrder { given, known } => {
                let known: Vec<String> = known.iter().map(|k| format!("{k:?}")).collect();
                write!(
                    f,
                    "order must be one of {}, not {given:?}",
                    known.join(", ")
                )
            }
        }
    }
}

impl std::error::Error for QueryError {}

impl TraceOrder {
    const NAMES: &'static [&'static str] = &["recent", "slowest"];

    fn compare(self, a: &Candidate<'_>, b: &Candidate<'_>) -> Ordering {
        let recent_first = b.start_ns.cmp(&a.start_ns);
        let primary = match self {
            TraceOrder::Recent => recent_first,
            TraceOrder::Slowest => b.duration_ms.total_cmp(&a.duration_ms).then(recent_first),
        };
        primary.then_with(|| a.trace_id.cmp(&b.trace_id))
    }
}

/// A match with its sort keys copied out, so that ordering many matches
/// compares in one array instead of chasing a pointer per comparison.
struct Candidate<'a> {
    start_ns: u64,
    duration_ms: f64,
    trace_id: TraceId,
    view: TraceView<'a>,
}

impl FromStr for TraceOrder {
    type Err = QueryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "recent" => Ok(TraceOrder::Recent),
            "slowest" => Ok(TraceOrder::Slowest),
            _ => Err(QueryError::UnknownOrder {
                given: s.to_string(),
                known: TraceOrder::NAMES,
            }),
        }
    }
}

/// A duration parameter: not negative, not NaN (infinity is fine: nothing
/// is that long).
pub(crate) fn check_duration(name: &'static str, value: f64) -> Result<f64, QueryError> {
    if value.is_nan() || value < 0.0 {
        return Err(QueryError::BadDuration { name, value });
    }
    Ok(value)
}

impl TraceQuery {
    /// Traces at least `threshold_ms` long, slowest first: `slow_traces`.
    pub fn slower_than(threshold_ms: f64) -> TraceQuery {
        TraceQuery {
            min_duration_ms: Some(threshold_ms),
            order: TraceOrder::Slowest,
            ..TraceQuery::default()
        }
    }

    /// Failed traces, most recent first, at most `limit`: `error_traces`.
    pub fn failed(limit: Option<usize>) -> TraceQuery {
        TraceQuery {
            errors_only: true,
            order: TraceOrder::Recent,
            limit,
            ..TraceQuery::default()
        }
    }

    /// Whether the query can be answered: durations non-negative, ranges
    /// not empty.
    pub fn check(&self) -> Result<(), QueryError> {
        let min = self
            .min_duration_ms
            .map(|ms| check_duration("min_duration_ms", ms))
            .transpose()?;
        let max = self
            .max_duration_ms
            .map(|ms| check_duration("max_duration_ms", ms))
            .transpose()?;
        if let (Some(min), Some(max)) = (min, max) {
            if min > max {
                return Err(QueryError::EmptyDurationRange { min, max });
            }
        }
        if let (Some(start_ns), Some(end_ns)) = (self.start_ns, self.end_ns) {
            if start_ns > end_ns {
                return Err(QueryError::EmptyTimeWindow { start_ns, end_ns });
            }
        }
        Ok(())
    }

    /// Whether `trace` is one the query asks for.
    pub fn matches(&self, trace: &TraceView<'_>) -> bool {
        if self.errors_only && !trace.is_error() {
            return false;
        }
        let duration = trace.duration_ms();
        if self.min_duration_ms.is_some_and(|min| duration < min)
            || self.max_duration_ms.is_some_and(|max| duration > max)
        {
            return false;
        }
        let start = trace.start_ns();
        if self.start_ns.is_some_and(|s| start < s) || self.end_ns.is_some_and(|e| start > e) {
            return false;
        }
        if self.service.is_none() && self.operation.is_none() && self.tags.is_empty() {
            return true;
        }
        trace.spans().any(|span| self.matches_span(span))
    }

    /// Runs for every span of every trace a search looks at: the common
    /// cases (no tags) stay branch-cheap.
    fn matches_span(&self, span: &SpanRow) -> bool {
        if let Some(service) = &self.service {
            if span.service != service.as_str() {
                return false;
            }
        }
        if let Some(operation) = &self.operation {
            if span.name != operation.as_str() {
                return false;
            }
        }
        self.tags.is_empty()
            || self
                .tags
                .iter()
                .all(|(key, want)| tag_text(span, key).is_some_and(|have| have == want.as_str()))
    }

    /// The matching traces among `traces`, ordered and cut to the limit.
    /// The caller has [`check`](Self::check)ed the query.
    pub(crate) fn select<'a>(
        &self,
        traces: impl Iterator<Item = TraceView<'a>>,
    ) -> Vec<TraceView<'a>> {
        let mut found: Vec<Candidate<'a>> = traces
            .filter(|t| self.matches(t))
            .map(|view| Candidate {
                start_ns: view.start_ns(),
                duration_ms: view.duration_ms(),
                trace_id: view.trace_id(),
                view,
            })
            .collect();
        let order = |a: &Candidate<'_>, b: &Candidate<'_>| self.order.compare(a, b);
        match self.limit {
            Some(0) => found.clear(),
            // Only the first `limit` need sorting: partition around the
            // cut first (a search of 20 among a million is not a sort).
            Some(limit) if limit < found.len() => {
                found.select_nth_unstable_by(limit - 1, order);
                found.truncate(limit);
            }
            _ => {}
        }
        found.sort_unstable_by(order);
        found.into_iter().map(|c| c.view).collect()
    }
}

/// A span's tag as text, for exact matching against query values: an
/// attribute's string as is, `true`/`false`, a number as JSON writes it
/// (`3`, `1.5`), anything else as its JSON. Two tags every span has without
/// an attribute of that name: `span.kind` (its kind) and `error` (`true` on
/// a failed span), as Jaeger shows them.
pub fn tag_text<'a>(span: &'a SpanRow, key: &str) -> Option<Cow<'a, str>> {
    match span.attributes.get(key) {
        Some(Value::String(s)) => Some(Cow::Borrowed(s.as_str())),
        Some(Value::Bool(b)) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Some(other) => Some(Cow::Owned(other.to_string())),
        None => match key {
            "span.kind" => Some(Cow::Borrowed(span.kind.as_str())),
            "error" if span.is_error() => Some(Cow::Borrowed("true")),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::traces::tests::{checkout_rows, failed, row};
    use crate::query::TraceStore;

    fn ids(found: &[TraceView<'_>]) -> Vec<u128> {
        found.iter().map(|t| t.trace_id().0).collect()
    }

    fn store() -> TraceStore {
        let mut rows = checkout_rows(); // trace 1: 100 ms, failed; trace 2: 1 ms
        let mut call = row(3, 1, None, "GET /users", "api", 300, 420);
        call.kind = "server".into();
        call.attributes
            .insert("http.status_code".into(), 200.into());
        call.attributes.insert("cached".into(), true.into());
        call.attributes.insert("ratio".into(), 0.5.into());
        rows.push(call);
        rows.push(failed(
            row(4, 1, None, "GET /users", "api", 500, 520),
            "E",
            "x",
        ));
        // Same duration as trace 1, later.
        rows.push(row(5, 1, None, "GET /slow", "api", 600, 700));
        TraceStore::from_iter(rows)
    }

    fn select(store: &TraceStore, query: &TraceQuery) -> Vec<u128> {
        query.check().unwrap();
        ids(&query.select(store.views()))
    }

    #[test]
    fn default_is_everything_most_recent_first() {
        let s = store();
        assert_eq!(select(&s, &TraceQuery::default()), [5, 4, 3, 2, 1]);
    }

    #[test]
    fn slowest_first_ties_most_recent_first() {
        let s = store();
        let q = TraceQuery {
            order: TraceOrder::Slowest,
            ..TraceQuery::default()
        };
        assert_eq!(select(&s, &q), [3, 5, 1, 4, 2]);
        assert_eq!(select(&s, &TraceQuery::slower_than(100.0)), [3, 5, 1]);
    }

    #[test]
    fn limits_cut_the_ordered_list() {
        let s = store();
        for (limit, want) in [
            (0, vec![]),
            (1, vec![3]),
            (2, vec![3, 5]),
            (4, vec![3, 5, 1, 4]),
            (9, vec![3, 5, 1, 4, 2]),
        ] {
            let q = TraceQuery {
                order: TraceOrder::Slowest,
                limit: Some(limit),
                ..TraceQuery::default()
            };
            assert_eq!(select(&s, &q), want, "limit {limit}");
        }
        assert_eq!(select(&s, &TraceQuery::failed(Some(1))), [4]);
        assert_eq!(select(&s, &TraceQuery::failed(None)), [4, 1]);
    }

    #[test]
    fn span_criteria_hold_on_one_span() {
        let s = store();
        let q = |service: Option<&str>, operation: Option<&str>| TraceQuery {
            service: service.map(Into::into),
            operation: operation.map(Into::into),
            ..TraceQuery::default()
        };
        assert_eq!(select(&s, &q(Some("orders"), None)), [1]);
        assert_eq!(select(&s, &q(None, Some("GET /users"))), [4, 3]);
        assert_eq!(select(&s, &q(Some("orders"), Some("db.insert"))), [1]);
        // Both exist in trace 1, but not on the same span.
        assert!(select(&s, &q(Some("auth"), Some("db.insert"))).is_empty());
        assert!(select(&s, &q(Some("nobody"), None)).is_empty());
    }

    #[test]
    fn tags_match_exactly_and_all_together() {
        let s = store();
        let q = |tags: &[(&str, &str)]| TraceQuery {
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..TraceQuery::default()
        };
        assert_eq!(select(&s, &q(&[("http.status_code", "200")])), [3]);
        assert_eq!(select(&s, &q(&[("cached", "true")])), [3]);
        assert_eq!(select(&s, &q(&[("ratio", "0.5")])), [3]);
        assert_eq!(
            select(&s, &q(&[("http.status_code", "200"), ("cached", "true")])),
            [3]
        );
        assert!(select(&s, &q(&[("http.status_code", "200"), ("cached", "false")])).is_empty());
        assert!(select(&s, &q(&[("http.status_code", "20")])).is_empty());
        assert!(select(&s, &q(&[("missing", "")])).is_empty());
        // Jaeger's implicit tags.
        assert_eq!(select(&s, &q(&[("span.kind", "server")])), [3]);
        assert_eq!(select(&s, &q(&[("error", "true")])), [4, 1]);
        let with_service = TraceQuery {
            service: Some("frontend".into()),
            ..q(&[("error", "true")])
        };
        // Trace 1 failed, but not in a frontend span.
        assert!(select(&s, &with_service).is_empty());
    }

    #[test]
    fn trace_criteria() {
        let s = store();
        let base = 1_700_000_000_000_000_000u64;
        let q = TraceQuery {
            min_duration_ms: Some(20.0),
            max_duration_ms: Some(100.0),
            ..TraceQuery::default()
        };
        assert_eq!(select(&s, &q), [5, 4, 1]);
        let q = TraceQuery {
            start_ns: Some(base + 200_000_000),
            end_ns: Some(base + 500_000_000),
            ..TraceQuery::default()
        };
        assert_eq!(select(&s, &q), [4, 3, 2]);
        let q = TraceQuery {
            errors_only: true,
            operation: Some("GET /users".into()),
            ..TraceQuery::default()
        };
        assert_eq!(select(&s, &q), [4]);
        assert_eq!(
            select(&s, &TraceQuery::slower_than(f64::INFINITY)),
            Vec::<u128>::new()
        );
    }

    #[test]
    fn impossible_queries_are_errors() {
        let bad = |q: TraceQuery| q.check().unwrap_err().to_string();
        assert_eq!(
            bad(TraceQuery::slower_than(-1.0)),
            "min_duration_ms must be a non-negative number of milliseconds, not -1"
        );
        assert!(bad(TraceQuery {
            max_duration_ms: Some(f64::NAN),
            ..TraceQuery::default()
        })
        .starts_with("max_duration_ms must be"));
        assert!(bad(TraceQuery {
            min_duration_ms: Some(5.0),
            max_duration_ms: Some(1.0),
            ..TraceQuery::default()
        })
        .contains("above max_duration_ms"));
        assert!(bad(TraceQuery {
            start_ns: Some(2),
            end_ns: Some(1),
            ..TraceQuery::default()
        })
        .contains("after end_ns"));
        assert_eq!("slowest".parse::<TraceOrder>(), Ok(TraceOrder::Slowest));
        assert_eq!(
            "fastest".parse::<TraceOrder>().unwrap_err().to_string(),
            "order must be one of \"recent\", \"slowest\", not \"fastest\""
        );
    }
}
