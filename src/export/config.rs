//! The exporters' options: keyword first, then the OpenTelemetry environment
//! variables (the signal-specific `..._TRACES_...` form before the generic
//! one), then the specification's defaults. As in `crate::config`, a bad
//! keyword is an error for the caller, a bad environment value a warning
//! and the next source (an environment typo must not stop a service).

use std::path::PathBuf;
use std::time::Duration;

use ureq::http::{HeaderName, HeaderValue, Uri};

use crate::config::{ConfigError, Env};
use crate::export::{http, parse_key_values};

pub const DEFAULT_OTLP_ENDPOINT: &str = "http://localhost:4318/v1/traces";
pub const DEFAULT_ZIPKIN_ENDPOINT: &str = "http://localhost:9411/api/v2/spans";
/// The OpenTelemetry default for every exporter timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(10_000);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OtlpProtocol {
    #[default]
    HttpProtobuf,
    HttpJson,
}

impl OtlpProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            OtlpProtocol::HttpProtobuf => "http/protobuf",
            OtlpProtocol::HttpJson => "http/json",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            OtlpProtocol::HttpProtobuf => "application/x-protobuf",
            OtlpProtocol::HttpJson => "application/json",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    Gzip,
    #[default]
    None,
}

/// Everything the OTLP exporter needs to reach a backend.
#[derive(Clone, Debug, PartialEq)]
pub struct OtlpConfig {
    /// The full URL requests are POSTed to (`.../v1/traces`).
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    /// Sent with every request (e.g. an API key), checked to be valid HTTP.
    pub headers: Vec<(String, String)>,
    pub compression: Compression,
    /// How long one batch may take, retries included.
    pub timeout: Duration,
    /// A PEM file of CA certificates to trust for https instead of the
    /// usual roots (a private CA).
    pub certificate: Option<PathBuf>,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            endpoint: DEFAULT_OTLP_ENDPOINT.to_string(),
            protocol: OtlpProtocol::HttpProtobuf,
            headers: Vec::new(),
            compression: Compression::None,
            timeout: DEFAULT_TIMEOUT,
            certificate: None,
        }
    }
}

/// Where and how long to send Zipkin v2 JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct ZipkinConfig {
    pub endpoint: String,
    pub timeout: Duration,
}

