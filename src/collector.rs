//! The pipeline between traced code and disk: a bounded buffer that
//! finished spans are pushed into, and one background thread
//! ("ferrotrace-writer") that drains it on an interval, serialises JSONL,
//! tallies traces, and answers flush requests. The thread never touches
//! Python, so it can neither deadlock with the GIL nor hold up interpreter
//! exit.
//!
//! After `fork()` the child's copy of the pipeline may be mid-operation (the
//! writer thread does not exist in the child, and a lock it held stays held),
//! so the child gets a brand-new pipeline and the old one is deliberately
//! leaked: see [`Collector::reset_after_fork`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::buffer::{FinishedSpan, SpanBuffer};
use crate::clock;
use crate::config::Config;
use crate::jsonl;
use crate::live::LiveAnalysis;
use crate::metrics::{Counters, MetricsSnapshot};
use crate::pool::RecordPool;
use crate::span::Status;
use crate::writer::RotatingFile;

/// Spans serialised per write call: bounds the writer's memory.
const BATCH: usize = 8192;
/// How often (in finished spans) traced code checks whether the buffer is
/// filling up fast enough to wake the writer early.
const WAKE_CHECK_EVERY: u64 = 256;

/// Records kept for reuse: enough to cover a drain interval's worth of
/// spans at high rates without holding much memory when idle.
const RECYCLED_RECORDS: usize = 4096;

/// Why a finished span was not handed to the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    BufferFull,
    ShutDown,
}

pub struct Pipeline {
    buffer: SpanBuffer,
    /// Written records, ready to be reused by new spans.
    pub pool: RecordPool,
    /// Latency sketches, service graph and recent traces, kept by the writer.
    analysis: Mutex<LiveAnalysis>,
    pub counters: Counters,
    worker: OnceLock<Thread>,
    flush_requested: AtomicU64,
    flush_done: Mutex<u64>,
    flush_cond: Condvar,
    shutdown: AtomicBool,
    stopped: Mutex<bool>,
    stopped_cond: Condvar,
    /// Set when a warning is waiting for the binding layer to log it.
    has_warnings: AtomicBool,
    warnings: Mutex<Vec<String>>,
    warned_write_error: AtomicBool,
    warned_buffer_full: AtomicBool,
    files: Mutex<Vec<PathBuf>>,
}

pub struct Collector {
    pub config: Config,
    pipeline: AtomicPtr<Pipeline>,
}

impl Collector {
    pub fn new(config: Config) -> Arc<Self> {
        let pipeline = Pipeline::start(&config);
        Arc::new(Collector {
            config,
            pipeline: AtomicPtr::new(Arc::into_raw(pipeline) as *mut Pipeline),
        })
    }

    #[inline]
    pub fn pipeline(&self) -> &Pipeline {
        // SAFETY: the pointer always comes from `Arc::into_raw` and the
        // pipeline it points to is never freed while `self` lives: it is
        // released in `Drop`, and one replaced after fork is leaked.
        unsafe { &*self.pipeline.load(Ordering::Acquire) }
    }

