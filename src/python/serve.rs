//! `ferrotrace._core.serve`: runs the server (src/server/) with the GIL
//! released, asking Python every 100 ms whether a signal arrived, so that
//! Ctrl-C (KeyboardInterrupt) and whatever the caller's SIGTERM handler
//! raises stop it cleanly and come back out as that exception.

use std::path::PathBuf;
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::query::Retention;
use crate::server::{serve as run, Listening, ServeError, ServeOptions};

/// Serves `dir` until a signal handler raises (KeyboardInterrupt on
/// Ctrl-C), then returns that exception. `on_listening(info)` is called
/// once requests are accepted, with `url`, `otlp_url` (or None),
/// `spans_loaded` and `load_seconds`. OSError when the directory or the
/// ports cannot be used; ValueError for bad options.
#[pyfunction]
#[pyo3(signature = (dir, *, host = "127.0.0.1".to_string(), port = 16686, otlp_port = Some(4318), cors_origin = None, max_spans = Some(crate::server::DEFAULT_MAX_SPANS), max_body_mb = 20.0, on_listening = None))]
#[allow(clippy::too_many_arguments)]
pub fn serve(
    py: Python<'_>,
    dir: PathBuf,
    host: String,
    port: u16,
    otlp_port: Option<u16>,
    cors_origin: Option<String>,
    max_spans: Option<usize>,
    max_body_mb: f64,
    on_listening: Option<Py<PyAny>>,
) -> PyResult<()> {
    if !(max_body_mb.is_finite() && max_body_mb > 0.0) {
        return Err(PyValueError::new_err(format!(
            "max_body_mb must be a positive number, not {max_body_mb}"
        )));
    }
    let mut options = ServeOptions::new(dir);
    options.host = host;
    options.port = port;
    options.otlp_port = otlp_port;
    options.cors_origin = cors_origin;
    options.max_body_bytes = (max_body_mb * 1024.0 * 1024.0) as usize;
    options.retention = Retention {
        max_traces: None,
        max_spans: max_spans.filter(|&n| n > 0),
    };
    options.follow_interval = Duration::from_millis(200);
    let stopped_by: Mutex<Option<PyErr>> = Mutex::new(None);
    let callback_error: Mutex<Option<PyErr>> = Mutex::new(None);
    let result = py.detach(|| {
        run(
            options,
            |listening: &Listening| {
                let Some(callback) = &on_listening else {
                    return;
                };
                Python::attach(|py| {
                    let info = PyDict::new(py);
                    let called = (|| {
                        info.set_item("url", format!("http://{}", listening.addr))?;
                        info.set_item(
                            "otlp_url",
                            listening.otlp_addr.map(|a| format!("http://{a}/v1/traces")),
                        )?;
                        info.set_item("spans_loaded", listening.spans_loaded)?;
                        info.set_item("load_seconds", listening.load_time.as_secs_f64())?;
                        callback.call1(py, (info,))
                    })();
                    if let Err(e) = called {
                        *callback_error.lock() = Some(e);
                    }
                });
            },
            || {
                if callback_error.lock().is_some() {
                    return true;
                }
                Python::attach(|py| match py.check_signals() {
                    Ok(()) => false,
                    Err(e) => {
                        *stopped_by.lock() = Some(e);
                        true
                    }
                })
            },
        )
    });
    if let Some(e) = callback_error.into_inner() {
        return Err(e);
    }
    result.map_err(|e| match e {
        ServeError::Host(_) | ServeError::Option(_) => PyValueError::new_err(e.to_string()),
        _ => PyOSError::new_err(e.to_string()),
    })?;
    match stopped_by.into_inner() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
