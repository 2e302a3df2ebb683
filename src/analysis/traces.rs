//! Traces assembled from span rows that arrive in any order, from any number
//! of files and services: rows are grouped by trace id, each trace's spans
//! sorted by start time and linked to their parents, and a root chosen.
//!
//! The root is the earliest span without a parent; failing that (the
//! caller's spans were never collected), the earliest span whose parent is
//! not in the trace. A trace whose parent links only form cycles (corrupt
//! data) has no root and is measured from its first start to its last end.

use std::collections::HashMap;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::record::SpanRow;
use crate::ids::{SpanId, TraceId};

const NO_PARENT: u32 = u32::MAX;

/// Every trace in a set of span rows, which it owns.
#[derive(Debug, Default)]
pub struct TraceSet {
    rows: Vec<SpanRow>,
    traces: Vec<TraceEntry>,
    by_id: HashMap<TraceId, u32>,
    duplicates: u64,
}

#[derive(Debug)]
struct TraceEntry {
    trace_id: TraceId,
    /// Row indices, sorted by (start_ns, span_id).
    spans: Vec<u32>,
    /// Per position in `spans`: the position of its parent, or `NO_PARENT`
    /// (no parent id, or the parent is not in the trace).
    parents: Vec<u32>,
    /// Position of the root in `spans`.
    root: Option<u32>,
    start_ns: u64,
    duration_ms: f64,
    error_count: u32,
}

impl TraceSet {
    /// Assembles `rows` into traces. A span id seen twice in one trace (the
    /// same file read twice, say) is kept once: the first row wins.
    ///
    /// ```
    /// use _core::analysis::{SpanRow, TraceSet};
    /// let set = TraceSet::new(Vec::<SpanRow>::new());
    /// assert!(set.is_empty());
    /// ```
    pub fn new(mut rows: Vec<SpanRow>) -> TraceSet {
        let duplicates = drop_duplicate_spans(&mut rows);
        let mut by_id: HashMap<TraceId, u32> = HashMap::new();
        let mut groups: Vec<Vec<u32>> = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let slot = *by_id.entry(row.trace_id).or_insert_with(|| {
                groups.push(Vec::new());
                (groups.len() - 1) as u32
            });
            groups[slot as usize].push(i as u32);
        }
        let mut traces: Vec<TraceEntry> = groups
            .into_iter()
            .map(|spans| TraceEntry::assemble(&rows, spans))
            .collect();
        traces.sort_by_key(|t| (t.start_ns, t.trace_id));
        for (i, t) in traces.iter().enumerate() {
            by_id.insert(t.trace_id, i as u32);
        }
        TraceSet {
            rows,
            traces,
            by_id,
            duplicates,
        }
    }

    /// All span rows, in the order read (duplicates dropped).
    pub fn rows(&self) -> &[SpanRow] {
        &self.rows
    }

    /// Rows dropped because their (trace id, span id) was already seen.
    pub fn duplicate_spans(&self) -> u64 {
        self.duplicates
    }

    /// Number of traces.
    pub fn len(&self) -> usize {
        self.traces.len()
    }

    /// Whether there are no traces.
    pub fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    /// Every trace, by start time.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = TraceView<'_>> + '_ {
        self.traces.iter().map(|entry| TraceView {
            entry,
            rows: &self.rows,
        })
    }

    /// The trace with this id.
    pub fn get(&self, trace_id: TraceId) -> Option<TraceView<'_>> {
        let i = *self.by_id.get(&trace_id)?;
        Some(TraceView {
            entry: &self.traces[i as usize],
            rows: &self.rows,
        })
    }

    /// The trace with this 32-hex-digit id (`None` for an invalid id too).
    pub fn get_hex(&self, trace_id: &str) -> Option<TraceView<'_>> {
        self.get(TraceId::from_hex(trace_id)?)
    }

    /// Traces that took at least `threshold_ms`, slowest first.
    pub fn slow_traces(&self, threshold_ms: f64) -> Vec<TraceView<'_>> {
        let mut slow: Vec<TraceView<'_>> = self
            .iter()
            .filter(|t| t.duration_ms() >= threshold_ms)
            .collect();
        slow.sort_by(|a, b| {
            b.duration_ms()
                .total_cmp(&a.duration_ms())
                .then(a.start_ns().cmp(&b.start_ns()))
        });
        slow
    }

    /// Traces with at least one failed span, most recent first, at most
    /// `limit` of them.
    pub fn error_traces(&self, limit: Option<usize>) -> Vec<TraceView<'_>> {
        let mut failed: Vec<TraceView<'_>> = self.iter().filter(|t| t.is_error()).collect();
        failed.sort_by_key(|t| std::cmp::Reverse((t.start_ns(), t.trace_id())));
        if let Some(limit) = limit {
            failed.truncate(limit);
        }
        failed
    }
}

