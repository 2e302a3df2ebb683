//! The critical path of a trace, by Jaeger's algorithm: the chain of work
//! that the root's end actually waited on.
//!
//! Starting at the root's end, walk back: the span's last-finishing child
//! that finished at or before the current point is what the span was
//! waiting for, so the time between that child's end and the point is the
//! span's own, and the walk continues inside the child from the child's
//! end; when a child is done, the walk resumes in the parent from the
//! child's start. Children running past their parent's end are clamped to
//! it (and those entirely outside it dropped), as Jaeger does, so clock skew
//! between services cannot make the path longer than the root.
//!
//! The walk is iterative: a trace thousands of spans deep cannot overflow
//! the stack.

use compact_str::CompactString;
use serde::Serialize;

use super::traces::TraceView;
use crate::ids::SpanId;

/// A stretch of the critical path spent in one span's own work.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PathSegment {
    #[serde(serialize_with = "super::record::hex_span_id")]
    pub span_id: SpanId,
    pub name: CompactString,
    pub service: CompactString,
    pub start_ns: u64,
    pub end_ns: u64,
    /// `end_ns - start_ns` in milliseconds.
    pub duration_ms: f64,
}

/// The critical path of `trace`, in time order; empty if it has no root.
/// The segments' durations add up to the root's (clamped) duration.
pub(crate) fn critical_path(trace: &TraceView<'_>) -> Vec<PathSegment> {
    let Some(root) = trace.root_position() else {
        return Vec::new();
    };
    let children = trace.children();
    let bounds = clamped_bounds(trace, root, &children);
    // Each span's children that survived clamping, last to finish first
    // (the longer of two that end together first).
    let waiting_order = |position: usize| {
        let mut kids: Vec<usize> = children[position]
            .iter()
            .copied()
            .filter(|&c| bounds[c].is_some())
            .collect();
        kids.sort_by_key(|&c| {
            let (start, end) = bounds[c].unwrap_or_default();
            (std::cmp::Reverse(end), start)
        });
        kids
    };

    struct Frame {
        position: usize,
        children: Vec<usize>,
        next_child: usize,
        /// The point the walk has come back to inside this span.
        until: u64,
    }

    let mut backwards: Vec<(usize, u64, u64)> = Vec::new();
    let (_, root_end) = bounds[root].unwrap_or_default();
    let mut stack = vec![Frame {
        position: root,
        children: waiting_order(root),
        next_child: 0,
        until: root_end,
    }];
    while let Some(frame) = stack.last_mut() {
        let until = frame.until;
        let waited_on = frame.children[frame.next_child..]
            .iter()
            .position(|&c| bounds[c].is_some_and(|(_, end)| end <= until));
        match waited_on {
            Some(offset) => {
                let child = frame.children[frame.next_child + offset];
                frame.next_child += offset + 1;
                let (child_start, child_end) = bounds[child].unwrap_or_default();
                if child_end < until {
                    backwards.push((frame.position, child_end, until));
                }
                frame.until = child_start;
                stack.push(Frame {
                    position: child,
                    children: waiting_order(child),
                    next_child: 0,
                    until: child_end,
                });
            }
            None => {
                let (start, _) = bounds[frame.position].unwrap_or_default();
                if start < until {
                    backwards.push((frame.position, start, until));
                }
                stack.pop();
            }
        }
    }

    let mut path: Vec<PathSegment> = Vec::with_capacity(backwards.len());
    for (position, start_ns, end_ns) in backwards.into_iter().rev() {
        let span = trace.span(position);
        match path.last_mut() {
            Some(last) if last.span_id == span.span_id && last.end_ns == start_ns => {
                last.end_ns = end_ns;
                last.duration_ms = (end_ns - last.start_ns) as f64 / 1e6;
            }
            _ => path.push(PathSegment {
                span_id: span.span_id,
                name: span.name.clone(),
                service: span.service.clone(),
                start_ns,
                end_ns,
                duration_ms: (end_ns - start_ns) as f64 / 1e6,
            }),
        }
    }
    path
}

