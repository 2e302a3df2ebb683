//! The process-wide tracer behind `ft.traced`, `ft.configure` and
//! `ft.get_tracer` (created and replaced from Python, read here on every
//! traced call of a function decorated without a tracer).
//!
//! Every access holds the GIL and never waits for it while holding the
//! lock; and only the fork hooks wait for the lock with the GIL held
//! (`read`/`write` below release it while they wait). Fork: `_before_fork`
//! takes it (write) in the forking thread and both processes release it
//! after, so a child never inherits it held, whatever the interpreter's
//! threading model (see ARCHITECTURE.md, "Fork").

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use pyo3::prelude::*;

use super::registry::take_without_gil;
use super::tracer::TracerPy;

static GLOBAL_TRACER: RwLock<Option<Py<TracerPy>>> = RwLock::new(None);

/// Never waits for the lock with the GIL held: the fork hooks hold it
/// (write) across `fork()` while Python code runs between them, so the GIL
/// can pass to a thread that must not then block here holding it (see
/// `registry::lock`).
fn read(py: Python<'_>) -> RwLockReadGuard<'static, Option<Py<TracerPy>>> {
    take_without_gil(py, || GLOBAL_TRACER.try_read())
}

fn write(py: Python<'_>) -> RwLockWriteGuard<'static, Option<Py<TracerPy>>> {
    take_without_gil(py, || GLOBAL_TRACER.try_write())
}

/// The global tracer, configured from the environment on first use.
pub fn tracer(py: Python<'_>) -> PyResult<Bound<'_, TracerPy>> {
    if let Some(t) = read(py).as_ref() {
        return Ok(t.bind(py).clone());
    }
    // `ferrotrace.get_tracer()` creates it and registers it through
    // `_set_global_tracer` (it also owns the lock against double creation).
    let tracer = py.import("ferrotrace")?.call_method0("get_tracer")?;
    Ok(tracer.cast_into::<TracerPy>()?)
}

/// The global tracer if one exists (never creates it).
pub fn existing(py: Python<'_>) -> Option<Py<TracerPy>> {
    read(py).as_ref().map(|t| t.clone_ref(py))
}

#[pyfunction]
pub fn _set_global_tracer(py: Python<'_>, tracer: Option<Py<TracerPy>>) {
    let previous = std::mem::replace(&mut *write(py), tracer);
    drop(previous);
}

#[pyfunction]
pub fn _global_tracer(py: Python<'_>) -> Option<Py<TracerPy>> {
    existing(py)
}

/// Takes the lock to hold across `fork()`; dropping the guard after fork
/// releases it (see `fork.rs`).
pub fn lock_for_fork() -> RwLockWriteGuard<'static, Option<Py<TracerPy>>> {
    GLOBAL_TRACER.write()
}
