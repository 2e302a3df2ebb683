//! `ferrotrace serve`: one process that receives spans (OTLP/HTTP, Zipkin),
//! appends them to a directory as the tracers' own JSONL, indexes every
//! span file there (followed live) and answers Jaeger's query API over the
//! index. README.md, "Viewing traces", is the user's guide.
//!
//! One file per concern:
//! - `edge.rs` — what every request passes once, before any handler: the
//!   Host check, CORS, body limits and bounded decompression;
//! - `status.rs` — the error → HTTP status mapping, in each protocol's
//!   error shape;
//! - `otlp_receiver.rs`, `zipkin_receiver.rs` — one receiver per transport;
//! - `span_log.rs` — received spans appended to the directory;
//! - `index.rs` — the searchable [`TraceStore`](crate::query::TraceStore)
//!   with its retention; `follower.rs` — start-up read and live following
//!   of the span files;
//! - `query_api.rs` (Jaeger endpoints), `jaeger_model.rs` (Jaeger's JSON
//!   shapes), `static_files.rs` (the UI, compiled in);
//! - `router.rs` — which path goes where.
//!
//! Why hyper 1 + tokio: the server must keep many slow or idle clients
//! (SDK exporters hold connections open) without a thread each, bound how
//! long a client may take to send headers and body, and parse HTTP/1.1
//! correctly (chunked bodies, keep-alive, pipelining). hyper is the
//! smallest well-proven HTTP implementation that does all of that; tokio
//! runs here on one current-thread runtime, created only by `serve` (a
//! traced process never starts it), so ingest figures are per core. axum
//! would add routing we do in one `match` for ~10 s more build. Measured
//! cost: see the commit that added this module.

mod edge;
mod follower;
mod index;
mod jaeger_model;
mod otlp_receiver;
mod query_api;
mod router;
mod span_log;
mod static_files;
mod stats_api;
mod status;
mod zipkin_receiver;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};

use crate::query::Retention;

pub use index::IndexCounters;

/// What `crate::fuzzing` reaches of the receivers' private parsers.
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzzing {
    use crate::analysis::SpanRow;

    /// A Go duration in milliseconds (the query API's `minDuration`).
    pub fn parse_go_duration(text: &str) -> Result<f64, String> {
        super::query_api::parse_go_duration("duration", text).map_err(|e| format!("{e:?}"))
    }

    /// A request body after its `Content-Encoding`, inflated to at most
    /// `limit` bytes (the edge's bounded decompression).
    pub fn decode_body(body: &[u8], encoding: &str, limit: usize) -> Result<Vec<u8>, String> {
        let mut headers = hyper::HeaderMap::new();
        if let Ok(value) = hyper::header::HeaderValue::from_str(encoding) {
            headers.insert(hyper::header::CONTENT_ENCODING, value);
        }
        super::edge::decode(bytes::Bytes::copy_from_slice(body), &headers, limit)
            .map(|b| b.to_vec())
            .map_err(|e| format!("{e:?}"))
    }

    /// `POST /api/v2/spans`: the records a Zipkin body makes.
    pub fn zipkin_rows(body: &[u8]) -> Result<Vec<SpanRow>, String> {
        super::zipkin_receiver::decode(body)
    }
}

/// 20 MiB, the OpenTelemetry Collector's default request limit.
pub const DEFAULT_MAX_BODY_BYTES: usize = 20 * 1024 * 1024;

/// Default retention of the index: one million spans, about 1.1 GiB (see README.md,
/// "Viewing traces", for the memory it takes).
pub const DEFAULT_MAX_SPANS: usize = 1_000_000;

/// How `ferrotrace serve` runs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Where received spans are written and span files are read from.
    pub dir: PathBuf,
    pub host: String,
    /// UI, query API and receivers. 0: any free port.
    pub port: u16,
    /// `POST /v1/traces` only (the SDKs' default port). None: not served.
    pub otlp_port: Option<u16>,
    /// The one origin allowed to make cross-origin requests, if any.
    pub cors_origin: Option<String>,
    /// Request body limit, compressed and decompressed alike.
    pub max_body_bytes: usize,
    /// What the index keeps; files are never deleted by the server.
    pub retention: Retention,
    /// How often span files are checked for new lines.
    pub follow_interval: Duration,
}

impl ServeOptions {
    pub fn new(dir: PathBuf) -> ServeOptions {
        ServeOptions {
            dir,
            host: "127.0.0.1".into(),
            port: 16686,
            otlp_port: Some(4318),
            cors_origin: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            retention: Retention {
                max_traces: None,
                max_spans: Some(DEFAULT_MAX_SPANS),
            },
            follow_interval: Duration::from_millis(200),
        }
    }
}

