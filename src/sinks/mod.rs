//! Where kept spans go: a list of sinks (the JSONL files, OTLP, Zipkin, the
//! console). The collector thread decides which spans are kept (sampling,
//! tail rules) and hands each batch to every sink; each sink then runs on a
//! thread of its own behind a bounded queue (see [`worker`]), so a slow or
//! dead network endpoint can never hold up the files, the collector, or
//! traced code. See ARCHITECTURE.md, "Sinks".

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use std::time::Duration;

use crate::sync::Mutex;

use crate::attributes::AttrValue;
use crate::buffer::FinishedSpan;
use crate::config::{Config, ConfigError, Exporter};
use crate::export::config::{Compression, OtlpConfig, OtlpProtocol, ZipkinConfig};
use crate::export::console::ConsoleExporter;
use crate::export::otlp::OtlpExporter;
use crate::export::zipkin::ZipkinExporter;
use crate::export::Resource;
use crate::trace_summary::TraceSummary;
use crate::warnings::Warnings;

pub mod jsonl;
pub(crate) mod worker;

/// One hand-off from the collector to every sink. Shared (behind an `Arc`)
/// by all sinks: nothing is copied per sink.
#[derive(Default)]
pub struct Batch {
    /// Kept spans, in the order they finished.
    pub spans: Vec<FinishedSpan>,
    /// Traces whose local root finished in this batch (for `traces*.jsonl`).
    pub summaries: Vec<TraceSummary>,
}

/// What a sink did with one batch.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Spans now stored or accepted by the backend.
    pub delivered: u64,
    /// Spans given up on (after retries, or refused by the backend).
    pub lost: u64,
    /// Why something was lost, for a one-time warning per kind of failure.
    /// The kind (`DeliveryError::kind`) groups warnings; the message is shown.
    pub error: Option<DeliveryError>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct DeliveryError {
    /// A short stable tag such as "connect", "http-400", "timeout", "write".
    pub kind: String,
    pub message: String,
}

/// What a sink may ask of its worker while delivering.
pub struct SinkControl {
    /// Set when the tracer is shutting down: give up retrying.
    stopping: AtomicBool,
    /// Unix-epoch-free monotonic deadline (ns since `base`) by which a
    /// shutting-down sink must have returned; 0 means none.
    deadline_ns: AtomicU64,
    base: Instant,
    /// The pipeline's warnings, for what a sink must tell the user that is
    /// not a lost delivery (a `Delivery::error` is warned by the worker).
    warnings: Arc<Warnings>,
}

impl Default for SinkControl {
    fn default() -> Self {
        SinkControl::new(Arc::default())
    }
}

impl SinkControl {
    pub(crate) fn new(warnings: Arc<Warnings>) -> Self {
        SinkControl {
            stopping: AtomicBool::new(false),
            deadline_ns: AtomicU64::new(0),
            base: Instant::now(),
            warnings,
        }
    }

    /// Where a sink (or a thread of its own) reports a condition the user
    /// should hear of once, such as files deleted by retention.
    pub(crate) fn warnings(&self) -> &Arc<Warnings> {
        &self.warnings
    }

    /// True once shutdown began: retries should stop, in-flight work finish.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// The moment by which a delivery must return during shutdown, if any.
    pub fn deadline(&self) -> Option<Instant> {
        match self.deadline_ns.load(Ordering::Acquire) {
            0 => None,
            ns => Some(self.base + std::time::Duration::from_nanos(ns)),
        }
    }

    pub(crate) fn stop_by(&self, deadline: Instant) {
        let ns = deadline.saturating_duration_since(self.base).as_nanos() as u64;
        self.deadline_ns.store(ns.max(1), Ordering::Release);
        self.stopping.store(true, Ordering::Release);
    }
}

/// A destination for kept spans. Runs on its own thread, never with the
/// GIL; must not panic (a panic is caught, counted and the sink disabled).
pub trait Sink: Send + 'static {
    /// "jsonl", "otlp", "zipkin", "console": names metrics and warnings.
    fn name(&self) -> &'static str;

    /// Whether its deliveries count as `spans_written` (files) or as
    /// `spans_exported` (everything else).
    fn is_file(&self) -> bool {
        false
    }

    /// Delivers one batch: stores or sends `batch.spans` (and, for sinks
    /// that keep them, `batch.summaries`). Must return by
    /// `control.deadline()` when one is set.
    fn deliver(&mut self, batch: &Batch, control: &SinkControl) -> Delivery;

    /// Trace summaries written (only the file sink writes them).
    fn summaries_written(&self) -> u64 {
        0
    }

    /// Files opened and deleted so far (only the file sink has files).
    fn file_counts(&self) -> FileCounts {
        FileCounts::default()
    }
}