impl Default for ZipkinConfig {
    fn default() -> Self {
        ZipkinConfig {
            endpoint: DEFAULT_ZIPKIN_ENDPOINT.to_string(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// The `otlp_*` keyword arguments as given; None means "not given".
#[derive(Clone, Debug, Default)]
pub struct OtlpOptions {
    /// `otlp_endpoint`: a full URL, used as is.
    pub endpoint: Option<String>,
    /// `otlp_protocol`: "http/protobuf" or "http/json".
    pub protocol: Option<String>,
    /// `otlp_headers`.
    pub headers: Option<Vec<(String, String)>>,
    /// `otlp_compression`: "gzip" or "none".
    pub compression: Option<String>,
    /// `otlp_timeout`, in milliseconds.
    pub timeout_ms: Option<f64>,
    /// `otlp_certificate`: a PEM file of CA certificates.
    pub certificate: Option<PathBuf>,
}

/// The `zipkin_*` keyword arguments as given.
#[derive(Clone, Debug, Default)]
pub struct ZipkinOptions {
    pub endpoint: Option<String>,
    pub timeout_ms: Option<f64>,
}

impl OtlpOptions {
    /// Resolves against `env`; ignored environment values are explained in
    /// `warnings`.
    ///
    /// ```
    /// use _core::export::{OtlpOptions, OtlpProtocol};
    /// use _core::config::ProcessEnv;
    /// let options = OtlpOptions {
    ///     endpoint: Some("https://collector:4318/v1/traces".into()),
    ///     protocol: Some("http/json".into()),
    ///     ..Default::default()
    /// };
    /// let config = options.resolve(&ProcessEnv, &mut Vec::new()).unwrap();
    /// assert_eq!(config.protocol, OtlpProtocol::HttpJson);
    /// ```
    pub fn resolve(
        &self,
        env: &dyn Env,
        warnings: &mut Vec<String>,
    ) -> Result<OtlpConfig, ConfigError> {
        let endpoint = match &self.endpoint {
            Some(url) => check_url(url)
                .map_err(|why| ConfigError(format!("otlp_endpoint={url:?}: {why}")))?,
            None => otlp_endpoint_from_env(env, warnings),
        };
        let protocol = match &self.protocol {
            Some(p) => {
                parse_protocol(p).map_err(|why| ConfigError(format!("otlp_protocol: {why}")))?
            }
            None => signal_env(env, "PROTOCOL", warnings, |raw| match parse_protocol(raw) {
                Ok(p) => Ok(p),
                // A supported value is the next best thing to what was
                // asked, and what every OTLP/HTTP receiver also accepts.
                Err(_) if raw.trim().eq_ignore_ascii_case("grpc") => Err(
                    "ferrotrace exports OTLP over HTTP only; using http/protobuf \
                         (the OTLP/HTTP port is usually 4318, gRPC's 4317)"
                        .into(),
                ),
                Err(why) => Err(why),
            })
            .unwrap_or_default(),
        };
        let headers = match &self.headers {
            Some(pairs) => {
                for (k, v) in pairs {
                    check_header(k, v)
                        .map_err(|why| ConfigError(format!("otlp_headers: {why}")))?;
                }
                pairs.clone()
            }
            None => signal_env(env, "HEADERS", warnings, |raw| {
                let pairs = parse_key_values(raw)?;
                for (k, v) in &pairs {
                    check_header(k, v)?;
                }
                Ok(pairs)
            })
            .unwrap_or_default(),
        };
        let compression = match &self.compression {
            Some(c) => parse_compression(c)
                .map_err(|why| ConfigError(format!("otlp_compression: {why}")))?,
            None => signal_env(env, "COMPRESSION", warnings, parse_compression).unwrap_or_default(),
        };
        let timeout =
            match self.timeout_ms {
                Some(ms) => parse_timeout_ms(ms)
                    .map_err(|why| ConfigError(format!("otlp_timeout: {why}")))?,
                None => signal_env(env, "TIMEOUT", warnings, parse_timeout_env)
                    .unwrap_or(DEFAULT_TIMEOUT),
            };
        let certificate = match &self.certificate {
            Some(path) => {
                http::load_certificates(path)
                    .map_err(|why| ConfigError(format!("otlp_certificate: {why}")))?;
                Some(path.clone())
            }
            None => signal_env(env, "CERTIFICATE", warnings, |raw| {
                let path = PathBuf::from(raw.trim());
                http::load_certificates(&path)?;
                Ok(path)
            }),
        };
        Ok(OtlpConfig {
            endpoint,
            protocol,
            headers,
            compression,
            timeout,
            certificate,
        })
    }
}

impl ZipkinOptions {
    /// Resolves against `env` (`OTEL_EXPORTER_ZIPKIN_ENDPOINT`,
    /// `OTEL_EXPORTER_ZIPKIN_TIMEOUT`).
    pub fn resolve(
        &self,
        env: &dyn Env,
        warnings: &mut Vec<String>,
    ) -> Result<ZipkinConfig, ConfigError> {
        let endpoint = match &self.endpoint {
            Some(url) => check_url(url)
                .map_err(|why| ConfigError(format!("zipkin_endpoint={url:?}: {why}")))?,
            None => env_value(env, "OTEL_EXPORTER_ZIPKIN_ENDPOINT", warnings, check_url)
                .unwrap_or_else(|| DEFAULT_ZIPKIN_ENDPOINT.to_string()),
        };
        let timeout = match self.timeout_ms {
            Some(ms) => {
                parse_timeout_ms(ms).map_err(|why| ConfigError(format!("zipkin_timeout: {why}")))?
            }
            None => env_value(
                env,
                "OTEL_EXPORTER_ZIPKIN_TIMEOUT",
                warnings,
                parse_timeout_env,
            )
            .unwrap_or(DEFAULT_TIMEOUT),
        };
        Ok(ZipkinConfig { endpoint, timeout })
    }
}

/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as is, else
/// `OTEL_EXPORTER_OTLP_ENDPOINT` as a base URL with `/v1/traces` appended,
/// else the default.
fn otlp_endpoint_from_env(env: &dyn Env, warnings: &mut Vec<String>) -> String {
    if let Some(url) = env_value(
        env,
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        warnings,
        check_url,
    ) {
        return url;
    }
    let base = env_value(env, "OTEL_EXPORTER_OTLP_ENDPOINT", warnings, |raw| {
        check_url(&append_traces_path(raw.trim()))
    });
    base.unwrap_or_else(|| DEFAULT_OTLP_ENDPOINT.to_string())
}

/// A base URL with the traces path appended, without doubling the slash:
/// `http://c:4318` and `http://c:4318/` both give `http://c:4318/v1/traces`,
/// `http://c:4318/otlp` gives `http://c:4318/otlp/v1/traces`.
fn append_traces_path(base: &str) -> String {
    format!("{}/v1/traces", base.trim_end_matches('/'))
}

/// The `..._TRACES_<what>` variable, else the generic `OTEL_EXPORTER_OTLP_<what>`.
fn signal_env<T>(
    env: &dyn Env,
    what: &str,
    warnings: &mut Vec<String>,
    mut parse: impl FnMut(&str) -> Result<T, String>,
) -> Option<T> {
    let specific = format!("OTEL_EXPORTER_OTLP_TRACES_{what}");
    let generic = format!("OTEL_EXPORTER_OTLP_{what}");
    env_value(env, &specific, warnings, &mut parse)
        .or_else(|| env_value(env, &generic, warnings, parse))
}

/// One variable, parsed; a value that does not parse is a warning and None.
fn env_value<T>(
    env: &dyn Env,
    key: &str,
    warnings: &mut Vec<String>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    let raw = env.var(key)?;
    match parse(&raw) {
        Ok(v) => Some(v),
        Err(why) => {
            warnings.push(format!("ignoring {key}={raw:?}: {why}"));
            None
        }
    }
}

/// An http or https URL with a host, returned trimmed.
fn check_url(raw: &str) -> Result<String, String> {
    let url = raw.trim();
    let uri: Uri = url.parse().map_err(|e| format!("not a valid URL ({e})"))?;
    match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") => {}
        _ => return Err("expected an http:// or https:// URL".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    Ok(url.to_string())
}

fn parse_protocol(raw: &str) -> Result<OtlpProtocol, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
        "http/json" => Ok(OtlpProtocol::HttpJson),
        "grpc" => Err("grpc is not supported; use \"http/protobuf\" or \"http/json\"".into()),
        _ => Err(format!(
            "unknown protocol {raw:?}; use \"http/protobuf\" or \"http/json\""
        )),
    }
}

fn parse_compression(raw: &str) -> Result<Compression, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "gzip" => Ok(Compression::Gzip),
        "none" => Ok(Compression::None),
        _ => Err(format!(
            "unknown compression {raw:?}; use \"gzip\" or \"none\""
        )),
    }
}

fn parse_timeout_ms(ms: f64) -> Result<Duration, String> {
    if ms.is_finite() && ms > 0.0 && ms <= 3_600_000.0 {
        Ok(Duration::from_secs_f64(ms / 1000.0))
    } else {
        Err(format!(
            "expected milliseconds, more than 0 and at most an hour, got {ms}"
        ))
    }
}

fn parse_timeout_env(raw: &str) -> Result<Duration, String> {
    let ms: f64 = raw
        .trim()
        .parse()
        .map_err(|_| "expected a number of milliseconds".to_string())?;
    parse_timeout_ms(ms).map_err(|why| format!("{why}; using 10000"))
}

/// A header HTTP can carry: a token name and a value without line breaks.
fn check_header(name: &str, value: &str) -> Result<(), String> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{name:?} is not a valid HTTP header name"))?;
    HeaderValue::from_str(value)
        .map_err(|_| format!("the value of header {name:?} is not valid in HTTP"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::test_env::MapEnv;

    fn resolve(env: &[(&'static str, &'static str)]) -> (OtlpConfig, Vec<String>) {
        let mut warnings = Vec::new();
        let config = OtlpOptions::default()
            .resolve(&MapEnv::new(env), &mut warnings)
            .unwrap();
        (config, warnings)
    }

    #[test]
    fn defaults() {
        let (config, warnings) = resolve(&[]);
        assert_eq!(config, OtlpConfig::default());
        assert_eq!(config.endpoint, "http://localhost:4318/v1/traces");
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert!(warnings.is_empty());
        let zipkin = ZipkinOptions::default()
            .resolve(&MapEnv::new(&[]), &mut Vec::new())
            .unwrap();
        assert_eq!(zipkin.endpoint, "http://localhost:9411/api/v2/spans");
    }

    #[test]
    fn endpoint_rules() {
        let base = |b: &'static str| resolve(&[("OTEL_EXPORTER_OTLP_ENDPOINT", b)]).0.endpoint;
        assert_eq!(base("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(base("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(base("https://c/otlp/"), "https://c/otlp/v1/traces");
        // The signal-specific endpoint is used as is, and wins.
        let (config, _) = resolve(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://specific:1234/custom",
            ),
        ]);
        assert_eq!(config.endpoint, "http://specific:1234/custom");
        // The keyword wins over both, as is.
        let options = OtlpOptions {
            endpoint: Some("http://kw:1/x".into()),
            ..Default::default()
        };
        let config = options
            .resolve(
                &MapEnv::new(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://specific:1")]),
                &mut Vec::new(),
            )
            .unwrap();
        assert_eq!(config.endpoint, "http://kw:1/x");
    }

    #[test]
    fn bad_env_endpoint_falls_back_with_a_warning() {
        let (config, warnings) = resolve(&[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4318"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://good:4318"),
        ]);
        assert_eq!(config.endpoint, "http://good:4318/v1/traces");
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"));
        let (config, warnings) = resolve(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://x")]);
        assert_eq!(config.endpoint, DEFAULT_OTLP_ENDPOINT);
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn bad_keywords_are_errors() {
        let bad = [
            OtlpOptions {
                endpoint: Some("localhost:4318".into()),
                ..Default::default()
            },
            OtlpOptions {
                protocol: Some("grpc".into()),
                ..Default::default()
            },
            OtlpOptions {
                compression: Some("zstd".into()),
                ..Default::default()
            },
            OtlpOptions {
                timeout_ms: Some(0.0),
                ..Default::default()
            },
            OtlpOptions {
                headers: Some(vec![("bad name".into(), "v".into())]),
                ..Default::default()
            },
            OtlpOptions {
                headers: Some(vec![("x".into(), "line\nbreak".into())]),
                ..Default::default()
            },
            OtlpOptions {
                certificate: Some("/nonexistent/ca.pem".into()),
                ..Default::default()
            },
        ];
        for options in bad {
            let err = options.resolve(&MapEnv::new(&[]), &mut Vec::new());
            assert!(err.is_err(), "{options:?}");
        }
        let zipkin = ZipkinOptions {
            endpoint: Some("nowhere".into()),
            ..Default::default()
        };
        assert!(zipkin.resolve(&MapEnv::new(&[]), &mut Vec::new()).is_err());
    }

    #[test]
    fn traces_variables_override_generic_ones() {
        let (config, warnings) = resolve(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=1"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "api-key=s%20t,x-b=2"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
            ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "GZIP"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "5000"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2500"),
        ]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(config.protocol, OtlpProtocol::HttpJson);
        assert_eq!(
            config.headers,
            vec![
                ("api-key".to_string(), "s t".to_string()),
                ("x-b".to_string(), "2".to_string())
            ]
        );
        assert_eq!(config.compression, Compression::Gzip);
        assert_eq!(config.timeout, Duration::from_millis(2500));
        // Generic ones apply when no signal-specific one is set.
        let (config, _) = resolve(&[
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=1"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "5000"),
        ]);
        assert_eq!(config.headers, vec![("a".to_string(), "1".to_string())]);
        assert_eq!(config.timeout, Duration::from_secs(5));
    }

    #[test]
    fn grpc_from_env_falls_back_to_protobuf_and_says_so() {
        let (config, warnings) = resolve(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
        assert_eq!(config.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("using http/protobuf"), "{warnings:?}");
    }

    #[test]
    fn bad_env_values_warn_and_use_defaults() {
        let (config, warnings) = resolve(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem"),
        ]);
        assert_eq!(config, OtlpConfig::default());
        assert_eq!(warnings.len(), 5, "{warnings:?}");
        let (config, warnings) = resolve(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "-1")]);
        assert_eq!(config.timeout, DEFAULT_TIMEOUT);
        assert_eq!(warnings.len(), 1);
        let mut warnings = Vec::new();
        let zipkin = ZipkinOptions::default()
            .resolve(
                &MapEnv::new(&[
                    ("OTEL_EXPORTER_ZIPKIN_ENDPOINT", "zipkin:9411"),
                    ("OTEL_EXPORTER_ZIPKIN_TIMEOUT", "0"),
                ]),
                &mut warnings,
            )
            .unwrap();
        assert_eq!(zipkin, ZipkinConfig::default());
        assert_eq!(warnings.len(), 2);
    }

    #[test]
    fn zipkin_from_env_and_keywords() {
        let env = MapEnv::new(&[
            (
                "OTEL_EXPORTER_ZIPKIN_ENDPOINT",
                "http://zipkin:9411/api/v2/spans",
            ),
            ("OTEL_EXPORTER_ZIPKIN_TIMEOUT", "1500"),
        ]);
        let config = ZipkinOptions::default()
            .resolve(&env, &mut Vec::new())
            .unwrap();
        assert_eq!(config.endpoint, "http://zipkin:9411/api/v2/spans");
        assert_eq!(config.timeout, Duration::from_millis(1500));
        let options = ZipkinOptions {
            endpoint: Some("https://z/api/v2/spans".into()),
            timeout_ms: Some(250.0),
        };
        let config = options.resolve(&env, &mut Vec::new()).unwrap();
        assert_eq!(config.endpoint, "https://z/api/v2/spans");
        assert_eq!(config.timeout, Duration::from_millis(250));
    }

    #[test]
    fn certificate_from_env_must_hold_a_certificate() {
        // A file that exists and holds no certificate, named by a 'static
        // path (a leaked one would fail the valgrind run's leak check).
        let not_pem = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let (config, warnings) = resolve(&[("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", not_pem)]);
        assert_eq!(config.certificate, None);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("no certificate"), "{warnings:?}");
    }
}