/// Why the server could not start.
#[derive(Debug)]
pub enum ServeError {
    /// DIR exists but is not a directory, or cannot be created or read.
    Dir(PathBuf, std::io::Error),
    /// `--host` is not an address or a name that resolves.
    Host(String),
    /// Another option that cannot be used as given.
    Option(String),
    /// The port is in use, or the address cannot be bound.
    Bind(SocketAddr, std::io::Error),
    /// The async runtime could not start (out of threads or memory).
    Runtime(std::io::Error),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Dir(dir, e) => write!(
                f,
                "cannot use {} as the traces directory: {e}",
                dir.display()
            ),
            ServeError::Host(host) => write!(
                f,
                "--host {host:?} is not an IP address or a name that resolves"
            ),
            ServeError::Option(message) => f.write_str(message),
            ServeError::Bind(addr, e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                write!(f, "cannot listen on {addr}: the port is in use (choose another with --port / --otlp-port)")
            }
            ServeError::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            ServeError::Runtime(e) => write!(f, "cannot start the server runtime: {e}"),
        }
    }
}

impl std::error::Error for ServeError {}

/// What the server tells its caller once it listens.
#[derive(Clone, Debug)]
pub struct Listening {
    /// The main address (UI, API, receivers).
    pub addr: SocketAddr,
    pub otlp_addr: Option<SocketAddr>,
    /// Spans indexed at start-up, and how long reading them took.
    pub spans_loaded: usize,
    pub load_time: Duration,
}

/// Lets the allocator keep what a request freed for the next one. By
/// default glibc hands request-sized buffers (a 1,000-span OTLP body, its
/// rows, the lines written) back to the kernel, and every request then
/// faulted in and zeroed fresh pages: 8% of ingest CPU. The serve command
/// owns its process, so the setting touches nothing else.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt only adjusts glibc's allocator parameters; both are
    // valid parameters with in-range values, and it is called before the
    // server's threads start allocating.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

/// Runs the server until `should_stop` (asked every 100 ms) says so.
/// `on_listening` is told the bound addresses once the index is loaded
/// and requests are being accepted. Received spans are on disk before
/// their request is answered, so stopping loses nothing accepted.
pub fn serve(
    options: ServeOptions,
    on_listening: impl FnOnce(&Listening),
    mut should_stop: impl FnMut() -> bool,
) -> Result<(), ServeError> {
    std::fs::create_dir_all(&options.dir).map_err(|e| ServeError::Dir(options.dir.clone(), e))?;
    keep_freed_memory();
    let ip = resolve_host(&options.host)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(async move {
        let main = bind(SocketAddr::new(ip, options.port))?;
        let otlp = match options.otlp_port {
            Some(port) => Some(bind(SocketAddr::new(ip, port))?),
            None => None,
        };
        let addr = main
            .local_addr()
            .map_err(|e| ServeError::Bind(SocketAddr::new(ip, options.port), e))?;
        let otlp_addr = otlp.as_ref().and_then(|l| l.local_addr().ok());
        let started = std::time::Instant::now();
        let index = Arc::new(index::Index::new(options.retention));
        let follower =
            follower::Follower::start(options.dir.clone(), index.clone(), options.follow_interval)
                .map_err(|e| ServeError::Dir(options.dir.clone(), e))?;
        let state = Arc::new(router::State::new(
            &options,
            addr,
            otlp_addr,
            index.clone(),
        )?);
        on_listening(&Listening {
            addr,
            otlp_addr,
            spans_loaded: index.span_count(),
            load_time: started.elapsed(),
        });
        let main_task = tokio::spawn(accept_loop(main, state.clone(), router::Listener::Main));
        let otlp_task =
            otlp.map(|l| tokio::spawn(accept_loop(l, state.clone(), router::Listener::Otlp)));
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            if should_stop() {
                break;
            }
        }
        main_task.abort();
        if let Some(t) = otlp_task {
            t.abort();
        }
        drop(follower);
        Ok(())
    })
}

fn resolve_host(host: &str) -> Result<IpAddr, ServeError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse() {
        return Ok(ip);
    }
    use std::net::ToSocketAddrs;
    (bare, 0)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .map(|a| a.ip())
        .ok_or_else(|| ServeError::Host(host.to_string()))
}

fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, ServeError> {
    let listener = std::net::TcpListener::bind(addr).map_err(|e| ServeError::Bind(addr, e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| ServeError::Bind(addr, e))?;
    tokio::net::TcpListener::from_std(listener).map_err(|e| ServeError::Bind(addr, e))
}

/// A client gets this long to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

async fn accept_loop(
    listener: tokio::net::TcpListener,
    state: Arc<router::State>,
    which: router::Listener,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, say: wait, do not spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(router::handle(&state, which, req).await)
                }
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
