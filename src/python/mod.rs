//! The PyO3 binding layer: turns the core into `ferrotrace._core`.

mod analysis;
mod asgi;
mod context;
mod convert;
mod fork;
mod global;
mod logging;
mod once;
mod options;
mod otel;
mod propagation;
mod provider;
mod query;
mod registry;
mod serve;
mod span;
mod span_context;
mod traced;
mod tracer;
mod tracer_core;
mod values;

use pyo3::prelude::*;

/// The active span of any tracer in this thread or task, or None.
#[pyfunction]
fn current_span(py: Python<'_>) -> PyResult<Option<Bound<'_, PyAny>>> {
    Ok(context::get(py)?.filter(|s| s.cast::<span::SpanPy>().is_ok()))
}

/// Makes `span` active in the current context; returns a reset token.
#[pyfunction]
fn _set_current<'py>(span: &Bound<'py, span::SpanPy>) -> PyResult<Bound<'py, PyAny>> {
    context::set(span.py(), span.as_any())
}

/// Undoes `_set_current`; a token from another context is ignored.
#[pyfunction]
fn _reset_current(py: Python<'_>, token: &Bound<'_, PyAny>) {
    if context::reset(py, token).is_err() {
        let _ = PyErr::take(py);
    }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    once::initialise_pyo3_lazy_state(m.py());
    m.add_class::<tracer::TracerPy>()?;
    m.add_class::<span::SpanPy>()?;
    m.add_class::<span_context::SpanContextPy>()?;
    m.add_class::<traced::TracedCallPy>()?;
    m.add_class::<analysis::AnalysisPy>()?;
    m.add_class::<otel::OtelTracerPy>()?;
    m.add_class::<otel::OtelSpanPy>()?;
    m.add_class::<otel::CurrentSpanPy>()?;
    m.add_function(wrap_pyfunction!(otel::_otel_install, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::analyze, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::operation_stats, m)?)?;
    m.add_function(wrap_pyfunction!(asgi::_start_server_span, m)?)?;
    m.add_function(wrap_pyfunction!(asgi::_server_response_start, m)?)?;
    m.add_function(wrap_pyfunction!(asgi::_finish_server_span, m)?)?;
    m.add_function(wrap_pyfunction!(current_span, m)?)?;
    m.add_function(wrap_pyfunction!(propagation::inject, m)?)?;
    m.add_function(wrap_pyfunction!(propagation::extract, m)?)?;
    m.add_function(wrap_pyfunction!(_set_current, m)?)?;
    m.add_function(wrap_pyfunction!(_reset_current, m)?)?;
    m.add_function(wrap_pyfunction!(global::_set_global_tracer, m)?)?;
    m.add_function(wrap_pyfunction!(global::_global_tracer, m)?)?;
    m.add_function(wrap_pyfunction!(fork::_before_fork, m)?)?;
    m.add_function(wrap_pyfunction!(fork::_after_fork_in_parent, m)?)?;
    m.add_function(wrap_pyfunction!(fork::_after_fork_in_child, m)?)?;
    m.add_function(wrap_pyfunction!(options::_options, m)?)?;
    m.add_function(wrap_pyfunction!(options::_options_markdown, m)?)?;
    m.add_function(wrap_pyfunction!(registry::_shutdown_all, m)?)?;
    m.add_function(wrap_pyfunction!(registry::_flush_all, m)?)?;
    m.add_function(wrap_pyfunction!(serve::serve, m)?)?;
    Ok(())
}
