//! The server's searchable index: one [`TraceStore`] behind a read-write
//! lock (queries read concurrently, the follower writes in batches), with
//! the store's [`Retention`] bounding memory. Evicted traces leave the
//! index only: their lines stay in the files, where the CLI still reads
//! them.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{RwLock, RwLockReadGuard};
use serde::Serialize;

use crate::analysis::SpanRow;
use crate::query::{Retention, TraceStore};

pub struct Index {
    store: RwLock<TraceStore>,
    retention: Retention,
    lines_skipped: AtomicU64,
    files_followed: AtomicU64,
    read_errors: AtomicU64,
}

/// What the index holds and what it let go, for `/api/ferrotrace/status`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IndexCounters {
    pub traces: usize,
    pub spans: usize,
    pub traces_evicted: u64,
    pub spans_evicted: u64,
    /// Lines in span files that are not span records (torn or foreign).
    pub lines_skipped: u64,
    pub files_followed: u64,
    /// Span files that could not be read (vanished, no permission).
    pub read_errors: u64,
    pub max_spans: Option<usize>,
    pub max_traces: Option<usize>,
}

impl Index {
    pub fn new(retention: Retention) -> Index {
        Index {
            store: RwLock::new(TraceStore::new(retention)),
            retention,
            lines_skipped: AtomicU64::new(0),
            files_followed: AtomicU64::new(0),
            read_errors: AtomicU64::new(0),
        }
    }

    /// The start-up load: rows read in parallel, stored in one go (the
    /// store's fast path), then cut to the retention.
    pub fn load(&self, parts: Vec<Vec<SpanRow>>) {
        let mut store = TraceStore::from_parts(parts);
        store.set_retention(self.retention);
        store.assemble(crate::analysis::read_threads());
        *self.store.write() = store;
    }

    pub fn add(&self, rows: Vec<SpanRow>) {
        if rows.is_empty() {
            return;
        }
        let mut store = self.store.write();
        for row in rows {
            store.add(row);
        }
    }

    pub fn read(&self) -> RwLockReadGuard<'_, TraceStore> {
        self.store.read()
    }

    pub fn span_count(&self) -> usize {
        self.store.read().span_count()
    }

    pub fn count_skipped(&self, lines: u64) {
        self.lines_skipped.fetch_add(lines, Ordering::Relaxed);
    }

    pub fn count_read_error(&self) {
        self.read_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_files_followed(&self, files: usize) {
        self.files_followed.store(files as u64, Ordering::Relaxed);
    }

    pub fn counters(&self) -> IndexCounters {
        let store = self.store.read();
        let evicted = store.counters();
        IndexCounters {
            traces: store.len(),
            spans: store.span_count(),
            traces_evicted: evicted.traces_evicted,
            spans_evicted: evicted.spans_evicted,
            lines_skipped: self.lines_skipped.load(Ordering::Relaxed),
            files_followed: self.files_followed.load(Ordering::Relaxed),
            read_errors: self.read_errors.load(Ordering::Relaxed),
            max_spans: self.retention.max_spans,
            max_traces: self.retention.max_traces,
        }
    }
}
