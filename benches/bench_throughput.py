"""Throughput and memory of the pipeline, from Python.

1. Writer throughput: spans finished as fast as one thread can, then the time
   until all are on disk (spans/s written), and how many were dropped.
2. 4 Python threads x 20k spans each: every span written, none lost.
3. Memory: resident set growth while 10M spans go through a default tracer
   (FERROTRACE_BENCH_SPANS overrides the count).

Usage: python benches/bench_throughput.py
"""

from __future__ import annotations

import atexit
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import ferrotrace as ft


def scratch_dir(prefix: str) -> str:
    """A temporary directory for a tracer's files, removed at exit (these runs
    write gigabytes)."""
    directory = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, directory, True)
    return directory


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 1e6


def writer_throughput(n: int) -> None:
    out = scratch_dir(prefix="bench-tp-")
    tracer = ft.Tracer(service_name="bench", output_dir=out, buffer_size=1 << 20)
    start = time.perf_counter()
    for _ in range(n // 2):
        with tracer.start_span("root") as s:
            s.set_tag("a", 1)
            with tracer.start_span("child") as c:
                c.set_tag("c", 2)
    produced = time.perf_counter() - start
    assert tracer.flush(timeout=300)
    total = time.perf_counter() - start
    m = tracer.metrics()
    print(
        f"writer: {n} spans produced in {produced:.2f}s, all on disk after {total:.2f}s "
        f"-> {m['spans_written'] / total / 1e6:.2f}M spans/s end to end; "
        f"written={m['spans_written']} dropped={m['spans_dropped']}"
    )
    tracer.shutdown()


def four_threads(per_thread: int = 20_000) -> None:
    out = scratch_dir(prefix="bench-4t-")
    tracer = ft.Tracer(service_name="bench", output_dir=out, buffer_size=200_000)

    def work() -> None:
        for i in range(per_thread):
            with tracer.start_span("t") as s:
                s.set_tag("i", i)

    threads = [threading.Thread(target=work) for _ in range(4)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert tracer.flush(timeout=120)
    elapsed = time.perf_counter() - start
    lines = 0
    for name in os.listdir(out):
        if name.startswith("spans"):
            with open(os.path.join(out, name), "rb") as f:
                lines += sum(1 for _ in f)
    m = tracer.metrics()
    print(
        f"4 threads x {per_thread}: {lines} lines on disk (expected {4 * per_thread}), "
        f"dropped={m['spans_dropped']}, {elapsed:.2f}s"
    )
    tracer.shutdown()


def memory(n: int) -> None:
    out = scratch_dir(prefix="bench-mem-")
    tracer = ft.Tracer(service_name="bench", output_dir=out)
    for _ in range(20_000):  # warm up: buffers, pools, files
        with tracer.start_span("warm"):
            pass
    tracer.flush(timeout=60)
    before = rss_mb()
    peak = before
    for i in range(n // 2):
        with tracer.start_span("root") as s:
            s.set_tag("a", 1)
            with tracer.start_span("child") as c:
                c.set_tag("c", 2)
        if i % 500_000 == 0:
            peak = max(peak, rss_mb())
    tracer.flush(timeout=300)
    after = rss_mb()
    m = tracer.metrics()
    print(
        f"memory: {n} spans, RSS {before:.1f} MB -> {after:.1f} MB "
        f"(growth {after - before:.1f} MB, "
        f"peak growth {max(peak, after) - before:.1f} MB); written={m['spans_written']} "
        f"dropped={m['spans_dropped']}"
    )
    tracer.shutdown()
    # The files are only a by-product here; don't leave gigabytes behind.
    for name in os.listdir(out):
        os.unlink(os.path.join(out, name))


if __name__ == "__main__":
    if sys.argv[1:] == ["memory"]:
        memory(int(os.environ.get("FERROTRACE_BENCH_SPANS", "10000000")))
        sys.exit(0)
    writer_throughput(int(os.environ.get("FERROTRACE_BENCH_WRITER_SPANS", "2000000")))
    four_threads()
    # In a fresh interpreter, so that nothing measured before inflates the baseline.
    subprocess.run([sys.executable, __file__, "memory"], check=True)
