//! One sink's thread, queue and counters. The collector hands each batch to
//! every sink's worker without waiting: a full queue refuses the batch and
//! its spans are counted as dropped, so a stalled sink costs the others
//! nothing. Flush and shutdown follow the same ticket handshake as the
//! collector (see ARCHITECTURE.md, "Flush").
//!
//! The file sink is the exception: it runs *inline*, on the collector's
//! thread. The collector waits for the files anyway (backpressure), so a
//! thread of their own cost a wake-up per batch and a second pass over
//! records gone cold in another core's cache, and bought concurrency only
//! under a flood that outruns one thread for seconds (then the buffer fills
//! and drops are counted). Writing right after the in-process analysis read
//! the records is the largest part of what took the process's total CPU per
//! span from 1,138-1,393 ns to 973-982 ns (README, "Total CPU per span").

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::flush::FlushTickets;
use crate::sync::{Condvar, Mutex};

use super::{Batch, Delivery, Sink, SinkControl};
use crate::pool::RecordPool;
use crate::warnings::Warnings;

/// A delivery whose spans were all accepted but whose backend sent a
/// message (an OTLP partial success rejecting nothing): warned, not an error.
pub(crate) const BACKEND_WARNING: &str = "backend-warning";

/// How long an idle sink thread sleeps before looking at its queue again
/// (it is woken at once when a batch arrives).
const IDLE_PARK: Duration = Duration::from_millis(500);

/// A batch as the sinks share it; the last holder recycles its records.
/// (loom's `Arc` under `--cfg ferrotrace_loom`: see `crate::sync`.)
pub(crate) type SharedBatch = crate::sync::Arc<Batch>;

/// What a sink did, as `metrics()` reports it.
#[derive(Default)]
pub(crate) struct SinkCounters {
    /// Spans stored or accepted by the backend.
    pub delivered: AtomicU64,
    /// Spans refused because the sink's queue was full.
    pub dropped_queue_full: AtomicU64,
    /// Spans the sink gave up on (write error, refused, retries exhausted).
    pub lost: AtomicU64,
    /// Failed deliveries (one per failed write or request).
    pub errors: AtomicU64,
    /// Spans still queued when shutdown's deadline passed.
    pub dropped_at_shutdown: AtomicU64,
    /// Trace-summary lines written (the file sink only).
    pub summaries_written: AtomicU64,
    /// Files opened, and rotated files (and their spans) deleted by
    /// retention (the file sink only).
    pub files_opened: AtomicU64,
    pub files_deleted: AtomicU64,
    pub spans_deleted: AtomicU64,
}

struct Shared {
    name: &'static str,
    is_file: bool,
    queue: Mutex<VecDeque<SharedBatch>>,
    queued_spans: AtomicUsize,
    capacity_spans: usize,
    counters: SinkCounters,
    control: SinkControl,
    thread: OnceLock<Thread>,
    flush: FlushTickets,
    shutdown: AtomicBool,
    stopped: Mutex<bool>,
    stopped_cond: Condvar,
    /// Spans of the batch in `Sink::deliver` (0 when none).
    in_flight: AtomicUsize,
    /// The sink itself when it runs on the collector's thread (`None` once
    /// shut down); a threaded sink lives on its own thread instead.
    inline: Option<Mutex<InlineSink>>,
    /// Set when shutdown's deadline passed with the thread still busy (a
    /// request to a blackholed endpoint, say): everything it still held was
    /// counted as dropped then, so whatever it settles later is not counted
    /// again. The lock also orders taking and settling a batch against that
    /// count.
    abandoned: Mutex<bool>,
}

/// A sink run on the collector's thread.
struct InlineSink {
    sink: Option<Box<dyn Sink>>,
    /// Set after a panic: the sink is not called again.
    disabled: bool,
}

/// The collector's handle on one sink.
pub(crate) struct SinkWorker {
    shared: Arc<Shared>,
}

