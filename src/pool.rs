//! Span records are recycled instead of freed: the writer thread hands
//! each written record back here and new spans take one out. In steady state
//! a span costs no `malloc`/`free` at all, and the glibc arena lock is not
//! bounced between the traced thread (which would allocate) and the writer
//! (which would free), which halved the writer's throughput before.

use crate::sync::ArrayQueue;
use compact_str::CompactString;
use triomphe::{Arc, UniqueArc};

use crate::ids::{SpanId, TraceId};
use crate::span::SpanRecord;

#[cfg(not(ferrotrace_loom))]
thread_local! {
    /// The record this thread's next span will take, already asked into
    /// this core's cache (see [`RecordPool::record`]). Any pool's record
    /// serves any pool: they are all cleared the same way.
    static NEXT: std::cell::Cell<Option<UniqueArc<SpanRecord>>> =
        const { std::cell::Cell::new(None) };
}

pub struct RecordPool {
    free: ArrayQueue<UniqueArc<SpanRecord>>,
}

/// The record this thread's previous span set aside, if any.
#[cfg(not(ferrotrace_loom))]
#[inline(always)]
fn take_set_aside() -> Option<UniqueArc<SpanRecord>> {
    NEXT.try_with(std::cell::Cell::take).ok().flatten()
}

#[cfg(ferrotrace_loom)]
fn take_set_aside() -> Option<UniqueArc<SpanRecord>> {
    None
}

impl RecordPool {
    pub fn new(capacity: usize) -> Self {
        RecordPool {
            free: ArrayQueue::new(capacity.max(1)),
        }
    }

    /// A fresh record for a new span, reused when one is available.
    ///
    /// A recycled record was last written by the collector (clearing it)
    /// on another core, so the first writes to each of its cache lines wait
    /// for the line to move over: that was most of this call's time. So
    /// each call also takes the record the *next* span on this thread will
    /// use and asks for its lines now; by the time that span starts they
    /// are here. (A thread keeps at most one record aside; it is freed when
    /// the thread exits.)
    #[inline]
    pub fn record(
        &self,
        trace_id: TraceId,
        parent_id: Option<SpanId>,
        name: CompactString,
    ) -> UniqueArc<SpanRecord> {
        let taken = take_set_aside().or_else(|| self.free.pop());
        self.set_aside_next();
        match taken {
            Some(mut record) => {
                record.reuse(trace_id, parent_id, name);
                record
            }
            None => UniqueArc::new(SpanRecord::new(trace_id, parent_id, name)),
        }
    }

    /// Takes the record the next span on this thread will use, and asks
    /// for its cache lines.
    #[cfg(not(ferrotrace_loom))]
    #[inline(always)]
    fn set_aside_next(&self) {
        if let Some(next) = self.free.pop() {
            crate::buffer::prefetch_record(&next);
            // Fails only while the thread's locals are being destroyed: the
            // record is freed then.
            let _ = NEXT.try_with(|slot| slot.set(Some(next)));
        }
    }

    /// Under loom, threads are modelled on one OS thread, so a thread-local
    /// would be shared between them: nothing is set aside.
    #[cfg(ferrotrace_loom)]
    fn set_aside_next(&self) {}

    /// Lets go of a holder of a finished record and takes the record back if
    /// that was the last one (clearing it here, off the traced thread).
    /// One atomic operation whatever the outcome, and of two holders
    /// letting go at once exactly one gets it (a check before letting go
    /// would read the count the other thread just wrote, then write it).
    #[inline]
    pub fn recycle(&self, span: Arc<SpanRecord>) {
        if let Some(mut record) = Arc::into_unique(span) {
            record.clear_for_reuse();
            let _ = self.free.push(record);
        }
    }

    pub fn available(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::{AttrValue, Limits};

    #[test]
    fn recycled_records_come_back_clean() {
        let pool = RecordPool::new(4);
        let mut r = pool.record(TraceId(1), None, "a".into());
        r.set_attribute("k".into(), AttrValue::Int(1), &Limits::default());
        r.end_mono = 5;
        let shared = UniqueArc::shareable(r);
        let extra = shared.clone();
        pool.recycle(shared); // still held by `extra`: not taken
        assert_eq!(pool.available(), 0);
        pool.recycle(extra);
        assert_eq!(pool.available(), 1);
        let again = pool.record(TraceId(2), Some(SpanId(3)), "b".into());
        assert_eq!(pool.available(), 0);
        assert_eq!(again.trace_id, TraceId(2));
        assert_eq!(again.parent_id, Some(SpanId(3)));
        assert_eq!(again.name, "b");
        assert!(again.attributes.is_empty());
        assert!(!again.is_finished());
        assert!(!again.is_local_root);
    }

    fn recycled(pool: &RecordPool, trace: u128) -> *const SpanRecord {
        let record = UniqueArc::shareable(UniqueArc::new(SpanRecord::new(
            TraceId(trace),
            None,
            "old".into(),
        )));
        let at = Arc::as_ptr(&record);
        pool.recycle(record);
        at
    }

    #[test]
    fn each_span_takes_the_record_its_thread_set_aside_last_time() {
        // On a thread of its own: what the test harness's thread set aside
        // in other tests must not count here.
        std::thread::spawn(|| {
            let pool = RecordPool::new(4);
            let first = recycled(&pool, 1);
            let second = recycled(&pool, 2);
            let a = pool.record(TraceId(3), None, "a".into());
            assert!(std::ptr::eq(&*a, first));
            // The second record was set aside for this thread's next span.
            assert_eq!(pool.available(), 0);
            let b = pool.record(TraceId(4), None, "b".into());
            assert!(std::ptr::eq(&*b, second));
            assert_eq!((b.trace_id, b.name.as_str()), (TraceId(4), "b"));
            // Nothing left anywhere: a new record is made.
            let c = pool.record(TraceId(5), None, "c".into());
            assert!(!std::ptr::eq(&*c, first) && !std::ptr::eq(&*c, second));
        })
        .join()
        .unwrap();
    }
}
