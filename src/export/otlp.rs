//! The OTLP/HTTP exporter: kept spans to an OpenTelemetry Collector or any
//! backend that takes OTLP (Jaeger, Tempo, Honeycomb, ...), as protobuf or
//! JSON, gzipped or not.
//!
//! A batch is cut into requests of at most [`MAX_REQUEST_BYTES`] (measured
//! on the protobuf encoding; JSON requests are cut at a third of that, as
//! JSON is about 2-3 times bigger), each sent with retries inside the
//! batch's deadline. A partial success (the backend accepted the request
//! but rejected some spans) counts the rejected spans as lost and reports
//! the backend's message.

use std::sync::Arc;
use std::time::Instant;

use prost::Message;

use crate::config::ConfigError;
use crate::export::config::{OtlpConfig, OtlpProtocol};
use crate::export::http::{HttpClient, HttpResponse};
use crate::export::otlp_model::{
    self, ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
    SpanPool, TraceRequestBuilder,
};
use crate::export::retry::{self, RetryPolicy};
use crate::export::{otlp_json, Resource, MAX_REQUEST_BYTES};
use crate::sinks::{Batch, Delivery, DeliveryError, Sink, SinkControl};

pub struct OtlpExporter {
    config: OtlpConfig,
    resource: Arc<Resource>,
    client: HttpClient,
    retry: RetryPolicy,
    max_request_bytes: usize,
    /// Mapped spans reused from one request to the next.
    pool: SpanPool,
}

impl OtlpExporter {
    /// An exporter for `config`, sending spans as made by `resource`.
    /// Fails only if the certificate file cannot be used.
    pub fn new(config: OtlpConfig, resource: Arc<Resource>) -> Result<Self, ConfigError> {
        let client = HttpClient::new(
            &config.endpoint,
            config.protocol.content_type(),
            &config.headers,
            config.compression,
            config.certificate.as_deref(),
        )
        .map_err(|why| ConfigError(format!("otlp exporter: {why}")))?;
        Ok(OtlpExporter {
            config,
            resource,
            client,
            retry: RetryPolicy::default(),
            max_request_bytes: MAX_REQUEST_BYTES,
            pool: SpanPool::default(),
        })
    }

    /// Replaces the waits between attempts (tests use short ones).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Cuts requests at this many (protobuf) bytes instead of
    /// [`MAX_REQUEST_BYTES`].
    pub fn with_max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes.max(1);
        self
    }

    pub fn config(&self) -> &OtlpConfig {
        &self.config
    }

    /// Encodes, compresses and sends one request of `spans` spans.
    fn send(
        &self,
        request: &ExportTraceServiceRequest,
        spans: u64,
        deadline: Instant,
        control: &SinkControl,
        delivery: &mut Delivery,
    ) {
        let raw = match self.config.protocol {
            OtlpProtocol::HttpProtobuf => {
                // A typical span is a few hundred bytes; the Vec grows if not.
                let mut out = Vec::with_capacity(spans as usize * 320 + 1024);
                otlp_model::encode_request(request, &mut out);
                out
            }
            OtlpProtocol::HttpJson => {
                let mut out = Vec::with_capacity(spans as usize * 800 + 1024);
                otlp_json::write_request(&mut out, request);
                out
            }
        };
        let body = self.client.prepare_body(raw);
        let sent = retry::send_with_retry(&self.retry, deadline, control, |d| {
            retry::classify(self.client.post(&body, d))
        });
        match sent {
            Ok(response) => {
                // A partial success: spans refused (lost), or, with none
                // refused, a warning from the backend (OTLP allows both);
                // either is reported, with the backend's message.
                let rejected = match self.partial_success(&response) {
                    Some(p) if p.rejected_spans > 0 || !p.error_message.is_empty() => {
                        let rejected = (p.rejected_spans.max(0) as u64).min(spans);
                        let reason = if p.error_message.is_empty() {
                            "no reason given"
                        } else {
                            &p.error_message
                        };
                        delivery.error.get_or_insert(if rejected > 0 {
                            DeliveryError {
                                kind: "partial-success".to_string(),
                                message: format!(
                                    "the backend rejected {rejected} of {spans} spans: {reason}"
                                ),
                            }
                        } else {
                            DeliveryError {
                                kind: crate::sinks::worker::BACKEND_WARNING.to_string(),
                                message: format!(
                                    "the backend accepted all {spans} spans with a warning: {reason}"
                                ),
                            }
                        });
                        rejected
                    }
                    _ => 0,
                };
                delivery.delivered += spans - rejected;
                delivery.lost += rejected;
            }
            Err(error) => {
                delivery.lost += spans;
                delivery.error.get_or_insert(error);
            }
        }
    }

    /// The response's partial success, read in the response's own
    /// encoding (servers answer in the request's, but some say JSON).
    fn partial_success(&self, response: &HttpResponse) -> Option<ExportTracePartialSuccess> {
        if response.body.is_empty() {
            return None;
        }
        let json = match response.content_type.as_deref() {
            Some(t) if t.contains("json") => true,
            Some(t) if t.contains("protobuf") => false,
            _ => self.config.protocol == OtlpProtocol::HttpJson,
        };
        if json {
            otlp_json::parse_partial_success(&response.body)
        } else {
            ExportTraceServiceResponse::decode(response.body.as_slice())
                .ok()?
                .partial_success
        }
    }
}

