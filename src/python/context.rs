//! The active span. Threads and asyncio tasks each see their own, through a
//! `contextvars.ContextVar`; these calls run on every span start and finish,
//! so they use the C API directly.
//!
//! Two modes:
//! - standalone (the default): ferrotrace's own variable holds the span;
//! - OpenTelemetry bridge (once `ferrotrace.otel` installs it, see
//!   [`install_otel`]): the span lives under the current-span key of
//!   OpenTelemetry's current `Context`, so there is one current span for both
//!   APIs. Activating a span attaches a copy of the current `Context` with
//!   that one key replaced, exactly as `trace.use_span` does, so every other
//!   key (baggage, suppress-instrumentation flags) survives and the tokens are
//!   OpenTelemetry's own: `context.detach` undoes a ferrotrace activation and
//!   the reverse, in any callback of the same context.
//!
//! Spans activated in ferrotrace's own variable before the bridge was
//! installed stay visible to ferrotrace (read when OpenTelemetry's context
//! has no span at all) and are reset where they were set.

use super::once::{interned, GilOnceCell};
use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyType};

static CURRENT_SPAN: GilOnceCell<Py<PyAny>> = GilOnceCell::new();

/// OpenTelemetry's runtime context, once the bridge is installed.
static OTEL: GilOnceCell<OtelContext> = GilOnceCell::new();

struct OtelContext {
    /// The `ContextVar` behind `opentelemetry.context` when its runtime is the
    /// default one (then it is used directly); None for a custom runtime
    /// (`OTEL_PYTHON_CONTEXT`), reached through its methods.
    var: Option<Py<PyAny>>,
    runtime: Py<PyAny>,
    /// `opentelemetry.trace.propagation._SPAN_KEY`.
    span_key: Py<PyString>,
    /// `opentelemetry.context.Context` (a read-only dict subclass).
    context_type: Py<PyType>,
    /// dict's own constructor, when `Context` keeps dict's `__new__` and
    /// `__init__` (it always has).
    dict_new: Option<ffi::newfunc>,
}

fn check(py: Python<'_>, rc: std::os::raw::c_int) -> PyResult<()> {
    if rc < 0 {
        return Err(PyErr::take(py).unwrap_or_else(|| {
            PyRuntimeError::new_err("building the OpenTelemetry context failed")
        }));
    }
    Ok(())
}

impl OtelContext {
    fn current<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &self.var {
            // The variable has a default (an empty Context): never NULL.
            Some(var) => var_get(var.bind(py))?
                .ok_or_else(|| PyRuntimeError::new_err("OpenTelemetry's context is unset")),
            None => self
                .runtime
                .bind(py)
                .call_method0(interned!(py, "get_current")),
        }
    }

    /// The current span object of the current Context, if it has one.
    fn span<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let current = self.current(py)?;
        let Ok(dict) = current.cast::<PyDict>() else {
            return Ok(None);
        };
        dict.get_item(self.span_key.bind(py))
    }

    /// A copy of `current` with `span` as its span.
    fn with_span<'py>(
        &self,
        py: Python<'py>,
        current: &Bound<'py, PyAny>,
        span: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let context = match (self.dict_new, current.cast::<PyDict>()) {
            // `Context(current)` through the type costs several times a
            // dict copy (no vectorcall for a Python subclass, an __init__
            // lookup): make the instance with dict's own constructor and
            // merge, which is what that call ends up doing.
            (Some(dict_new), Ok(current)) => {
                // SAFETY: the GIL is held (`py`). `dict_new` is dict's
                // tp_new, which `Context` inherits unchanged along with
                // tp_init (checked at install, else `dict_new` is None); it
                // takes (type, args, kwargs), reads neither args nor a NULL
                // kwargs, and returns a new reference or NULL with an error
                // set. `args` (the empty tuple, or NULL) is released once.
                let made = unsafe {
                    let args = ffi::PyTuple_New(0);
                    let made = dict_new(
                        self.context_type.as_ptr().cast(),
                        args,
                        std::ptr::null_mut(),
                    );
                    ffi::Py_XDECREF(args);
                    Bound::from_owned_ptr_or_err(py, made)?
                };
                // SAFETY: both are dicts (`made` a fresh, unshared one).
                check(py, unsafe {
                    ffi::PyDict_Merge(made.as_ptr(), current.as_ptr(), 1)
                })?;
                made
            }
            _ => self.context_type.bind(py).call1((current,))?,
        };
        // SAFETY: `context` is a dict subclass we just made and nobody else
        // holds; setting through the C API bypasses Context's read-only
        // __setitem__, as building it does.
        check(py, unsafe {
            ffi::PyDict_SetItem(context.as_ptr(), self.span_key.as_ptr(), span.as_ptr())
        })?;
        Ok(context)
    }

    /// Attaches a copy of the current Context with `span` as its span.
    fn attach<'py>(
        &self,
        py: Python<'py>,
        span: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let current = self.current(py)?;
        let context = self.with_span(py, &current, span)?;
        match &self.var {
            Some(var) => var_set(var.bind(py), &context),
            None => self
                .runtime
                .bind(py)
                .call_method1(interned!(py, "attach"), (context,)),
        }
    }

    fn detach(&self, py: Python<'_>, token: &Bound<'_, PyAny>) -> PyResult<()> {
        match &self.var {
            Some(var) => var_reset(var.bind(py), token),
            None => self
                .runtime
                .bind(py)
                .call_method1(interned!(py, "detach"), (token,))
                .map(drop),
        }
    }
}

