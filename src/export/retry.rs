//! The send-with-retry loop every network exporter shares.
//!
//! Retried: 429, 502, 503 and 504, and failures to connect (refused,
//! reset, no route, unknown host), the answers that say "later" as the OTLP
//! specification lists them. Never retried: every other status (a 400
//! will be a 400 again), TLS failures, a timeout (the time is used up).
//!
//! Waits grow exponentially with jitter (so a fleet of processes does not
//! retry in step), or follow the server's `Retry-After` (seconds or an HTTP
//! date). Everything stays inside one deadline: the configured timeout for
//! the batch, or the shutdown deadline if that comes first; a wait that
//! would pass it is not started. Once shutdown begins no new attempt is
//! made: the attempt in flight finishes (within the deadline) and that is
//! its answer.

use std::time::{Duration, Instant, SystemTime};

use crate::export::http::{HttpResponse, TransportError};
use crate::export::otlp_model::RpcStatus;
use crate::sinks::{DeliveryError, SinkControl};

/// How long to wait between attempts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// The first wait (before jitter), doubled after each retry.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// One attempt's verdict.
#[derive(Debug)]
pub enum Attempt<T> {
    Done(T),
    /// Worth another try; `after` is the server's `Retry-After`.
    Retry {
        error: DeliveryError,
        after: Option<Duration>,
    },
    Fail(DeliveryError),
}

/// The moment a delivery starting now must be over: `timeout` from now, or
/// the shutdown deadline if sooner.
pub fn deadline(timeout: Duration, control: &SinkControl) -> Instant {
    let own = Instant::now() + timeout;
    match control.deadline() {
        Some(d) if d < own => d,
        _ => own,
    }
}

/// Runs `attempt(deadline)` until it is done, fails for good, or the time
/// is up. `attempt` gets the deadline it must return by.
pub fn send_with_retry<T>(
    policy: &RetryPolicy,
    deadline: Instant,
    control: &SinkControl,
    mut attempt: impl FnMut(Instant) -> Attempt<T>,
) -> Result<T, DeliveryError> {
    let mut backoff = policy.initial_backoff;
    loop {
        let deadline = effective_deadline(deadline, control);
        let (error, after) = match attempt(deadline) {
            Attempt::Done(value) => return Ok(value),
            Attempt::Fail(error) => return Err(error),
            Attempt::Retry { error, after } => (error, after),
        };
        if control.is_stopping() {
            return Err(gave_up(error, "not retried: the tracer is shutting down"));
        }
        let wait = match after {
            Some(after) => after,
            None => jittered(backoff),
        };
        backoff = (backoff * 2).min(policy.max_backoff);
        let deadline = effective_deadline(deadline, control);
        if Instant::now() + wait >= deadline {
            let why = match after {
                Some(after) => format!(
                    "gave up: the server asked to retry after {:.1} s, past the export timeout",
                    after.as_secs_f64()
                ),
                None => "gave up: retries used up the export timeout".to_string(),
            };
            return Err(gave_up(error, &why));
        }
        if !sleep_unless_stopping(Instant::now() + wait, control) {
            return Err(gave_up(error, "not retried: the tracer is shutting down"));
        }
    }
}

/// Judges an HTTP answer or transport failure.
pub fn classify(result: Result<HttpResponse, TransportError>) -> Attempt<HttpResponse> {
    let response = match result {
        Ok(r) => r,
        Err(TransportError::Connect(m)) => {
            return Attempt::Retry {
                error: error("connect", m),
                after: None,
            }
        }
        Err(TransportError::Timeout) => {
            return Attempt::Fail(error(
                "timeout",
                "no answer within the export timeout".to_string(),
            ))
        }
        Err(TransportError::Tls(m)) => return Attempt::Fail(error("tls", m)),
        Err(TransportError::Other(m)) => return Attempt::Fail(error("http", m)),
    };
    let status = response.status;
    if (200..300).contains(&status) {
        return Attempt::Done(response);
    }
    let mut message = format!("HTTP {status}");
    if let Some(detail) = body_text(&response) {
        message.push_str(": ");
        message.push_str(&detail);
    }
    if (300..400).contains(&status) {
        message.push_str(" (a redirect: configure the endpoint it points to)");
    }
    let error = error(&format!("http-{status}"), message);
    match status {
        429 | 502 | 503 | 504 => Attempt::Retry {
            after: response
                .retry_after
                .as_deref()
                .and_then(|v| parse_retry_after(v, SystemTime::now())),
            error,
        },
        _ => Attempt::Fail(error),
    }
}

