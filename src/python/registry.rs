//! Every live tracer's collector, for what concerns them all: the exit
//! flush (`_shutdown_all` stops every tracer within one shared deadline, so
//! exit never hangs), the multiprocessing flush, the service graph across
//! tracers, and the fork hooks (`fork.rs`). Also the fork epoch: a span
//! remembers the one it started in.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::collector::Collector;

pub(super) static FORK_EPOCH: AtomicU32 = AtomicU32::new(0);
/// Only ever locked with the GIL held (through [`take_fork_lock`]), so it
/// never parks, and so never touches parking_lot's global table (which is
/// not fork-safe; see `sync.rs`). It is a parking_lot lock for
/// `force_unlock`, which the fork hooks need.
pub(super) static REGISTRY: Mutex<Vec<Weak<Collector>>> = Mutex::new(Vec::new());

/// Increments in every forked child; a span remembers the epoch it started in.
#[inline]
pub fn epoch() -> u32 {
    FORK_EPOCH.load(Ordering::Relaxed)
}

/// Takes one of the locks the fork hooks hold (this registry, the global
/// tracer), with the GIL held. Outside a fork they are only ever held with
/// the GIL, so `try_take` succeeds at once. From `_before_fork` to the
/// after-fork hook the forking thread holds them and may let go of the GIL
/// in between (the other at-fork hooks run Python code, and Python 3.9's
/// interpreter hands the GIL to another thread there): waiting for the lock
/// with the GIL would then deadlock with the forking thread waiting for the
/// GIL, and parking on it is not fork-safe. So a waiter lets go of the GIL
/// for a moment and tries again.
pub(super) fn take_fork_lock<G>(py: Python<'_>, mut try_take: impl FnMut() -> Option<G>) -> G {
    loop {
        if let Some(guard) = try_take() {
            return guard;
        }
        py.detach(|| std::thread::sleep(Duration::from_micros(50)));
    }
}

pub fn register(py: Python<'_>, collector: &Arc<Collector>) {
    let mut registry = take_fork_lock(py, || REGISTRY.try_lock());
    registry.retain(|w| w.strong_count() > 0);
    registry.push(Arc::downgrade(collector));
}

pub fn live_collectors(py: Python<'_>) -> Vec<Arc<Collector>> {
    take_fork_lock(py, || REGISTRY.try_lock())
        .iter()
        .filter_map(Weak::upgrade)
        .collect()
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

/// Flushes and stops every live tracer; returns whether all finished in time.
#[pyfunction]
#[pyo3(signature = (timeout=5.0))]
pub fn _shutdown_all(py: Python<'_>, timeout: f64) -> PyResult<bool> {
    let deadline = Instant::now() + timeout_arg(timeout)?;
    let collectors = live_collectors(py);
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
    let collectors = live_collectors(py);
    Ok(py.detach(|| {
        collectors.iter().all(|c| {
            let left = deadline.saturating_duration_since(Instant::now());
            c.flush(left)
        })
    }))
}
