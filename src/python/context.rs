//! The active span, held in one `contextvars.ContextVar` shared by every
//! tracer, so threads and asyncio tasks each see their own. Accessed through
//! the C API directly: these calls run on every span start and finish.

use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

static CURRENT_SPAN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn var(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    CURRENT_SPAN
        .get_or_try_init(py, || {
            let name = c"ferrotrace_current_span";
            // SAFETY: a valid C string; no default (NULL), so an unset
            // variable reads as NULL and needs no None check.
            let ptr = unsafe { ffi::PyContextVar_New(name.as_ptr(), std::ptr::null_mut()) };
            // SAFETY: PyContextVar_New returns a new reference or NULL with an error set.
            unsafe { Bound::from_owned_ptr_or_err(py, ptr) }.map(Bound::unbind)
        })
        .map(|v| v.bind(py))
}

/// The active span object, if any.
#[inline]
pub fn get(py: Python<'_>) -> PyResult<Option<Bound<'_, PyAny>>> {
    let var = var(py)?;
    let mut value: *mut ffi::PyObject = std::ptr::null_mut();
    // SAFETY: `var` is a ContextVar; `value` receives a new reference or NULL.
    let rc = unsafe { ffi::PyContextVar_Get(var.as_ptr(), std::ptr::null_mut(), &mut value) };
    if rc < 0 {
        return Err(
            PyErr::take(py).unwrap_or_else(|| PyRuntimeError::new_err("ContextVar.get failed"))
        );
    }
    // SAFETY: `value` is a new reference or NULL.
    Ok(unsafe { Bound::from_owned_ptr_or_opt(py, value) })
}

/// Makes `value` the active span; returns the token that undoes it.
#[inline]
pub fn set<'py>(py: Python<'py>, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let var = var(py)?;
    // SAFETY: `var` is a ContextVar; the result is a new reference or NULL with an error set.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyContextVar_Set(var.as_ptr(), value.as_ptr())) }
}

/// Restores what was active before the `set` that returned `token`.
#[inline]
pub fn reset(py: Python<'_>, token: &Bound<'_, PyAny>) -> PyResult<()> {
    let var = var(py)?;
    // SAFETY: both are valid objects; Reset validates the token itself.
    let rc = unsafe { ffi::PyContextVar_Reset(var.as_ptr(), token.as_ptr()) };
    if rc < 0 {
        return Err(
            PyErr::take(py).unwrap_or_else(|| PyRuntimeError::new_err("ContextVar.reset failed"))
        );
    }
    Ok(())
}
