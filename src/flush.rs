//! The flush ticket handshake, shared by the collector and every sink's
//! worker (see ARCHITECTURE.md, "Flush"). A caller takes a ticket and waits
//! until it is answered; the thread that delivers reads the highest ticket
//! *before* it drains, drains, and only then answers up to what it read.
//! Whatever was handed over before a ticket was taken is therefore drained
//! before that ticket is answered. Model-checked with loom (the `loom` tests
//! below; `make check-deep`).

use std::time::Instant;

use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{Condvar, Mutex};

pub(crate) struct FlushTickets {
    /// The highest ticket asked for. SeqCst: a ticket is ordered after the
    /// hand-offs (queue pushes) that precede it in the asking thread.
    requested: AtomicU64,
    /// The highest ticket answered; `u64::MAX` once nothing more will come.
    done: Mutex<u64>,
    cond: Condvar,
}

impl FlushTickets {
    pub fn new() -> Self {
        FlushTickets {
            requested: AtomicU64::new(0),
            done: Mutex::new(0),
            cond: Condvar::new(),
        }
    }

    /// A new ticket, covering everything handed over before this call.
    pub fn take(&self) -> u64 {
        self.requested.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Asks for at least `ticket` (a ticket passed on from upstream).
    pub fn request(&self, ticket: u64) {
        self.requested.fetch_max(ticket, Ordering::SeqCst);
    }

    /// One round of the delivering thread (the collector, a sink's
    /// worker): reads the highest ticket asked for, runs `drain`, then, if
    /// that ticket is not answered yet, hands it to `pass_on` (the
    /// collector passes it to the sinks with the batches it covers) and
    /// answers it. Returns what `drain` returned.
    pub fn round<R>(&self, drain: impl FnOnce() -> R, pass_on: impl FnOnce(u64)) -> R {
        // Read before draining: whatever was handed over before a ticket
        // was taken is seen by this drain.
        let requested = self.requested.load(Ordering::SeqCst);
        let drained = drain();
        if requested > *self.done.lock() {
            pass_on(requested);
            self.answer(requested);
        }
        drained
    }

    fn answer(&self, requested: u64) {
        let mut done = self.done.lock();
        if requested > *done {
            *done = requested;
            self.cond.notify_all();
        }
    }

    /// Answers every ticket, now and later: nothing more will be delivered
    /// (the thread stopped or never started).
    pub fn close(&self) {
        self.answer(u64::MAX);
    }

    /// Waits until `ticket` is answered, or `deadline`; whether it was.
    pub fn wait(&self, ticket: u64, deadline: Instant) -> bool {
        self.cond
            .wait_for(&self.done, deadline, |done| *done >= ticket)
    }
}

#[cfg(all(test, not(ferrotrace_loom)))]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_ticket_taken_during_a_drain_waits_for_the_next_round() {
        let t = FlushTickets::new();
        let mut passed = Vec::new();
        let ticket = t.round(|| t.take(), |n| passed.push(n));
        assert!(passed.is_empty(), "nothing was asked before the drain");
        assert!(!t.wait(ticket, Instant::now()));
        t.round(|| (), |n| passed.push(n));
        assert_eq!(passed, vec![ticket]);
        assert!(t.wait(ticket, Instant::now() + Duration::from_secs(1)));
        // An answered ticket is not passed on again.
        t.round(|| (), |n| passed.push(n));
        assert_eq!(passed, vec![ticket]);
        t.request(ticket + 5);
        t.round(|| (), |n| passed.push(n));
        assert_eq!(passed, vec![ticket, ticket + 5]);
        t.close();
        assert!(t.wait(u64::MAX, Instant::now()));
    }
}

/// Model checks (`make check-deep`): every interleaving of the threads,
/// within loom's preemption bound, of the real `FlushTickets` and
/// `SpanBuffer` code (crossbeam's queue stands in as a loom-visible queue,
/// see `crate::sync`).
#[cfg(all(test, ferrotrace_loom))]
mod loom_model {
    use super::*;
    use crate::buffer::{FinishedSpan, SpanBuffer};
    use crate::ids::TraceId;
    use crate::span::SpanRecord;
    use crate::sync::Mutex;
    use loom::thread;
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::time::Duration;

