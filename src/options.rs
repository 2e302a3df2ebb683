//! Every tracer option, declared once. [`OPTIONS`] drives the keyword
//! arguments `Tracer`/`configure` accept, the environment variables read
//! for options not given, `tracer.config`, and the README's option table
//! (checked by a test). Adding an option is one entry here plus the
//! `Config` field it sets.
//!
//! Precedence: a keyword argument, else the first environment variable set
//! (blank counts as unset), else the default. A bad keyword value is an
//! error for the caller; a bad environment value is ignored with a warning,
//! because a typo in a deployment's environment must not stop a service.

use std::path::PathBuf;

use crate::config::{Config, ConfigError, Env, Exporter, OtlpCompression, OtlpProtocol};
use crate::propagation::Propagator;
use crate::redact::{self, Redactor};

/// A resolved or given option value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<String>),
    Map(Vec<(String, String)>),
}

/// What an option accepts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// A non-blank string.
    Text,
    /// A directory; None disables (environment: `none`, `off` or `-`).
    Dir,
    /// A whole number >= min.
    Int {
        min: i64,
    },
    /// A finite number in [min, max].
    Number {
        min: f64,
        max: f64,
    },
    /// Like `Number`, or None (the default) for "off".
    OptionalNumber {
        min: f64,
    },
    Bool,
    /// Names from `allowed` (a list, or comma-separated in the environment;
    /// `none` alone means the empty list). With `skip_unknown_in_env`,
    /// unknown names in the environment are skipped with a warning (as
    /// OpenTelemetry does for propagators); otherwise the value is ignored.
    Names {
        allowed: &'static [&'static str],
        skip_unknown_in_env: bool,
    },
    /// One name from `allowed`.
    Choice {
        allowed: &'static [&'static str],
    },
    /// An http:// or https:// URL.
    Url,
    /// A `str -> str` mapping (environment: `k=v,k2=v2`, percent-decoded).
    Map,
    /// A file path.
    File,
    /// Redaction rules: free strings (a list, or comma-separated in the
    /// environment, where `none` alone means the empty list), normalised as
    /// `redact.rs` reads them.
    Rules,
}

/// How an environment variable's value becomes the option's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvRule {
    AsIs,
    /// An OTLP base URL: the signal path `/v1/traces` is appended.
    OtlpBase,
}

pub struct OptionSpec {
    pub name: &'static str,
    /// Read in this order when the keyword is not given.
    pub env: &'static [(&'static str, EnvRule)],
    pub kind: Kind,
    /// The default as the README shows it.
    pub default: &'static str,
    pub doc: &'static str,
    apply: fn(&mut Config, Value),
    read: fn(&Config) -> Value,
}

impl OptionSpec {
    /// The resolved value of this option in `config`.
    pub fn read(&self, config: &Config) -> Value {
        (self.read)(config)
    }
}

const PROPAGATORS: &[&str] = &["tracecontext", "b3", "b3multi", "xtrace"];
const EXPORTERS: &[&str] = &["jsonl", "otlp", "zipkin", "console"];
const PROTOCOLS: &[&str] = &["http/protobuf", "http/json"];
const COMPRESSIONS: &[&str] = &["gzip", "none"];

const fn env(name: &'static str) -> (&'static str, EnvRule) {
    (name, EnvRule::AsIs)
}

