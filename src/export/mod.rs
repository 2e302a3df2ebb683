//! Export: kept spans sent to the backends a fleet already runs, over the
//! OpenTelemetry protocol (OTLP/HTTP, protobuf or JSON), as Zipkin v2 JSON,
//! or printed on the console for development.
//!
//! Each exporter is a [`Sink`](crate::sinks::Sink): it runs on a thread of
//! its own behind a bounded queue (the sink worker's job, not this module's),
//! so nothing here ever runs on a traced thread or holds the GIL. Pure Rust.
//!
//! The files, one concept each:
//!
//! - [`config`]: the exporters' options, resolved keyword first, then the
//!   OpenTelemetry environment variables, then defaults.
//! - [`otlp_model`]: the OTLP trace messages (prost structs, decode too) and
//!   the one span → OTLP mapping.
//! - [`otlp_json`]: OTLP/JSON, the protobuf-JSON rules OTLP prescribes.
//! - [`otlp`], [`zipkin`], [`console`]: the exporters.
//! - [`http`]: the transport (one keep-alive client, https, gzip).
//! - [`retry`]: the send-with-retry loop every network exporter shares.
//!
//! Making one (what the tracer does for `exporters=["otlp"]`):
//!
//! ```no_run
//! use std::sync::Arc;
//! use _core::config::ProcessEnv;
//! use _core::export::{OtlpExporter, OtlpOptions, Resource};
//! # fn main() -> Result<(), _core::config::ConfigError> {
//! let mut warnings = Vec::new(); // to show once, as the tracer does
//! let resource = Arc::new(Resource::new("api", &[], &ProcessEnv, &mut warnings));
//! let config = OtlpOptions::default().resolve(&ProcessEnv, &mut warnings)?;
//! let exporter = OtlpExporter::new(config, resource)?; // a Sink for its worker
//! # Ok(())
//! # }
//! ```
//!
//! Dependencies, chosen for build cost (every `pip install` from source
//! compiles them): prost's derive instead of generated code (no protoc, no
//! build.rs), flate2 on zlib-rs (pure Rust, the fastest backend), and ureq, a blocking HTTP
//! client, so no async runtime starts in every traced process. TLS is rustls
//! with ring; Mozilla's roots (webpki-roots, like Python's certifi) unless a
//! private CA is configured.

use std::sync::Arc;

use compact_str::CompactString;

use crate::attributes::AttrValue;
use crate::config::{Env, DEFAULT_SERVICE};

pub mod config;
pub mod console;
pub mod http;
pub mod otlp;
pub mod otlp_json;
pub mod otlp_model;
pub mod otlp_receive;
pub mod retry;
pub mod zipkin;

pub use config::{Compression, OtlpConfig, OtlpOptions, OtlpProtocol, ZipkinConfig, ZipkinOptions};
pub use console::ConsoleExporter;
pub use otlp::OtlpExporter;
pub use zipkin::ZipkinExporter;

/// What a request body may weigh before compression. The OpenTelemetry
/// Collector refuses bodies over 20 MiB by default and other backends set
/// lower limits, so big batches are split well below that.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// The crate version, sent as `telemetry.sdk.version` and in `User-Agent`.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The entity that produces the spans: `service.name`, the SDK, the host
/// and process, plus the user's attributes. Shared by every exported batch
/// (one `Arc` per tracer).
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    attributes: Vec<(CompactString, AttrValue)>,
}

