"""Compressed span files (`compress_rotated`): bytes per span, compression ratio, and the CPU
that compression costs per span, on the multi-service demo's spans.

1. Runs the demo (examples/services/run_demo.py: five FastAPI services under uvicorn) into a
   temporary directory, or reads DIR if given: bytes per span of the files the services wrote.
2. Replays those spans (names, kinds, attributes, events, errors, parent links, durations)
   through one tracer with compress_rotated=True and 8 MB files until FERROTRACE_BENCH_SPANS
   spans (default 200000) are written, waits for ferrotrace's compressor thread
   ("ferrotrace-gzip") to finish, and reads the CPU time it used from /proc (Linux): CPU per
   span and the compression ratio. The file writer thread's ("ferrotrace-jsonl") CPU per span is
   shown beside it.
3. Peers on the same bytes (the first 64 MB): Python's zlib (C zlib) at levels 1, 6 and 9.
4. Reading: ft.analyze over the compressed files and over the same files gunzipped.

Usage: python benches/bench_compress.py [DIR]
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import ferrotrace as ft

HERE = Path(__file__).resolve().parent
SPANS = int(os.environ.get("FERROTRACE_BENCH_SPANS", "200000"))
FILE_MB = 8
PEER_SAMPLE = 64 << 20


def thread_cpu_s(name: str) -> float:
    """CPU seconds used by this process's threads called `name` (Linux /proc)."""
    total = 0.0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                # The kernel keeps 15 characters of a thread's name.
                if f.read().strip() != name[:15]:
                    continue
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0]) / 1e9
        except OSError:
            continue
    return total


