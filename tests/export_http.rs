//! The network exporters against a scripted HTTP server on 127.0.0.1:
//! retries, Retry-After, refusals, dead and blackholed endpoints, gzip,
//! headers, https with a private CA, partial success, keep-alive and
//! request splitting.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use prost::Message;

use _core::attributes::{AttrValue, Limits};
use _core::config::Env;
use _core::export::otlp_model::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use _core::export::retry::RetryPolicy;
use _core::export::{
    Compression, OtlpConfig, OtlpExporter, OtlpProtocol, Resource, ZipkinConfig, ZipkinExporter,
};
use _core::ids::{SpanId, TraceId};
use _core::sinks::{Batch, Sink, SinkControl};
use _core::span::{Event, SpanKind, SpanRecord};

// ---------------------------------------------------------------------------
// The scripted server.

/// What the server does with one request.
#[derive(Clone)]
enum Reply {
    Status {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// Reads the request and never answers (a blackholed endpoint).
    Hang,
}

fn status(status: u16) -> Reply {
    Reply::Status {
        status,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

#[derive(Clone, Debug)]
struct Recorded {
    at: Instant,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The status the server answered (0 for none).
    answered: u16,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as sent, gunzipped if it was gzipped.
    fn plain_body(&self) -> Vec<u8> {
        if self.header("content-encoding") == Some("gzip") {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(self.body.as_slice())
                .read_to_end(&mut out)
                .expect("valid gzip");
            out
        } else {
            self.body.clone()
        }
    }
}

struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<Recorded>>>,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

type Tls = Option<Arc<rustls::ServerConfig>>;

impl Server {
    /// Answers requests with `script` in order; the last reply repeats.
    fn start(script: Vec<Reply>) -> Server {
        Server::start_with(script, None)
    }

    fn start_with(script: Vec<Reply>, tls: Tls) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let server = Server {
            port,
            requests: Arc::default(),
            connections: Arc::default(),
            stop: Arc::default(),
        };
        let (requests, connections, stop) = (
            server.requests.clone(),
            server.connections.clone(),
            server.stop.clone(),
        );
        let script = Arc::new(script);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        connections.fetch_add(1, Ordering::Relaxed);
                        let (requests, stop, script, tls) =
                            (requests.clone(), stop.clone(), script.clone(), tls.clone());
                        std::thread::spawn(move || {
                            stream.set_nonblocking(false).unwrap();
                            stream
                                .set_read_timeout(Some(Duration::from_millis(100)))
                                .unwrap();
                            match tls {
                                None => serve(stream, &requests, &script, &stop),
                                Some(config) => {
                                    let conn = rustls::ServerConnection::new(config).unwrap();
                                    let tls = rustls::StreamOwned::new(conn, stream);
                                    serve(tls, &requests, &script, &stop)
                                }
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        server
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Serves requests on one connection (keep-alive) until it closes.
fn serve<S: Read + Write>(
    stream: S,
    requests: &Mutex<Vec<Recorded>>,
    script: &[Reply],
    stop: &AtomicBool,
) {
    let mut reader = BufReader::new(stream);
    loop {
        let Some((path, headers, body)) = read_request(&mut reader, stop) else {
            return;
        };
        let n = {
            let mut all = requests.lock().unwrap();
            all.push(Recorded {
                at: Instant::now(),
                path,
                headers,
                body,
                answered: 0,
            });
            all.len()
        };
        let reply = &script[(n - 1).min(script.len() - 1)];
        match reply {
            Reply::Hang => {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                return;
            }
            Reply::Status {
                status,
                headers,
                body,
            } => {
                requests.lock().unwrap()[n - 1].answered = *status;
                let mut response = format!("HTTP/1.1 {status} Scripted\r\n");
                for (k, v) in headers {
                    response.push_str(&format!("{k}: {v}\r\n"));
                }
                response.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
                let out = reader.get_mut();
                if out.write_all(response.as_bytes()).is_err()
                    || out.write_all(body).is_err()
                    || out.flush().is_err()
                {
                    return;
                }
            }
        }
    }
}

type Request = (String, Vec<(String, String)>, Vec<u8>);

/// One HTTP/1.1 request with a content-length body; None when the
/// connection closes or the server stops.
fn read_request<R: BufRead>(reader: &mut R, stop: &AtomicBool) -> Option<Request> {
    let mut line = String::new();
    let mut read_line = |line: &mut String| loop {
        match reader.read_line(line) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if stop.load(Ordering::Relaxed) {
                    return false;
                }
            }
            Err(_) => return false,
        }
    };
    if !read_line(&mut line) {
        return None;
    }
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if !read_line(&mut h) {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0; len];
    let mut filled = 0;
    while filled < len {
        match reader.read(&mut body[filled..]) {
            Ok(0) => return None,
            Ok(n) => filled += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if stop.load(Ordering::Relaxed) {
                    return None;
                }
            }
            Err(_) => return None,
        }
    }
    Some((path, headers, body))
}

// ---------------------------------------------------------------------------
// Spans and exporters.

struct NoEnv;

impl Env for NoEnv {
    fn var(&self, _: &str) -> Option<String> {
        None
    }
}

fn resource() -> Arc<Resource> {
    Arc::new(Resource::new("checkout", &[], &NoEnv, &mut Vec::new()))
}

/// `n` realistic spans of one trace.
fn batch(n: u64) -> Batch {
    let limits = Limits::default();
    let spans = (0..n)
        .map(|i| {
            let mut r = SpanRecord::new(
                TraceId(0x1234),
                (i > 0).then_some(SpanId(1)),
                format!("op-{i}").into(),
            );
            r.span_id = SpanId(i + 1);
            r.kind = SpanKind::Client;
            r.start_ns = 1_700_000_000_000_000_000 + i * 1_000;
            r.start_mono = 10;
            r.end_mono = 10 + 1_500_000;
            r.set_attribute(
                "http.request.method".into(),
                AttrValue::Str("GET".into()),
                &limits,
            );
            r.set_attribute("i".into(), AttrValue::Int(i as i64), &limits);
            r.add_event(
                Event {
                    name: "sent".into(),
                    ts_ns: r.start_ns + 10,
                    level: "info".into(),
                    attributes: Default::default(),
                },
                &limits,
            );
            triomphe::Arc::new(r)
        })
        .collect();
    Batch {
        spans,
        summaries: Vec::new(),
    }
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
    }
}

fn otlp(server: &Server, configure: impl FnOnce(&mut OtlpConfig)) -> OtlpExporter {
    let mut config = OtlpConfig {
        endpoint: server.url("http", "/v1/traces"),
        timeout: Duration::from_secs(5),
        ..OtlpConfig::default()
    };
    configure(&mut config);
    OtlpExporter::new(config, resource())
        .unwrap()
        .with_retry(fast_retries())
}

fn decoded_span_ids(body: &[u8]) -> Vec<u64> {
    let request = ExportTraceServiceRequest::decode(body).expect("a valid OTLP request");
    request
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .map(|s| u64::from_be_bytes(s.span_id.as_slice().try_into().unwrap()))
        .collect()
}

// ---------------------------------------------------------------------------
// Retries.

#[test]
fn a_503_then_200_delivers_each_span_once() {
    let server = Server::start(vec![status(503), status(200)]);
    let mut exporter = otlp(&server, |_| {});
    let delivery = exporter.deliver(&batch(3), &SinkControl::default());
    assert_eq!((delivery.delivered, delivery.lost), (3, 0));
    assert!(delivery.error.is_none(), "{:?}", delivery.error);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body, "the same request again");
    let accepted: Vec<u64> = requests
        .iter()
        .filter(|r| r.answered == 200)
        .flat_map(|r| decoded_span_ids(&r.plain_body()))
        .collect();
    assert_eq!(accepted, vec![1, 2, 3], "each span accepted exactly once");
}

#[test]
fn retry_after_in_seconds_is_honoured() {
    let server = Server::start(vec![
        Reply::Status {
            status: 429,
            headers: vec![("retry-after", "1".into())],
            body: Vec::new(),
        },
        status(200),
    ]);
    let mut exporter = otlp(&server, |_| {});
    let delivery = exporter.deliver(&batch(1), &SinkControl::default());
    assert_eq!(delivery.delivered, 1);
    let r = server.requests();
    assert_eq!(r.len(), 2);
    // The retry policy alone would have waited 5 ms.
    let waited = r[1].at - r[0].at;
    assert!(waited >= Duration::from_millis(950), "waited {waited:?}");
}

#[test]
fn retry_after_as_an_http_date_is_honoured() {
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    let server = Server::start(vec![
        Reply::Status {
            status: 503,
            headers: vec![("retry-after", at)],
            body: Vec::new(),
        },
        status(200),
    ]);
    let mut exporter = otlp(&server, |_| {});
    let delivery = exporter.deliver(&batch(1), &SinkControl::default());
    assert_eq!(delivery.delivered, 1);
    let r = server.requests();
    // The date has whole seconds: the wait is between 1 and 2 s.
    let waited = r[1].at - r[0].at;
    assert!(waited >= Duration::from_millis(900), "waited {waited:?}");
}

#[test]
fn a_400_is_never_retried() {
    let server = Server::start(vec![
        Reply::Status {
            status: 400,
            headers: vec![("content-type", "text/plain".into())],
            body: b"malformed request".to_vec(),
        },
        status(200),
    ]);
    let mut exporter = otlp(&server, |_| {});
    let delivery = exporter.deliver(&batch(4), &SinkControl::default());
    assert_eq!((delivery.delivered, delivery.lost), (0, 4));
    let error = delivery.error.unwrap();
    assert_eq!(error.kind, "http-400");
    assert!(
        error.message.contains("malformed request"),
        "{}",
        error.message
    );
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_dead_endpoint_returns_within_the_timeout_with_spans_lost() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = OtlpConfig {
        endpoint: format!("http://127.0.0.1:{port}/v1/traces"),
        timeout: Duration::from_millis(500),
        ..OtlpConfig::default()
    };
    let mut exporter = OtlpExporter::new(config, resource()).unwrap();
    let start = Instant::now();
    let delivery = exporter.deliver(&batch(5), &SinkControl::default());
    let took = start.elapsed();
    assert_eq!((delivery.delivered, delivery.lost), (0, 5));
    let error = delivery.error.unwrap();
    assert_eq!(error.kind, "connect");
    assert!(error.message.contains("gave up"), "{}", error.message);
    // Bounded by the timeout (generous slack for a loaded machine).
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn a_blackholed_endpoint_returns_within_the_timeout_with_spans_lost() {
    let server = Server::start(vec![Reply::Hang]);
    let mut exporter = otlp(&server, |c| c.timeout = Duration::from_millis(700));
    let start = Instant::now();
    let delivery = exporter.deliver(&batch(5), &SinkControl::default());
    let took = start.elapsed();
    assert_eq!((delivery.delivered, delivery.lost), (0, 5));
    assert_eq!(delivery.error.unwrap().kind, "timeout");
    assert!(took >= Duration::from_millis(600), "it did wait: {took:?}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert_eq!(server.requests().len(), 1, "the request arrived");
}

#[test]
fn zipkin_retries_too() {
    let server = Server::start(vec![status(502), status(202)]);
    let config = ZipkinConfig {
        endpoint: server.url("http", "/api/v2/spans"),
        timeout: Duration::from_secs(5),
    };
    let mut exporter = ZipkinExporter::new(config, resource())
        .unwrap()
        .with_retry(fast_retries());
    let delivery = exporter.deliver(&batch(2), &SinkControl::default());
    assert_eq!((delivery.delivered, delivery.lost), (2, 0));
    let r = server.requests();
    assert_eq!(r.len(), 2);
    assert_eq!(r[1].path, "/api/v2/spans");
    assert_eq!(r[1].header("content-type"), Some("application/json"));
    let spans: serde_json::Value = serde_json::from_slice(&r[1].body).unwrap();
    assert_eq!(spans.as_array().unwrap().len(), 2);
    assert_eq!(spans[0]["localEndpoint"]["serviceName"], "checkout");
    assert_eq!(spans[1]["kind"], "CLIENT");
}

// ---------------------------------------------------------------------------
// What is sent.

#[test]
fn gzip_bodies_decompress_to_the_same_bytes() {
    let server = Server::start(vec![status(200)]);
    let b = batch(20);
    otlp(&server, |_| {}).deliver(&b, &SinkControl::default());
    otlp(&server, |c| c.compression = Compression::Gzip).deliver(&b, &SinkControl::default());
    let r = server.requests();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].header("content-encoding"), None);
    assert_eq!(r[1].header("content-encoding"), Some("gzip"));
    assert!(r[1].body.len() < r[0].body.len() / 2, "compressed");
    assert_eq!(r[1].plain_body(), r[0].body);
}

#[test]
fn headers_content_types_and_user_agent() {
    let server = Server::start(vec![status(200)]);
    let b = batch(1);
    otlp(&server, |c| {
        c.headers = vec![
            ("x-api-key".into(), "s3cret".into()),
            ("x-tenant".into(), "t 1".into()),
        ]
    })
    .deliver(&b, &SinkControl::default());
    otlp(&server, |c| c.protocol = OtlpProtocol::HttpJson).deliver(&b, &SinkControl::default());
    let r = server.requests();
    assert_eq!(r[0].path, "/v1/traces");
    assert_eq!(r[0].header("x-api-key"), Some("s3cret"));
    assert_eq!(r[0].header("x-tenant"), Some("t 1"));
    assert_eq!(r[0].header("content-type"), Some("application/x-protobuf"));
    assert_eq!(
        r[0].header("user-agent"),
        Some(format!("ferrotrace/{}", env!("CARGO_PKG_VERSION")).as_str())
    );
    assert_eq!(r[1].header("content-type"), Some("application/json"));
    assert_eq!(r[1].header("x-api-key"), None);
    let json: serde_json::Value = serde_json::from_slice(&r[1].body).unwrap();
    let span = &json["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["traceId"], "00000000000000000000000000001234");
    assert_eq!(span["kind"], 3);
}

#[test]
fn the_resource_is_sent() {
    let server = Server::start(vec![status(200)]);
    otlp(&server, |_| {}).deliver(&batch(1), &SinkControl::default());
    let body = server.requests()[0].body.clone();
    let request = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
    let attrs = &request.resource_spans[0]
        .resource
        .as_ref()
        .unwrap()
        .attributes;
    let keys: Vec<&str> = attrs.iter().map(|kv| kv.key.as_str()).collect();
    for key in [
        "service.name",
        "telemetry.sdk.name",
        "telemetry.sdk.language",
        "telemetry.sdk.version",
        "host.name",
        "process.pid",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
}

#[test]
fn one_connection_is_reused() {
    let server = Server::start(vec![status(200)]);
    let mut exporter = otlp(&server, |_| {});
    for _ in 0..3 {
        let delivery = exporter.deliver(&batch(2), &SinkControl::default());
        assert_eq!(delivery.delivered, 2);
    }
    assert_eq!(server.requests().len(), 3);
    assert_eq!(server.connections.load(Ordering::Relaxed), 1, "keep-alive");
}

#[test]
fn large_batches_are_split_under_the_size_limit() {
    for protocol in [OtlpProtocol::HttpProtobuf, OtlpProtocol::HttpJson] {
        let server = Server::start(vec![status(200)]);
        let limit = 3_000;
        let mut exporter = otlp(&server, |c| c.protocol = protocol).with_max_request_bytes(limit);
        let delivery = exporter.deliver(&batch(100), &SinkControl::default());
        assert_eq!((delivery.delivered, delivery.lost), (100, 0));
        let r = server.requests();
        assert!(r.len() > 3, "{protocol:?}: {} requests", r.len());
        let mut ids: Vec<u64> = Vec::new();
        for req in &r {
            assert!(
                req.body.len() <= limit + 1_000,
                "{protocol:?}: {} bytes",
                req.body.len()
            );
            match protocol {
                OtlpProtocol::HttpProtobuf => ids.extend(decoded_span_ids(&req.body)),
                OtlpProtocol::HttpJson => {
                    let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
                    for s in v["resourceSpans"][0]["scopeSpans"][0]["spans"]
                        .as_array()
                        .unwrap()
                    {
                        ids.push(u64::from_str_radix(s["spanId"].as_str().unwrap(), 16).unwrap());
                    }
                }
            }
        }
        assert_eq!(ids, (1..=100).collect::<Vec<u64>>(), "{protocol:?}");
    }
}

#[test]
fn zipkin_batches_are_split_too() {
    let server = Server::start(vec![status(202)]);
    let config = ZipkinConfig {
        endpoint: server.url("http", "/api/v2/spans"),
        timeout: Duration::from_secs(5),
    };
    let mut exporter = ZipkinExporter::new(config, resource())
        .unwrap()
        .with_max_request_bytes(2_000);
    let delivery = exporter.deliver(&batch(50), &SinkControl::default());
    assert_eq!(delivery.delivered, 50);
    let mut n = 0;
    for req in server.requests() {
        let spans: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        n += spans.as_array().unwrap().len();
    }
    assert_eq!(n, 50);
    assert!(server.requests().len() > 3);
}

// ---------------------------------------------------------------------------
// Partial success.

#[test]
fn a_partial_success_counts_the_rejected_spans_as_lost() {
    let response = ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: 2,
            error_message: "2 spans too old".into(),
        }),
    };
    let server = Server::start(vec![Reply::Status {
        status: 200,
        headers: vec![("content-type", "application/x-protobuf".into())],
        body: response.encode_to_vec(),
    }]);
    let delivery = otlp(&server, |_| {}).deliver(&batch(5), &SinkControl::default());
    assert_eq!((delivery.delivered, delivery.lost), (3, 2));
    let error = delivery.error.unwrap();
    assert_eq!(error.kind, "partial-success");
    assert!(
        error.message.contains("2 spans too old"),
        "{}",
        error.message
    );

    let server = Server::start(vec![Reply::Status {
        status: 200,
        headers: vec![("content-type", "application/json".into())],
        body: br#"{"partialSuccess":{"rejectedSpans":"1","errorMessage":"bad span"}}"#.to_vec(),
    }]);
    let delivery = otlp(&server, |c| c.protocol = OtlpProtocol::HttpJson)
        .deliver(&batch(5), &SinkControl::default());
    assert_eq!((delivery.delivered, delivery.lost), (4, 1));
}

#[test]
fn a_warning_without_rejected_spans_is_reported_and_nothing_lost() {
    let server = Server::start(vec![Reply::Status {
        status: 200,
        headers: vec![("content-type", "application/x-protobuf".into())],
        body: ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 0,
                error_message: "attribute values truncated".into(),
            }),
        }
        .encode_to_vec(),
    }]);
    let delivery = otlp(&server, |_| {}).deliver(&batch(5), &SinkControl::default());
    assert_eq!((delivery.delivered, delivery.lost), (5, 0));
    let warning = delivery.error.unwrap();
    assert_eq!(warning.kind, "backend-warning");
    assert!(warning.message.contains("attribute values truncated"));
}