impl Resource {
    /// Builds the resource of a tracer named `service_name`.
    ///
    /// `user` (the `resource_attributes` keyword) wins over
    /// `OTEL_RESOURCE_ATTRIBUTES`, and both over the detected `host.name`
    /// and `process.pid`. `service.name` is the tracer's service name, which
    /// the user's attributes can set only while that is the default
    /// (`unknown_service`), as in the OpenTelemetry SDKs where
    /// `OTEL_SERVICE_NAME` wins over a `service.name` in
    /// `OTEL_RESOURCE_ATTRIBUTES`. The `telemetry.sdk.*` attributes are
    /// always ferrotrace's.
    ///
    /// A malformed `OTEL_RESOURCE_ATTRIBUTES` is ignored as a whole (as the
    /// OpenTelemetry specification asks) with a warning in `warnings`.
    ///
    /// ```
    /// use _core::export::Resource;
    /// use _core::config::ProcessEnv;
    /// let mut warnings = Vec::new();
    /// let resource = Resource::new("api", &[], &ProcessEnv, &mut warnings);
    /// assert_eq!(resource.service_name(), "api");
    /// ```
    pub fn new(
        service_name: &str,
        user: &[(String, AttrValue)],
        env: &dyn Env,
        warnings: &mut Vec<String>,
    ) -> Resource {
        let mut resource = Resource {
            attributes: Vec::with_capacity(8 + user.len()),
        };
        resource.set("host.name", AttrValue::Str(hostname().into()));
        resource.set("process.pid", AttrValue::Int(i64::from(std::process::id())));
        if let Some(raw) = env.var("OTEL_RESOURCE_ATTRIBUTES") {
            match parse_key_values(&raw) {
                Ok(pairs) => {
                    for (k, v) in pairs {
                        resource.set(&k, AttrValue::Str(v.into()));
                    }
                }
                Err(why) => warnings.push(format!(
                    "ignoring OTEL_RESOURCE_ATTRIBUTES={raw:?}: {why}; expected \
                     key1=value1,key2=value2 with values percent-encoded"
                )),
            }
        }
        for (k, v) in user {
            resource.set(k, v.clone());
        }
        let user_named = resource.get("service.name").cloned();
        let service = match user_named {
            Some(AttrValue::Str(s)) if service_name == DEFAULT_SERVICE && !s.is_empty() => s,
            _ => service_name.into(),
        };
        resource.set("service.name", AttrValue::Str(service));
        resource.set("telemetry.sdk.name", AttrValue::Str("ferrotrace".into()));
        resource.set("telemetry.sdk.language", AttrValue::Str("python".into()));
        resource.set("telemetry.sdk.version", AttrValue::Str(SDK_VERSION.into()));
        // service.name first, where a human reading a payload looks.
        if let Some(i) = resource
            .attributes
            .iter()
            .position(|(k, _)| k == "service.name")
        {
            let entry = resource.attributes.remove(i);
            resource.attributes.insert(0, entry);
        }
        resource
    }

    /// The same resource in a forked child: only `process.pid` changes.
    pub fn for_this_process(&self) -> Resource {
        let mut resource = self.clone();
        resource.set("process.pid", AttrValue::Int(i64::from(std::process::id())));
        resource
    }

    /// `service.name`, also Zipkin's `localEndpoint.serviceName`.
    pub fn service_name(&self) -> &str {
        match self.get("service.name") {
            Some(AttrValue::Str(s)) => s,
            _ => DEFAULT_SERVICE,
        }
    }

    pub fn get(&self, key: &str) -> Option<&AttrValue> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Every attribute, `service.name` first.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, &AttrValue)> {
        self.attributes.iter().map(|(k, v)| (k.as_str(), v))
    }

    fn set(&mut self, key: &str, value: AttrValue) {
        match self.attributes.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.attributes.push((key.into(), value)),
        }
    }
}

/// A shared resource, as exporters take it.
pub type SharedResource = Arc<Resource>;

/// Parses the `key1=value1,key2=value2` lists of `OTEL_RESOURCE_ATTRIBUTES`
/// and `OTEL_EXPORTER_OTLP_HEADERS` (W3C Baggage syntax without
/// properties): blanks around keys and values are trimmed, values are
/// percent-decoded, empty members are skipped. Any malformed member fails
/// the whole list, with a message saying which.
pub fn parse_key_values(raw: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for member in raw.split(',') {
        if member.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = member.split_once('=') else {
            return Err(format!("{:?} has no '='", member.trim()));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("{:?} has an empty key", member.trim()));
        }
        let value = percent_decode(value.trim())
            .ok_or_else(|| format!("the value of {key:?} is not valid percent-encoded UTF-8"))?;
        pairs.push((key.to_string(), value));
    }
    Ok(pairs)
}

/// `%XX` escapes decoded; None for a broken escape or bytes that are not
/// UTF-8 once decoded.
fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The machine's host name (`gethostname`), empty if it cannot be read.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most
    // that many bytes and we stop at the first NUL or the end.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

#[cfg(test)]
pub(crate) mod test_env {
    use std::collections::HashMap;

    /// An environment made of a map, for resolution tests.
    pub struct MapEnv(pub HashMap<&'static str, &'static str>);

    impl MapEnv {
        pub fn new(pairs: &[(&'static str, &'static str)]) -> Self {
            MapEnv(pairs.iter().copied().collect())
        }
    }