    fn span(id: u128) -> FinishedSpan {
        triomphe::Arc::new(SpanRecord::new(TraceId(id), None, "s".into()))
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    /// A delivering thread (the collector, a sink's worker): rounds of
    /// `FlushTickets::round` until ticket `until` has been answered.
    fn deliver_until(
        tickets: &FlushTickets,
        until: u64,
        mut drain: impl FnMut(),
        mut pass_on: impl FnMut(u64),
    ) {
        loop {
            let mut answered = 0;
            tickets.round(&mut drain, |ticket| {
                pass_on(ticket);
                answered = ticket;
            });
            if answered >= until {
                return;
            }
            thread::yield_now();
        }
    }

    /// A span finished before `flush` was called has been drained when the
    /// flush is answered, whatever another producer does meanwhile.
    #[test]
    fn loom_a_flush_is_answered_only_after_the_spans_before_it_are_drained() {
        loom::model(|| {
            let buffer = Arc::new(SpanBuffer::new(4));
            let tickets = Arc::new(FlushTickets::new());
            let drained = Arc::new(Mutex::new(Vec::new()));

            let collector = {
                let (buffer, tickets, drained) = (
                    Arc::clone(&buffer),
                    Arc::clone(&tickets),
                    Arc::clone(&drained),
                );
                thread::spawn(move || {
                    let mut out = Vec::new();
                    let drain = || {
                        buffer.drain_into(&mut out, usize::MAX);
                        drained
                            .lock()
                            .extend(out.drain(..).map(|s: FinishedSpan| s.trace_id.0));
                    };
                    deliver_until(&tickets, 1, drain, |_| {});
                })
            };
            let other = {
                let buffer = Arc::clone(&buffer);
                thread::spawn(move || {
                    assert!(buffer.push(span(2)).is_ok());
                })
            };

            assert!(buffer.push(span(1)).is_ok());
            let ticket = tickets.take();
            assert!(tickets.wait(ticket, far()));
            assert!(
                drained.lock().contains(&1),
                "flush answered before span 1 was drained"
            );

            collector.join().unwrap();
            other.join().unwrap();
        });
    }

    /// The two-stage handshake: the collector passes its ticket on to a
    /// sink with the batches it covers; once the sink answers it, those
    /// spans were delivered.
    #[test]
    fn loom_a_ticket_passed_to_a_sink_covers_the_batches_before_it() {
        loom::model(|| {
            let buffer = Arc::new(SpanBuffer::new(4));
            let collector_tickets = Arc::new(FlushTickets::new());
            let sink_tickets = Arc::new(FlushTickets::new());
            let sink_queue = Arc::new(Mutex::new(VecDeque::<Vec<FinishedSpan>>::new()));
            let delivered = Arc::new(Mutex::new(Vec::new()));

            let collector = {
                let (buffer, tickets, sink_tickets, sink_queue) = (
                    Arc::clone(&buffer),
                    Arc::clone(&collector_tickets),
                    Arc::clone(&sink_tickets),
                    Arc::clone(&sink_queue),
                );
                thread::spawn(move || {
                    // As `CollectorThread::run`: drain and queue a batch,
                    // pass the ticket on to the sink.
                    let drain = || {
                        let mut batch = Vec::new();
                        buffer.drain_into(&mut batch, usize::MAX);
                        if !batch.is_empty() {
                            sink_queue.lock().push_back(batch);
                        }
                    };
                    deliver_until(&tickets, 1, drain, |ticket| sink_tickets.request(ticket));
                })
            };
            let sink = {
                let (tickets, queue, delivered) = (
                    Arc::clone(&sink_tickets),
                    Arc::clone(&sink_queue),
                    Arc::clone(&delivered),
                );
                thread::spawn(move || {
                    let drain = || {
                        while let Some(batch) = queue.lock().pop_front() {
                            delivered.lock().extend(batch.iter().map(|s| s.trace_id.0));
                        }
                    };
                    deliver_until(&tickets, 1, drain, |_| {});
                })
            };

            assert!(buffer.push(span(1)).is_ok());
            let ticket = collector_tickets.take();
            assert!(collector_tickets.wait(ticket, far()));
            assert!(sink_tickets.wait(ticket, far()));
            assert_eq!(
                *delivered.lock(),
                vec![1],
                "sink answered before delivering"
            );

            collector.join().unwrap();
            sink.join().unwrap();
        });
    }

    /// `close` answers every waiter, even for a ticket never read.
    #[test]
    fn loom_close_answers_a_waiting_flush() {
        loom::model(|| {
            let tickets = Arc::new(FlushTickets::new());
            let closer = {
                let tickets = Arc::clone(&tickets);
                thread::spawn(move || tickets.close())
            };
            let ticket = tickets.take();
            assert!(tickets.wait(ticket, far()));
            closer.join().unwrap();
        });
    }
}