/// Each span's interval clamped to its (clamped) parent's, for the root's
/// subtree; `None` for spans outside it or left with no length.
fn clamped_bounds(
    trace: &TraceView<'_>,
    root: usize,
    children: &[Vec<usize>],
) -> Vec<Option<(u64, u64)>> {
    let mut bounds = vec![None; trace.span_count()];
    let root_span = trace.span(root);
    bounds[root] = Some((root_span.start_ns, root_span.end_ns.max(root_span.start_ns)));
    let mut pending = vec![root];
    while let Some(position) = pending.pop() {
        let Some((lo, hi)) = bounds[position] else {
            continue;
        };
        for &child in &children[position] {
            let span = trace.span(child);
            let start = span.start_ns.clamp(lo, hi);
            let end = span.end_ns.clamp(lo, hi);
            if start < end {
                bounds[child] = Some((start, end));
                pending.push(child);
            }
        }
    }
    bounds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::traces::tests::{checkout_rows, row, shuffled};
    use crate::ids::TraceId;
    use crate::query::TraceStore;

    const MS: u64 = 1_000_000;

    fn names_and_ms(path: &[PathSegment]) -> Vec<(String, u64, u64)> {
        let base = path.first().map_or(0, |s| s.start_ns);
        path.iter()
            .map(|s| {
                (
                    s.name.to_string(),
                    (s.start_ns - base) / MS,
                    (s.end_ns - base) / MS,
                )
            })
            .collect()
    }

    #[test]
    fn hand_made_trace_with_parallel_and_overflowing_children() {
        // A 0..100 with B 10..40 and C 30..90 in parallel, D 95..130 running
        // past A's end, E 40..80 inside C, and F starting after A ended.
        let rows = vec![
            row(1, 1, None, "A", "s", 0, 100),
            row(1, 2, Some(1), "B", "s", 10, 40),
            row(1, 3, Some(1), "C", "s", 30, 90),
            row(1, 4, Some(1), "D", "t", 95, 130),
            row(1, 5, Some(3), "E", "s", 40, 80),
            row(1, 6, Some(1), "F", "s", 120, 140),
        ];
        let set = TraceStore::from_iter(shuffled(rows, 3));
        let path = critical_path(&set.get(TraceId(1)).unwrap().view());
        assert_eq!(
            names_and_ms(&path),
            vec![
                ("A".into(), 0, 30),
                ("C".into(), 30, 40),
                ("E".into(), 40, 80),
                ("C".into(), 80, 90),
                ("A".into(), 90, 95),
                ("D".into(), 95, 100),
            ]
        );
        assert_eq!(path[5].service, "t");
        assert_eq!(path[2].duration_ms, 40.0);
        let total: f64 = path.iter().map(|s| s.duration_ms).sum();
        assert_eq!(total, 100.0);
    }

    #[test]
    fn sequential_children_that_touch_are_both_on_the_path() {
        let rows = vec![
            row(1, 1, None, "root", "s", 0, 30),
            row(1, 2, Some(1), "first", "s", 0, 10),
            row(1, 3, Some(1), "second", "s", 10, 30),
            row(1, 4, Some(1), "instant", "s", 10, 10),
        ];
        let set = TraceStore::from_iter(rows);
        let path = critical_path(&set.get(TraceId(1)).unwrap().view());
        assert_eq!(
            names_and_ms(&path),
            vec![("first".into(), 0, 10), ("second".into(), 10, 30)]
        );
    }

    #[test]
    fn checkout_path_goes_through_the_database() {
        let set = TraceStore::from_iter(checkout_rows());
        let path = critical_path(&set.get(TraceId(1)).unwrap().view());
        let names: Vec<&str> = path.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "GET /checkout",
                "POST /api/order",
                "auth.verify",
                "POST /api/order",
                "orders.create",
                "db.insert",
                "orders.create",
                "POST /api/order",
                "GET /checkout"
            ]
        );
        let total: f64 = path.iter().map(|s| s.duration_ms).sum();
        assert_eq!(total, 100.0);
    }

    #[test]
    fn no_root_no_path_and_deep_traces_do_not_overflow() {
        let cycle = vec![
            row(6, 1, Some(2), "a", "s", 10, 20),
            row(6, 2, Some(1), "b", "s", 15, 40),
        ];
        let set = TraceStore::from_iter(cycle);
        assert!(critical_path(&set.get(TraceId(6)).unwrap().view()).is_empty());

        let depth = 20_000u64;
        let rows: Vec<_> = (1..=depth)
            .map(|i| {
                let parent = (i > 1).then(|| i - 1);
                row(7, i, parent, "nested", "s", i, 2 * depth + 10 - i)
            })
            .collect();
        let set = TraceStore::from_iter(rows);
        let path = critical_path(&set.get(TraceId(7)).unwrap().view());
        assert_eq!(path.len() as u64, 2 * depth - 1);
        let total: f64 = path.iter().map(|s| s.duration_ms).sum();
        assert!((total - (2 * depth + 8) as f64).abs() < 1e-6, "{total}");
    }
}