/// `Retry-After`: a number of seconds, or an HTTP date (a past date means
/// now). None when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Past a day the number is as good as "never": the wait will not
        // fit in any export timeout anyway.
        let secs = value.parse::<u64>().unwrap_or(u64::MAX).min(86_400);
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The error a server sent with its status, short: the message of a
/// protobuf `google.rpc.Status`, else the text.
fn body_text(response: &HttpResponse) -> Option<String> {
    if response.body.is_empty() {
        return None;
    }
    let is_protobuf = response
        .content_type
        .as_deref()
        .is_some_and(|t| t.contains("protobuf"));
    let text = if is_protobuf {
        use prost::Message;
        RpcStatus::decode(response.body.as_slice()).ok()?.message
    } else {
        String::from_utf8_lossy(&response.body).into_owned()
    };
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return None;
    }
    const MAX: usize = 300;
    Some(match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    })
}

fn error(kind: &str, message: String) -> DeliveryError {
    DeliveryError {
        kind: kind.to_string(),
        message,
    }
}

fn gave_up(mut error: DeliveryError, why: &str) -> DeliveryError {
    error.message = format!("{} ({why})", error.message);
    error
}

fn effective_deadline(deadline: Instant, control: &SinkControl) -> Instant {
    match control.deadline() {
        Some(d) if d < deadline => d,
        _ => deadline,
    }
}

/// Half the backoff plus a random part of the other half.
fn jittered(backoff: Duration) -> Duration {
    // The span id generator is a fast per-thread random source.
    let random = crate::ids::SpanId::random().0;
    let half = backoff / 2;
    half + Duration::from_nanos(random % (half.as_nanos() as u64).max(1))
}

