//! Tracer counters. The hot path only touches the first block (one cache
//! line, written by traced code); the background thread owns the second.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crossbeam_utils::CachePadded;

#[derive(Default)]
pub struct HotCounters {
    pub spans_created: AtomicU64,
    pub spans_finished: AtomicU64,
    pub traces_started: AtomicU64,
    pub traces_completed: AtomicU64,
    pub errors: AtomicU64,
    pub dropped_buffer_full: AtomicU64,
    pub dropped_after_shutdown: AtomicU64,
    pub spans_unsampled: AtomicU64,
}

#[derive(Default)]
pub struct WorkerCounters {
    pub spans_written: AtomicU64,
    pub traces_written: AtomicU64,
    pub write_errors: AtomicU64,
    pub dropped_write_error: AtomicU64,
    pub attributes_dropped: AtomicU64,
    pub events_dropped: AtomicU64,
    pub files_opened: AtomicU64,
    /// Completed traces dropped from the in-process store (oldest first).
    pub traces_evicted: AtomicU64,
    /// Spans of head-unsampled traces the tail rules did not keep.
    pub spans_unsampled: AtomicU64,
    /// Spans of tail-kept traces that exceeded the per-trace hold limit.
    pub dropped_tail_limit: AtomicU64,
    pub traces_kept_by_tail: AtomicU64,
}

#[derive(Default)]
pub struct Counters {
    pub hot: CachePadded<HotCounters>,
    pub worker: CachePadded<WorkerCounters>,
}

/// A consistent-enough copy of every counter, for `tracer.metrics()`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    pub entries: Vec<(&'static str, u64)>,
}

impl MetricsSnapshot {
    pub fn get(&self, key: &str) -> Option<u64> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }
}

impl Counters {
    pub fn snapshot(&self, buffered: u64) -> MetricsSnapshot {
        let h = &self.hot;
        let w = &self.worker;
        let created = h.spans_created.load(Relaxed);
        let finished = h.spans_finished.load(Relaxed);
        let started = h.traces_started.load(Relaxed);
        let completed = h.traces_completed.load(Relaxed);
        let dropped_full = h.dropped_buffer_full.load(Relaxed);
        let dropped_shutdown = h.dropped_after_shutdown.load(Relaxed);
        let dropped_write = w.dropped_write_error.load(Relaxed);
        let dropped_tail = w.dropped_tail_limit.load(Relaxed);
        MetricsSnapshot {
            entries: vec![
                ("traces_started", started),
                ("traces_completed", completed),
                ("spans_created", created),
                ("spans_finished", finished),
                (
                    "spans_dropped",
                    dropped_full + dropped_shutdown + dropped_write + dropped_tail,
                ),
                ("errors", h.errors.load(Relaxed)),
                ("active_traces", started.saturating_sub(completed)),
                ("active_spans", created.saturating_sub(finished)),
                ("spans_written", w.spans_written.load(Relaxed)),
                ("write_errors", w.write_errors.load(Relaxed)),
                ("spans_dropped_buffer_full", dropped_full),
                ("spans_dropped_write_error", dropped_write),
                ("spans_dropped_after_shutdown", dropped_shutdown),
                ("spans_dropped_tail_limit", dropped_tail),
                (
                    "spans_unsampled",
                    h.spans_unsampled.load(Relaxed) + w.spans_unsampled.load(Relaxed),
                ),
                ("traces_kept_by_tail", w.traces_kept_by_tail.load(Relaxed)),
                ("spans_buffered", buffered),
                ("traces_written", w.traces_written.load(Relaxed)),
                ("attributes_dropped", w.attributes_dropped.load(Relaxed)),
                ("events_dropped", w.events_dropped.load(Relaxed)),
                ("files_opened", w.files_opened.load(Relaxed)),
                ("traces_evicted", w.traces_evicted.load(Relaxed)),
            ],
        }
    }
}