def demo_spans(given: Path | None) -> tuple[list[list[dict[str, Any]]], int, int, bytes]:
    """The demo's traces (span records grouped by trace), its span count, its span files'
    bytes, and their concatenated contents."""
    directory = given
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="bench-demo-"))
        subprocess.run(
            [
                sys.executable,
                str(HERE.parent / "examples" / "services" / "run_demo.py"),
                "--requests",
                "300",
                "--output-dir",
                str(directory),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    traces: dict[str, list[dict[str, Any]]] = {}
    contents = b""
    count = 0
    for path in sorted(directory.glob("spans*.jsonl")):
        data = path.read_bytes()
        contents += data
        for line in data.splitlines():
            record = json.loads(line)
            traces.setdefault(record["trace_id"], []).append(record)
            count += 1
    if given is None:
        shutil.rmtree(directory, ignore_errors=True)
    return list(traces.values()), count, len(contents), contents


def replay(tracer: ft.Tracer, trace: list[dict[str, Any]]) -> None:
    """One demo trace again, as new spans of `tracer`."""
    opened = {}
    finish = []
    for record in sorted(trace, key=lambda r: r["start_ns"]):
        span = tracer.start_span(
            record["name"],
            kind=record["kind"],
            tags=record["attributes"],
            parent=opened.get(record["parent_id"]),
        )
        for event in record["events"]:
            span.log(event["name"], level=event["level"], **event["attributes"])
        if record["error"] is not None:
            span.set_error(record["error"]["message"])
        elif record["status"] == "ok":
            span.set_status("ok")
        opened[record["span_id"]] = span
        finish.append((span, record["duration_ms"]))
    for span, duration_ms in reversed(finish):
        span.finish(duration_ms=duration_ms)


def wait_until_compressed(directory: Path, deadline_s: float = 600.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        names = os.listdir(directory)
        plain = [n for n in names if n.startswith("spans") and n.endswith(".jsonl")]
        if len(plain) == 1 and not any(n.endswith(".tmp") for n in names):
            return
        time.sleep(0.05)
    raise SystemExit(f"compression did not finish in {deadline_s} s")


def peers(data: bytes, spans: int) -> None:
    for level in (1, 6, 9):
        start = time.thread_time()
        compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # gzip framing
        size = 0
        for i in range(0, len(data), 1 << 20):
            size += len(compressor.compress(data[i : i + (1 << 20)]))
        size += len(compressor.flush())
        cpu = time.thread_time() - start
        print(
            f"  peer: Python zlib (C) level {level}: ratio {len(data) / size:5.1f}x, "
            f"{cpu / spans * 1e6:5.2f} us CPU per span, {len(data) / cpu / 1e6:6.1f} MB/s"
        )


def main() -> None:
    given = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    traces, demo_count, demo_bytes, demo_data = demo_spans(given)
    demo_gz = len(gzip.compress(demo_data, compresslevel=6))
    print(
        f"demo files: {demo_count} spans, {demo_bytes / demo_count:.0f} bytes per span; "
        f"gzip -6 (Python) ratio {demo_bytes / demo_gz:.1f}x, "
        f"{demo_gz / demo_count:.0f} bytes per span compressed"
    )

    out = Path(tempfile.mkdtemp(prefix="bench-gz-"))
    tracer = ft.Tracer(
        service_name="replay",
        output_dir=out,
        max_file_size_mb=FILE_MB,
        max_files=0,
        compress_rotated=True,
        buffer_size=1 << 18,
    )
    start = time.perf_counter()
    replayed = 0
    while replayed < SPANS:
        for trace in traces:
            replay(tracer, trace)
            replayed += len(trace)
        tracer.flush(timeout=120)
    assert tracer.flush(timeout=120)
    produced = time.perf_counter() - start
    wait_until_compressed(out)
    waited = time.perf_counter() - start
    gzip_cpu = thread_cpu_s("ferrotrace-gzip")
    writer_cpu = thread_cpu_s("ferrotrace-jsonl")
    metrics = tracer.metrics()
    tracer.shutdown()

    compressed = sorted(out.glob("spans*.jsonl.gz"))
    plain_bytes = compressed_spans = 0
    sample = b""  # what the peers compress: the first files, up to 64 MB
    for p in compressed:
        data = gzip.decompress(p.read_bytes())
        plain_bytes += len(data)
        compressed_spans += data.count(b"\n")
        if len(sample) < PEER_SAMPLE:
            sample += data
    gz_bytes = sum(p.stat().st_size for p in compressed)
    written = metrics["spans_written"]
    print(
        f"replay: {written} spans written ({metrics['spans_dropped']} dropped) in "
        f"{produced:.1f}s; all rotated files compressed {waited - produced:.1f}s later"
    )
    print(
        f"  ferrotrace (zlib-rs, level 6): {len(compressed)} files of {FILE_MB} MB, "
        f"{compressed_spans} spans, {plain_bytes / compressed_spans:.0f} -> "
        f"{gz_bytes / compressed_spans:.0f} bytes per span, ratio {plain_bytes / gz_bytes:.1f}x"
    )
    print(
        f"  compressor thread: {gzip_cpu:.2f}s CPU, {gzip_cpu / compressed_spans * 1e6:.2f} us "
        f"per span, {plain_bytes / gzip_cpu / 1e6:.1f} MB/s; "
        f"writer thread: {writer_cpu / written * 1e6:.2f} us per span"
    )
    peers(sample, sample.count(b"\n"))
    reading(out, compressed)
    shutil.rmtree(out, ignore_errors=True)


def reading(out: Path, compressed: list[Path]) -> None:
    """ft.analyze over the compressed files, and over the same files gunzipped."""
    plain = Path(tempfile.mkdtemp(prefix="bench-plain-"))
    gz_only = Path(tempfile.mkdtemp(prefix="bench-gzonly-"))
    for p in compressed:
        (plain / p.name[: -len(".gz")]).write_bytes(gzip.decompress(p.read_bytes()))
        shutil.copy(p, gz_only / p.name)
    for label, directory in (("plain", plain), ("gzip", gz_only)):
        start = time.perf_counter()
        analysis = ft.analyze(directory)
        elapsed = time.perf_counter() - start
        print(
            f"  ft.analyze over the {label} files: {analysis.span_count} spans in "
            f"{elapsed:.2f}s ({analysis.span_count / elapsed / 1e6:.2f}M spans/s)"
        )
    shutil.rmtree(plain, ignore_errors=True)
    shutil.rmtree(gz_only, ignore_errors=True)


if __name__ == "__main__":
    main()
