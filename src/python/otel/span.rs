//! `OTelSpan`: the span OpenTelemetry-API callers get. It is a ferrotrace
//! `Span` (same record, same writer; `ft.current_span()` returns it) with
//! the OpenTelemetry semantics where the two APIs differ:
//! - `kind` is an `opentelemetry.trace.SpanKind` (instrumentations compare
//!   it with `SpanKind.SERVER`);
//! - `with span:` does not make it current (`use_span` and
//!   `start_as_current_span` do), and leaving the block records an escaping
//!   exception as the SDK's spans do;
//! - `set_status` ignores UNSET and never overrides OK;
//! - `record_exception` notes the exception without failing the span;
//! - attributes set to None are left out, as the SDK leaves them.

use compact_str::CompactString;
use pyo3::prelude::*;

use crate::span::Status;

use super::super::convert;
use super::super::span::SpanPy;
use super::{kind_to_py, status_from_py};

#[pyclass(
    name = "OTelSpan",
    module = "ferrotrace._core",
    extends = SpanPy,
    frozen,
    // A freelist of its own: the base's recycles only exact `Span`s.
    freelist = 256
)]
pub struct OtelSpanPy {
    pub record_exception: bool,
    pub set_status_on_exception: bool,
}

/// `"ValueError: bad input"`, the SDK's description of a failure.
fn failure_description(exc: &Bound<'_, PyAny>) -> CompactString {
    let type_name = exc
        .get_type()
        .name()
        .map(|n| convert::text(&n))
        .unwrap_or_default();
    compact_str::format_compact!("{type_name}: {}", convert::display(exc))
}

/// `error.type` by the semantic conventions: the exception's qualified type.
fn error_type(exc: &Bound<'_, PyAny>) -> CompactString {
    CompactString::from(convert::exception_type(exc))
}

/// What an exception escaping a span's block does to it (the SDK's rules):
/// recorded as an `exception` event (escaped), and the span failed with the
/// description `"Type: message"`, each unless turned off.
pub fn exception_escaped(
    py: Python<'_>,
    span: &SpanPy,
    exc: &Bound<'_, PyAny>,
    record: bool,
    set_status: bool,
) {
    if !span.is_recording() {
        return;
    }
    if record {
        // Never raises for an exception object; a failure here must not
        // replace the exception the traced code raised.
        if span
            .record_exception_event(py, exc, None, None, true, false)
            .is_err()
        {
            let _ = PyErr::take(py);
        }
    }
    if set_status {
        span.set_otel_status(
            Status::Error,
            Some(failure_description(exc)),
            Some(error_type(exc)),
        );
    }
}

#[pymethods]
impl OtelSpanPy {
    /// The span's kind as an `opentelemetry.trace.SpanKind`.
    #[getter]
    fn kind<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let base = slf.as_super().get();
        let kind = base.kind_value();
        kind_to_py(slf.py(), kind)
    }

    fn set_attribute(slf: &Bound<'_, Self>, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) {
        if !value.is_none() {
            slf.as_super().get().set_tag(key, value);
        }
    }

    fn set_attributes(slf: &Bound<'_, Self>, attributes: &Bound<'_, PyAny>) -> PyResult<()> {
        let span = slf.as_super().get();
        convert::for_each_item(
            attributes,
            "set_attributes() takes a mapping of attribute names to values",
            |k, v| {
                if !v.is_none() {
                    span.set_tag(k, v);
                }
                Ok(())
            },
        )
    }

    /// `set_status(Status(code, description))` or `set_status(code,
    /// description)`; UNSET is ignored and OK is final.
    #[pyo3(signature = (status, description=None))]
    fn set_status(
        slf: &Bound<'_, Self>,
        status: &Bound<'_, PyAny>,
        description: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let span = slf.as_super().get();
        match status_from_py(status, description)? {
            Some((parsed, description)) => {
                span.set_otel_status(parsed, description, None);
                Ok(())
            }
            // ferrotrace's own values (an HTTP code, "error", ...).
            None => span.set_status(status, description),
        }
    }

    /// An `exception` event and the span's error; the status is left to
    /// `set_status` (OpenTelemetry's rule).
    #[pyo3(signature = (exception, attributes=None, timestamp=None, escaped=false))]
    fn record_exception(
        slf: &Bound<'_, Self>,
        exception: &Bound<'_, PyAny>,
        attributes: Option<&Bound<'_, PyAny>>,
        timestamp: Option<u64>,
        escaped: bool,
    ) -> PyResult<()> {
        slf.as_super().get().record_exception_event(
            slf.py(),
            exception,
            attributes,
            timestamp,
            escaped,
            false,
        )
    }

    /// Returns the span, not made current (OpenTelemetry's `Span.__enter__`).
    fn __enter__<'py>(slf: &Bound<'py, Self>) -> Bound<'py, Self> {
        slf.clone()
    }

    /// Ends the span; an escaping exception is recorded and fails it, unless
    /// the span was started with `record_exception=False` /
    /// `set_status_on_exception=False`.
    fn __exit__(
        slf: &Bound<'_, Self>,
        _exc_type: &Bound<'_, PyAny>,
        exc_value: &Bound<'_, PyAny>,
        _traceback: &Bound<'_, PyAny>,
    ) -> bool {
        let py = slf.py();
        let this = slf.get();
        let span = slf.as_super().get();
        if !exc_value.is_none() {
            exception_escaped(
                py,
                span,
                exc_value,
                this.record_exception,
                this.set_status_on_exception,
            );
        }
        span.end_span(py, None);
        false
    }
}
