"""`ferrotrace serve`: start-up index, search and OTLP ingest, in one run.

1. Start-up: writes ~1,000,000 spans (the realistic traces of
   bench_analysis.py: 4 services, ~10-span cross-service traces) into a
   temporary directory, starts `ferrotrace serve DIR --max-spans 0` and reads
   the load time it reports (files read, parsed, indexed and assembled) and
   the server's resident memory after loading (memory per million spans).
2. Search over those spans through the HTTP API (Jaeger `/api/traces`, 20
   results), median and worst of several runs per query shape.
3. Ingest: a fresh server on an empty directory; N client processes POST
   pre-encoded OTLP/protobuf requests (1,000 spans each) over keep-alive
   connections. Reported: spans accepted per second of wall time, and per
   CPU-second of the server process (user + system, all its threads: the
   receiver, the file writes and the follower indexing every span), which
   is the per-core figure.

Targets (issue 8): start-up of 1M spans <= 2 s, search <= 50 ms, ingest
>= 500,000 spans/s per core. Anchors: the OpenTelemetry Collector 15,000
(Splunk sizing) to 137,000 (Streamfold) spans/s per core, Rotel 462,000.

Usage: python benches/bench_serve.py [--spans N] [--ingest-spans N] [--clients N]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_analysis import write_spans  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def start_server(directory: Path, *extra: str) -> tuple[subprocess.Popen[str], str, float]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ferrotrace", "serve", str(directory), "--port", "0"]
        + ["--otlp-port", "0", *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    banner = proc.stdout.readline()
    if "UI and API at" not in banner:
        proc.kill()
        raise SystemExit(f"server did not start: {banner!r}")
    url = banner.split("UI and API at ")[1].split("/ ")[0]
    load_s = float(banner.split(" in ")[1].split(" s.")[0])
    return proc, url, load_s


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.loads(r.read())


def bench_startup_and_search(spans: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ft-serve-bench-") as tmp:
        directory = Path(tmp)
        t = time.perf_counter()
        written = write_spans(directory, spans)
        print(f"wrote {written:,} spans in {time.perf_counter() - t:.1f} s")
        proc, url, load_s = start_server(directory, "--max-spans", "0")
        try:
            status = get_json(url + "/api/ferrotrace/status")["data"]["index"]
            assert status["spans"] == written, status
            rss = rss_mib(proc.pid)
            print(f"\nstart-up: {written:,} spans indexed in {load_s:.2f} s (target <= 2 s)")
            per_million = rss / (written / 1e6)
            print(f"memory:   {rss:,.0f} MiB resident, {per_million:,.0f} MiB per million spans")
            queries = {
                "recent 20, one service": "service=api&limit=20",
                "service + operation": "service=api&operation=GET%20/api/v1/orders&limit=20",
                "tag error=true": "service=inventory&tags=%7B%22error%22%3A%22true%22%7D&limit=20",
                "minDuration 20ms": "service=frontend&minDuration=20ms&limit=20",
                "no match (full scan)": "service=api&operation=nope&limit=20",
            }
            print("\nsearch over the index (GET /api/traces, HTTP included), target <= 50 ms:")
            print(f"  {'query':<26} {'median ms':>10} {'max ms':>8} {'results':>8}")
            for name, query in queries.items():
                times, n = [], 0
                for _ in range(9):
                    t = time.perf_counter()
                    n = len(get_json(f"{url}/api/traces?{query}")["data"])
                    times.append((time.perf_counter() - t) * 1e3)
                print(f"  {name:<26} {statistics.median(times):>10.1f} {max(times):>8.1f} {n:>8}")
        finally:
            stop(proc)


def otlp_request(spans: int, seed: int) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    now = time.time_ns()
    out = []
    for i in range(spans):
        trace = (seed << 64 | (i // 10) + 1).to_bytes(16, "big")
        parent = (seed << 32 | i // 10 * 10 + 1).to_bytes(8, "big")
        out.append(
            Span(
                trace_id=trace,
                span_id=(seed << 32 | i + 1).to_bytes(8, "big"),
                parent_span_id=b"" if i % 10 == 0 else parent,
                name=f"op-{i % 20}",
                kind=Span.SPAN_KIND_SERVER if i % 10 == 0 else Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=now + i * 1000,
                end_time_unix_nano=now + i * 1000 + 250_000,
                attributes=[
                    KeyValue(key="http.route", value=AnyValue(string_value=f"/r/{i % 7}")),
                    KeyValue(key="n", value=AnyValue(int_value=i)),
                ],
            )
        )
    service = KeyValue(key="service.name", value=AnyValue(string_value="bench"))
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[service]), scope_spans=[ScopeSpans(spans=out)]
            )
        ]
    ).SerializeToString()


def client(url: str, requests: int, seed: int) -> None:
    body = otlp_request(1000, seed)
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    headers = {"Content-Type": "application/x-protobuf"}
    for _ in range(requests):
        conn.request("POST", "/v1/traces", body, headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"ingest: HTTP {response.status}")


def bench_ingest(spans: int, clients: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ft-serve-ingest-") as tmp:
        proc, url, _ = start_server(Path(tmp), "--max-spans", "0")
        try:
            requests = max(1, spans // 1000 // clients)
            total = requests * 1000 * clients
            ctx = multiprocessing.get_context("spawn")
            workers = [
                ctx.Process(target=client, args=(url, requests, seed + 1))
                for seed in range(clients)
            ]
            cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            wall, cpu = time.perf_counter() - t0, cpu_seconds(proc.pid) - cpu0
            # Until the follower has indexed them all (its CPU counts too).
            while get_json(url + "/api/ferrotrace/status")["data"]["index"]["spans"] < total:
                time.sleep(0.05)
            wall_all = time.perf_counter() - t0
            cpu_all = cpu_seconds(proc.pid) - cpu0
            print(f"\ningest: {total:,} spans of OTLP/protobuf, {clients} client process(es)")
            print(f"  accepted: {total / wall:>12,.0f} spans/s wall, server CPU {cpu:.2f} s")
            print(
                f"  indexed:  {total / wall_all:>12,.0f} spans/s wall, server CPU {cpu_all:.2f} s"
            )
            print(f"  per server core: {total / cpu_all:>12,.0f} spans/s (target >= 500,000)")
            print("  anchors: OTel Collector 15,000-137,000 spans/s/core; Rotel 462,000")
        finally:
            stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--ingest-spans", type=int, default=400_000)
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args()
    bench_startup_and_search(args.spans)
    bench_ingest(args.ingest_spans, args.clients)


if __name__ == "__main__":
    main()
