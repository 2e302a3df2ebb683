//! ferrotrace: distributed tracing for Python services with a Rust core.
//!
//! The core modules know nothing of Python; `python` is the PyO3 binding
//! layer that turns them into the `ferrotrace._core` extension module.

pub mod analysis;
pub mod attributes;
pub mod buffer;
pub mod clock;
pub mod collector;
pub(crate) mod compress;
pub mod config;
pub mod export;
pub(crate) mod flush;
pub mod ids;
pub mod jsonl;
pub mod live;
pub mod metrics;
pub mod options;
pub mod pool;
pub(crate) mod priority;
pub mod propagation;
pub mod query;
pub mod redact;
pub(crate) mod retention;
pub mod sampling;
pub mod server;
pub mod sinks;
pub(crate) mod slot;
pub mod span;
pub(crate) mod sync;
pub mod trace_summary;
pub(crate) mod warnings;
pub(crate) mod writer;

#[cfg(feature = "python")]
mod python;

/// Entry points for the cargo-fuzz targets (`fuzz/`); not an API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
