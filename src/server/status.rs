//! The error → status mapping, once for every handler: a [`Reject`] says
//! what went wrong and which HTTP status that is; [`Reject::render`] writes
//! it in the shape the client's protocol expects (OTLP: a `google.rpc.Status`
//! in the request's encoding; the query API: Jaeger's envelope with
//! `errors`; anything else: plain text).

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use prost::Message;

use crate::export::otlp_model::RpcStatus;

pub type Reply = Response<Full<Bytes>>;

/// How a client wants to be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    OtlpProtobuf,
    OtlpJson,
    Zipkin,
    /// The Jaeger-style query API.
    Api,
    /// The UI's pages and anything unknown.
    Page,
}

/// A request refused, with the reason the client is told.
#[derive(Debug)]
pub struct Reject {
    pub status: StatusCode,
    pub message: String,
}

impl Reject {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Reject {
        Reject {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Reject {
        Reject::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Reject {
        Reject::new(StatusCode::NOT_FOUND, message)
    }

    pub fn too_large(limit: usize) -> Reject {
        Reject::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over the limit of {limit} bytes (compressed or decompressed)"),
        )
    }

    /// The gRPC code the OTLP specification pairs with this status.
    fn grpc_code(&self) -> i32 {
        match self.status {
            StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => 3, // INVALID_ARGUMENT
            StatusCode::PAYLOAD_TOO_LARGE => 8,                                // RESOURCE_EXHAUSTED
            StatusCode::SERVICE_UNAVAILABLE => 14,                             // UNAVAILABLE
            StatusCode::FORBIDDEN | StatusCode::MISDIRECTED_REQUEST => 7,      // PERMISSION_DENIED
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => 12,      // UNIMPLEMENTED
            _ => 2,                                                            // UNKNOWN
        }
    }

    pub fn render(&self, protocol: Protocol) -> Reply {
        let (body, content_type) = match protocol {
            Protocol::OtlpProtobuf => (
                RpcStatus {
                    code: self.grpc_code(),
                    message: self.message.clone(),
                }
                .encode_to_vec(),
                "application/x-protobuf",
            ),
            Protocol::OtlpJson => (
                serde_json::to_vec(&serde_json::json!({
                    "code": self.grpc_code(),
                    "message": self.message,
                }))
                .unwrap_or_default(),
                "application/json",
            ),
            Protocol::Api => (
                serde_json::to_vec(&serde_json::json!({
                    "data": null,
                    "total": 0,
                    "limit": 0,
                    "offset": 0,
                    "errors": [{"code": self.status.as_u16(), "msg": self.message}],
                }))
                .unwrap_or_default(),
                "application/json",
            ),
            Protocol::Zipkin | Protocol::Page => (
                format!("{}\n", self.message).into_bytes(),
                "text/plain; charset=utf-8",
            ),
        };
        reply(self.status, content_type, body)
    }
}

/// A response with a body of this type.
pub fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
