"""Total CPU per span: every thread of the process, not only the traced one.

On a busy server every core is working, so a tracer's background threads
(ferrotrace's collector and its file writes; the peers' batch processors)
cost the application as much as the traced thread does. This runs the
shared side-by-side workload (../shared/bench/peers.py: a root span with 2
attributes and a child with 1 as context managers, then a decorated no-op
called twice; N iterations of each, 4N spans) for the floor and each tracer,
and reports, per span:

- traced wall: wall time of the traced thread (what bench_hotpath.py shows);
- CPU total: process CPU time (user + system, all threads) from the first
  span until the tracer's shutdown returned, so everything it does for these
  spans is in, its files written and closed included;
- for ferrotrace, the same CPU split by thread (from /proc): the traced
  (Python) thread and the collector ("ferrotrace-writ"), which also writes
  the files.

Each tracer runs in a fresh interpreter, once per round (rounds alternate
the tracers; the median round is reported): process CPU time would otherwise
also count the threads an earlier peer left running.

Usage: python benches/bench_cpu.py [peer ...]   (PEERS_N iterations, default 100000)
Target (issue 12): ferrotrace's total CPU at most 3x the floor's.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "bench" / "peers.py"
N = int(os.environ.get("PEERS_N", "100000"))
ROUNDS = int(os.environ.get("CPU_ROUNDS", "3"))
TICK = os.sysconf("SC_CLK_TCK")


def load_peers():
    path = Path(os.environ.get("FERROTRACE_PEERS_PY", SHARED))
    if not path.exists():
        sys.exit(f"bench_cpu: cannot find the shared benchmark at {path} (set FERROTRACE_PEERS_PY)")
    spec = importlib.util.spec_from_file_location("peers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each live thread of this process, by thread name."""
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICK
    return out


def run_one(peers, name: str) -> dict[str, float] | None:
    """One measured run of `name`: per-span figures in ns."""
    if name == "ferrotrace":
        import ferrotrace as ft

        out = tempfile.mkdtemp(prefix="bench-cpu-ft-")
        tracer = ft.Tracer(service_name="bench", output_dir=out)
        cm = peers.cm_workload(tracer.start_span, lambda s, k, v: s.set_tag(k, v))
        deco = peers.deco_workload(tracer.traced())
        close = tracer.shutdown
    else:
        out = None
        tracer = None
        cm, deco, close = peers.PEERS[name]()
    cm(2000)
    deco(2000)
    if tracer is not None:
        tracer.flush(timeout=60)
    gc.collect()
    spans = 4 * N
    threads0 = thread_cpu()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    cm(N)
    deco(N)
    traced_wall = time.perf_counter() - t0
    written = None
    if tracer is not None:
        tracer.flush(timeout=120)
        m = tracer.metrics()
        written = (m["spans_written"], m["spans_dropped"])
        threads1 = thread_cpu()
    if close:
        close()
    cpu = time.process_time() - cpu0
    row = {"traced_wall": traced_wall / spans * 1e9, "cpu": cpu / spans * 1e9}
    if tracer is not None:
        by_thread = (("python", "cpu_traced_thread"), ("ferrotrace-writ", "cpu_collector"))
        for thread, label in by_thread:
            row[label] = (threads1.get(thread, 0.0) - threads0.get(thread, 0.0)) / spans * 1e9
        row["written"], row["dropped"] = written
        shutil.rmtree(out, ignore_errors=True)
    return row


def run_isolated(name: str) -> dict[str, float]:
    """`run_one` in a fresh interpreter: CPU time is counted per process, and
    the peers leave threads running (batch processors, agent writers) that
    would otherwise be counted against whichever tracer runs after them."""
    proc = subprocess.run(
        [sys.executable, __file__, "--one", name],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"exit {proc.returncode}: {tail}")
    return json.loads(lines[-1])


def main(argv: list[str]) -> None:
    if argv[:1] == ["--one"]:
        row = run_one(load_peers(), argv[1])
        print(json.dumps(row))
        return
    names = [a for a in argv if not a.startswith("-")] or [
        "floor",
        "ferrotrace",
        "otel",
        "ddtrace",
        "pytracingx",
    ]
    if "floor" not in names:
        names.insert(0, "floor")
    results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    given_up: set[str] = set()
    # Rounds alternate the tracers, so a slower moment of the machine
    # falls on all of them alike; the median round is reported.
    for _ in range(ROUNDS):
        for name in names:
            if name in given_up:
                continue
            try:
                row = run_isolated(name)
            except Exception as exc:
                # A peer that is not installed is reported, not fatal.
                print(f"{name:12s} stopped: {type(exc).__name__}: {exc}", file=sys.stderr)
                given_up.add(name)
                continue
            results[name].append(row)

    def median(rows: list[dict[str, float]], key: str) -> float:
        values = sorted(r[key] for r in rows)
        return values[len(values) // 2]

    floor_cpu = median(results["floor"], "cpu")
    print(
        f"# {time.strftime('%Y-%m-%d')} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {4 * N} spans per run, median of {ROUNDS} rounds"
    )
    print(f"{'tracer':12s} {'traced wall ns':>15s} {'CPU total ns':>13s} {'x floor':>8s}")
    for name in names:
        rows = results.get(name)
        if not rows:
            continue
        cpu = median(rows, "cpu")
        print(f"{name:12s} {median(rows, 'traced_wall'):15.0f} {cpu:13.0f} {cpu / floor_cpu:8.2f}")
    ft_rows = results.get("ferrotrace")
    if ft_rows:
        print(
            f"ferrotrace CPU by thread: traced {median(ft_rows, 'cpu_traced_thread'):.0f} ns, "
            f"collector + files {median(ft_rows, 'cpu_collector'):.0f} ns per span; "
            f"written/dropped per round: "
            + ", ".join(f"{int(r['written'])}/{int(r['dropped'])}" for r in ft_rows)
        )


if __name__ == "__main__":
    main(sys.argv[1:])
