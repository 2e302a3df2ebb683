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
/// Their holders hold the GIL, so neither lock is held now unless another
/// thread is between its own fork hooks; then this one waits for it without
/// the GIL (`registry::take_fork_lock`). Until the after-fork hook, threads
/// that want either lock wait for it the same way, so this thread can take
/// the GIL back to release them.
#[pyfunction]
pub fn _before_fork(py: Python<'_>) {
    global::lock_for_fork(py);
    std::mem::forget(registry::take_fork_lock(py, || REGISTRY.try_lock()));
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
pub fn _after_fork_in_child(py: Python<'_>) {
    release_fork_locks();
    FORK_EPOCH.fetch_add(1, Ordering::Relaxed);
    ids::reseed_after_fork();
    for collector in registry::live_collectors(py) {
        collector.reset_after_fork();
    }
}
