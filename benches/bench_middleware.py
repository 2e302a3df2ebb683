"""Middleware cost: requests per second of a trivial FastAPI endpoint under
uvicorn with no tracing, with ferrotrace's TracingMiddleware, and with
opentelemetry-instrumentation-fastapi (batch processor, an exporter that does
no I/O), in one run. Target: at most 5% throughput loss for ferrotrace.

The load comes from a small keep-alive HTTP/1.1 client on raw asyncio sockets
(no client library in the way), with the variants interleaved over several
rounds and the median reported.

Usage: python benches/bench_middleware.py [--seconds 4] [--rounds 3] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time

VARIANTS = ("none", "ferrotrace", "opentelemetry")


def serve(variant: str, port: int, output_dir: str) -> None:
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict:
        return {"id": item_id}

    if variant == "ferrotrace":
        import ferrotrace as ft
        from ferrotrace.asgi import TracingMiddleware

        ft.configure(service_name="bench", output_dir=output_dir)
        app.add_middleware(TracingMiddleware)
    elif variant == "opentelemetry":
        from opentelemetry import trace
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class NullExporter(SpanExporter):
            def export(self, spans):
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(NullExporter()))
        trace.set_tracer_provider(provider)
        FastAPIInstrumentor.instrument_app(app)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def load(port: int, seconds: float, connections: int) -> float:
    request = f"GET /items/7 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    done = 0
    stop = time.perf_counter() + seconds

    async def connection() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                done += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    return done / (time.perf_counter() - started)


def wait_ready(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server on port {port} did not start")


def measure(variant: str, seconds: float, connections: int) -> float:
    port = free_port()
    with tempfile.TemporaryDirectory() as out:
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", variant, "--port", str(port), "--out", out]
        )
        try:
            wait_ready(port)
            asyncio.run(load(port, 1.0, connections))  # warm up
            return asyncio.run(load(port, seconds, connections))
        finally:
            server.terminate()
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--serve", choices=VARIANTS)
    parser.add_argument("--port", type=int)
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.out)
        return
    results: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for variant in VARIANTS:
            results[variant].append(measure(variant, args.seconds, args.connections))
    base = statistics.median(results["none"])
    print(f"{'variant':16s} {'req/s (median)':>15s} {'vs none':>9s}   rounds")
    for variant in VARIANTS:
        rps = statistics.median(results[variant])
        rounds = ", ".join(f"{r:.0f}" for r in results[variant])
        print(f"{variant:16s} {rps:15.0f} {100 * (rps / base - 1):+8.1f}%   {rounds}")


if __name__ == "__main__":
    main()
