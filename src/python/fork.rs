//! Fork. Around `fork()` the Python side (via `os.register_at_fork`) calls
//! `_before_fork` in the forking thread, which takes the locks a child could
//! inherit held (the tracer registry and the global tracer), and
//! `_after_fork_in_parent` / `_after_fork_in_child`, which release them. In
//! the child, ids are then reseeded and each collector gets a fresh pipeline,
//! sinks and threads (see ARCHITECTURE.md, "Fork").

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::Weak;

use parking_lot::{MutexGuard, RwLockWriteGuard};
use pyo3::prelude::*;

use crate::collector::Collector;
use crate::ids;

use super::global;
use super::registry::{self, FORK_EPOCH, REGISTRY};
use super::tracer::TracerPy;

/// The locks `_before_fork` took, held by the forking thread across
/// `fork()` and released (dropped) after it. Fields drop in order: the
/// registry, then the global tracer. (Kept as guards rather than forgotten
/// and force-unlocked: the same operations, with no unsafe code.)
struct ForkLocks {
    _registry: MutexGuard<'static, Vec<Weak<Collector>>>,
    _global: RwLockWriteGuard<'static, Option<Py<TracerPy>>>,
}

thread_local! {
    /// Per thread because the forking thread is the one that calls both
    /// hooks, and the child's copy of it is its only thread.
    static FORK_LOCKS: RefCell<Option<ForkLocks>> = const { RefCell::new(None) };
}

/// Called in the forking thread right before `os.fork()`, with the GIL.
/// It keeps the GIL while taking the locks: their holders either hold the
/// GIL themselves (so none is inside them now) or never wait for it, and
/// releasing the GIL here would let a thread take the GIL and then block on
/// a lock this thread holds, while this thread waits for the GIL.
#[pyfunction]
pub fn _before_fork() {
    let global = global::lock_for_fork();
    let locks = ForkLocks {
        _registry: REGISTRY.lock(),
        _global: global,
    };
    FORK_LOCKS.with(|held| *held.borrow_mut() = Some(locks));
}

fn release_fork_locks() {
    // `take` ends the borrow before the guards drop.
    let locks = FORK_LOCKS.with(|held| held.borrow_mut().take());
    drop(locks);
}

/// Called in the parent after `os.fork()`.
#[pyfunction]
pub fn _after_fork_in_parent() {
    release_fork_locks();
}

/// Called in the child after `os.fork()`.
#[pyfunction]
pub fn _after_fork_in_child(py: Python<'_>) {
    release_fork_locks();
    FORK_EPOCH.fetch_add(1, Ordering::Relaxed);
    ids::reseed_after_fork();
    for collector in registry::live_collectors(py) {
        collector.reset_after_fork();
    }
}
