//! `POST /v1/traces`, OTLP/HTTP: protobuf or JSON by Content-Type, answered
//! in the request's own encoding as the OTLP specification says: 200 with
//! an `ExportTraceServiceResponse` (`partial_success` for spans that could
//! not be records), 400 for a body that is not a request, 503 (retryable)
//! if the spans could not be written.

use bytes::Bytes;
use hyper::StatusCode;
use prost::Message;

use crate::export::otlp_model::{ExportTracePartialSuccess, ExportTraceServiceResponse};
use crate::export::otlp_receive::{decode_json, decode_protobuf, to_rows};

use super::router::State;
use super::status::{reply, Protocol, Reject, Reply};

/// The protocol a Content-Type stands for, if OTLP accepts it.
pub fn protocol(media_type: &str) -> Option<Protocol> {
    match media_type {
        "application/x-protobuf" | "application/protobuf" => Some(Protocol::OtlpProtobuf),
        "application/json" => Some(Protocol::OtlpJson),
        _ => None,
    }
}

pub fn receive(state: &State, protocol: Protocol, body: &Bytes) -> Result<Reply, Reject> {
    let request = match protocol {
        Protocol::OtlpJson => decode_json(body),
        _ => decode_protobuf(body),
    }
    .map_err(Reject::bad_request)?;
    let received = to_rows(request);
    state.store_received(received.rows, received.rejected as u64)?;
    let partial_success = (received.rejected > 0).then(|| ExportTracePartialSuccess {
        rejected_spans: received.rejected,
        error_message: received.first_error.unwrap_or_default(),
    });
    Ok(match protocol {
        Protocol::OtlpJson => {
            let body = match partial_success {
                None => serde_json::json!({}),
                Some(p) => serde_json::json!({"partialSuccess": {
                    "rejectedSpans": p.rejected_spans.to_string(),
                    "errorMessage": p.error_message,
                }}),
            };
            reply(
                StatusCode::OK,
                "application/json",
                serde_json::to_vec(&body).unwrap_or_default(),
            )
        }
        _ => reply(
            StatusCode::OK,
            "application/x-protobuf",
            ExportTraceServiceResponse { partial_success }.encode_to_vec(),
        ),
    })
}
