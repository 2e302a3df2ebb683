//! The exporter thread's encoding cost per span: OTLP protobuf (mapping +
//! encoding), the same gzipped, OTLP/JSON, Zipkin v2 JSON; JSONL, the file
//! writer's serialisation, for scale. Realistic spans: a server span with
//! 5 attributes and 1 event, in batches of 512 as the collector hands them.
//!
//! Then whole deliveries (map, encode, compress, POST, read the answer) by
//! the OTLP exporter to a minimal sink on 127.0.0.1 that reads each
//! request and answers 200: the exporter thread's cost per span with the
//! transport, not an end-to-end figure (that one is Python's bench).
//!
//! `cargo bench --bench export_encode` (or `make bench`). Prints ns/span
//! and bytes/span.

use std::sync::Arc;
use std::time::{Duration, Instant};

use _core::attributes::{AttrValue, Attributes, Limits};
use _core::config::ProcessEnv;
use _core::export::otlp_model::{self, ExportTraceServiceRequest, SpanPool, TraceRequestBuilder};
use _core::export::{http, otlp_json, zipkin, Compression, OtlpConfig, OtlpExporter, Resource};
use _core::ids::{SpanId, TraceId};
use _core::jsonl;
use _core::sinks::{Batch, Sink, SinkControl};
use _core::span::{Event, SpanKind, SpanRecord, Status};

const BATCH: usize = 512;

fn span(i: u64) -> SpanRecord {
    let limits = Limits::default();
    let mut r = SpanRecord::new(
        TraceId::random(),
        Some(SpanId::random()),
        "GET /api/orders/{order_id}".into(),
    );
    r.kind = SpanKind::Server;
    r.start_ns = 1_700_000_000_000_000_000 + i * 1_000_000;
    r.start_mono = 1;
    r.end_mono = 1 + 1_234_567 + i % 1_000;
    r.status = Status::Ok;
    r.set_attribute(
        "http.request.method".into(),
        AttrValue::Str("GET".into()),
        &limits,
    );
    r.set_attribute(
        "http.route".into(),
        AttrValue::Str("/api/orders/{order_id}".into()),
        &limits,
    );
    r.set_attribute(
        "http.response.status_code".into(),
        AttrValue::Int(200),
        &limits,
    );
    r.set_attribute(
        "url.path".into(),
        AttrValue::Str(format!("/api/orders/{}", 1000 + i % 977).into()),
        &limits,
    );
    r.set_attribute("user.premium".into(), AttrValue::Bool(i % 3 == 0), &limits);
    let mut attributes = Attributes::default();
    attributes.set(
        "cache.key".into(),
        AttrValue::Str(format!("order:{}", i % 977).into()),
        &limits,
    );
    r.add_event(
        Event {
            name: "cache miss".into(),
            ts_ns: r.start_ns + 5_000,
            level: "info".into(),
            attributes,
        },
        &limits,
    );
    r
}

fn report(what: &str, spans: u64, bytes: usize, elapsed: Duration) {
    println!(
        "{what:<34} {:>8.0} ns/span  {:>7.0} spans/s/core  {:>5} bytes/span",
        elapsed.as_nanos() as f64 / spans as f64,
        spans as f64 / elapsed.as_secs_f64(),
        bytes / spans as usize
    );
}

/// Runs `encode` over whole batches for about `budget`; returns what the
/// last batch weighed and the time per span.
fn run(
    what: &str,
    budget: Duration,
    spans: &[SpanRecord],
    mut encode: impl FnMut(&[SpanRecord]) -> usize,
) {
    // Warm up (allocator, caches).
    for _ in 0..3 {
        encode(spans);
    }
    let start = Instant::now();
    let mut n = 0u64;
    let mut bytes = 0usize;
    while start.elapsed() < budget {
        bytes = encode(spans);
        n += spans.len() as u64;
    }
    let per_batch = n / spans.len() as u64;
    report(what, n, bytes * per_batch as usize, start.elapsed());
}