/// Every option, in the order the README lists them.
pub static OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "service_name",
        env: &[env("FERROTRACE_SERVICE_NAME"), env("OTEL_SERVICE_NAME")],
        kind: Kind::Text,
        default: "unknown_service",
        doc: "Names the service in every record and export.",
        apply: |c, v| c.service_name = v.text(),
        read: |c| Value::Str(c.service_name.clone()),
    },
    OptionSpec {
        name: "output_dir",
        env: &[env("FERROTRACE_OUTPUT_DIR")],
        kind: Kind::Dir,
        default: "traces",
        doc: "Directory of the JSONL files; None (`none` in the environment) writes no files.",
        apply: |c, v| c.output_dir = v.path(),
        read: |c| match &c.output_dir {
            Some(p) => Value::Str(p.display().to_string()),
            None => Value::Null,
        },
    },
    OptionSpec {
        name: "exporters",
        env: &[env("FERROTRACE_EXPORTERS"), env("OTEL_TRACES_EXPORTER")],
        kind: Kind::Names {
            allowed: EXPORTERS,
            skip_unknown_in_env: false,
        },
        default: "jsonl",
        doc: "Where kept spans go: any of jsonl, otlp, zipkin, console (`none` for nowhere).",
        apply: |c, v| {
            c.exporters = v
                .names()
                .iter()
                .filter_map(|n| Exporter::parse(n))
                .collect()
        },
        read: |c| Value::List(c.exporters.iter().map(|e| e.name().to_string()).collect()),
    },
    OptionSpec {
        name: "propagators",
        env: &[env("FERROTRACE_PROPAGATORS"), env("OTEL_PROPAGATORS")],
        kind: Kind::Names {
            allowed: PROPAGATORS,
            skip_unknown_in_env: true,
        },
        default: "tracecontext",
        doc: "Header formats of `inject`/`extract` and the integrations: tracecontext, b3, \
              b3multi, xtrace (`none` for none).",
        apply: |c, v| {
            c.propagators = v
                .names()
                .iter()
                .filter_map(|n| Propagator::parse(n).ok())
                .collect()
        },
        read: |c| Value::List(c.propagators.iter().map(|p| p.name().to_string()).collect()),
    },
    OptionSpec {
        name: "buffer_size",
        env: &[env("FERROTRACE_BUFFER_SIZE")],
        kind: Kind::Int { min: 1 },
        default: "65536",
        doc: "Finished spans waiting for the writer, and for each exporter; beyond it spans \
              are dropped and counted.",
        apply: |c, v| c.buffer_size = v.int() as usize,
        read: |c| Value::Int(c.buffer_size as i64),
    },
    OptionSpec {
        name: "flush_interval_ms",
        env: &[env("FERROTRACE_FLUSH_INTERVAL_MS")],
        kind: Kind::Number {
            min: 1.0,
            max: f64::MAX,
        },
        default: "500",
        doc: "How often the writer drains the buffer (it also wakes early when it fills).",
        apply: |c, v| c.flush_interval_ms = v.number() as u64,
        read: |c| Value::Int(c.flush_interval_ms as i64),
    },
    OptionSpec {
        name: "sample_rate",
        env: &[env("FERROTRACE_SAMPLE_RATE")],
        kind: Kind::Number { min: 0.0, max: 1.0 },
        default: "1.0",
        doc: "Share of new traces recorded (head sampling by trace id). Without it, \
              OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG are honoured.",
        apply: |c, v| c.sample_rate = v.number(),
        read: |c| Value::Float(c.sample_rate),
    },
    OptionSpec {
        name: "max_traces_per_second",
        env: &[env("FERROTRACE_MAX_TRACES_PER_SECOND")],
        kind: Kind::OptionalNumber { min: 0.0 },
        default: "None",
        doc: "At most this many new traces recorded per second (a token bucket).",
        apply: |c, v| c.max_traces_per_second = v.optional_number(),
        read: |c| optional(c.max_traces_per_second),
    },
    OptionSpec {
        name: "parent_based",
        env: &[env("FERROTRACE_PARENT_BASED")],
        kind: Kind::Bool,
        default: "True",
        doc: "A remote parent's sampled flag decides for its children.",
        apply: |c, v| c.parent_based = v.bool(),
        read: |c| Value::Bool(c.parent_based),
    },
    OptionSpec {
        name: "keep_errors",
        env: &[env("FERROTRACE_KEEP_ERRORS")],
        kind: Kind::Bool,
        default: "False",
        doc: "Tail rule: keep every failed trace, even one head sampling dropped.",
        apply: |c, v| c.tail.keep_errors = v.bool(),
        read: |c| Value::Bool(c.tail.keep_errors),
    },
    OptionSpec {
        name: "keep_slower_than_ms",
        env: &[env("FERROTRACE_KEEP_SLOWER_THAN_MS")],
        kind: Kind::OptionalNumber { min: 0.0 },
        default: "None",
        doc: "Tail rule: keep every trace at least this slow.",
        apply: |c, v| c.tail.keep_slower_than_ms = v.optional_number(),
        read: |c| optional(c.tail.keep_slower_than_ms),
    },
    OptionSpec {
        name: "max_attributes",
        env: &[env("FERROTRACE_MAX_ATTRIBUTES")],
        kind: Kind::Int { min: 0 },
        default: "128",
        doc: "Attributes kept per span (and per event); more are counted, not kept.",
        apply: |c, v| c.limits.max_attributes = v.int() as usize,
        read: |c| Value::Int(c.limits.max_attributes as i64),
    },
    OptionSpec {
        name: "max_attribute_length",
        env: &[env("FERROTRACE_MAX_ATTRIBUTE_LENGTH")],
        kind: Kind::Int { min: 1 },
        default: "4096",
        doc: "Characters kept per string value.",
        apply: |c, v| c.limits.max_attribute_length = v.int() as usize,
        read: |c| Value::Int(c.limits.max_attribute_length as i64),
    },
    OptionSpec {
        name: "max_events",
        env: &[env("FERROTRACE_MAX_EVENTS")],
        kind: Kind::Int { min: 0 },
        default: "128",
        doc: "Events kept per span.",
        apply: |c, v| c.limits.max_events = v.int() as usize,
        read: |c| Value::Int(c.limits.max_events as i64),
    },
    OptionSpec {
        name: "max_file_size_mb",
        env: &[env("FERROTRACE_MAX_FILE_SIZE_MB")],
        kind: Kind::Number {
            min: 0.001,
            max: f64::MAX,
        },
        default: "100",
        doc: "A span file is rotated (a new one started) at this size.",
        apply: |c, v| c.max_file_bytes = (v.number() * 1024.0 * 1024.0) as u64,
        read: |c| Value::Float(c.max_file_bytes as f64 / (1024.0 * 1024.0)),
    },
    OptionSpec {
        name: "max_files",
        env: &[env("FERROTRACE_MAX_FILES")],
        kind: Kind::Int { min: 0 },
        default: "20",
        doc: "Rotated files kept per file family (spans, trace summaries) of a tracer, its \
              oldest deleted first and counted in `metrics()`; 0 keeps every file. 20 files of \
              100 MB bound a process's span files at about 2 GB.",
        apply: |c, v| c.max_files = v.int() as usize,
        read: |c| Value::Int(c.max_files as i64),
    },
    OptionSpec {
        name: "compress_rotated",
        env: &[env("FERROTRACE_COMPRESS_ROTATED")],
        kind: Kind::Bool,
        default: "False",
        doc: "Gzip each file once it is rotated out, on a background thread (`.jsonl.gz`, \
              read by every reader).",
        apply: |c, v| c.compress_rotated = v.bool(),
        read: |c| Value::Bool(c.compress_rotated),
    },
    OptionSpec {
        name: "max_recent_traces",
        env: &[env("FERROTRACE_MAX_RECENT_TRACES")],
        kind: Kind::Int { min: 0 },
        default: "1000",
        doc: "Completed traces kept in memory for the tracer's queries (and as many failed ones).",
        apply: |c, v| c.live.max_recent_traces = v.int() as usize,
        read: |c| Value::Int(c.live.max_recent_traces as i64),
    },
    OptionSpec {
        name: "otlp_endpoint",
        env: &[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", EnvRule::AsIs),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", EnvRule::OtlpBase),
        ],
        kind: Kind::Url,
        default: "http://localhost:4318/v1/traces",
        doc: "Where `otlp` posts. The generic variable is a base URL that gets `/v1/traces`.",
        apply: |c, v| c.otlp.endpoint = v.text(),
        read: |c| Value::Str(c.otlp.endpoint.clone()),
    },
    OptionSpec {
        name: "otlp_protocol",
        env: &[
            env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"),
            env("OTEL_EXPORTER_OTLP_PROTOCOL"),
        ],
        kind: Kind::Choice { allowed: PROTOCOLS },
        default: "http/protobuf",
        doc: "`http/protobuf` or `http/json`.",
        apply: |c, v| {
            c.otlp.protocol = match v.text().as_str() {
                "http/json" => OtlpProtocol::HttpJson,
                _ => OtlpProtocol::HttpProtobuf,
            }
        },
        read: |c| Value::Str(c.otlp.protocol.name().into()),
    },
    OptionSpec {
        name: "otlp_headers",
        env: &[
            env("OTEL_EXPORTER_OTLP_TRACES_HEADERS"),
            env("OTEL_EXPORTER_OTLP_HEADERS"),
        ],
        kind: Kind::Map,
        default: "{}",
        doc: "Headers sent with every OTLP request (e.g. an API key).",
        apply: |c, v| c.otlp.headers = v.map(),
        read: |c| Value::Map(c.otlp.headers.clone()),
    },
    OptionSpec {
        name: "otlp_compression",
        env: &[
            env("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"),
            env("OTEL_EXPORTER_OTLP_COMPRESSION"),
        ],
        kind: Kind::Choice {
            allowed: COMPRESSIONS,
        },
        default: "none",
        doc: "`gzip` or `none`.",
        apply: |c, v| {
            c.otlp.compression = match v.text().as_str() {
                "gzip" => OtlpCompression::Gzip,
                _ => OtlpCompression::None,
            }
        },
        read: |c| Value::Str(c.otlp.compression.name().into()),
    },
    OptionSpec {
        name: "otlp_timeout",
        env: &[
            env("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"),
            env("OTEL_EXPORTER_OTLP_TIMEOUT"),
        ],
        kind: Kind::Int { min: 1 },
        default: "10000",
        doc: "Milliseconds one export may take, retries included.",
        apply: |c, v| c.otlp.timeout_ms = v.int() as u64,
        read: |c| Value::Int(c.otlp.timeout_ms as i64),
    },
    OptionSpec {
        name: "otlp_certificate",
        env: &[
            env("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"),
            env("OTEL_EXPORTER_OTLP_CERTIFICATE"),
        ],
        kind: Kind::File,
        default: "None",
        doc: "PEM file of the CA that signed the endpoint's certificate (a private CA).",
        apply: |c, v| c.otlp.certificate = v.path(),
        read: |c| match &c.otlp.certificate {
            Some(p) => Value::Str(p.display().to_string()),
            None => Value::Null,
        },
    },
    OptionSpec {
        name: "zipkin_endpoint",
        env: &[env("OTEL_EXPORTER_ZIPKIN_ENDPOINT")],
        kind: Kind::Url,
        default: "http://localhost:9411/api/v2/spans",
        doc: "Where `zipkin` posts.",
        apply: |c, v| c.zipkin_endpoint = v.text(),
        read: |c| Value::Str(c.zipkin_endpoint.clone()),
    },
    OptionSpec {
        name: "resource_attributes",
        env: &[env("OTEL_RESOURCE_ATTRIBUTES")],
        kind: Kind::Map,
        default: "{}",
        doc: "Attributes of the process (e.g. `deployment.environment`) on every exported batch.",
        apply: |c, v| c.resource_attributes = v.map(),
        read: |c| Value::Map(c.resource_attributes.clone()),
    },
    OptionSpec {
        name: "redact_keys",
        env: &[env("FERROTRACE_REDACT_KEYS")],
        kind: Kind::Rules,
        default: "password, passwd, pwd, secret, token, apikey, authorization, cookie, session, \
                  credentials, api_key, access_token, refresh_token, private_key, client_secret, \
                  credit_card, card_number, set_cookie",
        doc: "Attributes whose key matches are stored as `\"[REDACTED]\"` (span, event, link and \
              resource attributes); matching query parameters in URL attributes become \
              `REDACTED`. Keys are read lower-cased with `-` as `_`. A rule without `.` or `_` \
              matches a key segment (split at `.` and `_`: `token` matches `user_token`, not \
              `input_tokens`); a rule with `.` or `_` matches anywhere in the key (`api_key` \
              matches `x-api-key`). A list replaces the defaults; `[]` (`none` in the \
              environment) turns redaction off. See \"Security and privacy\".",
        apply: |c, v| c.limits.redact = Redactor::new(v.names().iter().map(String::as_str)),
        read: |c| Value::List(c.limits.redact.rules().to_vec()),
    },
];