fn own_var(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
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

#[inline]
fn var_get<'py>(var: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = var.py();
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

#[inline]
fn var_set<'py>(var: &Bound<'py, PyAny>, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: `var` is a ContextVar; the result is a new reference or NULL with an error set.
    unsafe {
        Bound::from_owned_ptr_or_err(
            var.py(),
            ffi::PyContextVar_Set(var.as_ptr(), value.as_ptr()),
        )
    }
}

#[inline]
fn var_reset(var: &Bound<'_, PyAny>, token: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = var.py();
    // SAFETY: both are valid objects; Reset validates the token itself.
    let rc = unsafe { ffi::PyContextVar_Reset(var.as_ptr(), token.as_ptr()) };
    if rc < 0 {
        return Err(
            PyErr::take(py).unwrap_or_else(|| PyRuntimeError::new_err("ContextVar.reset failed"))
        );
    }
    Ok(())
}

/// The active span object, if any: a ferrotrace `Span`, or with the bridge
/// installed whatever OpenTelemetry holds as current span (a span of
/// another SDK, a `NonRecordingSpan` of an extracted remote context).
#[inline]
pub fn get(py: Python<'_>) -> PyResult<Option<Bound<'_, PyAny>>> {
    if let Some(otel) = OTEL.get(py) {
        match otel.span(py) {
            Ok(Some(span)) => return Ok(Some(span)),
            Ok(None) => {}
            // Only a custom runtime context can fail here; tracing must not
            // raise into traced code because of it.
            Err(_) => {}
        }
    }
    var_get(own_var(py)?)
}

/// Makes `value` the active span; returns the token that undoes it.
#[inline]
pub fn set<'py>(py: Python<'py>, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    match OTEL.get(py) {
        // A custom runtime context that fails leaves the span active for
        // ferrotrace at least; `reset` knows such a token.
        Some(otel) => otel
            .attach(py, value)
            .or_else(|_| var_set(own_var(py)?, value)),
        None => var_set(own_var(py)?, value),
    }
}

/// Restores what was active before the `set` that returned `token`.
#[inline]
pub fn reset(py: Python<'_>, token: &Bound<'_, PyAny>) -> PyResult<()> {
    match OTEL.get(py) {
        // A token of ferrotrace's own variable was handed out before the
        // bridge was installed: it resets that variable.
        Some(otel) => otel
            .detach(py, token)
            .or_else(|err| var_reset(own_var(py)?, token).map_err(|_| err)),
        None => var_reset(own_var(py)?, token),
    }
}

/// Switches to the OpenTelemetry bridge mode (see the module docs). Only the
/// first call takes effect; the bridge stays for the life of the process.
pub fn install_otel(py: Python<'_>) -> PyResult<()> {
    OTEL.get_or_try_init(py, || {
        let context = py.import("opentelemetry.context")?;
        let runtime = context.getattr("_RUNTIME_CONTEXT")?;
        let default_runtime = py
            .import("opentelemetry.context.contextvars_context")?
            .getattr("ContextVarsRuntimeContext")?;
        let var = if runtime.get_type().is(&default_runtime) {
            Some(runtime.getattr("_current_context")?.unbind())
        } else {
            None
        };
        let span_key = py
            .import("opentelemetry.trace.propagation")?
            .getattr("_SPAN_KEY")?
            .cast_into::<PyString>()?
            .unbind();
        let context_type = context.getattr("Context")?.cast_into::<PyType>()?;
        // SAFETY: reads only, with the GIL held: `PyDict_Type` is a static
        // type object and `context_type` a live one held by this scope;
        // the slots are compared as addresses, never called here.
        let dict_new = unsafe {
            let dict = &*std::ptr::addr_of!(ffi::PyDict_Type);
            let ours = &*context_type.as_type_ptr();
            let same = |a: Option<ffi::newfunc>, b: Option<ffi::newfunc>| {
                a.map(|f| f as usize) == b.map(|f| f as usize)
            };
            let same_init = ours.tp_init.map(|f| f as usize) == dict.tp_init.map(|f| f as usize);
            (same(ours.tp_new, dict.tp_new) && same_init)
                .then_some(dict.tp_new)
                .flatten()
        };
        Ok::<_, PyErr>(OtelContext {
            var,
            runtime: runtime.unbind(),
            span_key,
            context_type: context_type.unbind(),
            dict_new,
        })
    })?;
    Ok(())
}

/// The current-span key of OpenTelemetry contexts, once the bridge is installed.
pub fn otel_span_key(py: Python<'_>) -> Option<&Bound<'_, PyString>> {
    OTEL.get(py).map(|o| o.span_key.bind(py))
}