/// A sink that accepts one connection at a time and answers every request
/// 200 with an empty body. Returns its port.
fn start_sink() -> u16 {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("bound").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream);
            let mut body = Vec::new();
            'requests: loop {
                let mut len = 0usize;
                let mut line = String::new();
                loop {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break 'requests,
                        Ok(_) => {}
                    }
                    let l = line.trim_end();
                    if l.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = l.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                body.resize(len, 0);
                if reader.read_exact(&mut body).is_err() {
                    break;
                }
                let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                if reader.get_mut().write_all(answer).is_err() {
                    break;
                }
            }
        }
    });
    port
}

fn bench_delivery(budget: Duration, spans: &[SpanRecord], resource: &Arc<Resource>) {
    let port = start_sink();
    let batch = Batch {
        spans: spans.iter().cloned().map(triomphe::Arc::new).collect(),
        summaries: Vec::new(),
    };
    for (what, compression) in [
        ("OTLP delivery to a local sink", Compression::None),
        ("OTLP delivery + gzip", Compression::Gzip),
    ] {
        let config = OtlpConfig {
            endpoint: format!("http://127.0.0.1:{port}/v1/traces"),
            compression,
            ..OtlpConfig::default()
        };
        let mut exporter = OtlpExporter::new(config, resource.clone()).expect("no certificate");
        let control = SinkControl::default();
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < budget {
            let d = exporter.deliver(&batch, &control);
            assert_eq!(d.lost, 0, "{:?}", d.error);
            n += d.delivered;
        }
        report(what, n, 0, start.elapsed());
    }
}

fn main() {
    let budget = Duration::from_millis(
        std::env::var("BENCH_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_500),
    );
    let resource = Arc::new(Resource::new("checkout", &[], &ProcessEnv, &mut Vec::new()));
    let spans: Vec<SpanRecord> = (0..BATCH as u64).map(span).collect();
    // As the exporter does: map into recycled spans, group, encode, recycle.
    let pool = std::cell::RefCell::new(SpanPool::default());
    let encode_with = |spans: &[SpanRecord], write: &mut dyn FnMut(&ExportTraceServiceRequest)| {
        let mut pool = pool.borrow_mut();
        let mut builder = TraceRequestBuilder::new();
        for s in spans {
            let span = pool.map(s);
            builder.push(&resource, s.scope.as_deref(), span);
        }
        let request = builder.build();
        write(&request);
        pool.recycle(request);
    };
    println!("export encoding, batches of {BATCH} spans (5 attributes, 1 event)");

    let mut out = Vec::with_capacity(1 << 20);
    run("OTLP protobuf (map + encode)", budget, &spans, |spans| {
        out.clear();
        encode_with(spans, &mut |r| otlp_model::encode_request(r, &mut out));
        out.len()
    });
    run("OTLP protobuf + gzip (fast)", budget, &spans, |spans| {
        out.clear();
        encode_with(spans, &mut |r| otlp_model::encode_request(r, &mut out));
        http::gzip(&out).len()
    });
    run(
        "OTLP protobuf + gzip (level 6, ref.)",
        budget,
        &spans,
        |spans| {
            use std::io::Write;
            out.clear();
            encode_with(spans, &mut |r| otlp_model::encode_request(r, &mut out));
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(&out).expect("a Vec grows");
            gz.finish().expect("a Vec grows").len()
        },
    );
    run("OTLP/JSON (map + write)", budget, &spans, |spans| {
        out.clear();
        encode_with(spans, &mut |r| otlp_json::write_request(&mut out, r));
        out.len()
    });
    run("OTLP/JSON + gzip (fast)", budget, &spans, |spans| {
        out.clear();
        encode_with(spans, &mut |r| otlp_json::write_request(&mut out, r));
        http::gzip(&out).len()
    });
    run("Zipkin v2 JSON", budget, &spans, |spans| {
        out.clear();
        out.push(b'[');
        for (i, s) in spans.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            zipkin::write_span(&mut out, s, "checkout");
        }
        out.push(b']');
        out.len()
    });
    run("JSONL (file writer, for scale)", budget, &spans, |spans| {
        out.clear();
        for s in spans {
            jsonl::write_span(&mut out, s, &jsonl::ServiceJson::new("checkout"));
        }
        out.len()
    });
    bench_delivery(budget, &spans, &resource);
}
