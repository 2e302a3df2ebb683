//! The bounded, lock-free hand-off between traced code and the background
//! thread. Finishing a span pushes one pointer; a full buffer refuses the
//! span instead of waiting, and the caller counts it as dropped.

use crate::sync::ArrayQueue;
use triomphe::Arc;

use crate::span::SpanRecord;

pub type FinishedSpan = Arc<SpanRecord>;

/// How many spans ahead of the one it works on the collector asks for.
pub const PREFETCH_AHEAD: usize = 4;

/// Asks the CPU to start loading a record's fixed part (four cache lines)
/// into this core's cache. Another core wrote it last (the traced thread a
/// finished span, the collector a recycled record), so the first access to
/// each line waits for it; asked for ahead of use, the loads overlap other
/// work: the collector asks a few spans ahead, the record pool one span
/// ahead (see `RecordPool::record`). A hint only: it never faults and
/// changes nothing.
#[inline(always)]
pub fn prefetch_record(record: &SpanRecord) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let start = std::ptr::from_ref(record).cast::<i8>();
        for line in 0..std::mem::size_of::<SpanRecord>().div_ceil(64) {
            // SAFETY: SSE is part of every x86_64 CPU, and a prefetch reads
            // nothing the program sees and cannot fault, whatever the address
            // (this one is inside a live record).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(line * 64)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = record;
}

pub struct SpanBuffer {
    queue: ArrayQueue<FinishedSpan>,
}

impl SpanBuffer {
    pub fn new(capacity: usize) -> Self {
        SpanBuffer {
            queue: ArrayQueue::new(capacity.max(1)),
        }
    }

    /// Never blocks. Gives the span back when the buffer is full.
    #[inline]
    pub fn push(&self, span: FinishedSpan) -> Result<(), FinishedSpan> {
        self.queue.push(span)
    }

    /// Moves up to `max` spans into `into`; returns how many.
    pub fn drain_into(&self, into: &mut Vec<FinishedSpan>, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            match self.queue.pop() {
                Some(span) => {
                    into.push(span);
                    n += 1;
                }
                None => break,
            }
        }
        n
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.queue.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TraceId;

    fn span() -> FinishedSpan {
        Arc::new(SpanRecord::new(TraceId(1), None, "s".into()))
    }

    #[test]
    fn full_buffer_refuses_without_blocking() {
        let buffer = SpanBuffer::new(2);
        assert!(buffer.push(span()).is_ok());
        assert!(buffer.push(span()).is_ok());
        assert!(buffer.push(span()).is_err());
        let mut out = Vec::new();
        assert_eq!(buffer.drain_into(&mut out, 10), 2);
        assert!(buffer.is_empty());
    }

    #[test]
    fn concurrent_producers_lose_nothing_that_fits() {
        let buffer = std::sync::Arc::new(SpanBuffer::new(4 * 10_000));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let b = buffer.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        assert!(b.push(span()).is_ok());
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let mut out = Vec::new();
        assert_eq!(buffer.drain_into(&mut out, usize::MAX), 40_000);
    }
}

/// Model check (`make check-deep`): producers racing a drain on a tiny
/// buffer; every span is either drained once or refused (and so counted by
/// the caller), never lost or duplicated.
#[cfg(all(test, ferrotrace_loom))]
mod loom_model {
    use super::*;
    use crate::ids::TraceId;
    use loom::thread;

    #[test]
    fn loom_every_span_is_drained_once_or_refused() {
        loom::model(|| {
            let buffer = std::sync::Arc::new(SpanBuffer::new(1));
            let producers: Vec<_> = (1..=2u128)
                .map(|id| {
                    let buffer = std::sync::Arc::clone(&buffer);
                    thread::spawn(move || {
                        let span = Arc::new(SpanRecord::new(TraceId(id), None, "s".into()));
                        buffer.push(span).is_ok()
                    })
                })
                .collect();
            let mut out = Vec::new();
            buffer.drain_into(&mut out, usize::MAX);
            let accepted = producers
                .into_iter()
                .map(|p| p.join().unwrap())
                .filter(|ok| *ok)
                .count();
            buffer.drain_into(&mut out, usize::MAX);
            assert_eq!(
                out.len(),
                accepted,
                "accepted spans and drained spans differ"
            );
            let mut ids: Vec<u128> = out.iter().map(|s| s.trace_id.0).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), out.len(), "a span drained twice");
            assert!(accepted >= 1, "an empty buffer of one refused a span");
        });
    }
}
