"""ferrotrace's own endpoints under /api/ferrotrace/ (what the web UI shows
beyond Jaeger's API): operations, error groups, critical path, service graph.
Each answer is checked against the same question asked of `ft.analyze` over
the same files, and every bad parameter is a 400 with the reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import ferrotrace as ft
import pytest
from test_serve import Server


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path, str]]:
    directory = tmp_path_factory.mktemp("stats") / "traces"
    front = ft.Tracer(service_name="front", output_dir=str(directory))
    back = ft.Tracer(service_name="back", output_dir=str(directory))
    failed_trace = ""
    for i in range(4):
        with front.start_span("GET /", kind="server") as root:
            with front.start_span("call back", kind="client") as call:
                with back.start_span("handle", kind="server", parent=call) as handle:
                    if i == 0:
                        handle.set_error(f"timeout after {100 + i} ms")
                        failed_trace = root.trace_id
    # A client call to a service that sends no spans of its own, failing.
    with front.start_span("GET /pay", kind="server"):
        with front.start_span("charge", kind="client", tags={"peer.service": "psp"}) as c:
            c.set_error("declined")
    assert front.shutdown() and back.shutdown()
    s = Server(directory)
    try:
        yield s, directory, failed_trace
    finally:
        assert s.stop()[0] == 0


def test_operations_are_the_stats_table(loaded: tuple[Server, Path, str]) -> None:
    s, directory, _ = loaded
    status, doc = s.api("/api/ferrotrace/operations?order=count")
    assert status == 200 and doc["errors"] is None
    expected = ft.analyze(str(directory)).operations(sort="count")
    got = [(r["service"], r["operation"], r["count"], r["error_count"]) for r in doc["data"]]
    want = [(r["service"], r["operation"], r["count"], r["error_count"]) for r in expected]
    assert got == want
    handle = next(r for r in doc["data"] if r["operation"] == "handle")
    assert handle["count"] == 4 and handle["error_rate"] == 0.25
    for key in ("p50", "p95", "p99", "self_ms", "total_ms"):
        assert handle[key] >= 0
    status, doc = s.api("/api/ferrotrace/operations?service=back&limit=1")
    assert [r["operation"] for r in doc["data"]] == ["handle"]


def test_error_groups_link_to_their_traces(loaded: tuple[Server, Path, str]) -> None:
    s, _, failed_trace = loaded
    status, doc = s.api("/api/ferrotrace/errors?service=back")
    assert status == 200
    [group] = doc["data"]
    assert group["count"] == 1 and group["operation"] == "handle"
    assert group["example_trace_id"] == failed_trace
    assert "timeout after" in group["message"]
    status, doc = s.api("/api/ferrotrace/errors")
    assert sorted(g["service"] for g in doc["data"]) == ["back", "front"]


def test_critical_path(loaded: tuple[Server, Path, str]) -> None:
    s, directory, failed_trace = loaded
    status, doc = s.api(f"/api/ferrotrace/critical-path/{failed_trace}")
    assert status == 200
    expected = ft.analyze(str(directory)).critical_path(failed_trace)
    assert expected is not None
    assert [seg["span_id"] for seg in doc["data"]] == [seg["span_id"] for seg in expected]
    assert {seg["name"] for seg in doc["data"]} >= {"GET /", "handle"}
    status, doc = s.api("/api/ferrotrace/critical-path/" + "f" * 32)
    assert status == 404 and "not found" in doc["errors"][0]["msg"]
    status, doc = s.api("/api/ferrotrace/critical-path/xyz")
    assert status == 400 and "not a trace id" in doc["errors"][0]["msg"]


def test_service_graph_has_error_rates(loaded: tuple[Server, Path, str]) -> None:
    s, _, _ = loaded
    status, doc = s.api("/api/ferrotrace/service-graph")
    assert status == 200
    edges = {(e["parent"], e["child"]): e for e in doc["data"]["edges"]}
    assert edges[("front", "back")]["callCount"] == 4
    assert edges[("front", "back")]["errorCount"] == 1
    assert edges[("front", "back")]["errorRate"] == 0.25
    assert edges[("front", "psp")]["errorCount"] == 1
    # The same calls as Jaeger's dependencies endpoint.
    _, deps = s.api("/api/dependencies")
    assert {(d["parent"], d["child"]): d["callCount"] for d in deps["data"]} == {
        k: e["callCount"] for k, e in edges.items()
    }
    services = {n["service"]: n for n in doc["data"]["services"]}
    assert services["back"]["spanCount"] == 4 and services["back"]["errorCount"] == 1


@pytest.mark.parametrize(
    "query, reason",
    [
        ("operations?limit=-1", "limit"),
        ("operations?limit=many", "limit"),
        ("operations?order=fastest", "fastest"),
        ("operations?service=a&service=b", "more than once"),
        ("errors?limit=1.5", "limit"),
    ],
)
def test_bad_parameters_are_400_with_the_reason(
    loaded: tuple[Server, Path, str], query: str, reason: str
) -> None:
    s, _, _ = loaded
    status, doc = s.api(f"/api/ferrotrace/{query}")
    assert status == 400
    assert reason in doc["errors"][0]["msg"]


def test_unknown_paths_are_404(loaded: tuple[Server, Path, str]) -> None:
    s, _, _ = loaded
    for path in ("/api/ferrotrace/nothing", "/api/ferrotrace/critical-path"):
        status, doc = s.api(path)
        assert status == 404, path
