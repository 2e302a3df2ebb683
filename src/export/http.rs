//! The transport: one blocking HTTP client per exporter (ureq), reused for
//! every request so connections are kept alive, with https through rustls,
//! an optional private CA, the configured headers, gzip request bodies and
//! `User-Agent: ferrotrace/<version>`.
//!
//! Every request is bounded by a deadline (ureq's global timeout covers
//! name lookup, connecting, sending and reading the answer), so a
//! blackholed endpoint that accepts and never answers costs at most the
//! time the caller allowed. Proxies follow the usual `HTTPS_PROXY` /
//! `HTTP_PROXY` / `NO_PROXY` variables, as in Python's HTTP clients.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ureq::http::{HeaderName, HeaderValue};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use crate::export::config::Compression;
use crate::export::SDK_VERSION;

/// What is kept of a response body: enough for an OTLP partial-success
/// message or an error text; a larger body is cut.
const MAX_RESPONSE_BODY: u64 = 64 * 1024;

/// A POSTing client for one endpoint.
pub struct HttpClient {
    agent: ureq::Agent,
    endpoint: String,
    content_type: &'static str,
    headers: Vec<(HeaderName, HeaderValue)>,
    compression: Compression,
}

/// An HTTP answer, whatever its status.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// The `Retry-After` header's raw value, if any.
    pub retry_after: Option<String>,
    pub content_type: Option<String>,
    /// The first [`MAX_RESPONSE_BODY`] bytes of the body.
    pub body: Vec<u8>,
}

/// Why no HTTP answer came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// Could not connect, or the connection broke: worth retrying.
    Connect(String),
    /// The deadline passed before an answer.
    Timeout,
    /// The TLS handshake failed (an untrusted certificate, a non-TLS
    /// server): retrying will not help.
    Tls(String),
    /// Anything else (a malformed answer, a bad URL).
    Other(String),
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportError::Connect(m) => write!(f, "connection failed: {m}"),
            TransportError::Timeout => f.write_str("timed out"),
            TransportError::Tls(m) => write!(f, "TLS failed: {m}"),
            TransportError::Other(m) => f.write_str(m),
        }
    }
}

impl HttpClient {
    /// A client POSTing `content_type` bodies to `endpoint`. Fails when the
    /// certificate file cannot be used.
    pub fn new(
        endpoint: &str,
        content_type: &'static str,
        headers: &[(String, String)],
        compression: Compression,
        certificate: Option<&Path>,
    ) -> Result<Self, String> {
        let roots = match certificate {
            Some(path) => RootCerts::Specific(Arc::new(load_certificates(path)?)),
            None => RootCerts::WebPki,
        };
        let config = ureq::Agent::config_builder()
            // Statuses are the retry loop's to judge.
            .http_status_as_error(false)
            // A redirected POST would lose its body or change method;
            // a 3xx is reported instead, naming where it pointed.
            .max_redirects(0)
            .user_agent(format!("ferrotrace/{SDK_VERSION}"))
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build();
        let mut checked = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{name:?} is not a valid HTTP header name"))?;
            // The body's own headers are the client's to set.
            if name == ureq::http::header::CONTENT_TYPE
                || name == ureq::http::header::CONTENT_LENGTH
                || name == ureq::http::header::CONTENT_ENCODING
                || name == ureq::http::header::TRANSFER_ENCODING
            {
                continue;
            }
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("the value of header {name} is not valid in HTTP"))?;
            checked.push((name, value));
        }
        Ok(HttpClient {
            agent: config.new_agent(),
            endpoint: endpoint.to_string(),
            content_type,
            headers: checked,
            compression,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The body as sent: compressed if so configured. Done once per
    /// request, not per attempt.
    pub fn prepare_body(&self, raw: Vec<u8>) -> Vec<u8> {
        match self.compression {
            Compression::Gzip => gzip(&raw),
            Compression::None => raw,
        }
    }

    /// POSTs a body made by [`prepare_body`](Self::prepare_body); returns
    /// by `deadline`.
    pub fn post(&self, body: &[u8], deadline: Instant) -> Result<HttpResponse, TransportError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left < Duration::from_millis(1) {
            return Err(TransportError::Timeout);
        }
        let mut request = self
            .agent
            .post(&self.endpoint)
            .header(ureq::http::header::CONTENT_TYPE, self.content_type);
        if self.compression == Compression::Gzip {
            request = request.header(ureq::http::header::CONTENT_ENCODING, "gzip");
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let mut response = request
            .config()
            .timeout_global(Some(left))
            .build()
            .send(body)
            .map_err(transport_error)?;
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let retry_after = header(ureq::http::header::RETRY_AFTER);
        let content_type = header(ureq::http::header::CONTENT_TYPE);
        let status = response.status().as_u16();
        let mut body = Vec::new();
        // The status is the answer; a body that breaks off or times out
        // only loses detail.
        let _ = response
            .body_mut()
            .as_reader()
            .take(MAX_RESPONSE_BODY)
            .read_to_end(&mut body);
        Ok(HttpResponse {
            status,
            retry_after,
            content_type,
            body,
        })
    }
}

fn transport_error(e: ureq::Error) -> TransportError {
    use ureq::Error as E;
    match e {
        E::Timeout(_) => TransportError::Timeout,
        E::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => TransportError::Timeout,
        // A refused certificate comes back as an I/O error around rustls's.
        E::Io(io)
            if io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>()) =>
        {
            TransportError::Tls(io.to_string())
        }
        E::ConnectionFailed | E::HostNotFound | E::Io(_) | E::ConnectProxyFailed(_) => {
            TransportError::Connect(e.to_string())
        }
        E::Tls(_) | E::Rustls(_) | E::Pem(_) | E::TlsRequired => TransportError::Tls(e.to_string()),
        other => TransportError::Other(other.to_string()),
    }
}

/// gzip at the fastest level: OTLP spans shrink ~4.3x at level 1 against
/// ~5.2x at the default level 6, which takes about 4 times as long
/// (benches/export_encode.rs); the exporter thread's time is worth more.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(data);
    encoder.finish().unwrap_or_default()
}

/// The CA certificates in a PEM file; an error names the file and what is
/// wrong with it.
pub fn load_certificates(path: &Path) -> Result<Vec<Certificate<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut certificates = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certificates.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("{} is not valid PEM: {e}", path.display())),
        }
    }
    if certificates.is_empty() {
        return Err(format!(
            "{} holds no certificate (expected PEM, -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_round_trips() {
        let data: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 97).to_le_bytes())
            .collect();
        let compressed = gzip(&data);
        assert!(compressed.len() < data.len() / 4);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(compressed.as_slice())
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn certificate_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        assert!(load_certificates(&missing)
            .unwrap_err()
            .contains("cannot read"));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert!(load_certificates(&empty)
            .unwrap_err()
            .contains("no certificate"));
    }

    #[test]
    fn a_closed_port_is_a_connection_failure() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let client = HttpClient::new(
            &format!("http://127.0.0.1:{port}/v1/traces"),
            "application/json",
            &[],
            Compression::None,
            None,
        )
        .unwrap();
        let err = client
            .post(b"{}", Instant::now() + Duration::from_secs(5))
            .unwrap_err();
        assert!(matches!(err, TransportError::Connect(_)), "{err:?}");
        let err = client.post(b"{}", Instant::now()).unwrap_err();
        assert_eq!(
            err,
            TransportError::Timeout,
            "a passed deadline sends nothing"
        );
    }
}
