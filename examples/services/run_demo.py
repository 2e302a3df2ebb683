"""The multi-service demo: starts frontend -> api-gateway -> (auth, data -> database)
as real FastAPI services under uvicorn on loopback ports, sends a few hundred
requests (some fail, some are slow), stops the services cleanly (each flushes
its spans on shutdown), then prints from the files: a whole cross-service
trace tree, per-operation percentiles, the service graph and error traces.

    python examples/services/run_demo.py [--requests 300] [--output-dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import ferrotrace as ft
import httpx

HERE = Path(__file__).resolve().parent
# name -> downstream services it calls
TOPOLOGY = {
    "database": [],
    "auth": [],
    "data": ["database"],
    "api-gateway": ["auth", "data"],
    "frontend": ["api-gateway"],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_services(output_dir: Path) -> tuple[dict[str, str], list[subprocess.Popen]]:
    urls = {name: f"http://127.0.0.1:{free_port()}" for name in TOPOLOGY}
    processes = []
    for name, calls in TOPOLOGY.items():
        command = [
            sys.executable,
            str(HERE / "app.py"),
            "--service",
            name,
            "--port",
            urls[name].rsplit(":", 1)[1],
            "--output-dir",
            str(output_dir),
        ]
        for callee in calls:
            command += ["--downstream", f"{callee}={urls[callee]}"]
        processes.append(subprocess.Popen(command))
    deadline = time.monotonic() + 60
    for name, url in urls.items():
        while True:
            try:
                if httpx.get(url + "/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                stop_services(processes)
                raise SystemExit(f"service {name} did not start")
            time.sleep(0.1)
    return urls, processes


def stop_services(processes: list[subprocess.Popen]) -> None:
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)  # uvicorn shuts down cleanly; atexit flushes spans
    for p in processes:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


async def drive(frontend: str, requests: int, concurrency: int = 10) -> dict[int, int]:
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for user in range(1, requests + 1):
        queue.put_nowait(user)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            user = queue.get_nowait()
            response = await client.get(f"{frontend}/page/{user}")
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    async with httpx.AsyncClient(timeout=30.0) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return statuses


def report(output_dir: Path) -> None:
    analysis = ft.analyze(str(output_dir))
    print(f"\n{analysis.span_count} spans in {analysis.trace_count} traces from {output_dir}/")
    deepest = max(
        (analysis.get_trace(t["trace_id"]) for t in analysis.slow_traces(0.0)),
        key=lambda t: (len({s["service"] for s in t["spans"]}), t["span_count"]),
    )
    print("\nA whole cross-service trace:")
    print(analysis.render_tree(deepest["trace_id"]))
    print("\nPer-operation latency (ms):")
    header = ("service", "operation", "count", "errors", "p50", "p95", "p99")
    print("  {:12s} {:28s} {:>6s} {:>6s} {:>8s} {:>8s} {:>8s}".format(*header))
    for op in analysis.operations():
        print(
            f"  {op['service']:12s} {op['operation']:28s} {op['count']:6d} {op['error_count']:6d} "
            f"{op['p50']:8.2f} {op['p95']:8.2f} {op['p99']:8.2f}"
        )
    print("\nService graph:")
    for edge in analysis.service_dependencies():
        print(f"  {edge['caller']:12s} -> {edge['callee']:12s} {edge['calls']:5d} calls")
    errors = analysis.error_traces(limit=5)
    print(f"\nError traces ({len(analysis.error_traces())} in all), most recent:")
    for trace in errors:
        failed = [s for s in trace["spans"] if s["status"] == "error" and s.get("error")]
        cause = failed[0]["error"] if failed else None
        why = f"{cause['type']}: {cause['message']}" if cause else "error status"
        print(
            f"  {trace['trace_id']}  {trace['operation']:28s} {trace['duration_ms']:8.2f} ms  {why}"
        )
    print("\nError groups:")
    for group in analysis.error_groups()[:5]:
        where = f"{group['service']} {group['operation']}"
        print(f"  {group['count']:4d} x {group['type']}: {group['message']}  ({where})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--output-dir", default="demo-traces/services")
    args = parser.parse_args()
    output_dir = Path(args.output_dir)
    if output_dir.exists():
        shutil.rmtree(output_dir)
    output_dir.mkdir(parents=True)
    os.environ.setdefault("FERROTRACE_EXIT_TIMEOUT", "10")
    urls, processes = start_services(output_dir)
    try:
        statuses = asyncio.run(drive(urls["frontend"], args.requests))
    finally:
        stop_services(processes)
    print(
        f"sent {args.requests} requests to the frontend: responses {dict(sorted(statuses.items()))}"
    )
    report(output_dir)


if __name__ == "__main__":
    main()
