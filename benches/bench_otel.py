"""Cost per span of the OpenTelemetry API through ferrotrace, beside the SDK, in one run.

Contenders, each measured in the same process and interleaved rep by rep (so
machine noise hits them alike):

- ``ferrotrace``: a native span, ``with tracer.start_span("x", tags={"k": 1})``,
  with the OpenTelemetry bridge installed (the current span lives in
  OpenTelemetry's context), and ``ferrotrace (no bridge)`` without it,
  measured in a fresh process between the reps (the bridge is process-wide);
- ``otel-api -> ferrotrace``: ``with tracer.start_as_current_span("x",
  attributes={"k": 1})`` on a tracer of ``ferrotrace.otel.TracerProvider``;
- ``otel-api -> sdk``: the same call on opentelemetry-sdk's TracerProvider
  with a BatchSpanProcessor and an exporter that does no I/O (the SDK's
  production path without the network);
- ``floor``: a pure-Python no-op context manager with the same call shape.

Two workloads: ``single`` (one span, one attribute: the call above) and
``nested`` (a root span with 2 attributes and a child with 1, as
bench_hotpath.py). ferrotrace writes its real JSONL files to a temporary
directory; the bench checks every span was written.

Usage: python benches/bench_otel.py [--json]
Environment: BENCH_N (iterations, default 50000), BENCH_REPS (default 7).
"""

from __future__ import annotations

import atexit
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable


def scratch_dir(prefix: str) -> str:
    """A temporary directory for a tracer's files, removed at exit (these runs
    write gigabytes)."""
    directory = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, directory, True)
    return directory


N = int(os.environ.get("BENCH_N", "50000"))
REPS = int(os.environ.get("BENCH_REPS", "7"))


class NoopSpan:
    __slots__ = ()

    def __enter__(self) -> NoopSpan:
        return self

    def __exit__(self, *exc: object) -> bool:
        return False

    def set_attribute(self, key: str, value: Any) -> None:
        pass


def noop_start(name: str, attributes: Any = None) -> NoopSpan:
    return NoopSpan()


def single(start: Callable[..., Any], keyword: str) -> Callable[[int], None]:
    """`with start("x", <keyword>={"k": 1}): pass`, the call written out (no
    `**kwargs` unpacking, whose cost would differ between callees)."""
    if keyword == "tags":

        def run(n: int) -> None:
            for _ in range(n):
                with start("x", tags={"k": 1}):
                    pass

    else:

        def run(n: int) -> None:
            for _ in range(n):
                with start("x", attributes={"k": 1}):
                    pass

    return run


def nested(start: Callable[..., Any], set_attr: str) -> Callable[[int], None]:
    def run(n: int) -> None:
        for _ in range(n):
            with start("root") as s:
                getattr(s, set_attr)("a", 1)
                getattr(s, set_attr)("b", "x")
                with start("child") as c:
                    getattr(c, set_attr)("c", 2)

    return run


def measure(
    contenders: dict[str, tuple[Callable[[int], None], int]],
    between: Callable[[], None] = lambda: None,
    outside: Callable[[], dict[str, float]] | None = None,
) -> dict[str, float]:
    """Median ns per span of each contender, reps interleaved. `between` runs
    after each timed run, untimed (a flush, so the span buffer never fills:
    this measures the traced code's cost, not the writer's throughput);
    `outside` measures contenders that live in another process, once per rep."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for run, _ in contenders.values():
        run(2000)  # warm up
        between()
    for _ in range(REPS):
        if outside is not None:
            for name, value in outside().items():
                samples.setdefault(name, []).append(value)
        for name, (run, spans_per_iteration) in contenders.items():
            t0 = time.perf_counter_ns()
            run(N)
            samples[name].append((time.perf_counter_ns() - t0) / N / spans_per_iteration)
            between()
    return {name: statistics.median(s) for name, s in samples.items()}


def native_without_bridge() -> dict[str, float]:
    """Native spans in a fresh process where the bridge was never installed
    (it is process-wide once installed), one timed run per workload."""
    proc = subprocess.run(
        [sys.executable, __file__, "--native-only"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "BENCH_REPS": "1"},
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def native_only() -> None:
    import ferrotrace as ft

    tracer = ft.Tracer(service_name="bench", output_dir=scratch_dir(prefix="bench-otel-"))
    result = measure(
        {
            "ferrotrace (no bridge)/single": (single(tracer.start_span, "tags"), 1),
            "ferrotrace (no bridge)/nested": (nested(tracer.start_span, "set_tag"), 2),
        },
        between=lambda: tracer.flush(timeout=60),
    )
    tracer.shutdown()
    print(json.dumps(result))


def sdk_tracer() -> tuple[Any, Callable[[], None]]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class NullExporter(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(NullExporter()))
    return provider.get_tracer("bench"), provider.shutdown


def main(argv: list[str]) -> None:
    import ferrotrace as ft

    out = scratch_dir(prefix="bench-otel-")
    tracer = ft.Tracer(service_name="bench", output_dir=out)
    sdk, sdk_shutdown = sdk_tracer()

    from ferrotrace.otel import TracerProvider

    bridged = TracerProvider(tracer).get_tracer("bench")
    results = measure(
        {
            "floor/single": (single(noop_start, "attributes"), 1),
            "ferrotrace/single": (single(tracer.start_span, "tags"), 1),
            "otel-api -> ferrotrace/single": (
                single(bridged.start_as_current_span, "attributes"),
                1,
            ),
            "otel-api -> sdk/single": (single(sdk.start_as_current_span, "attributes"), 1),
            "floor/nested": (nested(noop_start, "set_attribute"), 2),
            "ferrotrace/nested": (nested(tracer.start_span, "set_tag"), 2),
            "otel-api -> ferrotrace/nested": (
                nested(bridged.start_as_current_span, "set_attribute"),
                2,
            ),
            "otel-api -> sdk/nested": (nested(sdk.start_as_current_span, "set_attribute"), 2),
        },
        between=lambda: tracer.flush(timeout=60),
        outside=native_without_bridge,
    )
    sdk_shutdown()
    assert tracer.flush(timeout=120)
    metrics = tracer.metrics()
    tracer.shutdown()

    print(
        f"# {time.strftime('%Y-%m-%d')} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, N={N} x {REPS} reps interleaved (median)"
    )
    for workload in ("single", "nested"):
        native = results[f"ferrotrace/{workload}"]
        ours = results[f"otel-api -> ferrotrace/{workload}"]
        print(f"\n{workload}: ns per span")
        print(f"{'contender':32s} {'ns/span':>9s} {'x native':>9s}")
        for name in (
            "floor",
            "ferrotrace (no bridge)",
            "ferrotrace",
            "otel-api -> ferrotrace",
            "otel-api -> sdk",
        ):
            value = results[f"{name}/{workload}"]
            print(f"{name:32s} {value:9.0f} {value / native:9.2f}")
        sdk_ns = results[f"otel-api -> sdk/{workload}"]
        print(
            f"otel-api through ferrotrace: {sdk_ns / ours:.1f}x cheaper than the SDK, "
            f"{ours / native:.2f}x a native span"
        )
    print(
        f"\nferrotrace: {metrics['spans_finished']} spans finished, "
        f"{metrics['spans_written']} written, {metrics['spans_dropped']} dropped (buffer full)"
    )
    if "--json" in argv:
        print(json.dumps({"ns": {k: round(v, 1) for k, v in results.items()}}))


if __name__ == "__main__":
    if "--native-only" in sys.argv:
        native_only()
    else:
        main(sys.argv[1:])