impl SinkWorker {
    /// Starts the sink's thread. `capacity_spans` bounds what may wait in
    /// its queue (the tracer's `buffer_size`).
    pub fn start(
        sink: Box<dyn Sink>,
        capacity_spans: usize,
        pool: Arc<RecordPool>,
        warnings: Arc<Warnings>,
    ) -> SinkWorker {
        let is_file = sink.is_file();
        let name = sink.name();
        // The file sink is delivered to on the caller's (the collector's)
        // thread; any other sink gets a thread of its own below.
        let (inline, threaded) = if is_file {
            let state = InlineSink {
                sink: Some(sink),
                disabled: false,
            };
            (Some(Mutex::new(state)), None)
        } else {
            (None, Some(sink))
        };
        let shared = Arc::new(Shared {
            name,
            is_file,
            queue: Mutex::new(VecDeque::new()),
            queued_spans: AtomicUsize::new(0),
            capacity_spans: capacity_spans.max(1),
            counters: SinkCounters::default(),
            control: SinkControl::new(Arc::clone(&warnings)),
            thread: OnceLock::new(),
            flush: FlushTickets::new(),
            shutdown: AtomicBool::new(false),
            stopped: Mutex::new(false),
            stopped_cond: Condvar::new(),
            in_flight: AtomicUsize::new(0),
            inline,
            abandoned: Mutex::new(false),
        });
        let Some(sink) = threaded else {
            return SinkWorker { shared };
        };
        let thread_shared = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .name(format!("ferrotrace-{}", shared.name))
            .spawn(move || run(sink, &thread_shared, &pool));
        match spawned {
            Ok(handle) => {
                let _ = shared.thread.set(handle.thread().clone());
            }
            Err(e) => {
                shared.shutdown.store(true, Ordering::Release);
                *shared.stopped.lock() = true;
                shared.flush.close();
                warnings.warn_once(
                    format!("{}-thread", shared.name),
                    format!(
                        "ferrotrace could not start its {} thread ({e}); its spans are counted \
                         as dropped",
                        shared.name
                    ),
                );
            }
        }
        SinkWorker { shared }
    }

    pub fn is_file(&self) -> bool {
        self.shared.is_file
    }

    pub fn counters(&self) -> &SinkCounters {
        &self.shared.counters
    }

    /// Whether `n` more spans fit in the queue (an empty queue takes any batch).
    pub fn has_room(&self, n: usize) -> bool {
        if self.shared.inline.is_some() {
            return true;
        }
        let queued = self.queued_spans();
        queued == 0 || queued + n <= self.shared.capacity_spans
    }

    /// Whether the sink stopped (its queue will not drain any more).
    pub fn is_stopped(&self) -> bool {
        *self.shared.stopped.lock()
    }

    pub fn queued_spans(&self) -> usize {
        self.shared.queued_spans.load(Ordering::Relaxed)
    }

    /// Queues a batch without waiting; a full queue (or a stopped sink)
    /// drops it, counted. Returns whether it was queued.
    pub fn offer(&self, batch: &SharedBatch) -> bool {
        let s = &self.shared;
        if let Some(inline) = &s.inline {
            return s.deliver_inline(inline, batch);
        }
        let n = batch.spans.len();
        let queued = s.queued_spans.load(Ordering::Relaxed);
        // An empty queue takes any batch, however large: the capacity bounds
        // what piles up, not the size of one hand-off.
        let full = queued > 0 && queued + n > s.capacity_spans;
        let refused = full || s.shutdown.load(Ordering::Acquire) && *s.stopped.lock();
        if refused {
            s.counters
                .dropped_queue_full
                .fetch_add(n as u64, Ordering::Relaxed);
            return false;
        }
        let abandoned = s.abandoned.lock();
        if *abandoned {
            s.counters
                .dropped_at_shutdown
                .fetch_add(n as u64, Ordering::Relaxed);
            return false;
        }
        s.queued_spans.fetch_add(n, Ordering::Relaxed);
        s.queue.lock().push_back(SharedBatch::clone(batch));
        drop(abandoned);
        s.wake();
        true
    }