    /// Counts a span that just started.
    #[inline]
    pub fn span_started(&self, local_root: bool) {
        let hot = &self.pipeline().counters.hot;
        hot.spans_created.fetch_add(1, Ordering::Relaxed);
        if local_root {
            hot.traces_started.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a finished span and, if it is sampled, hands it to the
    /// writer. Never blocks.
    #[inline]
    pub fn submit(&self, span: FinishedSpan) -> Result<(), Refused> {
        let pipeline = self.pipeline();
        let hot = &pipeline.counters.hot;
        let n = hot.spans_finished.fetch_add(1, Ordering::Relaxed);
        if span.status == Status::Error {
            hot.errors.fetch_add(1, Ordering::Relaxed);
        }
        if span.is_local_root {
            hot.traces_completed.fetch_add(1, Ordering::Relaxed);
        }
        if !span.sampled && !self.config.tail.enabled() {
            hot.spans_unsampled.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        pipeline.submit(span, n, &self.config)
    }

    /// Counts a finished span that recorded nothing (head-sampled out).
    #[inline]
    pub fn unrecorded_span_finished(&self, local_root: bool, failed: bool) {
        let hot = &self.pipeline().counters.hot;
        hot.spans_finished.fetch_add(1, Ordering::Relaxed);
        hot.spans_unsampled.fetch_add(1, Ordering::Relaxed);
        if local_root {
            hot.traces_completed.fetch_add(1, Ordering::Relaxed);
        }
        if failed {
            hot.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn flush(&self, timeout: Duration) -> bool {
        self.pipeline().flush(timeout)
    }

    /// Flushes, then stops the writer thread. Later spans are counted as
    /// dropped. Returns whether the writer stopped within `timeout`.
    pub fn shutdown(&self, timeout: Duration) -> bool {
        self.pipeline().shutdown(timeout)
    }

    pub fn is_shut_down(&self) -> bool {
        self.pipeline().shutdown.load(Ordering::Acquire)
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        let p = self.pipeline();
        p.counters.snapshot(p.buffer.len() as u64)
    }

    /// Warnings the binding layer should log (each kind is raised once).
    pub fn take_warnings(&self) -> Vec<String> {
        self.pipeline().take_warnings()
    }

    #[inline]
    pub fn has_warnings(&self) -> bool {
        self.pipeline().has_warnings.load(Ordering::Relaxed)
    }

    /// Runs `f` on the in-process analysis. Call `flush` first for it to
    /// reflect every span finished so far.
    pub fn with_analysis<R>(&self, f: impl FnOnce(&LiveAnalysis) -> R) -> R {
        f(&self.pipeline().analysis.lock())
    }

    /// Files this tracer has written to, in the order they were opened.
    pub fn files(&self) -> Vec<PathBuf> {
        self.pipeline().files.lock().clone()
    }

    /// In a forked child: abandon the inherited pipeline (its spans belong
    /// to the parent, which writes them; its writer thread does not exist
    /// here; its locks may be held forever) and start a fresh one.
    ///
    /// Must only be called in the child right after fork, while it has a
    /// single thread.
    pub fn reset_after_fork(&self) {
        let fresh = Arc::into_raw(Pipeline::start(&self.config)) as *mut Pipeline;
        // The old pipeline is leaked on purpose: touching its queue or
        // locks could spin or deadlock, and freeing it would free memory the
        // old writer's (non-existent) thread state still points into.
        self.pipeline.store(fresh, Ordering::Release);
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let ptr = self.pipeline.load(Ordering::Acquire);
        // SAFETY: matches the `Arc::into_raw` that produced `ptr`.
        let pipeline = unsafe { Arc::from_raw(ptr) };
        // The writer keeps its own Arc: let it drain what is left and exit.
        pipeline.shutdown.store(true, Ordering::Release);
        pipeline.wake();
    }
}

impl Pipeline {
    fn start(config: &Config) -> Arc<Self> {
        let pipeline = Arc::new(Pipeline {
            buffer: SpanBuffer::new(config.buffer_size),
            pool: RecordPool::new(RECYCLED_RECORDS),
            analysis: Mutex::new(LiveAnalysis::new(
                &config.service_name,
                config.live,
                config.tail,
            )),
            counters: Counters::default(),
            worker: OnceLock::new(),
            flush_requested: AtomicU64::new(0),
            flush_done: Mutex::new(0),
            flush_cond: Condvar::new(),
            shutdown: AtomicBool::new(false),
            stopped: Mutex::new(false),
            stopped_cond: Condvar::new(),
            has_warnings: AtomicBool::new(false),
            warnings: Mutex::new(Vec::new()),
            warned_write_error: AtomicBool::new(false),
            warned_buffer_full: AtomicBool::new(false),
            files: Mutex::new(Vec::new()),
        });
        let worker_pipeline = Arc::clone(&pipeline);
        let worker_config = config.clone();
        let spawned = thread::Builder::new()
            .name("ferrotrace-writer".into())
            .spawn(move || Writer::new(worker_pipeline, worker_config).run());
        match spawned {
            Ok(handle) => {
                let _ = pipeline.worker.set(handle.thread().clone());
            }
            Err(e) => {
                // No thread, no writing: refuse spans (counted) rather than
                // let them pile up.
                pipeline.shutdown.store(true, Ordering::Release);
                *pipeline.stopped.lock() = true;
                pipeline.warn(format!("ferrotrace could not start its writer thread: {e}"));
            }
        }
        pipeline
    }

    #[inline]
    fn submit(&self, span: FinishedSpan, seq: u64, config: &Config) -> Result<(), Refused> {
        let hot = &self.counters.hot;
        if self.shutdown.load(Ordering::Relaxed) {
            hot.dropped_after_shutdown.fetch_add(1, Ordering::Relaxed);
            return Err(Refused::ShutDown);
        }
        match self.buffer.push(span) {
            Ok(()) => {
                if seq % WAKE_CHECK_EVERY == 0 && self.buffer.len() * 4 >= config.buffer_size {
                    self.wake();
                }
                Ok(())
            }
            Err(_) => {
                hot.dropped_buffer_full.fetch_add(1, Ordering::Relaxed);
                if !self.warned_buffer_full.swap(true, Ordering::Relaxed) {
                    self.warn(format!(
                        "ferrotrace span buffer is full ({} spans): spans are being dropped \
                         and counted in metrics()['spans_dropped']; raise buffer_size or \
                         lower the span rate",
                        config.buffer_size
                    ));
                }
                self.wake();
                Err(Refused::BufferFull)
            }
        }
    }

    fn wake(&self) {
        if let Some(t) = self.worker.get() {
            t.unpark();
        }
    }

    fn warn(&self, message: String) {
        self.warnings.lock().push(message);
        self.has_warnings.store(true, Ordering::Release);
    }

    fn take_warnings(&self) -> Vec<String> {
        if !self.has_warnings.swap(false, Ordering::Acquire) {
            return Vec::new();
        }
        std::mem::take(&mut *self.warnings.lock())
    }

    /// True when the writer processed everything finished before the call
    /// and lost none of it to a write error meanwhile.
    fn flush(&self, timeout: Duration) -> bool {
        if *self.stopped.lock() {
            return self.buffer.is_empty();
        }
        let lost = || {
            self.counters
                .worker
                .dropped_write_error
                .load(Ordering::Relaxed)
        };
        let lost_before = lost();
        let target = self.flush_requested.fetch_add(1, Ordering::SeqCst) + 1;
        self.wake();
        let deadline = Instant::now() + timeout;
        let mut done = self.flush_done.lock();
        while *done < target {
            if self.flush_cond.wait_until(&mut done, deadline).timed_out() {
                return *done >= target && lost() == lost_before;
            }
        }
        lost() == lost_before
    }

    fn shutdown(&self, timeout: Duration) -> bool {
        self.shutdown.store(true, Ordering::Release);
        self.wake();
        let deadline = Instant::now() + timeout;
        let mut stopped = self.stopped.lock();
        while !*stopped {
            if self
                .stopped_cond
                .wait_until(&mut stopped, deadline)
                .timed_out()
            {
                return *stopped;
            }
        }
        true
    }
}

/// The background thread's state: files, reusable buffers, trace tallies.
struct Writer {
    pipeline: Arc<Pipeline>,
    config: Config,
    spans_file: Option<RotatingFile>,
    traces_file: Option<RotatingFile>,
    batch: Vec<FinishedSpan>,
    /// Held spans the tail rules released for writing in this batch.
    released: Vec<FinishedSpan>,
    span_bytes: Vec<u8>,
    span_ends: Vec<usize>,
    trace_bytes: Vec<u8>,
    trace_ends: Vec<usize>,
    last_resync: Instant,
}

impl Writer {
    fn new(pipeline: Arc<Pipeline>, config: Config) -> Self {
        let file = |prefix: &str| {
            config.output_dir.as_ref().map(|dir| {
                RotatingFile::new(dir, prefix, &config.service_name, config.max_file_bytes)
            })
        };
        Writer {
            spans_file: file("spans"),
            traces_file: file("traces"),
            pipeline,
            batch: Vec::with_capacity(BATCH),
            released: Vec::new(),
            span_bytes: Vec::with_capacity(1 << 20),
            span_ends: Vec::with_capacity(BATCH),
            trace_bytes: Vec::with_capacity(1 << 16),
            trace_ends: Vec::new(),
            last_resync: Instant::now(),
            config,
        }
    }

    fn run(mut self) {
        let interval = Duration::from_millis(self.config.flush_interval_ms.max(1));
        loop {
            // Read before draining: every span finished before a flush
            // request was pushed before the request, so this drain sees it.
            let requested = self.pipeline.flush_requested.load(Ordering::SeqCst);
            let shutting_down = self.pipeline.shutdown.load(Ordering::Acquire);
            let drained = self.drain_all();
            if requested > *self.pipeline.flush_done.lock() {
                *self.pipeline.flush_done.lock() = requested;
                self.pipeline.flush_cond.notify_all();
            }
            if shutting_down && self.pipeline.buffer.is_empty() {
                break;
            }
            if self.last_resync.elapsed() > Duration::from_secs(1) {
                clock::resync();
                self.last_resync = Instant::now();
            }
            if drained < self.pipeline.buffer.capacity() / 8 {
                thread::park_timeout(interval);
            }
        }
        *self.pipeline.stopped.lock() = true;
        self.pipeline.stopped_cond.notify_all();
        // Anyone still waiting on a flush is answered: nothing more will come.
        *self.pipeline.flush_done.lock() = u64::MAX;
        self.pipeline.flush_cond.notify_all();
    }

    /// Drains the buffer in batches until it is empty; returns the count.
    fn drain_all(&mut self) -> usize {
        let mut total = 0;
        loop {
            self.batch.clear();
            let n = self.pipeline.buffer.drain_into(&mut self.batch, BATCH);
            if n == 0 {
                break;
            }
            total += n;
            self.write_batch();
        }
        total
    }

    fn write_batch(&mut self) {
        let service = self.config.service_name.as_str();
        let worker = &self.pipeline.counters.worker;
        self.span_bytes.clear();
        self.span_ends.clear();
        self.trace_bytes.clear();
        self.trace_ends.clear();
        let mut attributes_dropped = 0u64;
        let mut events_dropped = 0u64;
        let mut live = self.pipeline.analysis.lock();
        for span in &self.batch {
            attributes_dropped += u64::from(span.attributes.dropped);
            events_dropped += u64::from(span.dropped_events);
            if let Some(summary) = live.observe(span, &self.pipeline.pool, &mut self.released) {
                jsonl::write_trace_summary(&mut self.trace_bytes, &summary);
                self.trace_ends.push(self.trace_bytes.len());
            }
            if self.spans_file.is_some() {
                if span.sampled {
                    jsonl::write_span(&mut self.span_bytes, span, service);
                    self.span_ends.push(self.span_bytes.len());
                }
                for held in &self.released {
                    jsonl::write_span(&mut self.span_bytes, held, service);
                    self.span_ends.push(self.span_bytes.len());
                }
            }
            for held in self.released.drain(..) {
                self.pipeline.pool.recycle(held);
            }
        }
        let c = live.counters;
        worker
            .traces_evicted
            .store(c.traces_evicted, Ordering::Relaxed);
        worker
            .spans_unsampled
            .store(c.spans_unsampled, Ordering::Relaxed);
        worker
            .dropped_tail_limit
            .store(c.spans_lost_tail_limit, Ordering::Relaxed);
        worker
            .traces_kept_by_tail
            .store(c.traces_kept_by_tail, Ordering::Relaxed);
        // Queries wait on this lock: release it before any I/O.
        drop(live);
        worker
            .attributes_dropped
            .fetch_add(attributes_dropped, Ordering::Relaxed);
        worker
            .events_dropped
            .fetch_add(events_dropped, Ordering::Relaxed);
        if let Some(file) = self.spans_file.as_mut() {
            let outcome = file.append(&self.span_bytes, &self.span_ends);
            let lost = self.span_ends.len() - outcome.lines_written;
            worker
                .spans_written
                .fetch_add(outcome.lines_written as u64, Ordering::Relaxed);
            worker
                .dropped_write_error
                .fetch_add(lost as u64, Ordering::Relaxed);
            note_file(&self.pipeline, file);
            if let Some(error) = outcome.error {
                self.report_write_error("spans", &error);
            }
        }
        if let Some(file) = self.traces_file.as_mut() {
            let outcome = file.append(&self.trace_bytes, &self.trace_ends);
            worker
                .traces_written
                .fetch_add(outcome.lines_written as u64, Ordering::Relaxed);
            note_file(&self.pipeline, file);
            if let Some(error) = outcome.error {
                self.report_write_error("trace summaries", &error);
            }
        }
        for span in self.batch.drain(..) {
            self.pipeline.pool.recycle(span);
        }
    }

    fn report_write_error(&self, what: &str, error: &std::io::Error) {
        self.pipeline
            .counters
            .worker
            .write_errors
            .fetch_add(1, Ordering::Relaxed);
        if !self
            .pipeline
            .warned_write_error
            .swap(true, Ordering::Relaxed)
        {
            let dir = self
                .config
                .output_dir
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_default();
            self.pipeline.warn(format!(
                "ferrotrace cannot write {what} to {dir:?}: {error}; spans that cannot be \
                 written are counted in metrics()['spans_dropped'] and ['write_errors'] \
                 (this warning is shown once)"
            ));
        }
    }
}

fn note_file(pipeline: &Pipeline, file: &RotatingFile) {
    if let Some(path) = file.current_path() {
        let mut files = pipeline.files.lock();
        if files.last().map(|p| p.as_path()) != Some(path) && !files.iter().any(|p| p == path) {
            files.push(path.to_path_buf());
            pipeline
                .counters
                .worker
                .files_opened
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TraceId;
    use crate::span::SpanRecord;

    fn finished(trace: u128, parent: Option<u64>) -> FinishedSpan {
        let mut r = SpanRecord::new(TraceId(trace), parent.map(crate::ids::SpanId), "op".into());
        r.start_ns = clock::wall_ns();
        r.start_mono = 1;
        r.end_mono = 2;
        triomphe::Arc::new(r)
    }

    fn config(dir: &std::path::Path) -> Config {
        Config {
            service_name: "svc".into(),
            output_dir: Some(dir.to_path_buf()),
            ..Config::default()
        }
    }

    fn read_lines(dir: &std::path::Path, prefix: &str) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with(prefix) {
                for line in std::fs::read_to_string(&path).unwrap().lines() {
                    out.push(serde_json::from_str(line).unwrap());
                }
            }
        }
        out
    }

    #[test]
    fn flush_writes_everything_submitted() {
        let dir = tempfile::tempdir().unwrap();
        let collector = Collector::new(config(dir.path()));
        for _ in 0..1000 {
            collector.submit(finished(5, Some(9))).unwrap();
        }
        collector.submit(finished(5, None)).unwrap();
        assert!(collector.flush(Duration::from_secs(10)));
        assert_eq!(read_lines(dir.path(), "spans").len(), 1001);
        let traces = read_lines(dir.path(), "traces");
        assert_eq!(traces.len(), 1);
        assert_eq!(traces[0]["span_count"], 1001);
        assert_eq!(collector.metrics().get("spans_written"), Some(1001));
        assert!(collector.shutdown(Duration::from_secs(10)));
        assert_eq!(collector.submit(finished(6, None)), Err(Refused::ShutDown));
        assert_eq!(collector.metrics().get("spans_dropped"), Some(1));
    }

    #[test]
    fn a_full_buffer_drops_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.buffer_size = 4;
        cfg.flush_interval_ms = 60_000;
        let collector = Collector::new(cfg);
        let mut refused = 0;
        for _ in 0..100 {
            if collector.submit(finished(1, Some(2))).is_err() {
                refused += 1;
            }
        }
        assert!(refused > 0);
        assert!(collector.flush(Duration::from_secs(10)));
        let m = collector.metrics();
        assert_eq!(m.get("spans_dropped"), Some(refused));
        assert_eq!(m.get("spans_written"), Some(100 - refused));
        assert_eq!(collector.take_warnings().len(), 1);
        assert!(collector.take_warnings().is_empty());
    }

    #[test]
    fn unwritable_directory_counts_write_errors() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, b"x").unwrap();
        let mut cfg = config(&blocker.join("sub"));
        cfg.flush_interval_ms = 600_000; // only the flush below drains
        let collector = Collector::new(cfg);
        for _ in 0..10 {
            collector.submit(finished(1, Some(2))).unwrap();
        }
        // The writer ran, but what it had could not reach disk.
        assert!(!collector.flush(Duration::from_secs(10)));
        let m = collector.metrics();
        assert!(m.get("write_errors").unwrap() >= 1);
        assert_eq!(m.get("spans_dropped"), Some(10));
        assert_eq!(collector.take_warnings().len(), 1);
    }

    #[test]
    fn writer_sustains_a_million_spans() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.buffer_size = 1 << 16;
        let collector = Collector::new(cfg);
        let producer = {
            let c = Arc::clone(&collector);
            thread::spawn(move || {
                let mut sent = 0;
                while sent < 200_000 {
                    if c.submit(finished(3, Some(4))).is_ok() {
                        sent += 1;
                    } else {
                        thread::yield_now();
                    }
                }
            })
        };
        producer.join().unwrap();
        assert!(collector.flush(Duration::from_secs(30)));
        assert_eq!(collector.metrics().get("spans_written"), Some(200_000));
    }
}
