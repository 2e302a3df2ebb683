//! Locks that a forked child can use. `parking_lot` keeps the queues of
//! waiting threads in one global table, guarded by locks that a thread of
//! the parent may hold at the moment of `fork()`; the child then deadlocks
//! on its first contended lock, whichever it is. The standard library's
//! locks keep their whole state in the lock itself (a futex word on Linux),
//! so a lock created in the child starts clean. Everything a pipeline (or a
//! span) locks uses these; poisoning is ignored, because a panic is already
//! caught and counted where it happens and the data stays consistent.
//! See ARCHITECTURE.md, "Fork".
//!
//! This module is also the one door to the concurrency primitives of the
//! pieces that are model-checked with loom (`make check-deep`): built with
//! `RUSTFLAGS="--cfg ferrotrace_loom"`, the locks, atomics, `Arc` and
//! bounded queue below come from loom, so the flush handshake (`flush.rs`),
//! the pipeline slot (`slot.rs`), the span buffer and the batch hand-back to
//! the record pool run unchanged under its scheduler (their `loom_model`
//! tests). The cfg is not the customary `loom`: RUSTFLAGS reach every crate,
//! and tokio built with `--cfg loom` leaves out the `net` module the server
//! needs.

use std::sync::PoisonError;
use std::time::Instant;

#[cfg(ferrotrace_loom)]
pub use loom::sync::MutexGuard;
#[cfg(not(ferrotrace_loom))]
pub use std::sync::MutexGuard;

#[cfg(ferrotrace_loom)]
pub(crate) use loom::sync::atomic;
/// Atomics of the model-checked pieces (loom's under `--cfg ferrotrace_loom`).
#[cfg(not(ferrotrace_loom))]
pub(crate) use std::sync::atomic;

#[cfg(ferrotrace_loom)]
pub(crate) use loom::sync::Arc;
/// The `Arc` of a batch shared by the sinks (loom's under `--cfg ferrotrace_loom`, which
/// also reports a batch that is never freed).
#[cfg(not(ferrotrace_loom))]
pub(crate) use std::sync::Arc;

/// The bounded lock-free queue of the span buffer and the record pool.
#[cfg(not(ferrotrace_loom))]
pub(crate) use crossbeam_queue::ArrayQueue;
/// Under loom, crossbeam's queue (plain `core` atomics, invisible to loom)
/// is replaced by a bounded queue behind a loom lock with the same methods
/// and semantics (linearizable, refuses when full, never blocks for
/// long): the models check our protocols around the queue, and take
/// crossbeam's queue itself as correct.
#[cfg(ferrotrace_loom)]
pub(crate) use loom_queue::ArrayQueue;

#[cfg(not(ferrotrace_loom))]
type StdMutex<T> = std::sync::Mutex<T>;
#[cfg(ferrotrace_loom)]
type StdMutex<T> = loom::sync::Mutex<T>;
#[cfg(not(ferrotrace_loom))]
type StdCondvar = std::sync::Condvar;
#[cfg(ferrotrace_loom)]
type StdCondvar = loom::sync::Condvar;

#[derive(Default, Debug)]
pub struct Mutex<T>(StdMutex<T>);

impl<T> Mutex<T> {
    #[cfg(not(ferrotrace_loom))]
    pub const fn new(value: T) -> Self {
        Mutex(StdMutex::new(value))
    }

    #[cfg(ferrotrace_loom)]
    pub fn new(value: T) -> Self {
        Mutex(StdMutex::new(value))
    }

    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lock if it is free now; never waits.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        match self.0.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    pub fn get_mut(&mut self) -> &mut T {
        self.0.get_mut().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Default, Debug)]
pub struct Condvar(StdCondvar);

impl Condvar {
    #[cfg(not(ferrotrace_loom))]
    pub const fn new() -> Self {
        Condvar(StdCondvar::new())
    }

    #[cfg(ferrotrace_loom)]
    pub fn new() -> Self {
        Condvar(StdCondvar::new())
    }

    pub fn notify_all(&self) {
        self.0.notify_all();
    }

    /// Waits until `ready` holds for the value behind `mutex`, or until
    /// `deadline`; returns whether it holds.
    pub fn wait_for<T>(
        &self,
        mutex: &Mutex<T>,
        deadline: Instant,
        ready: impl Fn(&T) -> bool,
    ) -> bool {
        let mut guard = mutex.lock();
        while !ready(&guard) {
            let (g, timed_out) = self.wait_until(guard, deadline);
            guard = g;
            if timed_out {
                return ready(&guard);
            }
        }
        true
    }

    /// Waits until notified or `deadline`; returns the guard and whether
    /// the deadline passed. (Under loom, time does not pass: the wait ends
    /// only when notified, so a model that would rely on a timeout is
    /// reported as a deadlock.)
    pub fn wait_until<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Instant,
    ) -> (MutexGuard<'a, T>, bool) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (guard, true);
        }
        let (guard, result) = self
            .0
            .wait_timeout(guard, left)
            .unwrap_or_else(PoisonError::into_inner);
        (guard, result.timed_out())
    }
}

#[cfg(ferrotrace_loom)]
mod loom_queue {
    use std::collections::VecDeque;

    /// crossbeam's `ArrayQueue` as loom can see it (see above).
    pub(crate) struct ArrayQueue<T> {
        items: loom::sync::Mutex<VecDeque<T>>,
        capacity: usize,
    }

    impl<T> ArrayQueue<T> {
        pub fn new(capacity: usize) -> Self {
            assert!(capacity > 0, "capacity must be non-zero");
            ArrayQueue {
                items: loom::sync::Mutex::new(VecDeque::with_capacity(capacity)),
                capacity,
            }
        }

        pub fn push(&self, value: T) -> Result<(), T> {
            let mut items = self.items.lock().unwrap();
            if items.len() == self.capacity {
                return Err(value);
            }
            items.push_back(value);
            Ok(())
        }

        pub fn pop(&self) -> Option<T> {
            self.items.lock().unwrap().pop_front()
        }

        pub fn len(&self) -> usize {
            self.items.lock().unwrap().len()
        }

        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }

        pub fn capacity(&self) -> usize {
            self.capacity
        }
    }
}

#[cfg(all(test, not(ferrotrace_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn wait_until_times_out_or_wakes() {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let (lock, cond) = &*pair;
        let (guard, timed_out) =
            cond.wait_until(lock.lock(), Instant::now() + Duration::from_millis(10));
        assert!(timed_out);
        drop(guard);
        let other = Arc::clone(&pair);
        let t = std::thread::spawn(move || {
            *other.0.lock() = true;
            other.1.notify_all();
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut done = lock.lock();
        while !*done {
            let (g, timed_out) = cond.wait_until(done, deadline);
            done = g;
            assert!(!timed_out);
        }
        t.join().unwrap();
    }
}
