//! Traces assembled from span rows that arrive in any order, from any number
//! of files and services: a [`Trace`] takes its spans one at a time, and on
//! first look (after the last change) sorts them by start time, links them
//! to their parents and chooses a root.
//!
//! The root is the earliest span without a parent; failing that (the
//! caller's spans were never collected), the earliest span whose parent is
//! not in the trace. A trace whose parent links only form cycles (corrupt
//! data) has no root and is measured from its first start to its last end.

use std::sync::OnceLock;

use compact_str::CompactString;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::record::SpanRow;
use crate::ids::{SpanId, TraceId};

const NO_PARENT: u32 = u32::MAX;

/// One trace's spans, kept as they arrived. Adding a span is O(1); the
/// assembly (order, parent links, root, headline numbers) is computed when
/// the trace is next looked at, once per change, so a trace fed span by span
/// is not re-sorted per span.
#[derive(Clone, Debug)]
pub struct Trace {
    trace_id: TraceId,
    /// Never empty.
    rows: Vec<SpanRow>,
    assembly: OnceLock<Assembly>,
}

#[derive(Clone, Debug)]
struct Assembly {
    /// Indices into `rows`, sorted by (start_ns, span_id); a span id seen
    /// twice is kept once (the first to arrive).
    order: Vec<u32>,
    /// Per position in `order`: the position of its parent, or `NO_PARENT`
    /// (no parent id, or the parent is not in the trace).
    parents: Vec<u32>,
    /// Position of the root in `order`.
    root: Option<u32>,
    start_ns: u64,
    duration_ms: f64,
    error_count: u32,
    duplicates: u32,
}

impl Trace {
    /// A trace holding its first span.
    pub fn new(first: SpanRow) -> Trace {
        Trace {
            trace_id: first.trace_id,
            rows: vec![first],
            assembly: OnceLock::new(),
        }
    }

    /// A trace holding `rows`, all of one trace (`None` if there are none).
    pub(crate) fn from_rows(rows: Vec<SpanRow>) -> Option<Trace> {
        let first = rows.first()?;
        debug_assert!(rows.iter().all(|r| r.trace_id == first.trace_id));
        Some(Trace {
            trace_id: first.trace_id,
            rows,
            assembly: OnceLock::new(),
        })
    }

    /// Adds a span of this trace (the caller routes by trace id).
    pub(crate) fn push(&mut self, row: SpanRow) {
        debug_assert_eq!(row.trace_id, self.trace_id);
        self.rows.push(row);
        self.assembly = OnceLock::new();
    }

    /// The trace id.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// Spans held, duplicates included (what the trace costs in memory).
    pub fn stored_spans(&self) -> usize {
        self.rows.len()
    }

    /// The assembled trace.
    pub fn view(&self) -> TraceView<'_> {
        TraceView {
            trace: self,
            assembly: self.assembly.get_or_init(|| Assembly::build(&self.rows)),
        }
    }
}

/// The trace dict (README.md, "Analysis"; see [`TraceView`]'s serialisation).
impl Serialize for Trace {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.view().serialize(serializer)
    }
}

impl Assembly {
    fn build(rows: &[SpanRow]) -> Assembly {
        // First arrival wins among rows with the same span id.
        let mut by_id: Vec<u32> = (0..rows.len() as u32).collect();
        by_id.sort_unstable_by_key(|&i| (rows[i as usize].span_id, i));
        let mut order: Vec<u32> = Vec::with_capacity(rows.len());
        for (k, &i) in by_id.iter().enumerate() {
            if k == 0 || rows[by_id[k - 1] as usize].span_id != rows[i as usize].span_id {
                order.push(i);
            }
        }
        let duplicates = (rows.len() - order.len()) as u32;
        order.sort_unstable_by_key(|&i| {
            let r = &rows[i as usize];
            (r.start_ns, r.span_id)
        });
        let mut positions: Vec<(SpanId, u32)> = order
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
        let parents: Vec<u32> = order
            .iter()
            .map(|&i| {
                let row = &rows[i as usize];
                row.parent_id
                    .and_then(find)
                    .filter(|&p| rows[order[p as usize] as usize].span_id != row.span_id)
                    .unwrap_or(NO_PARENT)
            })
            .collect();
        let first_without = |orphans: bool| {
            order.iter().zip(&parents).position(|(&i, &p)| {
                let has_parent_id = rows[i as usize].parent_id.is_some();
                p == NO_PARENT && has_parent_id == orphans
            })
        };
        let root = first_without(false)
            .or_else(|| first_without(true))
            .map(|p| p as u32);
        let error_count = order
            .iter()
            .filter(|&&i| rows[i as usize].is_error())
            .count() as u32;
        let (start_ns, duration_ms) = match root {
            Some(p) => {
                let r = &rows[order[p as usize] as usize];
                (r.start_ns, r.duration_ms)
            }
            None => {
                let start = order.iter().map(|&i| rows[i as usize].start_ns).min();
                let end = order.iter().map(|&i| rows[i as usize].end_ns).max();
                let start = start.unwrap_or(0);
                (
                    start,
                    end.unwrap_or(start).saturating_sub(start) as f64 / 1e6,
                )
            }
        };
        Assembly {
            order,
            parents,
            root,
            start_ns,
            duration_ms,
            error_count,
            duplicates,
        }
    }
}