fn optional(v: Option<f64>) -> Value {
    v.map_or(Value::Null, Value::Float)
}

/// Looks an option up by its keyword name.
pub fn find(name: &str) -> Option<&'static OptionSpec> {
    OPTIONS.iter().find(|o| o.name == name)
}

impl Value {
    fn text(self) -> String {
        match self {
            Value::Str(s) => s,
            _ => String::new(),
        }
    }
    fn path(self) -> Option<PathBuf> {
        match self {
            Value::Str(s) => Some(PathBuf::from(s)),
            _ => None,
        }
    }
    fn int(self) -> i64 {
        match self {
            Value::Int(i) => i,
            _ => 0,
        }
    }
    fn number(self) -> f64 {
        match self {
            Value::Float(f) => f,
            Value::Int(i) => i as f64,
            _ => 0.0,
        }
    }
    fn optional_number(self) -> Option<f64> {
        match self {
            Value::Null => None,
            other => Some(other.number()),
        }
    }
    fn bool(self) -> bool {
        matches!(self, Value::Bool(true))
    }
    fn names(self) -> Vec<String> {
        match self {
            Value::List(l) => l,
            _ => Vec::new(),
        }
    }
    fn map(self) -> Vec<(String, String)> {
        match self {
            Value::Map(m) => m,
            _ => Vec::new(),
        }
    }
}

