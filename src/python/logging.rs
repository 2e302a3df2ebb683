//! Warnings go to `logging.getLogger("ferrotrace")`, on a Python thread
//! (background threads queue them; see the core's `warnings.rs`).

use super::once::GilOnceCell;
use pyo3::prelude::*;

static LOGGER: GilOnceCell<Py<PyAny>> = GilOnceCell::new();

/// Logs `message` as a warning; never raises.
pub fn warning(py: Python<'_>, message: &str) {
    let logger = LOGGER.get_or_try_init(py, || {
        py.import("logging")
            .and_then(|m| m.call_method1("getLogger", ("ferrotrace",)))
            .map(Bound::unbind)
    });
    let logged = logger.and_then(|l| l.bind(py).call_method1("warning", ("%s", message)));
    if logged.is_err() {
        let _ = PyErr::take(py);
    }
}
