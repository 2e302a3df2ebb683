"""One set of query rules for the in-process `Tracer` and the file `Analysis`.

The same spans, asked the same questions of both (the tracer from memory, the
analysis from the files that tracer wrote), get the same answers: slow traces
slowest first, error traces most recent first, bad limits a ValueError.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import ferrotrace as ft
import pytest
from ferrotrace import _core

BAD_LIMITS = [-1, -(2**70), 1.5, "3", True, [1], float("nan")]


def request(
    tracer: ft.Tracer,
    name: str,
    duration_ms: float,
    *,
    fail: bool = False,
    child_ms: float = 1.0,
    tags: dict[str, Any] | None = None,
) -> str:
    """A root span with one `db` child (which fails if `fail`)."""
    root = tracer.start_span(name, kind="server", tags=tags)
    child = tracer.start_span("db", kind="client", parent=root)
    if fail:
        child.set_status("error")
    child.finish(duration_ms=child_ms)
    root.finish(duration_ms=duration_ms)
    return root.trace_id


@pytest.fixture
def sources(make_tracer: Any, tmp_path: Path) -> tuple[ft.Tracer, ft.Analysis, list[str]]:
    """A tracer that ran five requests, the analysis of the files it wrote,
    and the trace ids in the order the requests ran."""
    tracer = make_tracer(tmp_path / "shop", service_name="shop")
    ids = [
        request(tracer, "GET /a", 50.0, tags={"http.status_code": 200}),
        request(tracer, "GET /b", 200.0, fail=True, tags={"http.status_code": 500}),
        request(tracer, "GET /a", 200.0, tags={"cached": True}),  # as slow as the previous
        request(tracer, "GET /c", 5.0, fail=True, tags={"ratio": 0.5}),
        request(tracer, "GET /a", 120.0, tags={"user": "u:1"}),
    ]
    assert tracer.flush(timeout=10)
    return tracer, ft.analyze(tmp_path / "shop"), ids


def trace_ids(traces: list[Any]) -> list[str]:
    return [t["trace_id"] for t in traces]


def both(sources: tuple[ft.Tracer, ft.Analysis, list[str]]) -> list[Any]:
    tracer, analysis, _ = sources
    return [tracer, analysis]


def test_slow_traces_are_slowest_first_on_both(sources: Any) -> None:
    _, _, ids = sources
    for source in both(sources):
        # 200 ms twice: the more recent first.
        assert trace_ids(source.slow_traces(100.0)) == [ids[2], ids[1], ids[4]], source
        assert trace_ids(source.slow_traces(0)) == [ids[2], ids[1], ids[4], ids[0], ids[3]]
        assert source.slow_traces(float("inf")) == []


def test_error_traces_are_most_recent_first_on_both(sources: Any) -> None:
    _, _, ids = sources
    for source in both(sources):
        assert trace_ids(source.error_traces()) == [ids[3], ids[1]], source
        assert trace_ids(source.error_traces(limit=1)) == [ids[3]]
        assert source.error_traces(limit=0) == []
        assert trace_ids(source.error_traces(2**80)) == [ids[3], ids[1]]


def test_both_return_the_same_trace_dicts(sources: Any) -> None:
    tracer, analysis, ids = sources
    assert tracer.slow_traces(0) == analysis.slow_traces(0)
    assert tracer.error_traces() == analysis.error_traces()
    for trace_id in ids:
        mine = tracer.get_trace(trace_id)
        assert mine is not None and mine == analysis.get_trace(trace_id)
        assert mine["span_count"] == 2 and mine["service"] == "shop"
    for unknown in ("0" * 32, "f" * 32, "not-a-trace-id", ids[0].upper()):
        assert tracer.get_trace(unknown) is None
        assert analysis.get_trace(unknown) is None


@pytest.mark.parametrize("limit", BAD_LIMITS, ids=repr)
def test_bad_limits_are_value_errors_on_both(sources: Any, limit: Any) -> None:
    tracer, analysis, _ = sources
    for call in (
        tracer.error_traces,
        analysis.error_traces,
        lambda limit: analysis.find_traces(limit=limit),
        lambda limit: analysis.operations(limit=limit),
        lambda limit: analysis.error_groups(limit=limit),
    ):
        with pytest.raises(ValueError, match="limit must be None or a non-negative int"):
            call(limit)
    with pytest.raises(ValueError, match="limit"):
        _core.operation_stats(analysis.report()["path"], limit=limit)


def test_bad_thresholds_on_both(sources: Any) -> None:
    for source in both(sources):
        for bad in (-1.0, -0.001, math.nan):
            with pytest.raises(ValueError, match="threshold_ms must be a non-negative number"):
                source.slow_traces(bad)
        with pytest.raises(TypeError):
            source.slow_traces("10")


def test_latency_stats_agree_within_the_sketch_error(sources: Any) -> None:
    tracer, analysis, _ = sources
    for operation in (None, "db", "GET /a"):
        live = tracer.latency_stats(operation)
        exact = analysis.latency_stats(operation)
        assert live["count"] == exact["count"] > 0
        for key in ("min", "max", "p50", "p95", "p99"):
            assert live[key] == pytest.approx(exact[key], rel=0.01), (operation, key)
        assert live["avg"] == pytest.approx(exact["avg"], rel=1e-9)
    for source in both(sources):
        assert source.latency_stats(service="elsewhere")["count"] == 0


def test_service_dependencies_agree(make_tracer: Any, tmp_path: Path) -> None:
    frontend = make_tracer(tmp_path / "frontend", service_name="frontend")
    api = make_tracer(tmp_path / "api", service_name="api")
    for _ in range(3):
        with frontend.start_span("GET /", kind="server"):
            with api.start_span("handle", kind="server"):
                with api.start_span("SELECT", kind="client", tags={"peer.service": "postgres"}):
                    pass
    assert frontend.flush(timeout=10) and api.flush(timeout=10)
    expected = [
        {"caller": "api", "callee": "postgres", "calls": 3},
        {"caller": "frontend", "callee": "api", "calls": 3},
    ]
    assert api.service_dependencies() == expected
    assert ft.analyze(tmp_path).service_dependencies() == expected


def test_find_traces_filters(sources: Any) -> None:
    _, analysis, ids = sources

    def found(**kwargs: Any) -> list[str]:
        return trace_ids(analysis.find_traces(**kwargs))

    assert found() == ids[::-1]
    assert found(order="slowest", limit=2) == [ids[2], ids[1]]
    assert found(operation="GET /a") == [ids[4], ids[2], ids[0]]
    # Tags match the attribute's text, all on one span.
    assert found(tags={"http.status_code": 500}) == [ids[1]]
    assert found(tags={"http.status_code": "500"}) == [ids[1]]
    assert found(tags={"cached": True}) == [ids[2]]
    assert found(tags={"cached": "true"}) == [ids[2]]
    assert found(tags={"ratio": 0.5}) == [ids[3]]
    assert found(tags={"user": "u:1", "span.kind": "server"}) == [ids[4]]
    assert found(tags={"user": "u:1", "span.kind": "client"}) == []
    assert found(tags={"error": "true"}) == [ids[3], ids[1]]
    assert found(tags={"error": "true"}, operation="GET /b") == []  # the db span failed
    assert found(tags={"error": "true"}, operation="db") == [ids[3], ids[1]]
    assert found(errors=True, operation="GET /b") == [ids[1]]
    assert found(min_duration_ms=50, max_duration_ms=120) == [ids[4], ids[0]]
    starts = {t["trace_id"]: t["start_ns"] for t in analysis.find_traces()}
    assert found(start_ns=starts[ids[1]], end_ns=starts[ids[3]]) == [ids[3], ids[2], ids[1]]
    assert found(start_ns=starts[ids[4]] + 1) == []


def test_find_traces_argument_errors(sources: Any) -> None:
    _, analysis, _ = sources
    with pytest.raises(ValueError, match="above max_duration_ms"):
        analysis.find_traces(min_duration_ms=10, max_duration_ms=5)
    with pytest.raises(ValueError, match="after end_ns"):
        analysis.find_traces(start_ns=10, end_ns=5)
    with pytest.raises(ValueError, match="max_duration_ms must be a non-negative"):
        analysis.find_traces(max_duration_ms=-1)
    with pytest.raises(ValueError, match='order must be one of "recent", "slowest"'):
        analysis.find_traces(order="fastest")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tags must be a dict"):
        analysis.find_traces(tags=[("a", "b")])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tag keys must be str"):
        analysis.find_traces(tags={1: "b"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match='tag "a" must be a str, bool, int or float'):
        analysis.find_traces(tags={"a": None})  # type: ignore[dict-item]
    for bad in (-1, 1.5, "0"):
        with pytest.raises(ValueError, match="start_ns must be None or an int"):
            analysis.find_traces(start_ns=bad)  # type: ignore[arg-type]
    assert len(analysis.find_traces(end_ns=2**80)) == 5


def test_operations_and_error_groups_select_in_rust(sources: Any, tmp_path: Path) -> None:
    _, analysis, _ = sources
    table = analysis.operations()
    # Most total time first; the 5 ms tie by name.
    assert [(o["operation"], o["count"]) for o in table] == [
        ("GET /a", 3),
        ("GET /b", 1),
        ("GET /c", 1),
        ("db", 5),
    ]
    by_count = analysis.operations(sort="count")
    assert [o["operation"] for o in by_count] == ["db", "GET /a", "GET /b", "GET /c"]
    assert [o["operation"] for o in analysis.operations(sort="errors", limit=1)] == ["db"]
    assert analysis.operations(service="elsewhere") == []
    with pytest.raises(ValueError, match="order must be one of"):
        analysis.operations(sort="mood")  # type: ignore[arg-type]
    streamed = _core.operation_stats(tmp_path / "shop", sort="count", limit=2)
    assert [o["operation"] for o in streamed["operations"]] == ["db", "GET /a"]

    groups = analysis.error_groups()
    assert len(groups) == 1 and groups[0]["count"] == 2
    assert analysis.error_groups(service="elsewhere") == []
    assert analysis.error_groups(limit=0) == []