/// Checks a keyword argument's value; the message says what was expected.
pub fn check_given(spec: &OptionSpec, value: Value) -> Result<Value, ConfigError> {
    let name = spec.name;
    let bad = |what: &str| ConfigError(format!("{name} must be {what}"));
    let value = match (spec.kind, value) {
        (_, Value::Null) if matches!(spec.kind, Kind::Dir | Kind::OptionalNumber { .. }) => {
            Value::Null
        }
        (Kind::Text, Value::Str(s)) if s.trim().is_empty() => {
            return Err(bad("a non-empty string"))
        }
        (Kind::Text | Kind::Dir | Kind::File, Value::Str(s)) => Value::Str(s),
        (Kind::Int { min }, Value::Int(i)) if i >= min => Value::Int(i),
        (Kind::Int { min }, Value::Int(i)) => {
            return Err(bad(&format!("a whole number >= {min}, got {i}")))
        }
        (Kind::Number { min, max }, v @ (Value::Int(_) | Value::Float(_))) => {
            let f = v.number();
            if !(f.is_finite() && f >= min && f <= max) {
                return Err(bad(&number_range(min, max, f)));
            }
            Value::Float(f)
        }
        (Kind::OptionalNumber { min }, v @ (Value::Int(_) | Value::Float(_))) => {
            let f = v.number();
            if !(f.is_finite() && f >= min) {
                return Err(bad(&format!("a number >= {min}, got {f}")));
            }
            Value::Float(f)
        }
        (Kind::Bool, Value::Bool(b)) => Value::Bool(b),
        (Kind::Names { allowed, .. }, Value::List(names)) => {
            let names = normalise_names(names);
            if let Some(unknown) = names.iter().find(|n| !allowed.contains(&n.as_str())) {
                return Err(bad(&format!(
                    "a list of {}; unknown: {unknown:?}",
                    allowed.join(", ")
                )));
            }
            Value::List(names)
        }
        (Kind::Choice { allowed }, Value::Str(s)) => {
            let s = s.trim().to_ascii_lowercase();
            if !allowed.contains(&s.as_str()) {
                return Err(bad(&format!("one of {}, got {s:?}", allowed.join(", "))));
            }
            Value::Str(s)
        }
        (Kind::Url, Value::Str(s)) => {
            if !is_http_url(&s) {
                return Err(bad(&format!("an http:// or https:// URL, got {s:?}")));
            }
            Value::Str(s)
        }
        (Kind::Map, Value::Map(m)) => Value::Map(m),
        (Kind::Rules, Value::List(rules)) => Value::List(normalise_rules(rules)),
        (kind, other) => {
            return Err(ConfigError(format!(
                "{name} must be {}, not {other:?}",
                kind.expected()
            )))
        }
    };
    Ok(value)
}