#[test]
fn an_empty_success_response_is_full_success() {
    let server = Server::start(vec![Reply::Status {
        status: 200,
        headers: vec![("content-type", "application/x-protobuf".into())],
        body: ExportTraceServiceResponse::default().encode_to_vec(),
    }]);
    let delivery = otlp(&server, |_| {}).deliver(&batch(5), &SinkControl::default());
    assert_eq!((delivery.delivered, delivery.lost), (5, 0));
    assert!(delivery.error.is_none());
}

// ---------------------------------------------------------------------------
// https with a private CA.

struct TestCa {
    _dir: tempfile::TempDir,
    ca_file: PathBuf,
    server: Arc<rustls::ServerConfig>,
}

/// A CA made for this test and a certificate for 127.0.0.1 signed by it.
fn test_ca() -> TestCa {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ferrotrace test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    )
    .unwrap();
    TestCa {
        _dir: dir,
        ca_file,
        server: Arc::new(server),
    }
}

#[test]
fn https_works_with_the_private_ca_and_fails_without() {
    let ca = test_ca();
    let server = Server::start_with(vec![status(200)], Some(ca.server.clone()));
    let endpoint = server.url("https", "/v1/traces");

    let trusted = OtlpConfig {
        endpoint: endpoint.clone(),
        certificate: Some(ca.ca_file.clone()),
        ..OtlpConfig::default()
    };
    let delivery = OtlpExporter::new(trusted, resource())
        .unwrap()
        .deliver(&batch(2), &SinkControl::default());
    assert_eq!(
        (delivery.delivered, delivery.lost),
        (2, 0),
        "{:?}",
        delivery.error
    );
    assert_eq!(decoded_span_ids(&server.requests()[0].body), vec![1, 2]);

    let untrusted = OtlpConfig {
        endpoint,
        ..OtlpConfig::default()
    };
    let delivery = OtlpExporter::new(untrusted, resource())
        .unwrap()
        .deliver(&batch(2), &SinkControl::default());
    assert_eq!((delivery.delivered, delivery.lost), (0, 2));
    let error = delivery.error.unwrap();
    assert_eq!(error.kind, "tls", "{}", error.message);
    assert_eq!(
        server.requests().len(),
        1,
        "nothing reached the server untrusted"
    );
}

#[test]
fn https_to_a_plain_http_server_fails_without_retrying() {
    // What an HTTP server answers to a TLS ClientHello: plain text.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(5) {
            let Ok(mut stream) = stream else { return };
            counter.fetch_add(1, Ordering::Relaxed);
            let mut hello = [0u8; 512];
            let _ = stream.read(&mut hello);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
        }
    });
    let config = OtlpConfig {
        endpoint: format!("https://127.0.0.1:{port}/v1/traces"),
        timeout: Duration::from_secs(30),
        ..OtlpConfig::default()
    };
    let delivery = OtlpExporter::new(config, resource())
        .unwrap()
        .deliver(&batch(1), &SinkControl::default());
    assert_eq!((delivery.delivered, delivery.lost), (0, 1));
    assert_eq!(delivery.error.unwrap().kind, "tls");
    assert_eq!(accepted.load(Ordering::Relaxed), 1, "not retried");
}
