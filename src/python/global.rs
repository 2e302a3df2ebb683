//! The process-wide tracer behind `ft.traced`, `ft.configure` and
//! `ft.get_tracer` (created and replaced from Python, read here on every
//! traced call of a function decorated without a tracer).
//!
//! Fork: the lock is a `parking_lot::RwLock` that a thread of the parent
//! may hold at the moment of `fork()`. `_before_fork` takes it (write) in
//! the forking thread and both processes release it after, so the child
//! never inherits it held (see ARCHITECTURE.md, "Fork").

use parking_lot::RwLock;
use pyo3::prelude::*;

use super::tracer::TracerPy;

static GLOBAL_TRACER: RwLock<Option<Py<TracerPy>>> = RwLock::new(None);

/// The global tracer, configured from the environment on first use.
pub fn tracer(py: Python<'_>) -> PyResult<Bound<'_, TracerPy>> {
    if let Some(t) = GLOBAL_TRACER.read().as_ref() {
        return Ok(t.bind(py).clone());
    }
    // `ferrotrace.get_tracer()` creates it and registers it through
    // `_set_global_tracer` (it also owns the lock against double creation).
    let tracer = py.import("ferrotrace")?.call_method0("get_tracer")?;
    Ok(tracer.cast_into::<TracerPy>()?)
}

/// The global tracer if one exists (never creates it).
pub fn existing(py: Python<'_>) -> Option<Py<TracerPy>> {
    GLOBAL_TRACER.read().as_ref().map(|t| t.clone_ref(py))
}

#[pyfunction]
pub fn _set_global_tracer(py: Python<'_>, tracer: Option<Py<TracerPy>>) {
    // Never wait for the lock holding the GIL: a reader may be waiting for
    // the GIL (detached) while it holds the lock.
    let previous = py.detach(|| std::mem::replace(&mut *GLOBAL_TRACER.write(), tracer));
    drop(previous);
}

#[pyfunction]
pub fn _global_tracer(py: Python<'_>) -> Option<Py<TracerPy>> {
    existing(py)
}

/// Holds the lock across `fork()`: taken before, released after.
pub fn lock_for_fork() {
    std::mem::forget(GLOBAL_TRACER.write());
}

/// Releases what `lock_for_fork` took, in the parent and in the child.
pub fn unlock_after_fork() {
    // SAFETY: `lock_for_fork` took the write lock in this thread and
    // forgot the guard; the child's only thread is the one that forked.
    unsafe { GLOBAL_TRACER.force_unlock_write() };
}