    /// Asks the sink to report when everything queued so far is delivered
    /// (its ticket is answered).
    pub fn request_flush(&self, ticket: u64) {
        let s = &self.shared;
        s.flush.request(ticket);
        if s.inline.is_some() {
            // Everything offered so far was delivered before `offer`
            // returned: the ticket is answered at once.
            s.flush.round(|| (), |_| {});
            return;
        }
        s.wake();
    }

    /// Waits until the sink handled flush `ticket`, or `deadline`.
    pub fn wait_flushed(&self, ticket: u64, deadline: Instant) -> bool {
        self.shared.flush.wait(ticket, deadline)
    }

    /// Tells the sink to deliver what it has, give up by `deadline`, and stop.
    pub fn begin_shutdown(&self, deadline: Instant) {
        let s = &self.shared;
        s.control.stop_by(deadline);
        s.shutdown.store(true, Ordering::Release);
        match &s.inline {
            Some(inline) => {
                // The collector calls this after its last drain: nothing
                // more comes. The sink's own threads (the compressor) wind
                // down as it is dropped, as at the end of a sink thread.
                // `shutdown()` calls it too, after waiting for the collector
                // until the deadline: if the collector is still writing, the
                // lock is busy and is not waited for (the collector ends the
                // sink itself; `wait_stopped` counts what it still holds).
                if let Some(mut state) = inline.try_lock() {
                    let sink = state.sink.take();
                    drop(state);
                    if sink.is_some() {
                        drop(sink);
                        s.mark_stopped();
                    }
                }
            }
            None => s.wake(),
        }
    }

    /// Waits until the sink stopped, or `deadline`. A sink still busy at
    /// the deadline is abandoned (its thread is never joined, so exit never
    /// waits for a network): what it still holds, queued or in flight, is
    /// counted as dropped at shutdown now, since no one may read the
    /// counters later.
    pub fn wait_stopped(&self, deadline: Instant) -> bool {
        let s = &self.shared;
        if s.stopped_cond
            .wait_for(&s.stopped, deadline, |stopped| *stopped)
        {
            return true;
        }
        s.abandon();
        false
    }

    /// Spans this sink has lost so far, for any reason.
    pub fn losses(&self) -> u64 {
        let c = &self.shared.counters;
        c.lost.load(Ordering::Relaxed)
            + c.dropped_queue_full.load(Ordering::Relaxed)
            + c.dropped_at_shutdown.load(Ordering::Relaxed)
    }
}

impl Shared {
    /// Delivers `batch` on the caller's thread (the inline file sink).
    fn deliver_inline(&self, inline: &Mutex<InlineSink>, batch: &Batch) -> bool {
        let mut state = inline.lock();
        let InlineSink { sink, disabled } = &mut *state;
        let n = batch.spans.len();
        let usable = {
            // As `take` does for a queued batch: a sink abandoned at the
            // deadline counted its spans already; this one is in flight.
            let abandoned = self.abandoned.lock();
            let usable = !*abandoned && !*disabled && sink.is_some();
            if usable {
                self.in_flight.store(n, Ordering::Relaxed);
            }
            usable
        };
        match sink {
            Some(sink) if usable => {
                *disabled = !self.deliver(sink.as_mut(), batch);
                true
            }
            _ => {
                // A disabled sink's spans count as lost, as on its thread.
                let counter = if *disabled {
                    &self.counters.lost
                } else {
                    &self.counters.dropped_at_shutdown
                };
                counter.fetch_add(n as u64, Ordering::Relaxed);
                false
            }
        }
    }