impl Sink for OtlpExporter {
    fn name(&self) -> &'static str {
        "otlp"
    }

    fn deliver(&mut self, batch: &Batch, control: &SinkControl) -> Delivery {
        let mut delivery = Delivery::default();
        if batch.spans.is_empty() {
            return delivery;
        }
        let deadline = retry::deadline(self.config.timeout, control);
        let limit = match self.config.protocol {
            OtlpProtocol::HttpProtobuf => self.max_request_bytes,
            OtlpProtocol::HttpJson => (self.max_request_bytes / 3).max(1),
        };
        let resource = Arc::clone(&self.resource);
        let mut builder = TraceRequestBuilder::new();
        for record in &batch.spans {
            let span = self.pool.map(record);
            let len = span.encoded_len();
            if builder.span_count() > 0 && builder.encoded_len() + len > limit {
                let n = builder.span_count() as u64;
                let request = builder.build();
                self.send(&request, n, deadline, control, &mut delivery);
                self.pool.recycle(request);
            }
            builder.push_measured(&resource, record.scope.as_deref(), span, len);
        }
        let n = builder.span_count() as u64;
        let request = builder.build();
        self.send(&request, n, deadline, control, &mut delivery);
        self.pool.recycle(request);
        delivery
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::otlp_model::tests::{full_record, resource};
    use std::time::Duration;

    fn batch(n: usize) -> Batch {
        Batch {
            spans: (0..n).map(|_| triomphe::Arc::new(full_record())).collect(),
            summaries: Vec::new(),
        }
    }

    #[test]
    fn a_blackholed_endpoint_returns_by_the_shutdown_deadline() {
        // The kernel completes the handshake into the listen backlog; no
        // one ever reads the request or answers it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let config = OtlpConfig {
            endpoint: format!("http://{}/v1/traces", listener.local_addr().unwrap()),
            timeout: Duration::from_secs(60),
            ..OtlpConfig::default()
        };
        let mut exporter = OtlpExporter::new(config, Arc::new(resource())).unwrap();
        let control = SinkControl::default();
        control.stop_by(Instant::now() + Duration::from_millis(300));
        let start = Instant::now();
        let delivery = exporter.deliver(&batch(3), &control);
        assert_eq!((delivery.delivered, delivery.lost), (0, 3));
        assert_eq!(delivery.error.unwrap().kind, "timeout");
        // Bounded by the shutdown deadline, not the 60 s timeout (with
        // slack for a loaded machine).
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn a_passed_deadline_loses_every_request_without_sending() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let config = OtlpConfig {
            endpoint: format!("http://{}/v1/traces", listener.local_addr().unwrap()),
            ..OtlpConfig::default()
        };
        let mut exporter = OtlpExporter::new(config, Arc::new(resource()))
            .unwrap()
            .with_max_request_bytes(1);
        let control = SinkControl::default();
        control.stop_by(Instant::now());
        let delivery = exporter.deliver(&batch(4), &control);
        assert_eq!((delivery.delivered, delivery.lost), (0, 4));
        assert!(listener.accept().is_err(), "no connection was made");
    }

    #[test]
    fn an_empty_batch_sends_nothing() {
        let config = OtlpConfig {
            endpoint: "http://127.0.0.1:9/v1/traces".into(),
            ..OtlpConfig::default()
        };
        let mut exporter = OtlpExporter::new(config, Arc::new(resource())).unwrap();
        let delivery = exporter.deliver(&Batch::default(), &SinkControl::default());
        assert_eq!(delivery, Delivery::default());
    }
}