/// Removes rows whose (trace id, span id) an earlier row already has.
fn drop_duplicate_spans(rows: &mut Vec<SpanRow>) -> u64 {
    let mut order: Vec<u32> = (0..rows.len() as u32).collect();
    order.sort_unstable_by_key(|&i| {
        let r = &rows[i as usize];
        (r.trace_id, r.span_id, i)
    });
    let mut keep = vec![true; rows.len()];
    let mut dropped = 0;
    for pair in order.windows(2) {
        let (a, b) = (&rows[pair[0] as usize], &rows[pair[1] as usize]);
        if a.trace_id == b.trace_id && a.span_id == b.span_id {
            keep[pair[1] as usize] = false;
            dropped += 1;
        }
    }
    if dropped > 0 {
        let mut keep = keep.into_iter();
        rows.retain(|_| keep.next().unwrap_or(true));
    }
    dropped
}

impl TraceEntry {
    fn assemble(rows: &[SpanRow], mut spans: Vec<u32>) -> TraceEntry {
        spans.sort_unstable_by_key(|&i| {
            let r = &rows[i as usize];
            (r.start_ns, r.span_id)
        });
        let mut positions: Vec<(SpanId, u32)> = spans
            .iter()
            .enumerate()
            .map(|(pos, &i)| (rows[i as usize].span_id, pos as u32))
            .collect();
        positions.sort_unstable();
        let find = |id: SpanId| {
            positions
                .binary_search_by_key(&id, |&(s, _)| s)
                .ok()
                .map(|k| positions[k].1)
        };
        let parents: Vec<u32> = spans
            .iter()
            .map(|&i| {
                let row = &rows[i as usize];
                row.parent_id
                    .and_then(find)
                    .filter(|&p| rows[spans[p as usize] as usize].span_id != row.span_id)
                    .unwrap_or(NO_PARENT)
            })
            .collect();
        let first_without = |orphans: bool| {
            spans.iter().zip(&parents).position(|(&i, &p)| {
                let has_parent_id = rows[i as usize].parent_id.is_some();
                p == NO_PARENT && has_parent_id == orphans
            })
        };
        let root = first_without(false)
            .or_else(|| first_without(true))
            .map(|p| p as u32);
        let error_count = spans
            .iter()
            .filter(|&&i| rows[i as usize].is_error())
            .count() as u32;
        let (start_ns, duration_ms) = match root {
            Some(p) => {
                let r = &rows[spans[p as usize] as usize];
                (r.start_ns, r.duration_ms)
            }
            None => {
                let start = spans.iter().map(|&i| rows[i as usize].start_ns).min();
                let end = spans.iter().map(|&i| rows[i as usize].end_ns).max();
                let start = start.unwrap_or(0);
                (
                    start,
                    end.unwrap_or(start).saturating_sub(start) as f64 / 1e6,
                )
            }
        };
        TraceEntry {
            trace_id: rows[spans[0] as usize].trace_id,
            spans,
            parents,
            root,
            start_ns,
            duration_ms,
            error_count,
        }
    }
}

/// One assembled trace, borrowed from its [`TraceSet`]. Spans are addressed
/// by position: 0 is the earliest start.
#[derive(Clone, Copy)]
pub struct TraceView<'a> {
    entry: &'a TraceEntry,
    rows: &'a [SpanRow],
}

impl<'a> TraceView<'a> {
    /// The trace id.
    pub fn trace_id(&self) -> TraceId {
        self.entry.trace_id
    }

    /// Number of spans.
    pub fn span_count(&self) -> usize {
        self.entry.spans.len()
    }