    impl crate::config::Env for MapEnv {
        fn var(&self, key: &str) -> Option<String> {
            self.0.get(key).map(|v| v.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_env::MapEnv;
    use super::*;

    #[test]
    fn resource_has_service_sdk_host_and_process() {
        let mut warnings = Vec::new();
        let r = Resource::new("api", &[], &MapEnv::new(&[]), &mut warnings);
        assert!(warnings.is_empty());
        assert_eq!(r.attributes().next().unwrap().0, "service.name");
        assert_eq!(r.service_name(), "api");
        assert_eq!(
            r.get("telemetry.sdk.name"),
            Some(&AttrValue::Str("ferrotrace".into()))
        );
        assert_eq!(
            r.get("telemetry.sdk.language"),
            Some(&AttrValue::Str("python".into()))
        );
        assert_eq!(
            r.get("telemetry.sdk.version"),
            Some(&AttrValue::Str(SDK_VERSION.into()))
        );
        assert_eq!(
            r.get("process.pid"),
            Some(&AttrValue::Int(i64::from(std::process::id())))
        );
        match r.get("host.name") {
            Some(AttrValue::Str(h)) => assert!(!h.is_empty()),
            other => panic!("host.name: {other:?}"),
        }
    }

    #[test]
    fn env_attributes_are_percent_decoded_and_keywords_win() {
        let env = MapEnv::new(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            " deployment.environment = prod%20eu , team=a%2Cb,region=x,,",
        )]);
        let user = vec![("region".to_string(), AttrValue::Str("kw".into()))];
        let mut warnings = Vec::new();
        let r = Resource::new("api", &user, &env, &mut warnings);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            r.get("deployment.environment"),
            Some(&AttrValue::Str("prod eu".into()))
        );
        assert_eq!(r.get("team"), Some(&AttrValue::Str("a,b".into())));
        assert_eq!(r.get("region"), Some(&AttrValue::Str("kw".into())));
    }

    #[test]
    fn malformed_env_attributes_are_ignored_with_a_warning() {
        for bad in ["a=1,novalue", "a=%zz", "=x", "a=%ff%fe"] {
            let env = MapEnv::new(&[("OTEL_RESOURCE_ATTRIBUTES", bad)]);
            let mut warnings = Vec::new();
            let r = Resource::new("api", &[], &env, &mut warnings);
            assert_eq!(warnings.len(), 1, "{bad}");
            assert!(warnings[0].contains("OTEL_RESOURCE_ATTRIBUTES"));
            assert_eq!(r.get("a"), None, "{bad}: the whole value is ignored");
        }
    }

    #[test]
    fn service_name_wins_unless_it_is_the_default() {
        let env = MapEnv::new(&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-env")]);
        let mut w = Vec::new();
        assert_eq!(
            Resource::new("api", &[], &env, &mut w).service_name(),
            "api"
        );
        assert_eq!(
            Resource::new(DEFAULT_SERVICE, &[], &env, &mut w).service_name(),
            "from-env"
        );
        // The SDK attributes cannot be overridden.
        let user = vec![(
            "telemetry.sdk.name".to_string(),
            AttrValue::Str("other".into()),
        )];
        let r = Resource::new("api", &user, &env, &mut w);
        assert_eq!(
            r.get("telemetry.sdk.name"),
            Some(&AttrValue::Str("ferrotrace".into()))
        );
    }

    proptest::proptest! {
        /// Any pairs, percent-encoded as the OpenTelemetry variables carry
        /// them, parse back to themselves.
        #[test]
        fn key_value_lists_round_trip(
            pairs in proptest::collection::vec(("[a-zA-Z0-9._-]{1,12}", "\\PC{0,16}"), 0..5)
        ) {
            let encoded: Vec<String> = pairs
                .iter()
                .map(|(k, v)| {
                    let mut value = String::new();
                    for b in v.trim().bytes() {
                        if b.is_ascii_alphanumeric() {
                            value.push(b as char);
                        } else {
                            value.push_str(&format!("%{b:02X}"));
                        }
                    }
                    format!("{k}={value}")
                })
                .collect();
            let parsed = parse_key_values(&encoded.join(",")).unwrap();
            let expected: Vec<(String, String)> =
                pairs.iter().map(|(k, v)| (k.clone(), v.trim().to_string())).collect();
            proptest::prop_assert_eq!(parsed, expected);
        }

        /// Whatever the text, parsing answers (a list or a reason), never panics.
        #[test]
        fn key_value_lists_never_panic(raw in "\\PC{0,40}") {
            let _ = parse_key_values(&raw);
        }
    }

    #[test]
    fn key_value_lists() {
        assert_eq!(
            parse_key_values("api-key=secret%3D%3D, x-tenant = t1").unwrap(),
            vec![
                ("api-key".to_string(), "secret==".to_string()),
                ("x-tenant".to_string(), "t1".to_string()),
            ]
        );
        assert_eq!(parse_key_values("").unwrap(), vec![]);
        // '=' inside a value is kept (the first '=' separates).
        assert_eq!(
            parse_key_values("k=a=b").unwrap(),
            vec![("k".to_string(), "a=b".to_string())]
        );
        assert!(parse_key_values("k=%4").is_err());
    }
}
