//! Every live tracer's collector, for what concerns them all: the exit
//! flush (`_shutdown_all` stops every tracer within one shared deadline, so
//! exit never hangs), the multiprocessing flush, the service graph across
//! tracers, and the fork hooks (`fork.rs`). Also the fork epoch: a span
//! remembers the one it started in.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::collector::Collector;

pub(super) static FORK_EPOCH: AtomicU32 = AtomicU32::new(0);
/// Only ever held with the GIL held, and never waited for with the GIL held
/// except by the fork hooks (`lock` below): so it never parks, and never
/// touches parking_lot's global table (which is not fork-safe; see
/// `sync.rs`). The fork hooks hold its guard across `fork()` (`fork.rs`).
pub(super) static REGISTRY: Mutex<Vec<Weak<Collector>>> = Mutex::new(Vec::new());

/// Increments in every forked child; a span remembers the epoch it started in.
#[inline]
pub fn epoch() -> u32 {
    FORK_EPOCH.load(Ordering::Relaxed)
}

/// Takes the registry, never waiting for it with the GIL held. The fork
/// hooks hold it across `fork()`, and Python code runs between them (the
/// hooks' own frames, other modules' hooks), so the GIL can pass to another
/// thread meanwhile: one that then blocked here holding the GIL would keep
/// the forking thread from ever reaching the hook that releases it.
fn lock(py: Python<'_>) -> MutexGuard<'static, Vec<Weak<Collector>>> {
    take_without_gil(py, || REGISTRY.try_lock())
}

/// Retries `try_take` until it yields, letting go of the GIL between tries:
/// how every lock the fork hooks hold across `fork()` is taken elsewhere.
pub(super) fn take_without_gil<G>(py: Python<'_>, mut try_take: impl FnMut() -> Option<G>) -> G {
    loop {
        if let Some(guard) = try_take() {
            return guard;
        }
        py.detach(std::thread::yield_now);
    }
}

pub fn register(py: Python<'_>, collector: &Arc<Collector>) {
    let mut registry = lock(py);
    registry.retain(|w| w.strong_count() > 0);
    registry.push(Arc::downgrade(collector));
}

pub fn live_collectors(py: Python<'_>) -> Vec<Arc<Collector>> {
    lock(py).iter().filter_map(Weak::upgrade).collect()
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