impl Kind {
    /// What a keyword argument of this kind must be, in Python's terms.
    pub fn expected(self) -> &'static str {
        match self {
            Kind::Text => "a str",
            Kind::Dir => "a str, a path, or None",
            Kind::File => "a str or a path",
            Kind::Int { .. } => "an int",
            Kind::Number { .. } => "a number",
            Kind::OptionalNumber { .. } => "a number or None",
            Kind::Bool => "a bool",
            Kind::Names { .. } => "a list of str",
            Kind::Choice { .. } | Kind::Url => "a str",
            Kind::Map => "a dict of str to str",
            Kind::Rules => "a list of str",
        }
    }
}

fn number_range(min: f64, max: f64, got: f64) -> String {
    if max == f64::MAX {
        format!("a number >= {min}, got {got}")
    } else {
        format!("a number between {min} and {max}, got {got}")
    }
}

fn is_http_url(s: &str) -> bool {
    let lower = s.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
}

fn normalise_names(names: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        let n = n.trim().to_ascii_lowercase();
        if n == "none" || n.is_empty() || out.contains(&n) {
            continue;
        }
        out.push(n);
    }
    out
}

/// Parses an environment value; Err is the reason it is ignored.
fn parse_env(spec: &OptionSpec, raw: &str, rule: EnvRule) -> Result<Value, String> {
    let t = raw.trim();
    match spec.kind {
        Kind::Text | Kind::File => Ok(Value::Str(t.to_string())),
        Kind::Dir => match t.to_ascii_lowercase().as_str() {
            "none" | "off" | "-" => Ok(Value::Null),
            _ => Ok(Value::Str(t.to_string())),
        },
        Kind::Int { min } => match t.parse::<i64>() {
            Ok(i) if i >= min => Ok(Value::Int(i)),
            _ => Err(format!("expected a whole number >= {min}")),
        },
        Kind::Number { min, max } => match t.parse::<f64>() {
            Ok(f) if f.is_finite() && f >= min && f <= max => Ok(Value::Float(f)),
            _ if max == f64::MAX => Err(format!("expected a number >= {min}")),
            _ => Err(format!("expected a number between {min} and {max}")),
        },
        Kind::OptionalNumber { min } => match t.parse::<f64>() {
            Ok(f) if f.is_finite() && f >= min => Ok(Value::Float(f)),
            _ => Err(format!("expected a number >= {min}")),
        },
        Kind::Bool => match t.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Value::Bool(true)),
            "0" | "false" | "no" | "off" => Ok(Value::Bool(false)),
            _ => Err("expected true or false".into()),
        },
        Kind::Names {
            allowed,
            skip_unknown_in_env,
        } => {
            let names = normalise_names(t.split(',').map(str::to_string).collect());
            let (known, unknown): (Vec<String>, Vec<String>) = names
                .into_iter()
                .partition(|n| allowed.contains(&n.as_str()));
            if unknown.is_empty() || skip_unknown_in_env {
                Ok(Value::List(known))
            } else {
                Err(format!(
                    "unknown name(s) {unknown:?}; known: {}, none",
                    allowed.join(", ")
                ))
            }
        }
        Kind::Choice { allowed } => {
            let s = t.to_ascii_lowercase();
            if allowed.contains(&s.as_str()) {
                Ok(Value::Str(s))
            } else {
                Err(format!("expected one of {}", allowed.join(", ")))
            }
        }
        Kind::Url => {
            if !is_http_url(t) {
                return Err("expected an http:// or https:// URL".into());
            }
            Ok(Value::Str(match rule {
                EnvRule::AsIs => t.to_string(),
                EnvRule::OtlpBase => format!("{}/v1/traces", t.trim_end_matches('/')),
            }))
        }
        Kind::Map => parse_key_values(t).map(Value::Map),
        Kind::Rules => Ok(Value::List(normalise_rules(
            t.split(',').map(str::to_string).collect(),
        ))),
    }
}

