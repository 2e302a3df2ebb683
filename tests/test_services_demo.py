"""End to end: the demo's five FastAPI services under uvicorn on free loopback
ports, a request through all of them, one trace id across every service with
correct parent links, read back from the files each service wrote."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import ferrotrace as ft
import pytest

DEMO = Path(__file__).resolve().parent.parent / "examples" / "services" / "run_demo.py"


@pytest.fixture(scope="module")
def demo():
    spec = importlib.util.spec_from_file_location("run_demo", DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_trace_across_all_services(demo, tmp_path):
    urls, processes = demo.start_services(tmp_path)
    try:
        statuses = asyncio.run(demo.drive(urls["frontend"], requests=24, concurrency=4))
    finally:
        demo.stop_services(processes)
    assert all(p.returncode is not None for p in processes)
    # The demo's failures are deterministic (examples/services/app.py): auth
    # rejects users divisible by 17 and the database fails those divisible by
    # 23; the frontend answers 502 for both. Of users 1..24: 17 and 23.
    assert statuses == {200: 22, 502: 2}

    analysis = ft.analyze(str(tmp_path))
    assert analysis.skipped_lines == 0
    # Each service wrote its own files, named after it.
    for service in ("frontend", "api-gateway", "auth", "data", "database"):
        assert list(tmp_path.glob(f"spans-{service}-*.jsonl")), service

    # One trace per request; every one but user 17's (stopped at auth)
    # crosses all five services.
    traces = [analysis.get_trace(t["trace_id"]) for t in analysis.slow_traces(0.0)]
    full = [t for t in traces if {s["service"] for s in t["spans"]} == set(demo.TOPOLOGY)]
    assert len(traces) == 24
    assert len(full) == 23
    for trace in full:
        spans = {s["span_id"]: s for s in trace["spans"]}
        roots = [s for s in spans.values() if s["parent_id"] is None]
        assert len(roots) == 1 and roots[0]["service"] == "frontend"
        assert all(s["trace_id"] == trace["trace_id"] for s in spans.values())
        for span in spans.values():
            if span["parent_id"] is not None:
                assert span["parent_id"] in spans, f"dangling parent of {span['name']}"
        # Every server span below the root is the child of a client span of its caller.
        for span in spans.values():
            if span["kind"] == "server" and span["parent_id"] is not None:
                parent = spans[span["parent_id"]]
                assert parent["kind"] == "client"
                assert parent["service"] != span["service"]
    # The two failures, each started by its own exception.
    failed = analysis.error_traces()
    assert len(failed) == 2
    causes = sorted(
        (s["service"], s["name"], s["error"]["message"])
        for t in failed
        for s in t["spans"]
        if s["service"] in ("auth", "database") and s["error"] is not None
    )
    assert [c[:2] for c in causes] == [("auth", "auth.check_token"), ("database", "SELECT users")]
    assert "token expired" in causes[0][2]
    assert causes[1][2] == "deadlock detected while reading user 23"
    edges = {(e["caller"], e["callee"]) for e in analysis.service_dependencies()}
    assert {
        ("frontend", "api-gateway"),
        ("api-gateway", "auth"),
        ("api-gateway", "data"),
        ("data", "database"),
    } <= edges
