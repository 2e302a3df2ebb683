//! Locks that a forked child can use. `parking_lot` keeps the queues of
//! waiting threads in one global table, guarded by locks that a thread of
//! the parent may hold at the moment of `fork()`; the child then deadlocks
//! on its first contended lock, whichever it is. The standard library's
//! locks keep their whole state in the lock itself (a futex word on Linux),
//! so a lock created in the child starts clean. Everything a pipeline (or a
//! span) locks uses these; poisoning is ignored, because a panic is already
//! caught and counted where it happens and the data stays consistent.
//! See ARCHITECTURE.md, "Fork".

use std::sync::PoisonError;
use std::time::Instant;

pub use std::sync::MutexGuard;

#[derive(Default, Debug)]
pub struct Mutex<T>(std::sync::Mutex<T>);

impl<T> Mutex<T> {
    pub const fn new(value: T) -> Self {
        Mutex(std::sync::Mutex::new(value))
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
pub struct Condvar(std::sync::Condvar);

impl Condvar {
    pub const fn new() -> Self {
        Condvar(std::sync::Condvar::new())
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
    /// the deadline passed.
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

#[cfg(test)]
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
