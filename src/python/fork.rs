//! Process lifecycle: fork and interpreter exit.
//!
//! Every tracer's collector is registered here. In a forked child the
//! Python side calls `_after_fork_in_child` (via `os.register_at_fork`):
//! ids are reseeded and each collector gets a fresh pipeline and writer
//! thread. At exit `_shutdown_all` flushes every live tracer within one
//! shared deadline, so exit never hangs.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::collector::Collector;
use crate::ids;

static FORK_EPOCH: AtomicU32 = AtomicU32::new(0);
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

/// Called in the child after `os.fork()`.
#[pyfunction]
pub fn _after_fork_in_child() {
    FORK_EPOCH.fetch_add(1, Ordering::Relaxed);
    ids::reseed_after_fork();
    // The child has one thread, so nothing can hold the registry lock
    // legitimately; a lock the parent's other threads held is released.
    if REGISTRY.is_locked() {
        // SAFETY: no other thread exists in the child to own the lock.
        unsafe { REGISTRY.force_unlock() };
    }
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