/// Sleeps until `until`, in short slices so that shutdown is noticed.
/// Returns false if shutdown began first.
fn sleep_unless_stopping(until: Instant, control: &SinkControl) -> bool {
    const SLICE: Duration = Duration::from_millis(20);
    loop {
        if control.is_stopping() {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(SLICE));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn response(status: u16, retry_after: Option<&str>) -> Result<HttpResponse, TransportError> {
        Ok(HttpResponse {
            status,
            retry_after: retry_after.map(str::to_string),
            content_type: None,
            body: Vec::new(),
        })
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            initial_backoff: Duration::from_millis(2),
            max_backoff: Duration::from_millis(8),
        }
    }

    #[test]
    fn only_the_later_statuses_and_connection_failures_retry() {
        for status in [429, 502, 503, 504] {
            assert!(
                matches!(classify(response(status, None)), Attempt::Retry { .. }),
                "{status}"
            );
        }
        for status in [400, 401, 403, 404, 413, 500, 501, 301] {
            match classify(response(status, None)) {
                Attempt::Fail(e) => assert_eq!(e.kind, format!("http-{status}")),
                other => panic!("{status}: {other:?}"),
            }
        }
        assert!(matches!(classify(response(200, None)), Attempt::Done(_)));
        assert!(matches!(classify(response(202, None)), Attempt::Done(_)));
        assert!(matches!(
            classify(Err(TransportError::Connect("refused".into()))),
            Attempt::Retry { .. }
        ));
        assert!(matches!(
            classify(Err(TransportError::Timeout)),
            Attempt::Fail(_)
        ));
        assert!(matches!(
            classify(Err(TransportError::Tls("bad".into()))),
            Attempt::Fail(_)
        ));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(7)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(86_400))
        );
        // The server's wait reaches the retry decision.
        match classify(response(429, Some("2"))) {
            Attempt::Retry { after, .. } => assert_eq!(after, Some(Duration::from_secs(2))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retries_until_done() {
        let control = SinkControl::default();
        let calls = Cell::new(0);
        let result = send_with_retry(
            &fast(),
            Instant::now() + Duration::from_secs(5),
            &control,
            |_| {
                calls.set(calls.get() + 1);
                if calls.get() < 4 {
                    classify(response(503, None))
                } else {
                    classify(response(200, None))
                }
            },
        );
        assert_eq!(result.unwrap().status, 200);
        assert_eq!(calls.get(), 4);
    }

    #[test]
    fn a_fatal_answer_is_not_retried() {
        let control = SinkControl::default();
        let calls = Cell::new(0);
        let result = send_with_retry(
            &fast(),
            Instant::now() + Duration::from_secs(5),
            &control,
            |_| {
                calls.set(calls.get() + 1);
                classify(response(400, None))
            },
        );
        assert_eq!(result.unwrap_err().kind, "http-400");
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn a_retry_after_past_the_deadline_gives_up_at_once() {
        let control = SinkControl::default();
        let calls = Cell::new(0);
        let start = Instant::now();
        let result = send_with_retry(&fast(), start + Duration::from_secs(2), &control, |_| {
            calls.set(calls.get() + 1);
            classify(response(503, Some("30")))
        });
        let error = result.unwrap_err();
        assert_eq!(calls.get(), 1);
        assert!(
            error.message.contains("retry after 30.0 s"),
            "{}",
            error.message
        );
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "no wait was started"
        );
    }

    #[test]
    fn retries_stop_at_the_deadline() {
        // Two quick failures are retried; the third reaches the deadline
        // itself, so a fourth would start past it: the loop gives up instead
        // of waiting. (Counted, not timed: a wait would show as a 4th call.)
        let control = SinkControl::default();
        let calls = Cell::new(0);
        let deadline = Instant::now() + Duration::from_secs(1);
        let result = send_with_retry(&fast(), deadline, &control, |d| {
            assert!(d <= deadline);
            calls.set(calls.get() + 1);
            if calls.get() == 3 {
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
            }
            classify(Err(TransportError::Connect("refused".into())))
        });
        let error = result.unwrap_err();
        assert_eq!(error.kind, "connect");
        assert!(
            error.message.contains("retries used up the export timeout"),
            "{}",
            error.message
        );
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn shutdown_stops_retrying_after_the_attempt_in_flight() {
        let control = SinkControl::default();
        let calls = Cell::new(0);
        let shutdown_at = Instant::now() + Duration::from_secs(1);
        let result = send_with_retry(
            &fast(),
            Instant::now() + Duration::from_secs(60),
            &control,
            |_| {
                calls.set(calls.get() + 1);
                if calls.get() == 2 {
                    // Shutdown begins while the second attempt is in flight.
                    control.stop_by(shutdown_at);
                }
                classify(response(503, None))
            },
        );
        let error = result.unwrap_err();
        assert_eq!(calls.get(), 2);
        assert!(error.message.contains("shutting down"), "{}", error.message);
    }

    #[test]
    fn the_shutdown_deadline_bounds_the_deadline() {
        let control = SinkControl::default();
        let soon = Instant::now() + Duration::from_millis(10);
        control.stop_by(soon);
        let d = deadline(Duration::from_secs(10), &control);
        assert!(d <= soon);
    }

    #[test]
    fn error_bodies_are_shown_short() {
        use prost::Message;
        let rpc = RpcStatus {
            code: 3,
            message: "resource_spans[0]: invalid trace id".into(),
        };
        let r = HttpResponse {
            status: 400,
            retry_after: None,
            content_type: Some("application/x-protobuf".into()),
            body: rpc.encode_to_vec(),
        };
        match classify(Ok(r)) {
            Attempt::Fail(e) => {
                assert_eq!(e.message, "HTTP 400: resource_spans[0]: invalid trace id")
            }
            other => panic!("{other:?}"),
        }
        let r = HttpResponse {
            status: 413,
            retry_after: None,
            content_type: Some("text/plain".into()),
            body: "x".repeat(10_000).into_bytes(),
        };
        match classify(Ok(r)) {
            Attempt::Fail(e) => assert!(e.message.len() < 400 && e.message.ends_with("...")),
            other => panic!("{other:?}"),
        }
    }

    proptest::proptest! {
        #[test]
        fn retry_after_never_panics(raw in "\\PC{0,40}") {
            let _ = parse_retry_after(&raw, SystemTime::now());
        }

        #[test]
        fn retry_after_seconds(secs in 0u64..100_000) {
            let parsed = parse_retry_after(&secs.to_string(), SystemTime::now());
            proptest::prop_assert_eq!(parsed, Some(Duration::from_secs(secs.min(86_400))));
        }
    }

    #[test]
    fn jitter_stays_within_half_to_full_backoff() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_millis(100));
            assert!(
                d >= Duration::from_millis(50) && d < Duration::from_millis(100),
                "{d:?}"
            );
        }
    }
}
