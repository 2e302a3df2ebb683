"""Export, side by side in one run: ferrotrace and opentelemetry-sdk delivering spans
over OTLP/HTTP protobuf to the same local sink, and what exporting costs the
traced thread.

Part 1 is the shared side-by-side benchmark (../shared/bench/export_peers.py),
loaded from there so both always measure the same thing: N spans in a tight
loop in a fresh interpreter, flushed, and counted by a sink in another process
that decodes every request with opentelemetry-proto. Clients: ferrotrace,
ferrotrace-gzip, otel (BatchSpanProcessor + OTLPSpanExporter, defaults) and
otel-bigqueue (the SDK with a queue big enough not to drop).

Part 2 is the traced thread's cost per span on the hot-path workload of
../shared/bench/peers.py (a root with 2 attributes and a child with 1, as
context managers) with `jsonl` only, `jsonl` + `otlp` (to the same kind of
sink) and `otlp` only, each with buffer_size=262144, beside the no-op floor,
plus what each exporter delivered or counted as dropped.

Usage: python benches/bench_export.py [--spans N] [--json]
Environment: FERROTRACE_EXPORT_PEERS_PY, FERROTRACE_PEERS_PY (the shared
files), PEERS_N / PEERS_REPS (part 2's iterations and repetitions).
"""

from __future__ import annotations

import atexit
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
from types import ModuleType


def scratch_dir(prefix: str) -> str:
    """A temporary directory for a tracer's files, removed at exit (these runs
    write gigabytes)."""
    directory = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, directory, True)
    return directory


HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "bench"


def load(variable: str, filename: str) -> ModuleType:
    path = Path(os.environ.get(variable, SHARED / filename))
    if not path.exists():
        sys.exit(f"bench_export: cannot find the shared benchmark at {path} (set {variable})")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def end_to_end(export_peers: ModuleType, spans: int) -> list[dict]:
    rows = []
    for name in ("ferrotrace", "ferrotrace-gzip", "otel", "otel-bigqueue"):
        print(f"  running {name} ...", file=sys.stderr, flush=True)
        rows.append(export_peers.measure(name, spans))
    return rows


def start_sink(export_peers: ModuleType) -> tuple[subprocess.Popen, int]:
    port = export_peers.free_port()
    sink = subprocess.Popen([sys.executable, export_peers.__file__, "--sink", str(port)])
    for _ in range(200):
        try:
            export_peers.sink_state(port)
            return sink, port
        except OSError:
            time.sleep(0.05)
    sink.terminate()
    sys.exit("bench_export: the sink did not start")


def traced_thread_cost(export_peers: ModuleType, peers: ModuleType) -> dict:
    import ferrotrace as ft

    setter = lambda s, k, v: s.set_tag(k, v)  # noqa: E731
    floor_cm, _, _ = peers.setup_floor()
    results: dict = {"floor": {"cm_ns": peers.measure(floor_cm)}}
    sink, port = start_sink(export_peers)
    try:
        url = f"http://127.0.0.1:{port}/v1/traces"
        setups = {
            "ferrotrace jsonl": {"exporters": ["jsonl"]},
            "ferrotrace jsonl+otlp": {"exporters": ["jsonl", "otlp"], "otlp_endpoint": url},
            "ferrotrace otlp": {"exporters": ["otlp"], "otlp_endpoint": url},
        }
        for name, options in setups.items():
            out = scratch_dir(prefix="bench-export-")
            # A buffer that holds a whole repetition, so no setup drops spans
            # (a drop is cheaper than a delivery and would flatter it).
            tracer = ft.Tracer(service_name="bench", output_dir=out, buffer_size=262_144, **options)
            cm_ns = peers.measure(peers.cm_workload(tracer.start_span, setter))
            tracer.flush(timeout=120.0)
            m = tracer.metrics()
            tracer.shutdown(timeout=30.0)
            results[name] = {
                "cm_ns": cm_ns,
                **{
                    k: m[k]
                    for k in (
                        "spans_finished",
                        "spans_dropped_buffer_full",
                        "spans_written",
                        "spans_exported",
                        "spans_export_dropped",
                    )
                },
            }
    finally:
        sink.terminate()
        sink.wait()
    return results


def main(argv: list[str]) -> None:
    as_json = "--json" in argv
    spans = 200_000
    if "--spans" in argv:
        spans = int(argv[argv.index("--spans") + 1])
    export_peers = load("FERROTRACE_EXPORT_PEERS_PY", "export_peers.py")
    peers = load("FERROTRACE_PEERS_PY", "peers.py")

    rows = end_to_end(export_peers, spans)
    cost = traced_thread_cost(export_peers, peers)

    print(
        f"# {time.strftime('%Y-%m-%d')} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(f"\nOTLP/HTTP protobuf end to end, {spans} spans, one local sink (export_peers.py):")
    # "after loop": from the end of the traced loop to the sink's last
    # delivery, i.e. how far export lags behind the code that makes spans.
    print(
        f"{'client':16s} {'loop ns/span':>12s} {'delivered':>10s} {'of':>8s} "
        f"{'e2e spans/s':>12s} {'after loop':>11s}"
    )
    for r in rows:
        if "error" in r:
            print(f"{r['name']:16s} skipped: {r['error']}")
        else:
            total_s = r["delivered"] / r["e2e_per_s"] if r["e2e_per_s"] else 0.0
            after_ms = (total_s - r["loop_ns"] * r["spans"] / 1e9) * 1000
            print(
                f"{r['name']:16s} {r['loop_ns']:12.0f} {r['delivered']:10d} {r['spans']:8d} "
                f"{r['e2e_per_s']:12,.0f} {after_ms:8.0f} ms"
            )
    ok = {r["name"]: r for r in rows if "error" not in r}
    if "ferrotrace" in ok:
        for peer in ("otel", "otel-bigqueue"):
            if peer in ok and ok[peer]["e2e_per_s"]:
                ratio = ok["ferrotrace"]["e2e_per_s"] / ok[peer]["e2e_per_s"]
                print(f"ferrotrace / {peer}: {ratio:.1f}x end to end")

    print(f"\nTraced thread, peers.py cm workload, N={peers.N} x {peers.REPS} reps (median):")
    floor = cost["floor"]["cm_ns"]
    base = cost["ferrotrace jsonl"]["cm_ns"]
    print(f"{'setup':24s} {'cm ns/span':>11s} {'x floor':>8s} {'vs jsonl':>9s}  delivered")
    for name, r in cost.items():
        versus = f"{(r['cm_ns'] / base - 1) * 100:+8.1f}%" if name != "floor" else ""
        line = f"{name:24s} {r['cm_ns']:11.0f} {r['cm_ns'] / floor:8.2f} {versus:>9s}"
        if "spans_finished" in r:
            line += (
                f"  {r['spans_finished']} finished, {r['spans_dropped_buffer_full']} dropped "
                f"(buffer), {r['spans_written']} written, {r['spans_exported']} exported, "
                f"{r['spans_export_dropped']} export-dropped"
            )
        print(line)
    if as_json:
        print(json.dumps({"end_to_end": rows, "traced_thread": cost}))


if __name__ == "__main__":
    main(sys.argv[1:])