    /// The span at `position` (by start time).
    pub fn span(&self, position: usize) -> &'a SpanRow {
        &self.rows[self.entry.spans[position] as usize]
    }

    /// All spans, by start time.
    pub fn spans(&self) -> impl ExactSizeIterator<Item = &'a SpanRow> + 'a {
        let rows = self.rows;
        self.entry.spans.iter().map(move |&i| &rows[i as usize])
    }

    /// Position of the span's parent, if the parent is in this trace.
    pub fn parent_of(&self, position: usize) -> Option<usize> {
        match self.entry.parents[position] {
            NO_PARENT => None,
            p => Some(p as usize),
        }
    }

    /// Position of the root span, if there is one.
    pub fn root_position(&self) -> Option<usize> {
        self.entry.root.map(|p| p as usize)
    }

    /// The root span, if there is one.
    pub fn root(&self) -> Option<&'a SpanRow> {
        self.root_position().map(|p| self.span(p))
    }

    /// The root's service (the earliest span's if there is no root).
    pub fn service(&self) -> &'a str {
        self.headline().service.as_str()
    }

    /// The root's name (the earliest span's if there is no root).
    pub fn operation(&self) -> &'a str {
        self.headline().name.as_str()
    }

    fn headline(&self) -> &'a SpanRow {
        self.root().unwrap_or_else(|| self.span(0))
    }

    /// "error" if any span failed, else "ok".
    pub fn status(&self) -> &'static str {
        if self.is_error() {
            "error"
        } else {
            "ok"
        }
    }

    /// Whether any span failed.
    pub fn is_error(&self) -> bool {
        self.entry.error_count > 0
    }

    /// Number of failed spans.
    pub fn error_count(&self) -> usize {
        self.entry.error_count as usize
    }

    /// The root's start (the earliest start if there is no root).
    pub fn start_ns(&self) -> u64 {
        self.entry.start_ns
    }

    /// The root's duration (first start to last end if there is no root).
    pub fn duration_ms(&self) -> f64 {
        self.entry.duration_ms
    }

    /// Each span's children's positions, by start time.
    pub fn children(&self) -> Vec<Vec<usize>> {
        let mut children = vec![Vec::new(); self.span_count()];
        for (child, &parent) in self.entry.parents.iter().enumerate() {
            if parent != NO_PARENT {
                children[parent as usize].push(child);
            }
        }
        children
    }

    /// Spans with no parent in the trace: the root first, then the others
    /// (orphans whose parent was not collected) by start time.
    pub fn top_level(&self) -> Vec<usize> {
        let root = self.root_position();
        root.into_iter()
            .chain(
                self.entry
                    .parents
                    .iter()
                    .enumerate()
                    .filter(|&(p, &parent)| parent == NO_PARENT && Some(p) != root)
                    .map(|(p, _)| p),
            )
            .collect()
    }

    /// The trace's headline fields without its spans.
    pub fn summary(&self) -> TraceSummaryView<'a> {
        TraceSummaryView {
            trace_id: self.trace_id(),
            root_span_id: self.root().map(|r| r.span_id),
            service: self.service(),
            operation: self.operation(),
            status: self.status(),
            start_ns: self.start_ns(),
            duration_ms: self.duration_ms(),
            span_count: self.span_count(),
            error_count: self.error_count(),
        }
    }
}

impl std::fmt::Debug for TraceView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceView")
            .field("trace_id", &self.trace_id())
            .field("span_count", &self.span_count())
            .field("duration_ms", &self.duration_ms())
            .finish_non_exhaustive()
    }
}

/// A trace's headline fields; serialises to the trace dict minus `spans`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceSummaryView<'a> {
    #[serde(serialize_with = "super::record::hex_trace_id")]
    pub trace_id: TraceId,
    #[serde(serialize_with = "super::record::hex_parent_id")]
    pub root_span_id: Option<SpanId>,
    pub service: &'a str,
    pub operation: &'a str,
    pub status: &'static str,
    pub start_ns: u64,
    pub duration_ms: f64,
    pub span_count: usize,
    pub error_count: usize,
}

/// The trace dict of DESIGN.md: the summary fields plus `spans`, each the
/// JSONL record, by start time.
impl Serialize for TraceView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let s = self.summary();
        let mut map = serializer.serialize_map(Some(10))?;
        map.serialize_entry("trace_id", s.trace_id.to_hex().as_str())?;
        let root_hex = s.root_span_id.map(|id| id.to_hex());
        map.serialize_entry("root_span_id", &root_hex.as_ref().map(|h| h.as_str()))?;
        map.serialize_entry("service", s.service)?;
        map.serialize_entry("operation", s.operation)?;
        map.serialize_entry("status", s.status)?;
        map.serialize_entry("start_ns", &s.start_ns)?;
        map.serialize_entry("duration_ms", &s.duration_ms)?;
        map.serialize_entry("span_count", &s.span_count)?;
        map.serialize_entry("error_count", &s.error_count)?;
        map.serialize_entry("spans", &SpansJson(*self))?;
        map.end()
    }
}

