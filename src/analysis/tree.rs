//! A trace as a text tree, for terminals:
//!
//! ```text
//! Trace 4bf92f3577b34da6a3ce929d0e0e4736 (3 spans, 100.0ms)
//! └─ GET /checkout (frontend) - 100.0ms (100.0%)
//!    ├─ auth.verify (auth) - 10.0ms (10.0%)
//!    └─ db.insert (orders) - 50.0ms (50.0%) ✗ error: TimeoutError: query timed out
//! ```
//!
//! Percentages are of the trace's duration. Spans whose parent was not
//! collected are drawn at the top level after the root, marked with the
//! missing parent's id.

use std::fmt::Write;

use super::record::SpanRow;
use super::traces::TraceView;

/// Longest error message shown on a span's line, in characters.
const MAX_MESSAGE_CHARS: usize = 120;

/// Renders `trace` as a tree (no trailing newline).
pub(crate) fn render_tree(trace: &TraceView<'_>) -> String {
    let mut out = String::new();
    let spans = trace.span_count();
    let _ = write!(
        out,
        "Trace {} ({} span{}, {})",
        trace.trace_id().to_hex().as_str(),
        spans,
        if spans == 1 { "" } else { "s" },
        format_ms(trace.duration_ms())
    );
    let children = trace.children();
    let total_ms = trace.duration_ms();
    let mut drawn = vec![false; spans];

    let mut top = trace.top_level();
    // Spans whose parent links form a cycle are reachable from no top-level
    // span; draw them at the top level too rather than drop them.
    let reachable = mark_reachable(&top, &children, spans);
    top.extend((0..spans).filter(|&p| !reachable[p]));

    // (position, prefix for its line, is last among its siblings)
    let mut stack: Vec<(usize, String, bool)> = Vec::with_capacity(top.len());
    for (k, &position) in top.iter().enumerate().rev() {
        stack.push((position, String::new(), k + 1 == top.len()));
    }
    while let Some((position, prefix, last)) = stack.pop() {
        if std::mem::replace(&mut drawn[position], true) {
            continue;
        }
        let span = trace.span(position);
        out.push('\n');
        out.push_str(&prefix);
        out.push_str(if last { "└─ " } else { "├─ " });
        write_span_line(&mut out, span, total_ms);
        if trace.parent_of(position).is_none() {
            if let Some(parent) = span.parent_id {
                // A root with a remote parent is the normal case downstream.
                if Some(position) != trace.root_position() {
                    let _ = write!(out, " [parent {} missing]", parent.to_hex().as_str());
                }
            }
        }
        let child_prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
        let kids = &children[position];
        for (k, &child) in kids.iter().enumerate().rev() {
            stack.push((child, child_prefix.clone(), k + 1 == kids.len()));
        }
    }
    out
}

fn mark_reachable(top: &[usize], children: &[Vec<usize>], spans: usize) -> Vec<bool> {
    let mut reachable = vec![false; spans];
    let mut pending: Vec<usize> = top.to_vec();
    while let Some(p) = pending.pop() {
        if !std::mem::replace(&mut reachable[p], true) {
            pending.extend(&children[p]);
        }
    }
    reachable
}

fn write_span_line(out: &mut String, span: &SpanRow, total_ms: f64) {
    let share = if total_ms > 0.0 {
        span.duration_ms / total_ms * 100.0
    } else {
        0.0
    };
    let _ = write!(
        out,
        "{} ({}) - {} ({:.1}%)",
        span.name,
        span.service,
        format_ms(span.duration_ms),
        share
    );
    if span.is_error() || span.error.is_some() {
        out.push_str(" ✗ error");
        if let Some(error) = &span.error {
            let _ = write!(out, ": {}", error.error_type);
            let message = error.message.lines().next().unwrap_or("").trim();
            if !message.is_empty() {
                out.push_str(": ");
                let mut chars = message.chars();
                out.extend(chars.by_ref().take(MAX_MESSAGE_CHARS));
                if chars.next().is_some() {
                    out.push('…');
                }
            }
        }
    }
}

/// Milliseconds with one decimal, or three below a millisecond.
pub(crate) fn format_ms(ms: f64) -> String {
    if ms >= 1.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{ms:.3}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::traces::tests::{checkout_rows, failed, row, shuffled};
    use crate::ids::TraceId;
    use crate::query::TraceStore;

    #[test]
    fn renders_the_checkout_trace_exactly() {
        let set = TraceStore::from_iter(shuffled(checkout_rows(), 11));
        let text = render_tree(&set.get(TraceId(1)).unwrap().view());
        let expected = "\
Trace 00000000000000000000000000000001 (5 spans, 100.0ms)
└─ GET /checkout (frontend) - 100.0ms (100.0%)
   └─ POST /api/order (api) - 90.0ms (90.0%)
      ├─ auth.verify (auth) - 10.0ms (10.0%)
      └─ orders.create (orders) - 65.0ms (65.0%)
         └─ db.insert (orders) - 50.0ms (50.0%) ✗ error: TimeoutError: query 42 timed out";
        assert_eq!(text, expected);
    }

    #[test]
    fn orphans_are_drawn_at_the_top_level() {
        let mut quick = row(1, 5, Some(1), "cache.get", "api", 1, 1);
        quick.duration_ms = 0.12;
        let rows = vec![
            row(1, 1, None, "GET /", "api", 0, 40),
            row(1, 2, Some(1), "a", "api", 2, 10),
            row(1, 3, Some(1), "b", "api", 10, 30),
            row(1, 4, Some(9), "lost child", "worker", 12, 20),
            quick,
            failed(row(1, 6, Some(3), "c", "db", 11, 29), "E", ""),
        ];
        let set = TraceStore::from_iter(rows);
        let text = render_tree(&set.get(TraceId(1)).unwrap().view());
        let expected = "\
Trace 00000000000000000000000000000001 (6 spans, 40.0ms)
├─ GET / (api) - 40.0ms (100.0%)
│  ├─ cache.get (api) - 0.120ms (0.3%)
│  ├─ a (api) - 8.0ms (20.0%)
│  └─ b (api) - 20.0ms (50.0%)
│     └─ c (db) - 18.0ms (45.0%) ✗ error: E
└─ lost child (worker) - 8.0ms (20.0%) [parent 0000000000000009 missing]";
        assert_eq!(text, expected);
    }

    #[test]
    fn single_span_cycles_and_long_messages() {
        let long = "x".repeat(300);
        let rows = vec![failed(
            row(2, 1, None, "only", "s", 0, 5),
            "ValueError",
            &long,
        )];
        let set = TraceStore::from_iter(rows);
        let text = render_tree(&set.get(TraceId(2)).unwrap().view());
        assert!(text.starts_with("Trace 00000000000000000000000000000002 (1 span, 5.0ms)\n"));
        assert!(text.ends_with(&format!("ValueError: {}…", "x".repeat(120))));

        let cycle = vec![
            row(6, 1, Some(2), "a", "s", 10, 20),
            row(6, 2, Some(1), "b", "s", 15, 40),
        ];
        let set = TraceStore::from_iter(cycle);
        let text = render_tree(&set.get(TraceId(6)).unwrap().view());
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.contains("a (s)") && text.contains("b (s)"));
    }

    #[test]
    fn formats_durations() {
        assert_eq!(format_ms(1523.04), "1523.0ms");
        assert_eq!(format_ms(12.34), "12.3ms");
        assert_eq!(format_ms(0.045), "0.045ms");
        assert_eq!(format_ms(0.0), "0.000ms");
    }
}
