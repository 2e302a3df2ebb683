//! A tracer's resolved configuration. Which options exist, their
//! environment variables, defaults and validation are declared once in
//! `options.rs`; this file holds the typed result the core reads.

use std::path::PathBuf;

use crate::attributes::Limits;
use crate::live::LiveLimits;
use crate::propagation::Propagator;
use crate::sampling::TailRules;

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub service_name: String,
    /// None disables files; spans are still counted and analysed.
    pub output_dir: Option<PathBuf>,
    /// Header formats of `inject`/`extract` and the integrations.
    pub propagators: Vec<Propagator>,
    /// Where kept spans go (the files are `Jsonl`, when `output_dir` is set).
    pub exporters: Vec<Exporter>,
    pub buffer_size: usize,
    pub flush_interval_ms: u64,
    pub sample_rate: f64,
    /// Head sampling: at most this many new traces per second.
    pub max_traces_per_second: Option<f64>,
    /// Remote parents' sampled flag decides (the default).
    pub parent_based: bool,
    pub tail: TailRules,
    pub limits: Limits,
    pub max_file_bytes: u64,
    /// Rotated files kept per file family, oldest deleted first; 0 keeps all.
    pub max_files: usize,
    /// Gzip each file once it is rotated out (`.jsonl.gz`).
    pub compress_rotated: bool,
    pub live: LiveLimits,
    pub otlp: OtlpSettings,
    pub zipkin_endpoint: String,
    /// Added to `service.name` and the `telemetry.sdk.*` attributes of
    /// every exported batch.
    pub resource_attributes: Vec<(String, String)>,
    /// `OTEL_SDK_DISABLED=true`: record nothing, deliver nothing.
    pub disabled: bool,
}

pub const DEFAULT_SERVICE: &str = "unknown_service";
pub const DEFAULT_BUFFER_SIZE: usize = 65_536;

impl Default for Config {
    fn default() -> Self {
        Config {
            service_name: DEFAULT_SERVICE.to_string(),
            output_dir: Some(PathBuf::from("traces")),
            propagators: crate::propagation::DEFAULT.to_vec(),
            exporters: vec![Exporter::Jsonl],
            buffer_size: DEFAULT_BUFFER_SIZE,
            flush_interval_ms: 500,
            sample_rate: 1.0,
            max_traces_per_second: None,
            parent_based: true,
            tail: TailRules::default(),
            limits: Limits::default(),
            max_file_bytes: 100 * 1024 * 1024,
            max_files: 20,
            compress_rotated: false,
            live: LiveLimits::default(),
            otlp: OtlpSettings::default(),
            zipkin_endpoint: "http://localhost:9411/api/v2/spans".into(),
            resource_attributes: Vec::new(),
            disabled: false,
        }
    }
}

impl Config {
    /// Whether kept spans go to files (`jsonl` chosen and a directory set).
    pub fn writes_files(&self) -> bool {
        self.output_dir.is_some() && self.exporters.contains(&Exporter::Jsonl) && !self.disabled
    }
}

/// A destination of kept spans, by the name users choose it with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exporter {
    Jsonl,
    Otlp,
    Zipkin,
    Console,
}

impl Exporter {
    pub fn name(self) -> &'static str {
        match self {
            Exporter::Jsonl => "jsonl",
            Exporter::Otlp => "otlp",
            Exporter::Zipkin => "zipkin",
            Exporter::Console => "console",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [
            Exporter::Jsonl,
            Exporter::Otlp,
            Exporter::Zipkin,
            Exporter::Console,
        ]
        .into_iter()
        .find(|e| e.name().eq_ignore_ascii_case(name.trim()))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct OtlpSettings {
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    pub headers: Vec<(String, String)>,
    pub compression: OtlpCompression,
    pub timeout_ms: u64,
    /// A CA certificate (PEM) to trust, for a collector with a private CA.
    pub certificate: Option<PathBuf>,
}

impl Default for OtlpSettings {
    fn default() -> Self {
        OtlpSettings {
            endpoint: "http://localhost:4318/v1/traces".into(),
            protocol: OtlpProtocol::HttpProtobuf,
            headers: Vec::new(),
            compression: OtlpCompression::None,
            timeout_ms: 10_000,
            certificate: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtlpProtocol {
    HttpProtobuf,
    HttpJson,
}

impl OtlpProtocol {
    pub fn name(self) -> &'static str {
        match self {
            OtlpProtocol::HttpProtobuf => "http/protobuf",
            OtlpProtocol::HttpJson => "http/json",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtlpCompression {
    None,
    Gzip,
}

impl OtlpCompression {
    pub fn name(self) -> &'static str {
        match self {
            OtlpCompression::None => "none",
            OtlpCompression::Gzip => "gzip",
        }
    }
}

/// A keyword argument with a value no tracer can use.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads environment variables; injectable for tests. Blank values read as
/// unset.
pub trait Env {
    fn var(&self, key: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.trim().is_empty())
    }
}
