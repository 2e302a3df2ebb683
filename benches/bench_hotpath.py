"""Hot-path cost per span, ferrotrace beside the no-op floor and the peers, in one run.

The workload and the peers' setups are those of the shared side-by-side
benchmark (../shared/bench/peers.py), loaded from there so both always measure
the same thing: a root span with 2 attributes and a child with 1, entered as
context managers, and a decorated no-op function called twice. On top of it
this adds what only ferrotrace has: the same workload head-sampled out
(sample_rate=0), the context-manager workload with redaction off
(redact_keys=[], the cost of the default rules by difference), and proof
that the measured spans were really written (or counted as dropped).

Usage: python benches/bench_hotpath.py [--json] [peer ...]
Environment: PEERS_N (iterations, default 100000), PEERS_REPS (default 7).
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path


def scratch_dir(prefix: str) -> str:
    """A temporary directory for a tracer's files, removed at exit (these runs
    write gigabytes)."""
    directory = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, directory, True)
    return directory


HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "bench" / "peers.py"


def load_peers():
    path = Path(os.environ.get("FERROTRACE_PEERS_PY", SHARED))
    if not path.exists():
        sys.exit(
            f"bench_hotpath: cannot find the shared benchmark at {path} (set FERROTRACE_PEERS_PY)"
        )
    spec = importlib.util.spec_from_file_location("peers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> None:
    as_json = "--json" in argv
    wanted = [a for a in argv if not a.startswith("--")]
    peers = load_peers()
    import ferrotrace as ft

    names = wanted or ["floor", "ferrotrace", "otel", "ddtrace", "pytracingx"]
    if "floor" not in names:
        names.insert(0, "floor")
    results: dict[str, float] = {"plain_call_ns": peers.measure(peers.plain_calls)}
    written: dict[str, dict[str, int]] = {}
    for name in names:
        if name == "ferrotrace":
            out = scratch_dir(prefix="bench-ft-")
            tracer = ft.Tracer(service_name="bench", output_dir=out)
            cm = peers.cm_workload(tracer.start_span, lambda s, k, v: s.set_tag(k, v))
            deco = peers.deco_workload(tracer.traced())
            results["ferrotrace_cm_ns"] = peers.measure(cm)
            results["ferrotrace_decorator_ns"] = peers.measure(deco) - results["plain_call_ns"]
            tracer.flush(timeout=120)
            m = tracer.metrics()
            written["ferrotrace"] = {
                k: m[k] for k in ("spans_finished", "spans_written", "spans_dropped")
            }
            tracer.shutdown()
            unsampled = ft.Tracer(service_name="bench", output_dir=out, sample_rate=0.0)
            results["ferrotrace-unsampled_cm_ns"] = peers.measure(
                peers.cm_workload(unsampled.start_span, lambda s, k, v: s.set_tag(k, v))
            )
            results["ferrotrace-unsampled_decorator_ns"] = (
                peers.measure(peers.deco_workload(unsampled.traced())) - results["plain_call_ns"]
            )
            unsampled.shutdown()
            # Redaction off (redact_keys=[]): the cost of the default rules
            # is the difference from the ferrotrace row (per-key figures:
            # `cargo bench --bench redact`).
            unredacted = ft.Tracer(service_name="bench", output_dir=out, redact_keys=[])
            results["ferrotrace-unredacted_cm_ns"] = peers.measure(
                peers.cm_workload(unredacted.start_span, lambda s, k, v: s.set_tag(k, v))
            )
            results["ferrotrace-unredacted_decorator_ns"] = (
                peers.measure(peers.deco_workload(unredacted.traced())) - results["plain_call_ns"]
            )
            unredacted.shutdown()
            continue
        try:
            cm, deco, close = peers.PEERS[name]()
        except Exception as exc:  # a peer that is not installed is reported, not fatal
            print(f"{name:12s} skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        results[f"{name}_cm_ns"] = peers.measure(cm)
        results[f"{name}_decorator_ns"] = peers.measure(deco) - results["plain_call_ns"]
        if close:
            close()

    floor_cm = results["floor_cm_ns"]
    floor_deco = results["floor_decorator_ns"]
    rows = [k[: -len("_cm_ns")] for k in results if k.endswith("_cm_ns")]
    print(
        f"# {time.strftime('%Y-%m-%d')} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, N={peers.N} x {peers.REPS} reps (median)"
    )
    print(
        f"{'tracer':22s} {'cm ns/span':>11s} {'x floor':>8s} {'decorator ns':>13s} {'x floor':>8s}"
    )
    for row in rows:
        cm = results[f"{row}_cm_ns"]
        deco = results[f"{row}_decorator_ns"]
        print(f"{row:22s} {cm:11.0f} {cm / floor_cm:8.2f} {deco:13.0f} {deco / floor_deco:8.2f}")
    for name, counts in written.items():
        print(
            f"{name}: {counts['spans_finished']} spans finished, "
            f"{counts['spans_written']} written, "
            f"{counts['spans_dropped']} dropped (buffer full)"
        )
    if as_json:
        print(json.dumps({"ns": {k: round(v, 1) for k, v in results.items()}, "written": written}))


if __name__ == "__main__":
    main(sys.argv[1:])
