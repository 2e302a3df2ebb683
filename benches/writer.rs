//! Throughput of the pieces behind the flush thread: the lock-free buffer,
//! JSONL serialisation, the in-process analysis every span goes through, and
//! the whole collector writing real files.
//!
//! `cargo bench --bench writer` (or `make bench`). Prints spans per second.

use std::time::{Duration, Instant};

use _core::attributes::{AttrValue, Limits};
use _core::buffer::SpanBuffer;
use _core::clock;
use _core::collector::Collector;
use _core::config::Config;
use _core::ids::{SpanId, TraceId};
use _core::jsonl;
use _core::live::{LiveAnalysis, LiveLimits};
use _core::pool::RecordPool;
use _core::sampling::TailRules;
use _core::span::SpanRecord;

/// The peers.py workload's spans: a root with 2 attributes, a child with 1.
fn workload_span(i: u64) -> SpanRecord {
    let limits = Limits::default();
    // Pairs (child, root) of one trace, child first as it finishes first.
    let parent = if i % 2 == 1 {
        None
    } else {
        Some(SpanId(i + 1))
    };
    let mut r = SpanRecord::new(
        TraceId(u128::from(i / 2) + 1),
        parent,
        if parent.is_some() {
            "child".into()
        } else {
            "root".into()
        },
    );
    r.start_mono = clock::monotonic_ns();
    r.start_ns = clock::to_wall_ns(r.start_mono);
    r.end_mono = r.start_mono + 1_500;
    if parent.is_none() {
        r.set_attribute("a".into(), AttrValue::Int(1), &limits);
        r.set_attribute("b".into(), AttrValue::Str("x".into()), &limits);
    } else {
        r.set_attribute("c".into(), AttrValue::Int(2), &limits);
    }
    r
}

fn report(what: &str, n: u64, elapsed: Duration) {
    println!(
        "{what:<40} {:>12.0} spans/s  ({:.0} ns/span)",
        n as f64 / elapsed.as_secs_f64(),
        elapsed.as_nanos() as f64 / n as f64
    );
}

fn bench_buffer(n: u64) {
    let buffer = SpanBuffer::new(1 << 16);
    let span = triomphe::Arc::new(workload_span(0));
    let mut out = Vec::with_capacity(1 << 16);
    let start = Instant::now();
    let mut done = 0;
    while done < n {
        for _ in 0..(1 << 15) {
            let _ = buffer.push(span.clone());
        }
        out.clear();
        done += buffer.drain_into(&mut out, usize::MAX) as u64;
    }
    report("buffer push+drain (1 thread)", done, start.elapsed());
}

fn bench_serialise(n: u64) {
    let spans: Vec<SpanRecord> = (0..1024).map(workload_span).collect();
    let mut out = Vec::with_capacity(1 << 20);
    let service = jsonl::ServiceJson::new("bench");
    let start = Instant::now();
    let mut bytes = 0usize;
    for i in 0..n {
        jsonl::write_span(&mut out, &spans[(i % 1024) as usize], &service);
        if out.len() > 1 << 20 {
            bytes += out.len();
            out.clear();
        }
    }
    bytes += out.len();
    report("JSONL serialisation", n, start.elapsed());
    println!("{:<40} {:>12.0} bytes/span", "", bytes as f64 / n as f64);
}

/// `LiveAnalysis::observe`, which the writer thread runs for every span:
/// distinct traces (more than the stores remember, as in a long run), each
/// child before its root.
fn bench_live_analysis(n: u64) {
    const DISTINCT: u64 = 1 << 17;
    let spans: Vec<triomphe::Arc<SpanRecord>> = (0..DISTINCT)
        .map(|i| triomphe::Arc::new(workload_span(i)))
        .collect();
    let pool = RecordPool::new(1024);
    let mut live = LiveAnalysis::new("bench", LiveLimits::default(), TailRules::default());
    let mut released = Vec::new();
    let mut summaries = 0u64;
    let start = Instant::now();
    for i in 0..n {
        let span = &spans[(i % DISTINCT) as usize];
        summaries += u64::from(live.observe(span, &pool, &mut released).is_some());
    }
    report("LiveAnalysis::observe", n, start.elapsed());
    assert_eq!(summaries, n / 2);
}

fn bench_collector(n: u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let collector = Collector::new(Config {
        service_name: "bench".into(),
        output_dir: Some(dir.path().to_path_buf()),
        ..Config::default()
    });
    let spans: Vec<triomphe::Arc<SpanRecord>> = (0..1024)
        .map(|i| triomphe::Arc::new(workload_span(i)))
        .collect();
    let start = Instant::now();
    let mut sent = 0u64;
    let mut refused = 0u64;
    while sent < n {
        match collector.submit(spans[(sent % 1024) as usize].clone()) {
            Ok(()) => sent += 1,
            Err(_) => {
                // Full: back off instead of spinning, so the producer does
                // not steal the writer's core on this 2-core machine.
                refused += 1;
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
    assert!(collector.flush(Duration::from_secs(60)));
    let elapsed = start.elapsed();
    let written = collector.metrics().get("spans_written").unwrap_or(0);
    report("collector -> JSONL files (end to end)", written, elapsed);
    println!(
        "{:<40} {:>12} pushes refused while full (retried)",
        "", refused
    );
}

fn main() {
    let n: u64 = std::env::var("BENCH_SPANS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    // `BENCH_PARTS=live,serialise` runs only those (to profile one part).
    let parts = std::env::var("BENCH_PARTS").unwrap_or_default();
    let wanted = |part: &str| parts.is_empty() || parts.split(',').any(|p| p == part);
    if wanted("buffer") {
        bench_buffer(n);
    }
    if wanted("serialise") {
        bench_serialise(n);
    }
    if wanted("live") {
        bench_live_analysis(n);
    }
    if wanted("collector") {
        bench_collector(n);
    }
}
