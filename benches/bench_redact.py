"""What redaction costs per `span.set_tag` from Python, for keys that do not
match (the common case): the default `redact_keys` rules beside
`redact_keys=[]` (the floor), run alternately so both see the same machine
load; prints the medians and the median of the paired differences.

Usage: python benches/bench_redact.py. Per-key figures in Rust:
`cargo bench --bench redact`.
"""

from __future__ import annotations

import statistics
import time

import ferrotrace as ft

KEYS = [
    "http.request.method",
    "url.path",
    "server.address",
    "user_agent.original",
    "db.system",
    "gen_ai.usage.input_tokens",
]
N = 20_000
PAIRS = 40


def per_set_ns(tracer: ft.Tracer) -> float:
    with tracer.start_span("s") as span:
        set_tag = span.set_tag
        start = time.perf_counter_ns()
        for _ in range(N):
            for key in KEYS:
                set_tag(key, 1)
        return (time.perf_counter_ns() - start) / (N * len(KEYS))


def main() -> None:
    on = ft.Tracer(service_name="bench", output_dir=None)
    off = ft.Tracer(service_name="bench", output_dir=None, redact_keys=[])
    with_rules, floor = [], []
    for _ in range(PAIRS):
        with_rules.append(per_set_ns(on))
        floor.append(per_set_ns(off))
    diffs = [a - b for a, b in zip(with_rules, floor)]
    print(f"span.set_tag, keys kept, {PAIRS} alternating pairs of {N} x {len(KEYS)} sets")
    print(f"  redaction off (floor) median {statistics.median(floor):6.1f} ns")
    print(f"  default rules         median {statistics.median(with_rules):6.1f} ns")
    print(f"  paired difference     median {statistics.median(diffs):6.1f} ns")
    on.shutdown()
    off.shutdown()


if __name__ == "__main__":
    main()
