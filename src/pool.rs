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

pub struct RecordPool {
    free: ArrayQueue<UniqueArc<SpanRecord>>,
}

impl RecordPool {
    pub fn new(capacity: usize) -> Self {
        RecordPool {
            free: ArrayQueue::new(capacity.max(1)),
        }
    }

    /// A fresh record for a new span, reused when one is available.
    #[inline]
    pub fn record(
        &self,
        trace_id: TraceId,
        parent_id: Option<SpanId>,
        name: CompactString,
    ) -> UniqueArc<SpanRecord> {
        match self.free.pop() {
            Some(mut record) => {
                record.reuse(trace_id, parent_id, name);
                record
            }
            None => UniqueArc::new(SpanRecord::new(trace_id, parent_id, name)),
        }
    }

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
}
