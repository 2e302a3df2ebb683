//! Process lifecycle: fork and interpreter exit.
//!
//! Every tracer's collector is registered here. Around `fork()` the Python
//! side (via `os.register_at_fork`) calls `_before_fork` in the forking
//! thread, which takes this module's locks (the registry and the global
//! tracer), and `_after_fork_in_parent` / `_after_fork_in_child`, which
//! release them: no lock another thread held at the moment of fork can be
//! inherited held. In the child, ids are then reseeded and each collector
//! gets a fresh pipeline and threads. At exit `_shutdown_all` flushes every live tracer within one
//! shared deadline, so exit never hangs.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::collector::Collector;
use crate::ids;

use super::global;

static FORK_EPOCH: AtomicU32 = AtomicU32::new(0);
/// Only ever locked with the GIL held, so never contended: it never parks,
/// and so never touches parking_lot's global table (which is not fork-safe;
/// see `sync.rs`). It is a parking_lot lock for `force_unlock`, which the
/// fork hooks need.
static REGISTRY: Mutex<Vec<Weak<Collector>>> = Mutex::new(Vec::new());

/// Increments in every forked child; a span remembers the epoch it started in.
#[inline]
pub fn epoch() -> u32 {
    FORK_EPOCH.load(Ordering::Relaxed)
}

pub fn register(collector: &Arc<Collector>) {
    let mut registry = REGISTRY.lock();
    registry.retain(|w| w.strong_count() > 0);
    registry.push(Arc::downgrade(collector));
}

pub fn live_collectors() -> Vec<Arc<Collector>> {
    REGISTRY.lock().iter().filter_map(Weak::upgrade).collect()
}

pub fn timeout_arg(timeout: f64) -> PyResult<Duration> {
    if timeout.is_finite() && timeout >= 0.0 {
        Ok(Duration::from_secs_f64(timeout.min(86_400.0)))
    } else {
        Err(PyValueError::new_err(format!(
            "timeout must be a finite number of seconds >= 0, got {timeout}"
        )))
    }
}

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
    for collector in live_collectors() {
        collector.reset_after_fork();
    }
}

/// Flushes and stops every live tracer; returns whether all finished in time.
#[pyfunction]
#[pyo3(signature = (timeout=5.0))]
pub fn _shutdown_all(py: Python<'_>, timeout: f64) -> PyResult<bool> {
    let deadline = Instant::now() + timeout_arg(timeout)?;
    let collectors = live_collectors();
    Ok(py.detach(|| {
        collectors.iter().all(|c| {
            let left = deadline.saturating_duration_since(Instant::now());
            c.shutdown(left)
        })
    }))
}

/// Flushes every live tracer (used before a multiprocessing child exits).
#[pyfunction]
#[pyo3(signature = (timeout=5.0))]
pub fn _flush_all(py: Python<'_>, timeout: f64) -> PyResult<bool> {
    let deadline = Instant::now() + timeout_arg(timeout)?;
    let collectors = live_collectors();
    Ok(py.detach(|| {
        collectors.iter().all(|c| {
            let left = deadline.saturating_duration_since(Instant::now());
            c.flush(left)
        })
    }))
}