/// What the file sink did with files, as `metrics()` reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileCounts {
    pub files_opened: u64,
    /// Rotated files deleted to keep `max_files` (both families).
    pub files_deleted: u64,
    /// Spans that were in the deleted span files.
    pub spans_deleted: u64,
}

/// The sinks `config` asks for, in order: the files first (when
/// `output_dir` is set and "jsonl" is among the exporters), then the
/// exporters. An exporter that cannot be built (an unreadable CA file, a
/// header no HTTP request can carry) is left out with the reason, for a
/// warning; [`check`] reports the same reasons before a tracer starts.
pub fn from_config(config: &Config, files: &Arc<Mutex<Vec<PathBuf>>>) -> Built {
    let mut built = Built::default();
    if config.disabled {
        return built;
    }
    if let Some(dir) = config.output_dir.as_ref().filter(|_| config.writes_files()) {
        built.sinks.push(Box::new(jsonl::JsonlSink::new(
            dir,
            &config.service_name,
            jsonl::FileLimits::from(config),
            Arc::clone(files),
        )));
    }
    let wants = |e: Exporter| config.exporters.contains(&e);
    if !(wants(Exporter::Otlp) || wants(Exporter::Zipkin) || wants(Exporter::Console)) {
        return built;
    }
    let resource = Arc::new(resource(config));
    let timeout = Duration::from_millis(config.otlp.timeout_ms);
    for exporter in &config.exporters {
        let sink: Result<Box<dyn Sink>, ConfigError> = match exporter {
            Exporter::Jsonl => continue,
            Exporter::Otlp => OtlpExporter::new(otlp_config(config), Arc::clone(&resource))
                .map(|e| Box::new(e) as Box<dyn Sink>),
            Exporter::Zipkin => ZipkinExporter::new(
                ZipkinConfig {
                    endpoint: config.zipkin_endpoint.clone(),
                    timeout,
                },
                Arc::clone(&resource),
            )
            .map(|e| Box::new(e) as Box<dyn Sink>),
            Exporter::Console => Ok(Box::new(ConsoleExporter::new(Arc::clone(&resource)))),
        };
        match sink {
            Ok(sink) => built.sinks.push(sink),
            Err(e) => built.errors.push(e.0),
        }
    }
    built
}

/// What [`from_config`] made, and what it could not.
#[derive(Default)]
pub struct Built {
    pub sinks: Vec<Box<dyn Sink>>,
    pub errors: Vec<String>,
}

/// Builds (and drops) the exporters `config` asks for: the first reason
/// one cannot be built, for a tracer to refuse its options up front.
pub fn check(config: &Config) -> Result<(), ConfigError> {
    let built = from_config(config, &Arc::new(Mutex::new(Vec::new())));
    match built.errors.into_iter().next() {
        Some(e) => Err(ConfigError(e)),
        None => Ok(()),
    }
}

/// The process's resource: `service.name`, the SDK's attributes, host and
/// pid, and `resource_attributes` (already resolved from the keyword or
/// OTEL_RESOURCE_ATTRIBUTES, so the environment is not read again here),
/// with the tracer's redaction rules applied.
fn resource(config: &Config) -> Resource {
    struct NoEnv;
    impl crate::config::Env for NoEnv {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
    }
    let user: Vec<(String, AttrValue)> = config
        .resource_attributes
        .iter()
        .map(|(k, v)| {
            // Redacted like span attributes, once per tracer.
            let mut value = AttrValue::Str(v.as_str().into());
            config.limits.redact.apply(k, &mut value);
            (k.clone(), value)
        })
        .collect();
    Resource::new(&config.service_name, &user, &NoEnv, &mut Vec::new())
}

fn otlp_config(config: &Config) -> OtlpConfig {
    let o = &config.otlp;
    OtlpConfig {
        endpoint: o.endpoint.clone(),
        protocol: match o.protocol {
            crate::config::OtlpProtocol::HttpProtobuf => OtlpProtocol::HttpProtobuf,
            crate::config::OtlpProtocol::HttpJson => OtlpProtocol::HttpJson,
        },
        headers: o.headers.clone(),
        compression: match o.compression {
            crate::config::OtlpCompression::None => Compression::None,
            crate::config::OtlpCompression::Gzip => Compression::Gzip,
        },
        timeout: Duration::from_millis(o.timeout_ms),
        certificate: o.certificate.clone(),
    }
}
