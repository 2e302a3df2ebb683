//! What redaction costs where every attribute is set: `Attributes::set` with
//! the default `redact_keys` rules beside the same calls with redaction off
//! (`redact_keys=[]`, the floor), for keys that do not match (the common
//! case, which must cost next to nothing) and keys that do; then the
//! matcher alone (remembered keys, and keys never seen before) and a URL
//! attribute's rewrite.
//!
//! `cargo bench --bench redact`. Prints ns per attribute set.

use std::hint::black_box;
use std::time::Instant;

use _core::attributes::{AttrValue, Attributes, Limits};
use _core::redact::{Redactor, UrlPart};

/// Keys instrumentations set on most spans; none matches the defaults.
const KEPT: &[&str] = &[
    "http.request.method",
    "url.path",
    "server.address",
    "server.port",
    "user_agent.original",
    "db.system",
    "gen_ai.usage.input_tokens",
    "order_id",
];

const REDACTED: &[&str] = &[
    "db.password",
    "x-api-key",
    "http.request.header.authorization",
    "session_id",
];

fn per_set(keys: &[&str], limits: &Limits, rounds: u64) -> f64 {
    let keys: Vec<compact_str::CompactString> = keys.iter().map(|k| (*k).into()).collect();
    let mut attrs = Attributes::with_capacity(keys.len());
    let start = Instant::now();
    for _ in 0..rounds {
        attrs.clear();
        for key in &keys {
            attrs.set(black_box(key.clone()), AttrValue::Int(1), limits);
        }
        black_box(&attrs);
    }
    start.elapsed().as_nanos() as f64 / (rounds * keys.len() as u64) as f64
}

fn best_of<F: FnMut() -> f64>(runs: usize, mut f: F) -> f64 {
    (0..runs).map(|_| f()).fold(f64::INFINITY, f64::min)
}

fn main() {
    let rounds: u64 = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    let on = Limits::default();
    let off = Limits {
        redact: Redactor::new([]),
        ..Limits::default()
    };
    println!("Attributes::set, ns per attribute (best of 5, {rounds} rounds of each key list)");
    for (what, keys) in [("keys kept", KEPT), ("keys redacted", REDACTED)] {
        let floor = best_of(5, || per_set(keys, &off, rounds));
        let with = best_of(5, || per_set(keys, &on, rounds));
        println!(
            "  {what:<14} redaction off (floor) {floor:6.1}   default rules {with:6.1}   (+{:.1})",
            with - floor
        );
    }
    let redactor = Redactor::default();
    for (what, keys, expected) in [("kept", KEPT, false), ("redacted", REDACTED, true)] {
        let ns = best_of(5, || {
            let start = Instant::now();
            for _ in 0..rounds {
                for key in keys {
                    assert_eq!(redactor.matches(black_box(key)), expected);
                }
            }
            start.elapsed().as_nanos() as f64 / (rounds * keys.len() as u64) as f64
        });
        println!("Redactor::matches, {what} keys: {ns:.1} ns per key");
    }
    // Every key new (a workload of unique attribute names): each lookup
    // misses the per-thread cache and scans.
    let unique: Vec<String> = (0..1 << 16)
        .map(|i| format!("app.item_{i}.count"))
        .collect();
    let ns = best_of(5, || {
        let start = Instant::now();
        for key in &unique {
            assert!(!redactor.matches(black_box(key)));
        }
        start.elapsed().as_nanos() as f64 / unique.len() as f64
    });
    println!("Redactor::matches, every key new (cache misses): {ns:.1} ns per key");
    for (what, url) in [
        (
            "url.full, nothing sensitive",
            "https://api.example.com/v1/items?page=2&sort=asc",
        ),
        (
            "url.full, token and credentials",
            "https://u:p@api.example.com/v1/items?token=abc&page=2",
        ),
    ] {
        let ns = best_of(5, || {
            let start = Instant::now();
            for _ in 0..rounds / 10 {
                black_box(redactor.clean_url(black_box(url), UrlPart::Full));
            }
            start.elapsed().as_nanos() as f64 / (rounds / 10) as f64
        });
        println!("Redactor::clean_url, {what}: {ns:.1} ns");
    }
}
