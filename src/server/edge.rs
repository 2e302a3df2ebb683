//! What every request passes once, before any handler sees it, so no
//! handler can forget it:
//! - the Host header must name this server (a page on another site that
//!   rebinds its DNS name to 127.0.0.1 sends its own name: refused);
//! - CORS headers only for the one origin `--cors-origin` allows;
//! - a body is read to at most the limit, within a time bound, and
//!   decompressed as it streams to at most the same limit (a gzip bomb
//!   stops at the limit, having cost the limit).

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::HOST;
use hyper::{HeaderMap, StatusCode};

use super::status::Reject;

/// A client gets this long to send a whole body.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// The names a request's Host header may carry.
#[derive(Debug)]
pub struct AllowedHosts {
    /// Bound to every interface: the operator chose to expose the server
    /// and the names it is reached by are unknown, so any is accepted.
    any: bool,
    names: Vec<String>,
}

impl AllowedHosts {
    pub fn new(host: &str, bound: &[SocketAddr]) -> AllowedHosts {
        let mut names: Vec<String> = vec!["localhost".into(), host.to_ascii_lowercase()];
        let mut any = false;
        for addr in bound {
            any |= addr.ip().is_unspecified();
            names.push(match addr.ip() {
                IpAddr::V4(ip) => ip.to_string(),
                IpAddr::V6(ip) => format!("[{ip}]"),
            });
            if addr.ip().is_loopback() {
                names.extend(["127.0.0.1".to_string(), "[::1]".to_string()]);
            }
        }
        AllowedHosts { any, names }
    }

    /// Ok if the Host header names this server.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Reject> {
        if self.any {
            return Ok(());
        }
        let host = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| host_name(h).to_ascii_lowercase());
        match host {
            Some(name) if self.names.contains(&name) => Ok(()),
            Some(name) => Err(Reject::new(
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "Host {name:?} is not a name of this server (use localhost or the --host address)"
                ),
            )),
            None => Err(Reject::new(
                StatusCode::FORBIDDEN,
                "a Host header is required",
            )),
        }
    }
}

/// `example.com:8080` -> `example.com`; `[::1]:80` -> `[::1]`.
fn host_name(header: &str) -> &str {
    if header.starts_with('[') {
        return header.find(']').map_or(header, |end| &header[..=end]);
    }
    match header.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => header,
    }
}

/// Reads a whole body, refusing one over `limit` bytes (413) or one that
/// takes too long to arrive.
pub async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, Reject> {
    let collect = Limited::new(body, limit).collect();
    match tokio::time::timeout(BODY_TIMEOUT, collect).await {
        Err(_) => Err(Reject::new(
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive in time",
        )),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(Reject::too_large(limit)),
        Ok(Err(e)) => Err(Reject::bad_request(format!(
            "could not read the request body: {e}"
        ))),
    }
}

/// The body as sent, decompressed per its Content-Encoding to at most
/// `limit` bytes.
pub fn decode(body: Bytes, headers: &HeaderMap, limit: usize) -> Result<Bytes, Reject> {
    let encoding = headers
        .get(hyper::header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("") | Some("identity") => Ok(body),
        Some("gzip") | Some("x-gzip") => inflate(flate2::read::GzDecoder::new(&body[..]), limit),
        Some("deflate") => inflate(flate2::read::ZlibDecoder::new(&body[..]), limit),
        Some(other) => Err(Reject::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Encoding {other:?} is not supported (use gzip or none)"),
        )),
    }
}

fn inflate(decoder: impl Read, limit: usize) -> Result<Bytes, Reject> {
    let mut out = Vec::new();
    // One byte past the limit tells "exactly at the limit" from "over it"
    // without inflating any further.
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Reject::bad_request(format!("the compressed body is corrupt: {e}")))?;
    if out.len() > limit {
        return Err(Reject::too_large(limit));
    }
    Ok(out.into())
}

/// The media type of a request, lowercase, parameters dropped.
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn host_names_of_this_server_pass_and_others_do_not() {
        let local: SocketAddr = "127.0.0.1:16686".parse().unwrap();
        let allowed = AllowedHosts::new("127.0.0.1", &[local]);
        for ok in ["localhost:16686", "127.0.0.1", "[::1]:16686", "LOCALHOST"] {
            assert!(allowed.check(&headers(&[("host", ok)])).is_ok(), "{ok}");
        }
        for bad in ["evil.example:16686", "127.0.0.1.evil.example"] {
            let r = allowed.check(&headers(&[("host", bad)])).unwrap_err();
            assert_eq!(r.status, StatusCode::MISDIRECTED_REQUEST);
        }
        assert_eq!(
            allowed.check(&HeaderMap::new()).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        let everywhere: SocketAddr = "0.0.0.0:16686".parse().unwrap();
        let open = AllowedHosts::new("0.0.0.0", &[everywhere]);
        assert!(open.check(&headers(&[("host", "traces.internal")])).is_ok());
    }

    fn gzip(data: &[u8]) -> Bytes {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap().into()
    }

    #[test]
    fn decompression_stops_at_the_limit() {
        let gz = headers(&[("content-encoding", "gzip")]);
        let small = decode(gzip(b"hello"), &gz, 5).unwrap();
        assert_eq!(&small[..], b"hello");
        // 16 MiB of zeros compress to ~16 KiB: refused after inflating 1 MiB + 1.
        let bomb = gzip(&vec![0u8; 16 << 20]);
        assert!(bomb.len() < 1 << 20);
        let r = decode(bomb, &gz, 1 << 20).unwrap_err();
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        let r = decode(Bytes::from_static(b"not gzip"), &gz, 100).unwrap_err();
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let br = headers(&[("content-encoding", "br")]);
        let r = decode(Bytes::from_static(b"x"), &br, 100).unwrap_err();
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