/// One assembled trace, borrowed from its [`Trace`]. Spans are addressed by
/// position: 0 is the earliest start.
#[derive(Clone, Copy)]
pub struct TraceView<'a> {
    trace: &'a Trace,
    assembly: &'a Assembly,
}

impl<'a> TraceView<'a> {
    /// The trace id.
    pub fn trace_id(&self) -> TraceId {
        self.trace.trace_id
    }

    /// The trace this is a view of.
    pub fn trace(&self) -> &'a Trace {
        self.trace
    }

    /// Number of spans (duplicates counted once).
    pub fn span_count(&self) -> usize {
        self.assembly.order.len()
    }

    /// Spans that arrived again with a span id already held (dropped).
    pub fn duplicate_spans(&self) -> usize {
        self.assembly.duplicates as usize
    }

    /// The span at `position` (by start time).
    pub fn span(&self, position: usize) -> &'a SpanRow {
        &self.trace.rows[self.assembly.order[position] as usize]
    }

    /// All spans, by start time.
    pub fn spans(&self) -> impl ExactSizeIterator<Item = &'a SpanRow> + 'a {
        let rows = &self.trace.rows;
        self.assembly.order.iter().map(move |&i| &rows[i as usize])
    }

    /// Position of the span's parent, if the parent is in this trace.
    pub fn parent_of(&self, position: usize) -> Option<usize> {
        match self.assembly.parents[position] {
            NO_PARENT => None,
            p => Some(p as usize),
        }
    }

    /// Position of the root span, if there is one.
    pub fn root_position(&self) -> Option<usize> {
        self.assembly.root.map(|p| p as usize)
    }

    /// The root span, if there is one.
    pub fn root(&self) -> Option<&'a SpanRow> {
        self.root_position().map(|p| self.span(p))
    }

    /// The root's service (the earliest span's if there is no root).
    pub fn service(&self) -> &'a str {
        self.headline_span().service.as_str()
    }

    /// The root's name (the earliest span's if there is no root).
    pub fn operation(&self) -> &'a str {
        self.headline_span().name.as_str()
    }

    fn headline_span(&self) -> &'a SpanRow {
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
        self.assembly.error_count > 0
    }

    /// Number of failed spans.
    pub fn error_count(&self) -> usize {
        self.assembly.error_count as usize
    }

    /// The root's start (the earliest start if there is no root).
    pub fn start_ns(&self) -> u64 {
        self.assembly.start_ns
    }

    /// The root's duration (first start to last end if there is no root).
    pub fn duration_ms(&self) -> f64 {
        self.assembly.duration_ms
    }

    /// Each span's children's positions, by start time.
    pub fn children(&self) -> Vec<Vec<usize>> {
        let mut children = vec![Vec::new(); self.span_count()];
        for (child, &parent) in self.assembly.parents.iter().enumerate() {
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
                self.assembly
                    .parents
                    .iter()
                    .enumerate()
                    .filter(|&(p, &parent)| parent == NO_PARENT && Some(p) != root)
                    .map(|(p, _)| p),
            )
            .collect()
    }

    /// The trace's headline fields without its spans.
    pub fn headline(&self) -> TraceHeadline {
        TraceHeadline {
            trace_id: self.trace_id(),
            root_span_id: self.root().map(|r| r.span_id),
            service: self.service().into(),
            operation: self.operation().into(),
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
pub struct TraceHeadline {
    #[serde(serialize_with = "super::record::hex_trace_id")]
    pub trace_id: TraceId,
    #[serde(serialize_with = "super::record::hex_parent_id")]
    pub root_span_id: Option<SpanId>,
    pub service: CompactString,
    pub operation: CompactString,
    pub status: &'static str,
    pub start_ns: u64,
    pub duration_ms: f64,
    pub span_count: usize,
    pub error_count: usize,
}

/// The trace dict (README.md, "Analysis"): the headline fields plus
/// `spans`, each the JSONL record, by start time.
impl Serialize for TraceView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let s = self.headline();
        let mut map = serializer.serialize_map(Some(10))?;
        map.serialize_entry("trace_id", s.trace_id.to_hex().as_str())?;
        let root_hex = s.root_span_id.map(|id| id.to_hex());
        map.serialize_entry("root_span_id", &root_hex.as_ref().map(|h| h.as_str()))?;
        map.serialize_entry("service", &s.service)?;
        map.serialize_entry("operation", &s.operation)?;
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
            scope: None,
            links: Vec::new(),
            dropped_links_count: 0,
            resource: None,
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

    /// The trace `id` assembled from the rows of that trace among `rows`.
    fn trace_of(rows: Vec<SpanRow>, id: u128) -> Trace {
        let mut mine = rows.into_iter().filter(|r| r.trace_id == TraceId(id));
        let mut trace = Trace::new(mine.next().unwrap());
        mine.for_each(|r| trace.push(r));
        trace
    }

    #[test]
    fn assembles_a_multi_service_trace_from_shuffled_rows() {
        for seed in 1..20 {
            let trace = trace_of(shuffled(checkout_rows(), seed), 1);
            let t = trace.view();
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
            assert!(std::ptr::eq(t.trace(), &trace));
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
        let trace = trace_of(rows, 1);
        let t = trace.view();
        assert_eq!(t.root().unwrap().span_id, SpanId(2));
        assert_eq!(t.service(), "api");
        assert_eq!(t.duration_ms(), 90.0);
        assert_eq!(t.top_level(), vec![0, 1]);

        // A parentless span wins over an earlier orphan.
        let rows = vec![
            row(3, 2, Some(99), "early orphan", "a", 0, 10),
            row(3, 1, None, "root", "b", 1, 50),
        ];
        let trace = trace_of(rows, 3);
        let t = trace.view();
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
        let trace = trace_of(rows, 5);
        // The self-parented span counts as having no parent in the trace.
        assert_eq!(trace.view().root().unwrap().span_id, SpanId(3));
        let rows = vec![
            row(6, 1, Some(2), "a", "s", 10, 20),
            row(6, 2, Some(1), "b", "s", 15, 40),
        ];
        let trace = trace_of(rows, 6);
        let t = trace.view();
        assert!(t.root().is_none());
        assert_eq!(t.duration_ms(), 30.0);
        assert_eq!(t.operation(), "a");
        assert!(t.top_level().is_empty());
        assert_eq!(t.headline().root_span_id, None);
    }

    #[test]
    fn duplicate_spans_are_kept_once_first_arrival_wins() {
        let mut rows = checkout_rows();
        let mut again = checkout_rows();
        again[2].name = "renamed".into();
        rows.extend(again);
        let trace = trace_of(rows, 1);
        assert_eq!(trace.stored_spans(), 10);
        let t = trace.view();
        assert_eq!(t.duplicate_spans(), 5);
        assert_eq!(t.span_count(), 5);
        assert!(t.spans().all(|s| s.name != "renamed"));
    }

    #[test]
    fn assembly_follows_every_change() {
        let mut trace = Trace::new(row(1, 3, Some(2), "grandchild", "s", 20, 30));
        assert_eq!(trace.view().operation(), "grandchild");
        trace.push(row(1, 2, Some(1), "child", "s", 10, 40));
        assert_eq!(trace.view().operation(), "child");
        assert_eq!(trace.view().parent_of(1), Some(0));
        trace.push(failed(row(1, 1, None, "root", "s", 0, 50), "E", "m"));
        let t = trace.view();
        assert_eq!(
            (t.operation(), t.span_count(), t.error_count()),
            ("root", 3, 1)
        );
        assert_eq!(t.children()[0], vec![1]);
    }

    #[test]
    fn serialises_to_the_trace_dict() {
        let trace = trace_of(checkout_rows(), 1);
        let v = serde_json::to_value(&trace).unwrap();
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
        let health = trace_of(checkout_rows(), 2);
        let headline = serde_json::to_value(health.view().headline()).unwrap();
        assert_eq!(headline["status"], "ok");
        assert!(headline.get("spans").is_none());
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        let mut headline_keys: Vec<&str> = headline
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .chain(["spans"])
            .collect();
        headline_keys.sort();
        assert_eq!(keys, headline_keys);
    }
}
