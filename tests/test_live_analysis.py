"""In-process analysis on the Tracer: latency sketches, recent traces, service graph."""

from __future__ import annotations

import random

import ferrotrace as ft
import numpy as np
import pytest


def finish(tracer: ft.Tracer, name: str, duration_ms: float, **kwargs) -> ft.Span:
    span = tracer.start_span(name, **kwargs)
    span.finish(duration_ms=duration_ms)
    return span


def test_latency_percentiles_within_one_percent_of_exact(make_tracer):
    tracer = make_tracer(None)
    rng = random.Random(1234)
    values = [rng.lognormvariate(2.0, 1.2) for _ in range(20_000)]
    for v in values:
        finish(tracer, "op", v)
    stats = tracer.latency_stats("op")
    assert stats["count"] == len(values)
    assert stats["min"] == pytest.approx(min(values), rel=1e-4)
    assert stats["max"] == pytest.approx(max(values), rel=1e-4)
    assert stats["avg"] == pytest.approx(sum(values) / len(values), rel=1e-6)
    for p in (50, 95, 99):
        exact = float(np.percentile(values, p, method="inverted_cdf"))
        assert abs(stats[f"p{p}"] - exact) <= 0.01 * exact, (p, stats[f"p{p}"], exact)


def test_latency_stats_filters_by_operation_and_service(make_tracer):
    tracer = make_tracer(None, service_name="api")
    for _ in range(10):
        finish(tracer, "fast", 1.0)
    for _ in range(5):
        finish(tracer, "slow", 100.0)
    assert tracer.latency_stats()["count"] == 15
    assert tracer.latency_stats("fast")["count"] == 10
    assert tracer.latency_stats("slow")["p50"] == pytest.approx(100.0, rel=0.01)
    assert tracer.latency_stats("missing")["count"] == 0
    assert tracer.latency_stats(service="api")["count"] == 15
    assert tracer.latency_stats(service="other")["count"] == 0


def test_queries_see_spans_finished_just_before(make_tracer):
    # A long flush interval: only the query's own drain can make the span visible.
    tracer = make_tracer(None, flush_interval_ms=600_000)
    finish(tracer, "just-now", 3.0)
    assert tracer.latency_stats("just-now")["count"] == 1


def test_error_and_slow_traces_and_get_trace(make_tracer):
    tracer = make_tracer(None, service_name="shop")
    ids = {}
    for i in range(6):
        try:
            with tracer.start_span(f"request-{i}") as root:
                ids[i] = root.trace_id
                with tracer.start_span("db"):
                    pass
                if i % 3 == 0:
                    raise KeyError(i)
        except KeyError:
            pass
    slow = tracer.start_span("slow-request")
    tracer.start_span("child", parent=slow).finish(duration_ms=1.0)
    slow.finish(duration_ms=250.0)

    errors = tracer.error_traces()
    assert [t["operation"] for t in errors] == ["request-3", "request-0"]  # most recent first
    assert all(t["status"] == "error" and t["error_count"] == 1 for t in errors)
    assert tracer.error_traces(limit=1)[0]["trace_id"] == ids[3]

    slow_traces = tracer.slow_traces(200.0)
    assert [t["operation"] for t in slow_traces] == ["slow-request"]
    assert slow_traces[0]["duration_ms"] == pytest.approx(250.0)
    assert slow_traces[0]["span_count"] == 2

    trace = tracer.get_trace(ids[1])
    assert trace["trace_id"] == ids[1]
    assert trace["service"] == "shop"
    assert trace["operation"] == "request-1"
    assert trace["status"] == "ok"
    assert {s["name"] for s in trace["spans"]} == {"request-1", "db"}
    root = next(s for s in trace["spans"] if s["parent_id"] is None)
    assert trace["root_span_id"] == root["span_id"]
    assert tracer.get_trace("0" * 32) is None
    assert tracer.get_trace("not-a-trace-id") is None
    with pytest.raises(ValueError):
        tracer.slow_traces(-1.0)


def test_recent_trace_store_is_bounded_and_counts_evictions(make_tracer):
    tracer = make_tracer(None, max_recent_traces=5)
    trace_ids = [finish(tracer, f"t{i}", 1.0).trace_id for i in range(12)]
    assert tracer.get_trace(trace_ids[0]) is None
    assert tracer.get_trace(trace_ids[-1])["operation"] == "t11"
    assert len(tracer.slow_traces(0.0)) == 5
    assert tracer.metrics()["traces_evicted"] == 7
    # Percentiles still cover every span, not just the kept traces.
    assert tracer.latency_stats()["count"] == 12


def test_service_dependencies_across_tracers_and_peer_service(make_tracer):
    frontend = make_tracer(None, service_name="frontend")
    api = make_tracer(None, service_name="api")
    for _ in range(3):
        with frontend.start_span("GET /"):
            with api.start_span("handle", kind="server"):
                with api.start_span("SELECT", kind="client", tags={"peer.service": "postgres"}):
                    pass
    edges = {(e["caller"], e["callee"]): e["calls"] for e in api.service_dependencies()}
    assert edges == {("frontend", "api"): 3, ("api", "postgres"): 3}
    # Any tracer answers for the whole process.
    assert frontend.service_dependencies() == api.service_dependencies()