/// Normalised rules, blanks and repeats dropped; `none` alone is no rule.
fn normalise_rules(rules: Vec<String>) -> Vec<String> {
    if let [only] = rules.as_slice() {
        if only.trim().eq_ignore_ascii_case("none") {
            return Vec::new();
        }
    }
    let mut out: Vec<String> = Vec::new();
    for rule in rules.iter().filter_map(|r| redact::normalise_rule(r)) {
        if !out.contains(&rule) {
            out.push(rule);
        }
    }
    out
}

/// `k=v,k2=v2` as the OpenTelemetry environment variables write mappings
/// (W3C Baggage-like: keys and values percent-decoded, blanks trimmed).
pub fn parse_key_values(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for member in text.split(',') {
        if member.trim().is_empty() {
            continue;
        }
        let Some((k, v)) = member.split_once('=') else {
            return Err(format!("{member:?} is not key=value"));
        };
        let key = percent_decode(k.trim()).ok_or("invalid percent-encoding")?;
        let value = percent_decode(v.trim()).ok_or("invalid percent-encoding")?;
        if key.is_empty() {
            return Err(format!("{member:?} has an empty key"));
        }
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some(existing) => existing.1 = value,
            None => out.push((key, value)),
        }
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Resolves every option: `given` keyword values (already checked with
/// [`check_given`]) first, then the environment, then the defaults.
/// Returns the config and the warnings about ignored environment values.
pub fn resolve(
    given: &[(&'static OptionSpec, Value)],
    env: &dyn Env,
) -> Result<(Config, Vec<String>), ConfigError> {
    let mut config = Config::default();
    let mut warnings = Vec::new();
    let mut sample_rate_set = false;
    let mut parent_based_set = false;
    for spec in OPTIONS {
        let value = match given.iter().find(|(s, _)| std::ptr::eq(*s, spec)) {
            Some((_, v)) => Some(v.clone()),
            None => from_env(spec, env, &mut warnings),
        };
        if let Some(value) = value {
            sample_rate_set |= spec.name == "sample_rate";
            parent_based_set |= spec.name == "parent_based";
            (spec.apply)(&mut config, value);
        }
    }
    let (otel_rate, otel_parent_based) = otel_sampler(env, &mut warnings);
    if !sample_rate_set {
        if let Some(rate) = otel_rate {
            config.sample_rate = rate;
        }
    }
    if !parent_based_set {
        if let Some(pb) = otel_parent_based {
            config.parent_based = pb;
        }
    }
    if let Some(raw) = env.var("OTEL_SDK_DISABLED") {
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" => config.disabled = true,
            "false" => {}
            _ => warnings.push(format!(
                "ignoring OTEL_SDK_DISABLED={raw:?}: expected true or false"
            )),
        }
    }
    Ok((config, warnings))
}

fn from_env(spec: &OptionSpec, env: &dyn Env, warnings: &mut Vec<String>) -> Option<Value> {
    for &(key, rule) in spec.env {
        if let Some(raw) = env.var(key) {
            if let Kind::Names {
                allowed,
                skip_unknown_in_env: true,
            } = spec.kind
            {
                let unknown: Vec<&str> = raw
                    .split(',')
                    .map(str::trim)
                    .filter(|n| {
                        let n = n.to_ascii_lowercase();
                        // W3C baggage is not a trace format: skipped quietly.
                        !n.is_empty()
                            && n != "none"
                            && n != "baggage"
                            && !allowed.contains(&n.as_str())
                    })
                    .collect();
                if !unknown.is_empty() {
                    warnings.push(format!(
                        "{key}: ignoring unknown name(s) {}; known: {}, none",
                        unknown.join(", "),
                        allowed.join(", ")
                    ));
                }
            }
            return match parse_env(spec, &raw, rule) {
                Ok(v) => Some(v),
                Err(why) => {
                    warnings.push(format!(
                        "ignoring {key}={raw:?}: {why}; using {}",
                        spec.default
                    ));
                    None
                }
            };
        }
    }
    None
}

/// OTEL_TRACES_SAMPLER (+ OTEL_TRACES_SAMPLER_ARG) as (rate, parent_based).
fn otel_sampler(env: &dyn Env, warnings: &mut Vec<String>) -> (Option<f64>, Option<bool>) {
    let Some(name) = env.var("OTEL_TRACES_SAMPLER") else {
        return (None, None);
    };
    let arg = || {
        env.var("OTEL_TRACES_SAMPLER_ARG")
            .and_then(|a| a.trim().parse::<f64>().ok())
            .filter(|r| (0.0..=1.0).contains(r))
            .unwrap_or(1.0)
    };
    match name.trim().to_ascii_lowercase().as_str() {
        "always_on" => (Some(1.0), Some(false)),
        "always_off" => (Some(0.0), Some(false)),
        "traceidratio" => (Some(arg()), Some(false)),
        "parentbased_always_on" => (Some(1.0), Some(true)),
        "parentbased_always_off" => (Some(0.0), Some(true)),
        "parentbased_traceidratio" => (Some(arg()), Some(true)),
        other => {
            warnings.push(format!(
                "ignoring OTEL_TRACES_SAMPLER={other:?}: ferrotrace supports always_on, \
                 always_off, traceidratio and their parentbased_ forms"
            ));
            (None, None)
        }
    }
}

/// The README's option table, generated from [`OPTIONS`].
pub fn markdown_table() -> String {
    let mut out =
        String::from("| option | environment | default | what |\n| --- | --- | --- | --- |\n");
    for o in OPTIONS {
        let env: Vec<String> = o.env.iter().map(|(k, _)| format!("`{k}`")).collect();
        out.push_str(&format!(
            "| `{}` | {} | `{}` | {} |\n",
            o.name,
            env.join(", "),
            o.default,
            o.doc
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct MapEnv(HashMap<&'static str, &'static str>);
    impl Env for MapEnv {
        fn var(&self, key: &str) -> Option<String> {
            self.0
                .get(key)
                .map(|v| v.to_string())
                .filter(|v| !v.trim().is_empty())
        }
    }

    fn env_of(pairs: &[(&'static str, &'static str)]) -> MapEnv {
        MapEnv(pairs.iter().copied().collect())
    }

    fn given(name: &str, v: Value) -> (&'static OptionSpec, Value) {
        let spec = find(name).unwrap();
        (spec, check_given(spec, v).unwrap())
    }

    #[test]
    fn keyword_beats_env_beats_default() {
        let env = env_of(&[
            ("OTEL_SERVICE_NAME", "otel-name"),
            ("FERROTRACE_BUFFER_SIZE", "128"),
        ]);
        let (cfg, warnings) = resolve(&[], &env).unwrap();
        assert_eq!(cfg.service_name, "otel-name");
        assert_eq!(cfg.buffer_size, 128);
        assert!(warnings.is_empty());
        let kw = [
            given("service_name", Value::Str("kw".into())),
            given("buffer_size", Value::Int(7)),
        ];
        let (cfg, _) = resolve(&kw, &env).unwrap();
        assert_eq!(cfg.service_name, "kw");
        assert_eq!(cfg.buffer_size, 7);
    }

    #[test]
    fn bad_env_warns_bad_keyword_errors() {
        let env = env_of(&[("FERROTRACE_BUFFER_SIZE", "lots")]);
        let (cfg, warnings) = resolve(&[], &env).unwrap();
        assert_eq!(cfg.buffer_size, Config::default().buffer_size);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("FERROTRACE_BUFFER_SIZE"));
        let spec = find("buffer_size").unwrap();
        assert!(check_given(spec, Value::Int(0)).is_err());
        assert!(check_given(find("sample_rate").unwrap(), Value::Float(1.5)).is_err());
        assert!(check_given(
            find("exporters").unwrap(),
            Value::List(vec!["kafka".into()])
        )
        .is_err());
        assert!(check_given(spec, Value::Str("10".into())).is_err());
    }

    #[test]
    fn sampling_options_from_keywords_and_env() {
        let env = env_of(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ("FERROTRACE_KEEP_ERRORS", "yes"),
            ("FERROTRACE_KEEP_SLOWER_THAN_MS", "250"),
            ("FERROTRACE_MAX_TRACES_PER_SECOND", "lots"),
        ]);
        let (cfg, warnings) = resolve(&[], &env).unwrap();
        assert_eq!(cfg.sample_rate, 0.25);
        assert!(!cfg.parent_based);
        assert!(cfg.tail.keep_errors);
        assert_eq!(cfg.tail.keep_slower_than_ms, Some(250.0));
        assert_eq!(cfg.max_traces_per_second, None);
        assert_eq!(warnings.len(), 1);
        let kw = [
            given("sample_rate", Value::Float(0.5)),
            given("parent_based", Value::Bool(true)),
        ];
        let (cfg, _) = resolve(&kw, &env).unwrap();
        assert_eq!(cfg.sample_rate, 0.5);
        assert!(cfg.parent_based);
    }

    #[test]
    fn otlp_endpoint_rules() {
        let (cfg, _) = resolve(&[], &env_of(&[])).unwrap();
        assert_eq!(cfg.otlp.endpoint, "http://localhost:4318/v1/traces");
        let base = env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]);
        let (cfg, _) = resolve(&[], &base).unwrap();
        assert_eq!(cfg.otlp.endpoint, "http://collector:4318/v1/traces");
        let both = env_of(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "https://x.example/custom",
            ),
        ]);
        let (cfg, _) = resolve(&[], &both).unwrap();
        assert_eq!(cfg.otlp.endpoint, "https://x.example/custom");
        let bad = env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")]);
        let (cfg, warnings) = resolve(&[], &bad).unwrap();
        assert_eq!(cfg.otlp.endpoint, "http://localhost:4318/v1/traces");
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn exporters_and_disabled_sdk() {
        let env = env_of(&[
            ("OTEL_TRACES_EXPORTER", "otlp,console"),
            ("OTEL_SDK_DISABLED", "true"),
        ]);
        let (cfg, _) = resolve(&[], &env).unwrap();
        assert_eq!(cfg.exporters, vec![Exporter::Otlp, Exporter::Console]);
        assert!(cfg.disabled);
        let env = env_of(&[
            ("FERROTRACE_EXPORTERS", "none"),
            ("OTEL_TRACES_EXPORTER", "otlp"),
        ]);
        let (cfg, _) = resolve(&[], &env).unwrap();
        assert!(cfg.exporters.is_empty());
    }

    #[test]
    fn key_values_are_percent_decoded() {
        assert_eq!(
            parse_key_values("a=1, b%20c = x%2Cy ,").unwrap(),
            vec![("a".into(), "1".into()), ("b c".into(), "x,y".into())]
        );
        assert!(parse_key_values("novalue").is_err());
        assert!(parse_key_values("a=%zz").is_err());
    }

    #[test]
    fn every_option_reads_back_what_it_applied() {
        let config = Config::default();
        for spec in OPTIONS {
            let shown = spec.read(&config);
            let mut copy = config.clone();
            (spec.apply)(&mut copy, shown.clone());
            assert_eq!(spec.read(&copy), shown, "{}", spec.name);
        }
    }
}