struct SpansJson<'a>(TraceView<'a>);

impl Serialize for SpansJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.span_count()))?;
        for span in self.0.spans() {
            seq.serialize_element(span)?;
        }
        seq.end()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::analysis::record::ErrorRow;
    use serde_json::Map;

    /// A span for hand-made traces: times in milliseconds from an epoch base.
    pub(crate) fn row(
        trace: u128,
        span: u64,
        parent: Option<u64>,
        name: &str,
        service: &str,
        start_ms: u64,
        end_ms: u64,
    ) -> SpanRow {
        const BASE: u64 = 1_700_000_000_000_000_000;
        SpanRow {
            trace_id: TraceId(trace),
            span_id: SpanId(span),
            parent_id: parent.map(SpanId),
            name: name.into(),
            service: service.into(),
            kind: "internal".into(),
            start_ns: BASE + start_ms * 1_000_000,
            end_ns: BASE + end_ms * 1_000_000,
            duration_ms: (end_ms - start_ms) as f64,
            status: "ok".into(),
            attributes: Map::new(),
            events: Vec::new(),
            error: None,
            remote_parent: false,
            dropped_attributes_count: 0,
            dropped_events_count: 0,
        }
    }

    /// Marks `row` failed with this exception.
    pub(crate) fn failed(mut row: SpanRow, error_type: &str, message: &str) -> SpanRow {
        row.status = "error".into();
        row.error = Some(ErrorRow {
            error_type: error_type.into(),
            message: message.into(),
            stack: None,
        });
        row
    }

    /// frontend -> api -> (auth, orders -> db), plus a second small trace.
    pub(crate) fn checkout_rows() -> Vec<SpanRow> {
        vec![
            row(1, 1, None, "GET /checkout", "frontend", 0, 100),
            row(1, 2, Some(1), "POST /api/order", "api", 5, 95),
            row(1, 3, Some(2), "auth.verify", "auth", 10, 20),
            row(1, 4, Some(2), "orders.create", "orders", 25, 90),
            failed(
                row(1, 5, Some(4), "db.insert", "orders", 30, 80),
                "TimeoutError",
                "query 42 timed out",
            ),
            row(2, 9, None, "GET /health", "frontend", 200, 201),
        ]
    }

    /// A deterministic shuffle (no rand dependency).
    pub(crate) fn shuffled(mut rows: Vec<SpanRow>, seed: u64) -> Vec<SpanRow> {
        let mut state = seed | 1;
        for i in (1..rows.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            rows.swap(i, (state % (i as u64 + 1)) as usize);
        }
        rows
    }

    #[test]
    fn assembles_a_multi_service_trace_from_shuffled_rows() {
        for seed in 1..20 {
            let set = TraceSet::new(shuffled(checkout_rows(), seed));
            assert_eq!(set.len(), 2);
            let t = set.get(TraceId(1)).unwrap();
            assert_eq!(t.span_count(), 5);
            assert_eq!(t.root().unwrap().span_id, SpanId(1));
            assert_eq!(t.service(), "frontend");
            assert_eq!(t.operation(), "GET /checkout");
            assert_eq!(t.status(), "error");
            assert_eq!(t.error_count(), 1);
            assert_eq!(t.duration_ms(), 100.0);
            let names: Vec<&str> = t.spans().map(|s| s.name.as_str()).collect();
            assert_eq!(
                names,
                [
                    "GET /checkout",
                    "POST /api/order",
                    "auth.verify",
                    "orders.create",
                    "db.insert"
                ]
            );
            assert_eq!(t.parent_of(4), Some(3));
            assert_eq!(t.parent_of(0), None);
            assert_eq!(t.children()[1], vec![2, 3]);
            assert_eq!(t.top_level(), vec![0]);
            // Traces iterate by start time.
            let ids: Vec<TraceId> = set.iter().map(|t| t.trace_id()).collect();
            assert_eq!(ids, vec![TraceId(1), TraceId(2)]);
        }
    }

    #[test]
    fn orphans_and_missing_roots() {
        // The frontend's file is missing: the api span's parent is absent,
        // and one deeper span lost its parent too.
        let rows = vec![
            row(1, 2, Some(1), "POST /api/order", "api", 5, 95),
            row(1, 4, Some(7), "orders.create", "orders", 25, 90),
            row(1, 5, Some(4), "db.insert", "orders", 30, 80),
        ];
        let set = TraceSet::new(rows);
        let t = set.get(TraceId(1)).unwrap();
        assert_eq!(t.root().unwrap().span_id, SpanId(2));
        assert_eq!(t.service(), "api");
        assert_eq!(t.duration_ms(), 90.0);
        assert_eq!(t.top_level(), vec![0, 1]);

        // A parentless span wins over an earlier orphan.
        let rows = vec![
            row(3, 2, Some(99), "early orphan", "a", 0, 10),
            row(3, 1, None, "root", "b", 1, 50),
        ];
        let set = TraceSet::new(rows);
        let t = set.get(TraceId(3)).unwrap();
        assert_eq!(t.operation(), "root");
        assert_eq!(t.top_level(), vec![1, 0]);
    }

    #[test]
    fn cycles_have_no_root_and_span_first_start_to_last_end() {
        let rows = vec![
            row(5, 1, Some(2), "a", "s", 10, 20),
            row(5, 2, Some(1), "b", "s", 15, 40),
            row(5, 3, Some(3), "self-parented", "s", 12, 13),
        ];
        let set = TraceSet::new(rows);
        let t = set.get(TraceId(5)).unwrap();
        // The self-parented span counts as having no parent in the trace.
        assert_eq!(t.root().unwrap().span_id, SpanId(3));
        let rows = vec![
            row(6, 1, Some(2), "a", "s", 10, 20),
            row(6, 2, Some(1), "b", "s", 15, 40),
        ];
        let set = TraceSet::new(rows);
        let t = set.get(TraceId(6)).unwrap();
        assert!(t.root().is_none());
        assert_eq!(t.duration_ms(), 30.0);
        assert_eq!(t.operation(), "a");
        assert!(t.top_level().is_empty());
        assert_eq!(t.summary().root_span_id, None);
    }

    #[test]
    fn duplicate_spans_are_kept_once() {
        let mut rows = checkout_rows();
        rows.extend(checkout_rows());
        let set = TraceSet::new(rows);
        assert_eq!(set.duplicate_spans(), 6);
        assert_eq!(set.rows().len(), 6);
        assert_eq!(set.get(TraceId(1)).unwrap().span_count(), 5);
    }

    #[test]
    fn slow_and_error_traces() {
        let mut rows = checkout_rows();
        rows.push(failed(row(3, 1, None, "late", "api", 500, 530), "E", "x"));
        let set = TraceSet::new(rows);
        let slow: Vec<u128> = set
            .slow_traces(30.0)
            .iter()
            .map(|t| t.trace_id().0)
            .collect();
        assert_eq!(slow, vec![1, 3]);
        assert_eq!(set.slow_traces(0.0).len(), 3);
        assert!(set.slow_traces(1000.0).is_empty());
        let failed: Vec<u128> = set
            .error_traces(None)
            .iter()
            .map(|t| t.trace_id().0)
            .collect();
        assert_eq!(failed, vec![3, 1]);
        assert_eq!(set.error_traces(Some(1)).len(), 1);
        assert!(set.error_traces(Some(0)).is_empty());
    }

    #[test]
    fn lookup_by_hex() {
        let set = TraceSet::new(checkout_rows());
        let hex = TraceId(1).to_hex();
        assert_eq!(set.get_hex(hex.as_str()).unwrap().span_count(), 5);
        assert!(set.get_hex("not-an-id").is_none());
        assert!(set.get_hex(TraceId(77).to_hex().as_str()).is_none());
    }

    #[test]
    fn serialises_to_the_trace_dict() {
        let set = TraceSet::new(checkout_rows());
        let v = serde_json::to_value(set.get(TraceId(1)).unwrap()).unwrap();
        assert_eq!(v["trace_id"], TraceId(1).to_hex().as_str());
        assert_eq!(v["root_span_id"], SpanId(1).to_hex().as_str());
        assert_eq!(v["service"], "frontend");
        assert_eq!(v["operation"], "GET /checkout");
        assert_eq!(v["status"], "error");
        assert_eq!(v["duration_ms"], 100.0);
        assert_eq!(v["span_count"], 5);
        assert_eq!(v["error_count"], 1);
        assert_eq!(v["spans"].as_array().unwrap().len(), 5);
        assert_eq!(v["spans"][4]["error"]["type"], "TimeoutError");
        let summary = serde_json::to_value(set.get(TraceId(2)).unwrap().summary()).unwrap();
        assert_eq!(summary["status"], "ok");
        assert!(summary.get("spans").is_none());
    }
}
