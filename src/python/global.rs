//! The process-wide tracer behind `ft.traced`, `ft.configure` and
//! `ft.get_tracer` (created and replaced from Python, read here on every
//! traced call of a function decorated without a tracer).
//!
//! Every access holds the GIL and never waits for it while holding the
//! lock, so outside a fork the lock is never contended. Fork: `_before_fork`
//! takes it (write) in the forking thread and both processes release it
//! after, so a child never inherits it held, whatever the interpreter's
//! threading model (see ARCHITECTURE.md, "Fork"); meanwhile other threads
//! wait for it without the GIL (`registry::take_fork_lock`).

use parking_lot::RwLock;
use pyo3::prelude::*;

use super::registry::take_fork_lock;
use super::tracer::TracerPy;

static GLOBAL_TRACER: RwLock<Option<Py<TracerPy>>> = RwLock::new(None);

/// The global tracer, configured from the environment on first use.
pub fn tracer(py: Python<'_>) -> PyResult<Bound<'_, TracerPy>> {
    if let Some(t) = take_fork_lock(py, || GLOBAL_TRACER.try_read()).as_ref() {
        return Ok(t.bind(py).clone());
    }
    // `ferrotrace.get_tracer()` creates it and registers it through
    // `_set_global_tracer` (it also owns the lock against double creation).
    let tracer = py.import("ferrotrace")?.call_method0("get_tracer")?;
    Ok(tracer.cast_into::<TracerPy>()?)
}

/// The global tracer if one exists (never creates it).
pub fn existing(py: Python<'_>) -> Option<Py<TracerPy>> {
    take_fork_lock(py, || GLOBAL_TRACER.try_read())
        .as_ref()
        .map(|t| t.clone_ref(py))
}

#[pyfunction]
pub fn _set_global_tracer(py: Python<'_>, tracer: Option<Py<TracerPy>>) {
    let mut slot = take_fork_lock(py, || GLOBAL_TRACER.try_write());
    let previous = std::mem::replace(&mut *slot, tracer);
    drop(slot);
    drop(previous);
}

#[pyfunction]
pub fn _global_tracer(py: Python<'_>) -> Option<Py<TracerPy>> {
    existing(py)
}

/// Holds the lock across `fork()`: taken before, released after.
pub fn lock_for_fork(py: Python<'_>) {
    std::mem::forget(take_fork_lock(py, || GLOBAL_TRACER.try_write()));
}

/// Releases what `lock_for_fork` took, in the parent and in the child.
pub fn unlock_after_fork() {
    // SAFETY: `lock_for_fork` took the write lock in this thread and
    // forgot the guard; the child's only thread is the one that forked.
    unsafe { GLOBAL_TRACER.force_unlock_write() };
}