    /// Hands one batch to the sink and counts the outcome; a panic is
    /// counted and returns false (the sink must not be called again).
    fn deliver(&self, sink: &mut dyn Sink, batch: &Batch) -> bool {
        let warnings = self.control.warnings();
        let outcome = catch_unwind(AssertUnwindSafe(|| sink.deliver(batch, &self.control)));
        let healthy = match outcome {
            Ok(delivery) => {
                self.settle(|| record(self, &delivery, warnings));
                true
            }
            Err(_) => {
                self.settle(|| {
                    self.counters.errors.fetch_add(1, Ordering::Relaxed);
                    self.counters
                        .lost
                        .fetch_add(batch.spans.len() as u64, Ordering::Relaxed);
                });
                warnings.warn_once(
                    format!("{}-panic", self.name),
                    format!(
                        "ferrotrace's {} sink failed unexpectedly and was disabled; \
                         its spans are counted as dropped",
                        self.name
                    ),
                );
                false
            }
        };
        let c = &self.counters;
        c.summaries_written
            .store(sink.summaries_written(), Ordering::Relaxed);
        let files = sink.file_counts();
        c.files_opened.store(files.files_opened, Ordering::Relaxed);
        c.files_deleted
            .store(files.files_deleted, Ordering::Relaxed);
        c.spans_deleted
            .store(files.spans_deleted, Ordering::Relaxed);
        healthy
    }

    /// The sink is done: nothing it holds will be delivered any more.
    fn mark_stopped(&self) {
        *self.stopped.lock() = true;
        self.stopped_cond.notify_all();
        self.flush.close();
    }

    fn wake(&self) {
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }

    /// The next batch, now in flight; none once abandoned.
    fn take(&self) -> Option<SharedBatch> {
        let abandoned = self.abandoned.lock();
        if *abandoned {
            return None;
        }
        let batch = self.queue.lock().pop_front()?;
        self.queued_spans
            .fetch_sub(batch.spans.len(), Ordering::Relaxed);
        self.in_flight.store(batch.spans.len(), Ordering::Relaxed);
        Some(batch)
    }

    /// Counts the outcome of the batch in flight, unless the sink was
    /// abandoned meanwhile (then it is counted already).
    fn settle(&self, count: impl FnOnce()) {
        let abandoned = self.abandoned.lock();
        if !*abandoned {
            count();
        }
        self.in_flight.store(0, Ordering::Relaxed);
    }

    /// Gives up on a sink whose thread missed shutdown's deadline: counts
    /// its queued and in-flight spans as dropped, once.
    fn abandon(&self) {
        let mut abandoned = self.abandoned.lock();
        if *abandoned || *self.stopped.lock() {
            return;
        }
        *abandoned = true;
        let queued: usize = self.queue.lock().drain(..).map(|b| b.spans.len()).sum();
        self.queued_spans.store(0, Ordering::Relaxed);
        let pending = queued + self.in_flight.load(Ordering::Relaxed);
        self.counters
            .dropped_at_shutdown
            .fetch_add(pending as u64, Ordering::Relaxed);
    }
}

fn run(mut sink: Box<dyn Sink>, s: &Shared, pool: &RecordPool) {
    if !s.is_file {
        // Exporters yield to traced code; the files keep normal priority so
        // the collector, which waits for them, keeps pace with the buffer.
        crate::priority::yield_to_application();
    }
    let mut disabled = false;
    loop {
        // A flush ticket is raised only after the batches it covers were
        // queued, so the round's drain sees them.
        let shutting_down = s.flush.round(
            || {
                let shutting_down = s.shutdown.load(Ordering::Acquire);
                while let Some(batch) = s.take() {
                    let past_deadline = s.control.deadline().is_some_and(|d| Instant::now() >= d);
                    if disabled || past_deadline {
                        // A sink disabled by a panic loses what it is given.
                        let counter = if disabled {
                            &s.counters.lost
                        } else {
                            &s.counters.dropped_at_shutdown
                        };
                        s.settle(|| {
                            counter.fetch_add(batch.spans.len() as u64, Ordering::Relaxed);
                        });
                    } else {
                        disabled = !s.deliver(sink.as_mut(), &batch);
                    }
                    recycle(batch, pool);
                }
                shutting_down
            },
            |_| {},
        );
        if shutting_down && (s.queue.lock().is_empty() || *s.abandoned.lock()) {
            break;
        }
        thread::park_timeout(IDLE_PARK);
    }
    // The sink's own threads (the file sink's compressor) wind down before
    // the sink reports itself stopped, so a finished shutdown leaves no
    // half-done work behind.
    drop(sink);
    s.mark_stopped();
}

