//! Fork. Around `fork()` the Python side (via `os.register_at_fork`) calls
//! `_before_fork` in the forking thread, which takes the locks a child could
//! inherit held (the tracer registry and the global tracer), and
//! `_after_fork_in_parent` / `_after_fork_in_child`, which release them. In
//! the child, ids are then reseeded and each collector gets a fresh pipeline,
//! sinks and threads (see ARCHITECTURE.md, "Fork").

use std::sync::atomic::Ordering;

use pyo3::prelude::*;

use crate::ids;

use super::global;
use super::registry::{self, FORK_EPOCH, REGISTRY};

/// Called in the forking thread right before `os.fork()`, with the GIL.
/// It keeps the GIL while taking the locks: their holders either hold the
/// GIL themselves (so none is inside them now) or never wait for it, and
/// releasing the GIL here would let a thread take the GIL and then block on
/// a lock this thread holds, while this thread waits for the GIL.
#[pyfunction]
pub fn _before_fork() {
    global::lock_for_fork();
    std::mem::forget(REGISTRY.lock());
}

fn release_fork_locks() {
    // SAFETY: `_before_fork` locked both in this thread and forgot the
    // guards; after fork this thread is the one that continues (in the
    // child, the only thread).
    unsafe { REGISTRY.force_unlock() };
    global::unlock_after_fork();
}

/// Called in the parent after `os.fork()`.
#[pyfunction]
pub fn _after_fork_in_parent() {
    release_fork_locks();
}

/// Called in the child after `os.fork()`.
#[pyfunction]
pub fn _after_fork_in_child() {
    release_fork_locks();
    FORK_EPOCH.fetch_add(1, Ordering::Relaxed);
    ids::reseed_after_fork();
    for collector in registry::live_collectors() {
        collector.reset_after_fork();
    }
}
