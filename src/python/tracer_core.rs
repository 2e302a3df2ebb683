//! The provider behind every tracer object: one collector, sampler and set
//! of propagators, shared (`Py<TracerCore>`) by the `Tracer` that made it,
//! by every span it starts, and by cheap per-scope tracers (an
//! instrumentation library's name and version, as OpenTelemetry's
//! `get_tracer(name, version)` asks for). Spans hold this handle rather
//! than the Python `Tracer`, so `span.rs` depends on this file only, and
//! nothing here depends on spans or tracers.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::attributes::Limits;
use crate::collector::Collector;
use crate::config::Config;
use crate::propagation::Propagator;
use crate::sampling::Sampler;

use super::logging;

/// A Python object only so that spans hold it by a (GIL-protected, non-
/// atomic) reference count; never exposed.
#[pyclass(frozen, name = "_TracerCore", module = "ferrotrace._core")]
pub struct TracerCore {
    pub collector: Arc<Collector>,
    /// The service name as a Python str, made once (read by `span.service`).
    pub service: Py<PyString>,
    pub(super) sampler: Sampler,
    /// Header formats of `ft.inject`/`ft.extract` when this is the global
    /// tracer, and of the integrations given this tracer (resolved once).
    pub propagators: Vec<Propagator>,
    /// `OTEL_SDK_DISABLED=true`: spans are counted, nothing is recorded.
    pub(super) disabled: bool,
}

impl TracerCore {
    pub fn new(py: Python<'_>, collector: Arc<Collector>) -> Self {
        let config: &Config = &collector.config;
        TracerCore {
            propagators: config.propagators.clone(),
            service: PyString::new(py, &config.service_name).unbind(),
            sampler: Sampler::new(
                config.sample_rate,
                config.max_traces_per_second,
                config.parent_based,
            ),
            disabled: config.disabled,
            collector,
        }
    }

    #[inline]
    pub fn limits(&self) -> &Limits {
        &self.collector.config.limits
    }

    #[inline]
    pub fn log_pending_warnings(&self, py: Python<'_>) {
        if self.collector.has_warnings() {
            for message in self.collector.take_warnings() {
                logging::warning(py, &message);
            }
        }
    }
}
