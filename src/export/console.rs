//! The console exporter: one readable line per span on stderr, for
//! development:
//!
//! ```text
//! 2026-11-29T15:47:28.123456Z api GET /orders/{id} [server] 2.500 ms ERROR trace=0af7651916cd43dd8448eb211c80319c span=00f067aa0ba902b7 parent=b7ad6b7169203331 error="ValueError: bad order id"
//! ```
//!
//! A batch is written with one call through the locked stderr, so lines
//! from other threads never cut into it. A closed or broken stderr is a
//! failed delivery (counted), never a panic.

use std::io::Write;
use std::sync::Arc;

use crate::export::Resource;
use crate::sinks::{Batch, Delivery, DeliveryError, Sink, SinkControl};
use crate::span::{SpanKind, SpanRecord, Status};

pub struct ConsoleExporter {
    service: String,
    out: Output,
    line: Vec<u8>,
}

enum Output {
    Stderr,
    Writer(Box<dyn Write + Send>),
}

impl ConsoleExporter {
    /// Writes to stderr.
    pub fn new(resource: Arc<Resource>) -> Self {
        ConsoleExporter {
            service: resource.service_name().to_string(),
            out: Output::Stderr,
            line: Vec::new(),
        }
    }

    /// Writes to `writer` instead (tests, or a log file).
    pub fn with_writer(resource: Arc<Resource>, writer: Box<dyn Write + Send>) -> Self {
        ConsoleExporter {
            out: Output::Writer(writer),
            ..Self::new(resource)
        }
    }
}

impl Sink for ConsoleExporter {
    fn name(&self) -> &'static str {
        "console"
    }

    fn deliver(&mut self, batch: &Batch, _control: &SinkControl) -> Delivery {
        let n = batch.spans.len() as u64;
        if n == 0 {
            return Delivery::default();
        }
        self.line.clear();
        for record in &batch.spans {
            write_line(&mut self.line, record, &self.service);
        }
        let written = match &mut self.out {
            // `eprintln!` would panic on a closed stderr; write_all returns
            // the error instead.
            Output::Stderr => {
                let mut stderr = std::io::stderr().lock();
                stderr.write_all(&self.line).and_then(|_| stderr.flush())
            }
            Output::Writer(w) => w.write_all(&self.line).and_then(|_| w.flush()),
        };
        match written {
            Ok(()) => Delivery {
                delivered: n,
                ..Delivery::default()
            },
            Err(e) => Delivery {
                delivered: 0,
                lost: n,
                error: Some(DeliveryError {
                    kind: "write".to_string(),
                    message: format!("cannot write spans to the console: {e}"),
                }),
            },
        }
    }
}

/// Appends one span's line, newline included.
pub fn write_line(out: &mut Vec<u8>, r: &SpanRecord, service: &str) {
    write_utc(out, r.start_ns);
    out.push(b' ');
    push_text(out, service);
    out.push(b' ');
    push_text(out, &r.name);
    if r.kind != SpanKind::Internal {
        out.extend_from_slice(b" [");
        out.extend_from_slice(r.kind.as_str().as_bytes());
        out.push(b']');
    }
    let _ = write!(out, " {:.3} ms ", r.duration_ms());
    out.extend_from_slice(match r.status {
        Status::Unset => b"UNSET",
        Status::Ok => b"OK",
        Status::Error => b"ERROR",
    });
    out.extend_from_slice(b" trace=");
    out.extend_from_slice(r.trace_id.to_hex().as_bytes());
    out.extend_from_slice(b" span=");
    out.extend_from_slice(r.span_id.to_hex().as_bytes());
    out.extend_from_slice(b" parent=");
    match r.parent_id {
        Some(p) => out.extend_from_slice(p.to_hex().as_bytes()),
        None => out.push(b'-'),
    }
    if let Some(e) = r.error.as_deref() {
        out.extend_from_slice(b" error=\"");
        push_text(out, &e.error_type);
        if !e.error_type.is_empty() && !e.message.is_empty() {
            out.extend_from_slice(b": ");
        }
        push_text(out, &e.message);
        out.push(b'"');
    }
    out.push(b'\n');
}

/// Text with control characters (line breaks above all) escaped, so that
/// one span stays one line.
fn push_text(out: &mut Vec<u8>, s: &str) {
    if !s.chars().any(char::is_control) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    for c in s.chars() {
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

/// Epoch nanoseconds as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
fn write_utc(out: &mut Vec<u8>, ns: u64) {
    let secs = ns / 1_000_000_000;
    let micros = (ns % 1_000_000_000) / 1_000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::otlp_model::tests::{full_record, resource};
    use crate::ids::TraceId;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn batch(spans: Vec<SpanRecord>) -> Batch {
        Batch {
            spans: spans.into_iter().map(triomphe::Arc::new).collect(),
            summaries: Vec::new(),
        }
    }

    #[test]
    fn one_readable_line_per_span() {
        let shared = Shared::default();
        let mut console =
            ConsoleExporter::with_writer(Arc::new(resource()), Box::new(shared.clone()));
        let mut failed = full_record();
        failed.name = "multi\nline".into();
        let mut ok = SpanRecord::new(TraceId(1), None, "tick".into());
        ok.start_ns = 0;
        ok.status = Status::Ok;
        let delivery = console.deliver(&batch(vec![failed, ok]), &SinkControl::default());
        assert_eq!(delivery.delivered, 2);
        let text = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(
            lines[0],
            "2023-11-14T22:13:20.000000Z api multi\\nline [server] 2.500 ms ERROR \
             trace=0af7651916cd43dd8448eb211c80319c span=00f067aa0ba902b7 \
             parent=b7ad6b7169203331 error=\"ValueError: bad order id\""
        );
        assert!(lines[1].starts_with("1970-01-01T00:00:00.000000Z api tick 0.000 ms OK trace="));
        assert!(lines[1].ends_with("parent=-"));
    }

    #[test]
    fn a_closed_console_is_a_counted_failure() {
        let mut console = ConsoleExporter::with_writer(Arc::new(resource()), Box::new(Closed));
        let delivery = console.deliver(
            &batch(vec![SpanRecord::new(TraceId(1), None, "x".into())]),
            &SinkControl::default(),
        );
        assert_eq!((delivery.delivered, delivery.lost), (0, 1));
        assert_eq!(delivery.error.unwrap().kind, "write");
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
