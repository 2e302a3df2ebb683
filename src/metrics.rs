//! Tracer counters. The hot path only touches the first block (one cache
//! line, written by traced code); the collector thread owns the second, and
//! each sink keeps its own (see `sinks::worker`); a snapshot adds them up.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crossbeam_utils::CachePadded;

use crate::sinks::worker::SinkWorker;

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
    pub attributes_dropped: AtomicU64,
    pub events_dropped: AtomicU64,
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

impl MetricsSnapshot {
    fn add(&mut self, key: &'static str, value: u64) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v += value,
            None => self.entries.push((key, value)),
        }
    }

    /// Adds what the sinks did: the file sink's deliveries are
    /// `spans_written` and its losses `spans_dropped`; every other sink's
    /// are `spans_exported` and `spans_export_dropped`.
    pub(crate) fn add_sinks(&mut self, sinks: &[SinkWorker]) {
        let (mut written, mut write_errors, mut lost_writing, mut queue_full_files) = (0, 0, 0, 0);
        let (mut files_opened, mut files_deleted, mut spans_deleted) = (0, 0, 0);
        let (mut exported, mut export_dropped, mut export_errors, mut summaries) = (0, 0, 0, 0);
        for sink in sinks {
            let c = sink.counters();
            let delivered = c.delivered.load(Relaxed);
            let lost = c.lost.load(Relaxed) + c.dropped_at_shutdown.load(Relaxed);
            let queue_full = c.dropped_queue_full.load(Relaxed);
            let errors = c.errors.load(Relaxed);
            if sink.is_file() {
                written += delivered;
                write_errors += errors;
                lost_writing += lost;
                queue_full_files += queue_full;
                summaries += c.summaries_written.load(Relaxed);
                files_opened += c.files_opened.load(Relaxed);
                files_deleted += c.files_deleted.load(Relaxed);
                spans_deleted += c.spans_deleted.load(Relaxed);
            } else {
                exported += delivered;
                export_dropped += lost + queue_full;
                export_errors += errors;
            }
        }
        self.add("spans_dropped", lost_writing + queue_full_files);
        self.add("spans_written", written);
        self.add("write_errors", write_errors);
        self.add("spans_dropped_write_error", lost_writing);
        self.add("spans_dropped_sink_full", queue_full_files);
        self.add("traces_written", summaries);
        self.add("files_opened", files_opened);
        self.add("files_deleted", files_deleted);
        self.add("spans_deleted", spans_deleted);
        self.add("spans_exported", exported);
        self.add("spans_export_dropped", export_dropped);
        self.add("export_errors", export_errors);
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
        let dropped_tail = w.dropped_tail_limit.load(Relaxed);
        MetricsSnapshot {
            entries: vec![
                ("traces_started", started),
                ("traces_completed", completed),
                ("spans_created", created),
                ("spans_finished", finished),
                (
                    "spans_dropped",
                    dropped_full + dropped_shutdown + dropped_tail,
                ),
                ("errors", h.errors.load(Relaxed)),
                ("active_traces", started.saturating_sub(completed)),
                ("active_spans", created.saturating_sub(finished)),
                ("spans_dropped_buffer_full", dropped_full),
                ("spans_dropped_after_shutdown", dropped_shutdown),
                ("spans_dropped_tail_limit", dropped_tail),
                (
                    "spans_unsampled",
                    h.spans_unsampled.load(Relaxed) + w.spans_unsampled.load(Relaxed),
                ),
                ("traces_kept_by_tail", w.traces_kept_by_tail.load(Relaxed)),
                ("spans_buffered", buffered),
                ("attributes_dropped", w.attributes_dropped.load(Relaxed)),
                ("events_dropped", w.events_dropped.load(Relaxed)),
                ("traces_evicted", w.traces_evicted.load(Relaxed)),
            ],
        }
    }
}