fn record(s: &Shared, delivery: &Delivery, warnings: &Warnings) {
    let c = &s.counters;
    c.delivered.fetch_add(delivery.delivered, Ordering::Relaxed);
    c.lost.fetch_add(delivery.lost, Ordering::Relaxed);
    if let Some(error) = &delivery.error {
        if error.kind == BACKEND_WARNING {
            // Everything was accepted; the backend only had something to say.
            warnings.warn_once(
                format!("{}-{}", s.name, error.kind),
                format!("ferrotrace {}: {} (shown once)", s.name, error.message),
            );
            return;
        }
        c.errors.fetch_add(1, Ordering::Relaxed);
        let counted_as = if s.is_file {
            "metrics()['spans_dropped'] and ['write_errors']"
        } else {
            "metrics()['spans_export_dropped'] and ['export_errors']"
        };
        warnings.warn_once(
            format!("{}-{}", s.name, error.kind),
            format!(
                "ferrotrace {}: {}; spans that cannot be delivered are counted in {counted_as} \
                 (this warning is shown once)",
                s.name, error.message
            ),
        );
    }
}

/// The last holder of a batch gives its records back for reuse.
fn recycle(batch: SharedBatch, pool: &RecordPool) {
    if let Ok(batch) = SharedBatch::try_unwrap(batch) {
        for span in batch.spans {
            pool.recycle(span);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TraceId;
    use crate::sinks::DeliveryError;
    use crate::span::SpanRecord;

    /// Records what it was given; can be told to stall, fail or panic, and
    /// to be the file sink (run inline).
    #[derive(Default)]
    struct Probe {
        seen: Arc<AtomicU64>,
        stall: Option<Duration>,
        fail: bool,
        panic_after: Option<u64>,
        file: bool,
        /// The thread each delivery ran on.
        threads: Arc<Mutex<Vec<thread::ThreadId>>>,
    }

    impl Sink for Probe {
        fn name(&self) -> &'static str {
            "probe"
        }
        fn is_file(&self) -> bool {
            self.file
        }
        fn deliver(&mut self, batch: &Batch, _: &SinkControl) -> Delivery {
            self.threads.lock().push(thread::current().id());
            if let Some(d) = self.stall {
                thread::sleep(d);
            }
            if self
                .panic_after
                .is_some_and(|n| self.seen.load(Ordering::Relaxed) >= n)
            {
                panic!("probe sink told to panic");
            }
            let n = batch.spans.len() as u64;
            self.seen.fetch_add(n, Ordering::Relaxed);
            if self.fail {
                Delivery {
                    delivered: 0,
                    lost: n,
                    error: Some(DeliveryError {
                        kind: "test".into(),
                        message: "refused".into(),
                    }),
                }
            } else {
                Delivery {
                    delivered: n,
                    ..Delivery::default()
                }
            }
        }
    }

    fn batch(n: usize) -> SharedBatch {
        SharedBatch::new(Batch {
            spans: (0..n)
                .map(|_| triomphe::Arc::new(SpanRecord::new(TraceId(1), None, "s".into())))
                .collect(),
            summaries: Vec::new(),
        })
    }

    fn start(probe: Probe, capacity: usize) -> (SinkWorker, Arc<Warnings>) {
        let warnings = Arc::new(Warnings::default());
        let w = SinkWorker::start(
            Box::new(probe),
            capacity,
            Arc::new(RecordPool::new(16)),
            Arc::clone(&warnings),
        );
        (w, warnings)
    }

    #[test]
    fn flush_waits_for_delivery() {
        let seen = Arc::new(AtomicU64::new(0));
        let (w, _) = start(
            Probe {
                seen: Arc::clone(&seen),
                stall: Some(Duration::from_millis(20)),
                fail: false,
                ..Probe::default()
            },
            1000,
        );
        for _ in 0..5 {
            assert!(w.offer(&batch(10)));
        }
        w.request_flush(1);
        assert!(w.wait_flushed(1, Instant::now() + Duration::from_secs(10)));
        assert_eq!(seen.load(Ordering::Relaxed), 50);
        assert_eq!(w.counters().delivered.load(Ordering::Relaxed), 50);
    }

    #[test]
    fn a_stalled_sink_refuses_past_capacity_and_counts() {
        let seen = Arc::new(AtomicU64::new(0));
        let (w, _) = start(
            Probe {
                seen,
                stall: Some(Duration::from_millis(300)),
                fail: false,
                ..Probe::default()
            },
            25,
        );
        let queued = (0..6).filter(|_| w.offer(&batch(10))).count();
        assert!(queued < 6, "capacity 25 cannot take 60 spans");
        assert_eq!(
            w.counters().dropped_queue_full.load(Ordering::Relaxed),
            (6 - queued as u64) * 10
        );
    }

    #[test]
    fn failures_are_counted_and_warned_once() {
        let (w, warnings) = start(
            Probe {
                seen: Arc::new(AtomicU64::new(0)),
                stall: None,
                fail: true,
                ..Probe::default()
            },
            1000,
        );
        for _ in 0..3 {
            w.offer(&batch(2));
        }
        w.request_flush(1);
        assert!(w.wait_flushed(1, Instant::now() + Duration::from_secs(10)));
        assert_eq!(w.counters().lost.load(Ordering::Relaxed), 6);
        assert_eq!(w.counters().errors.load(Ordering::Relaxed), 3);
        assert_eq!(warnings.take().len(), 1);
    }

    #[test]
    fn shutdown_past_its_deadline_drops_what_is_left_and_stops() {
        let seen = Arc::new(AtomicU64::new(0));
        let (w, _) = start(
            Probe {
                seen,
                stall: Some(Duration::from_millis(200)),
                fail: false,
                ..Probe::default()
            },
            1000,
        );
        for _ in 0..10 {
            w.offer(&batch(1));
        }
        let deadline = Instant::now() + Duration::from_millis(100);
        w.begin_shutdown(deadline);
        assert!(w.wait_stopped(Instant::now() + Duration::from_secs(10)));
        let c = w.counters();
        let delivered = c.delivered.load(Ordering::Relaxed);
        let dropped = c.dropped_at_shutdown.load(Ordering::Relaxed);
        assert_eq!(delivered + dropped, 10);
        assert!(dropped >= 8, "delivered {delivered}, dropped {dropped}");
        assert!(!w.offer(&batch(1)));
    }

    #[test]
    fn a_sink_stuck_past_the_deadline_is_abandoned_with_its_spans_counted_once() {
        let seen = Arc::new(AtomicU64::new(0));
        let (w, _) = start(
            Probe {
                seen: Arc::clone(&seen),
                stall: Some(Duration::from_millis(400)),
                fail: false,
                ..Probe::default()
            },
            1000,
        );
        assert!(w.offer(&batch(3)));
        // The first batch is in flight (stuck in deliver), two more queued.
        while w.queued_spans() != 0 {
            thread::sleep(Duration::from_millis(1));
        }
        assert!(w.offer(&batch(4)));
        assert!(w.offer(&batch(5)));
        w.begin_shutdown(Instant::now());
        assert!(!w.wait_stopped(Instant::now()));
        let c = w.counters();
        assert_eq!(c.dropped_at_shutdown.load(Ordering::Relaxed), 12);
        assert!(!w.offer(&batch(2)));
        assert_eq!(c.dropped_at_shutdown.load(Ordering::Relaxed), 14);
        // The stuck delivery ends later: not counted a second time, and the
        // thread stops.
        assert!(w.wait_stopped(Instant::now() + Duration::from_secs(10)));
        assert_eq!(seen.load(Ordering::Relaxed), 3);
        assert_eq!(c.delivered.load(Ordering::Relaxed), 0);
        assert_eq!(w.losses(), 14);
    }

    #[test]
    fn the_file_sink_runs_inline_and_answers_flushes_at_once() {
        let seen = Arc::new(AtomicU64::new(0));
        let threads = Arc::new(Mutex::new(Vec::new()));
        let (w, _) = start(
            Probe {
                seen: Arc::clone(&seen),
                file: true,
                threads: Arc::clone(&threads),
                ..Probe::default()
            },
            10,
        );
        // No queue: any number of spans is taken, and delivered before
        // `offer` returns, on the caller's thread.
        for _ in 0..5 {
            assert!(w.has_room(1000));
            assert!(w.offer(&batch(100)));
        }
        assert_eq!(seen.load(Ordering::Relaxed), 500);
        assert_eq!(w.counters().delivered.load(Ordering::Relaxed), 500);
        assert!(threads.lock().iter().all(|t| *t == thread::current().id()));
        w.request_flush(7);
        assert!(w.wait_flushed(7, Instant::now()));
        w.begin_shutdown(Instant::now() + Duration::from_secs(1));
        assert!(w.wait_stopped(Instant::now()));
        assert!(!w.offer(&batch(3)));
        assert_eq!(w.counters().dropped_at_shutdown.load(Ordering::Relaxed), 3);
        assert_eq!(w.losses(), 3);
    }

    #[test]
    fn a_panicking_sink_is_disabled_and_its_spans_counted_lost() {
        for file in [false, true] {
            let (w, warnings) = start(
                Probe {
                    panic_after: Some(4),
                    file,
                    ..Probe::default()
                },
                1000,
            );
            for _ in 0..4 {
                w.offer(&batch(2));
            }
            w.request_flush(1);
            assert!(w.wait_flushed(1, Instant::now() + Duration::from_secs(10)));
            let c = w.counters();
            // Two batches delivered, the third panicked, the fourth was
            // never handed to the disabled sink.
            assert_eq!(c.delivered.load(Ordering::Relaxed), 4, "file: {file}");
            assert_eq!(c.lost.load(Ordering::Relaxed), 4, "file: {file}");
            assert_eq!(c.errors.load(Ordering::Relaxed), 1, "file: {file}");
            assert_eq!(warnings.take().len(), 1);
            w.begin_shutdown(Instant::now() + Duration::from_secs(1));
            assert!(w.wait_stopped(Instant::now() + Duration::from_secs(10)));
        }
    }
}

/// Model check (`make check-deep`): the hand-back of a batch shared by
/// several sinks, with loom's `Arc` (which also fails the model if a batch
/// is never freed) and the real `recycle` and `RecordPool` code.
#[cfg(all(test, ferrotrace_loom))]
mod loom_model {
    use super::*;
    use crate::ids::TraceId;
    use crate::span::SpanRecord;
    use loom::thread;

    #[test]
    fn loom_the_last_holder_of_a_batch_recycles_its_records_once() {
        loom::model(|| {
            let pool = std::sync::Arc::new(RecordPool::new(8));
            let batch = SharedBatch::new(Batch {
                spans: (1..=2)
                    .map(|id| triomphe::Arc::new(SpanRecord::new(TraceId(id), None, "s".into())))
                    .collect(),
                summaries: Vec::new(),
            });
            // Two sinks settle their copy while the collector lets go of its own.
            let sinks: Vec<_> = (0..2)
                .map(|_| {
                    let (batch, pool) = (SharedBatch::clone(&batch), std::sync::Arc::clone(&pool));
                    thread::spawn(move || recycle(batch, &pool))
                })
                .collect();
            recycle(batch, &pool);
            for sink in sinks {
                sink.join().unwrap();
            }
            // Both records or none (when the last two let go at once, the
            // records are freed instead), never one twice.
            let available = pool.available();
            assert!(
                available == 0 || available == 2,
                "{available} records recycled"
            );
            let a = pool.record(TraceId(7), None, "a".into());
            let b = pool.record(TraceId(8), None, "b".into());
            assert!(!std::ptr::eq(&*a, &*b), "one record handed out twice");
        });
    }
}
