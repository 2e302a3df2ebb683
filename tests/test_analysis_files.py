"""`ft.analyze(path)`: traces, percentiles, graphs, errors and trees from span files."""

from __future__ import annotations

import errno
import json
import math
import random
from pathlib import Path
from typing import Any

import ferrotrace as ft
import numpy as np
import pytest
from ferrotrace import _core

BASE_NS = 1_760_000_000_000_000_000


def trace_hex(n: int) -> str:
    return f"{n:032x}"


def span_hex(n: int) -> str:
    return f"{n:016x}"


def span(
    trace: int,
    span_id: int,
    parent: int | None,
    name: str,
    service: str,
    start_ms: float,
    end_ms: float,
    *,
    kind: str = "internal",
    error: tuple[str, str] | None = None,
    attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A span record as the writer produces it; times in ms from BASE_NS."""
    start_ns = BASE_NS + round(start_ms * 1e6)
    end_ns = BASE_NS + round(end_ms * 1e6)
    return {
        "trace_id": trace_hex(trace),
        "span_id": span_hex(span_id),
        "parent_id": span_hex(parent) if parent else None,
        "name": name,
        "service": service,
        "kind": kind,
        "start_ns": start_ns,
        "end_ns": end_ns,
        "duration_ms": (end_ns - start_ns) / 1e6,
        "status": "error" if error else "ok",
        "attributes": attributes or {},
        "events": [],
        "error": {"type": error[0], "message": error[1], "stack": None} if error else None,
    }


def write_jsonl(path: Path, records: list[dict[str, Any]], tail: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
        f.write(tail)
    return path


def checkout_trace(trace: int = 1, offset_ms: float = 0.0) -> list[dict[str, Any]]:
    """frontend -> api -> (auth, orders -> db), the db call failing."""
    t = offset_ms
    return [
        span(trace, 1, None, "GET /checkout", "frontend", t, t + 100, kind="server"),
        span(trace, 2, 1, "POST /api/order", "api", t + 5, t + 95, kind="server"),
        span(trace, 3, 2, "auth.verify", "auth", t + 10, t + 20),
        span(trace, 4, 2, "orders.create", "orders", t + 25, t + 90, kind="server"),
        span(
            trace,
            5,
            4,
            "db.insert",
            "orders",
            t + 30,
            t + 80,
            kind="client",
            error=("TimeoutError", f"query {trace} timed out"),
        ),
    ]


def scatter(directory: Path, records: list[dict[str, Any]], seed: int = 0) -> None:
    """Writes records the way a fleet would: a file per (service, process),
    in nested directories, lines in no particular order."""
    rng = random.Random(seed)
    files: dict[Path, list[dict[str, Any]]] = {}
    for record in records:
        process = rng.randrange(2)
        name = directory / record["service"] / f"spans-{1000 + process}-0.jsonl"
        files.setdefault(name, []).append(record)
    for name, lines in files.items():
        rng.shuffle(lines)
        write_jsonl(name, lines)


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


def test_exports() -> None:
    assert ft.analyze is _core.analyze
    assert ft.Analysis is _core.Analysis
    assert "analyze" in ft.__all__ and "Analysis" in ft.__all__
    with pytest.raises(TypeError):
        ft.Analysis()  # type: ignore[call-arg]


def test_reads_a_directory_a_file_and_path_likes(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "spans-1.jsonl", checkout_trace(1))
    write_jsonl(tmp_path / "deep" / "er" / "spans.jsonl", checkout_trace(2, 500))
    write_jsonl(tmp_path / "traces-1.jsonl", [{"trace_id": "not a span"}])
    write_jsonl(tmp_path / "notes.jsonl", [{"x": 1}])

    analysis = ft.analyze(tmp_path)
    assert isinstance(analysis, ft.Analysis)
    assert (analysis.files, analysis.span_count, analysis.trace_count) == (2, 10, 2)
    assert analysis.skipped_lines == 0
    assert ft.analyze(str(tmp_path)).span_count == 10
    one = ft.analyze(tmp_path / "deep" / "er" / "spans.jsonl")
    assert (one.files, one.trace_count) == (1, 1)
    report = analysis.report()
    assert report == {
        "files": 2,
        "lines": 10,
        "spans": 10,
        "skipped_lines": 0,
        "duplicate_spans": 0,
        "first_skipped": None,
        "path": str(tmp_path),
    }
    assert "10 spans in 2 traces from 2 files" in repr(analysis)


def test_empty_directory(tmp_path: Path) -> None:
    analysis = ft.analyze(tmp_path)
    assert (analysis.files, analysis.span_count, analysis.trace_count) == (0, 0, 0)
    assert analysis.latency_stats() == {
        "count": 0,
        "min": 0.0,
        "max": 0.0,
        "avg": 0.0,
        "p50": 0.0,
        "p95": 0.0,
        "p99": 0.0,
    }
    assert analysis.operations() == []
    assert analysis.error_traces() == []
    assert analysis.service_dependencies() == []


def test_missing_path_is_file_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError) as info:
        ft.analyze(missing)
    assert info.value.filename == str(missing)
    assert "No such file or directory" in str(info.value)
    with pytest.raises(FileNotFoundError):
        _core.operation_stats(missing)


def test_unreadable_file_is_an_os_error(tmp_path: Path) -> None:
    # Permissions do not stop root (CI runs as root), but reading a process's
    # own memory from offset 0 fails with EIO for anyone.
    path = tmp_path / "spans-unreadable.jsonl"
    path.symlink_to("/proc/self/mem")
    with pytest.raises(OSError) as info:
        ft.analyze(tmp_path)
    assert info.value.errno == errno.EIO
    assert info.value.filename == str(path)
    assert not isinstance(info.value, FileNotFoundError)


def test_argument_errors(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "spans.jsonl", checkout_trace())
    analysis = ft.analyze(tmp_path)
    with pytest.raises(TypeError):
        ft.analyze(42)  # type: ignore[arg-type]
    for method in (analysis.get_trace, analysis.critical_path, analysis.render_tree):
        with pytest.raises(TypeError, match="trace_id must be a str"):
            method(1)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            method(b"0" * 32)  # type: ignore[arg-type]
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="threshold_ms"):
            analysis.slow_traces(bad)
        with pytest.raises(ValueError, match="min_duration_ms"):
            analysis.find_traces(min_duration_ms=bad)
    with pytest.raises(TypeError):
        analysis.slow_traces("10")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit"):
        analysis.error_traces(-1)
    with pytest.raises(ValueError, match="order"):
        analysis.find_traces(order="fastest")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        analysis.latency_stats(operation=3)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Percentiles
# --------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 20, 99, 100, 101, 1000, 2345])
def test_percentiles_match_numpy_inverted_cdf(tmp_path: Path, n: int) -> None:
    rng = np.random.default_rng(n)
    values = [float(v) for v in np.round(rng.lognormal(2.0, 1.0, n), 6)]
    if n > 10:
        values[: n // 10] = [values[0]] * (n // 10)  # ties
    records = [
        span(i + 1, 1, None, "op", "svc", 0.0, 0.0) | {"duration_ms": v}
        for i, v in enumerate(values)
    ]
    write_jsonl(tmp_path / "spans.jsonl", records)
    expected = {
        f"p{p}": float(np.percentile(values, p, method="inverted_cdf")) for p in (50, 95, 99)
    }

    stats = ft.analyze(tmp_path).latency_stats()
    assert {k: stats[k] for k in expected} == expected
    assert stats["count"] == n
    assert stats["min"] == min(values) and stats["max"] == max(values)
    assert stats["avg"] == pytest.approx(sum(values) / n, rel=1e-12)

    streamed = _core.operation_stats(tmp_path)
    assert streamed["precision"] == "exact"
    [op] = streamed["operations"]
    assert {k: op[k] for k in expected} == expected
    assert op["count"] == n


def test_percentiles_by_operation_and_service(tmp_path: Path) -> None:
    rng = random.Random(5)
    records = []
    durations: dict[tuple[str, str], list[float]] = {}
    for i in range(3000):
        service = rng.choice(["api", "db"])
        name = rng.choice(["read", "write", "scan"])
        duration = round(rng.expovariate(1 / 30), 3)
        durations.setdefault((service, name), []).append(duration)
        records.append(span(i + 1, 1, None, name, service, 0, 0) | {"duration_ms": duration})
    scatter(tmp_path, records)
    analysis = ft.analyze(tmp_path)

    def numpy_stats(values: list[float]) -> dict[str, float]:
        return {
            f"p{p}": float(np.percentile(values, p, method="inverted_cdf")) for p in (50, 95, 99)
        }

    for service in ("api", "db"):
        for name in ("read", "write", "scan"):
            got = analysis.latency_stats(operation=name, service=service)
            assert {k: got[k] for k in ("p50", "p95", "p99")} == numpy_stats(
                durations[(service, name)]
            )
    by_service = [v for (s, _), vs in durations.items() if s == "db" for v in vs]
    got = analysis.latency_stats(service="db")
    assert got["count"] == len(by_service)
    assert got["p99"] == numpy_stats(by_service)["p99"]
    by_name = [v for (_, n), vs in durations.items() if n == "scan" for v in vs]
    assert analysis.latency_stats("scan")["p50"] == numpy_stats(by_name)["p50"]
    assert analysis.latency_stats(operation="nope")["count"] == 0

    # The streaming table agrees with the full analysis, operation by operation.
    full = {(o["service"], o["operation"]): o for o in analysis.operations()}
    streamed = {
        (o["service"], o["operation"]): o for o in _core.operation_stats(tmp_path)["operations"]
    }
    assert full.keys() == streamed.keys() == durations.keys()
    for key, op in streamed.items():
        for field in ("count", "error_count", "min", "max", "p50", "p95", "p99"):
            assert op[field] == full[key][field], (key, field)
        assert op["self_ms"] is None and op["time_share"] is None
        assert op["total_ms"] == pytest.approx(sum(durations[key]))


def test_sketch_percentiles_are_within_one_percent(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    values = [float(v) for v in np.round(rng.lognormal(1.0, 1.5, 20_000), 6)]
    records = [
        span(i + 1, 1, None, "op", "svc", 0, 0) | {"duration_ms": v} for i, v in enumerate(values)
    ]
    write_jsonl(tmp_path / "spans.jsonl", records)
    result = _core.operation_stats(tmp_path, exact=False)
    assert result["precision"] == "sketch"
    [op] = result["operations"]
    assert op["count"] == len(values)
    assert (op["min"], op["max"]) == (min(values), max(values))
    for p in (50, 95, 99):
        exact = float(np.percentile(values, p, method="inverted_cdf"))
        assert abs(op[f"p{p}"] - exact) <= 0.01 * exact


# --------------------------------------------------------------------------
# Traces
# --------------------------------------------------------------------------


def test_assembles_multi_service_traces_from_shuffled_files(tmp_path: Path) -> None:
    records = []
    for trace in range(1, 41):
        records += checkout_trace(trace, offset_ms=trace * 1000)
    records.append(span(0xABC, 7, None, "GET /health", "frontend", 50_000, 50_001))
    scatter(tmp_path, records, seed=3)
    assert len(list(tmp_path.rglob("spans*.jsonl"))) >= 6

    analysis = ft.analyze(tmp_path)
    assert (analysis.span_count, analysis.trace_count) == (201, 41)
    trace = analysis.get_trace(trace_hex(17))
    assert trace is not None
    assert trace["trace_id"] == trace_hex(17)
    assert trace["root_span_id"] == span_hex(1)
    assert trace["service"] == "frontend"
    assert trace["operation"] == "GET /checkout"
    assert trace["status"] == "error"
    assert trace["duration_ms"] == 100.0
    assert (trace["span_count"], trace["error_count"]) == (5, 1)
    assert trace["start_ns"] == BASE_NS + 17_000 * 1_000_000
    # Spans by start time, each the record as written.
    written = {r["span_id"]: r for r in checkout_trace(17, offset_ms=17_000)}
    assert [s["name"] for s in trace["spans"]] == [
        "GET /checkout",
        "POST /api/order",
        "auth.verify",
        "orders.create",
        "db.insert",
    ]
    for s in trace["spans"]:
        assert {k: s[k] for k in written[s["span_id"]]} == written[s["span_id"]]

    assert analysis.get_trace(trace_hex(12345)) is None
    assert analysis.get_trace("not a trace id") is None
    assert analysis.get_trace(trace_hex(0xABC))["operation"] == "GET /health"  # type: ignore[index]
    assert analysis.get_trace(trace_hex(0xABC).upper()) is None  # ids are lowercase hex


def test_slow_and_error_traces(tmp_path: Path) -> None:
    records = checkout_trace(1, 0)
    records += [span(2, 1, None, "GET /fast", "api", 1000, 1010)]
    records += [span(3, 1, None, "GET /slow", "api", 2000, 2300)]
    records += [span(4, 1, None, "GET /late", "api", 3000, 3150, error=("E", "boom"))]
    write_jsonl(tmp_path / "spans.jsonl", records)
    analysis = ft.analyze(tmp_path)

    slow = analysis.slow_traces(100.0)
    assert [t["operation"] for t in slow] == ["GET /slow", "GET /late", "GET /checkout"]
    assert all(t["duration_ms"] >= 100.0 for t in slow)
    assert len(analysis.slow_traces(0)) == 4
    assert analysis.slow_traces(float("inf")) == []
    assert slow[0]["spans"][0]["name"] == "GET /slow"

    failed = analysis.error_traces()
    assert [t["operation"] for t in failed] == ["GET /late", "GET /checkout"]  # most recent first
    assert [t["status"] for t in failed] == ["error", "error"]
    assert len(analysis.error_traces(limit=1)) == 1
    assert analysis.error_traces(limit=0) == []

    found = analysis.find_traces(service="orders")
    assert [t["trace_id"] for t in found] == [trace_hex(1)]
    assert "spans" not in found[0]
    assert [t["operation"] for t in analysis.find_traces(operation="GET /fast")] == ["GET /fast"]
    assert len(analysis.find_traces(service="api", operation="db.insert")) == 0
    assert len(analysis.find_traces(errors=True)) == 2
    assert [t["operation"] for t in analysis.find_traces(min_duration_ms=120)] == [
        "GET /late",
        "GET /slow",
    ]
    slowest = analysis.find_traces(order="slowest", limit=2)
    assert [t["operation"] for t in slowest] == ["GET /slow", "GET /late"]


def test_traces_written_by_tracers(tmp_path: Path, make_tracer: Any) -> None:
    web = make_tracer(tmp_path / "web", service_name="web")
    db = make_tracer(tmp_path / "db", service_name="db")
    with web.start_span("GET /users", kind="server") as root:
        with web.start_span("query", kind="client") as call:
            with db.start_span("SELECT users", kind="server", parent=call.context) as server:
                server.set_tag("rows", 3)
        with pytest.raises(KeyError):
            with web.start_span("cache.get"):
                raise KeyError("u:1")
    assert web.flush(timeout=10) and db.flush(timeout=10)

    analysis = ft.analyze(tmp_path)
    trace = analysis.get_trace(root.trace_id)
    assert trace is not None
    assert trace["span_count"] == 4 and trace["error_count"] == 1
    assert trace["root_span_id"] == root.span_id
    by_name = {s["name"]: s for s in trace["spans"]}
    assert by_name["SELECT users"]["parent_id"] == call.span_id
    assert by_name["SELECT users"]["attributes"] == {"rows": 3}
    assert by_name["cache.get"]["error"]["type"] == "KeyError"
    assert analysis.service_dependencies() == [{"caller": "web", "callee": "db", "calls": 1}]
    streamed = _core.operation_stats(tmp_path)
    assert streamed["report"]["spans"] == 4
    assert sorted(o["operation"] for o in streamed["operations"]) == sorted(by_name)


# --------------------------------------------------------------------------
# Operations, service graph, error groups
# --------------------------------------------------------------------------


def test_operations_with_self_time_and_share(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "spans.jsonl", checkout_trace(1) + checkout_trace(2, 1000))
    ops = {(o["service"], o["operation"]): o for o in ft.analyze(tmp_path).operations()}
    assert len(ops) == 5
    root = ops[("frontend", "GET /checkout")]
    assert root["count"] == 2 and root["error_count"] == 0 and root["error_rate"] == 0.0
    assert root["total_ms"] == 200.0
    assert root["self_ms"] == pytest.approx(20.0)  # 100 - 90 covered by the api, twice
    assert root["time_share"] == pytest.approx(0.1)
    db = ops[("orders", "db.insert")]
    assert (db["count"], db["error_count"], db["error_rate"]) == (2, 2, 1.0)
    assert db["self_ms"] == pytest.approx(100.0)
    assert db["time_share"] == pytest.approx(0.5)
    create = ops[("orders", "orders.create")]
    assert create["self_ms"] == pytest.approx(30.0)  # 65 - 50, twice
    assert sum(o["time_share"] for o in ops.values()) == pytest.approx(1.0)


def test_service_graph(tmp_path: Path) -> None:
    records = []
    for trace in range(1, 4):
        records += checkout_trace(trace, trace * 1000)
    # A client span whose callee never reported: counted through peer.service.
    records.append(
        span(9, 1, None, "charge", "orders", 9000, 9010, kind="client")
        | {"attributes": {"peer.service": "payments"}}
    )
    scatter(tmp_path, records, seed=8)
    assert ft.analyze(tmp_path).service_dependencies() == [
        {"caller": "api", "callee": "auth", "calls": 3},
        {"caller": "api", "callee": "orders", "calls": 3},
        {"caller": "frontend", "callee": "api", "calls": 3},
        {"caller": "orders", "callee": "payments", "calls": 1},
    ]


def test_error_groups_normalise_numbers_ids_and_quoted_values(tmp_path: Path) -> None:
    failures = [
        ("GET /users/{id}", "KeyError", "user 42 not found"),
        ("GET /users/{id}", "KeyError", "user 7 not found"),
        ("GET /users/{id}", "KeyError", "user 123456 not found"),
        ("GET /orders", "TimeoutError", "order 3f2b1c9a-0d4e-4a5b-9c8d-7e6f5a4b3c2d after 2.5s"),
        ("GET /orders", "TimeoutError", "order 0a1b2c3d-4e5f-4a5b-8c8d-000000000001 after 10s"),
        ("GET /orders", "ValueError", "bad value 'abc' for \"field\""),
        ("GET /orders", "ValueError", "bad value 'x y z' for \"other\""),
        ("GET /other", "KeyError", "user 9 not found"),  # another operation
    ]
    records = [
        span(i + 1, 1, None, name, "api", i * 10, i * 10 + 1, error=(kind, message))
        for i, (name, kind, message) in enumerate(failures)
    ]
    records.append(span(50, 1, None, "GET /orders", "api", 0, 1))  # not an error
    write_jsonl(tmp_path / "spans.jsonl", records)

    groups = ft.analyze(tmp_path).error_groups()
    summary = [(g["count"], g["operation"], g["type"], g["message"]) for g in groups]
    assert summary == [
        (3, "GET /users/{id}", "KeyError", "user <num> not found"),
        (2, "GET /orders", "ValueError", "bad value <str> for <str>"),
        (2, "GET /orders", "TimeoutError", "order <id> after <num>s"),
        (1, "GET /other", "KeyError", "user <num> not found"),
    ]
    users = groups[0]
    assert users["example_trace_id"] == trace_hex(3)  # the latest occurrence
    assert users["example_message"] == "user 123456 not found"
    assert users["first_seen_ns"] == BASE_NS + 1 * 1_000_000
    assert users["last_seen_ns"] == BASE_NS + 21 * 1_000_000
    assert users["service"] == "api"
    assert len({g["fingerprint"] for g in groups}) == 4
    assert all(len(g["fingerprint"]) == 16 for g in groups)


# --------------------------------------------------------------------------
# Critical path and trees
# --------------------------------------------------------------------------


def test_critical_path_of_a_hand_made_trace(tmp_path: Path) -> None:
    # root 0-100; a 5-40 and b 10-90 in parallel; c 20-80 inside b.
    records = [
        span(1, 1, None, "root", "web", 0, 100),
        span(1, 2, 1, "a", "web", 5, 40),
        span(1, 3, 1, "b", "api", 10, 90),
        span(1, 4, 3, "c", "db", 20, 80),
    ]
    write_jsonl(tmp_path / "spans.jsonl", list(reversed(records)))
    path = ft.analyze(tmp_path).critical_path(trace_hex(1))
    assert path is not None
    got = [
        (s["name"], (s["start_ns"] - BASE_NS) / 1e6, (s["end_ns"] - BASE_NS) / 1e6) for s in path
    ]
    assert got == [
        ("root", 0, 10),
        ("b", 10, 20),
        ("c", 20, 80),
        ("b", 80, 90),
        ("root", 90, 100),
    ]
    assert [s["service"] for s in path] == ["web", "api", "db", "api", "web"]
    assert [s["span_id"] for s in path][:3] == [span_hex(1), span_hex(3), span_hex(4)]
    assert sum(s["duration_ms"] for s in path) == pytest.approx(100.0)
    assert ft.analyze(tmp_path).critical_path(trace_hex(2)) is None


def test_render_tree(tmp_path: Path) -> None:
    records = checkout_trace(1)
    records.append(span(1, 9, 77, "orphan.work", "worker", 40, 45))  # parent never collected
    scatter(tmp_path, records, seed=4)
    tree = ft.analyze(tmp_path).render_tree(trace_hex(1))
    assert tree is not None
    lines = tree.splitlines()
    assert lines[0] == f"Trace {trace_hex(1)} (6 spans, 100.0ms)"
    assert lines[1:] == [
        "├─ GET /checkout (frontend) - 100.0ms (100.0%)",
        "│  └─ POST /api/order (api) - 90.0ms (90.0%)",
        "│     ├─ auth.verify (auth) - 10.0ms (10.0%)",
        "│     └─ orders.create (orders) - 65.0ms (65.0%)",
        "│        └─ db.insert (orders) - 50.0ms (50.0%) ✗ error: TimeoutError: query 1 timed out",
        f"└─ orphan.work (worker) - 5.0ms (5.0%) [parent {span_hex(77)} missing]",
    ]
    assert ft.analyze(tmp_path).render_tree(trace_hex(5)) is None


# --------------------------------------------------------------------------
# Malformed input
# --------------------------------------------------------------------------


def test_malformed_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    good = checkout_trace(1)
    missing_key = dict(good[0])
    del missing_key["duration_ms"]
    bad_id = dict(good[1]) | {"span_id": "XYZ"}
    body = "\n".join(json.dumps(r) for r in good[:3]) + "\n"
    body += "this is not json\n"
    body += json.dumps(missing_key) + "\n"
    body += "\n"  # blank lines are not counted
    body += json.dumps(bad_id) + "\n"
    body += "\n".join(json.dumps(r) for r in good[3:]) + "\n"
    torn = json.dumps(span(2, 1, None, "torn", "api", 0, 1))[:57]  # a crash mid-write
    path = tmp_path / "spans-1.jsonl"
    path.write_text(body + torn, encoding="utf-8")

    analysis = ft.analyze(tmp_path)
    assert analysis.skipped_lines == 4
    assert analysis.span_count == 5 and analysis.trace_count == 1
    report = analysis.report()
    assert (report["lines"], report["spans"], report["skipped_lines"]) == (9, 5, 4)
    first = report["first_skipped"]
    assert first is not None
    assert (first["path"], first["line"]) == (str(path), 4)
    assert "not a span record" in first["error"]
    assert analysis.get_trace(trace_hex(1))["span_count"] == 5  # type: ignore[index]

    streamed = _core.operation_stats(tmp_path)["report"]
    assert {k: streamed[k] for k in ("lines", "spans", "skipped_lines")} == {
        "lines": 9,
        "spans": 5,
        "skipped_lines": 4,
    }
    assert streamed["first_skipped"] == first


def test_duplicate_spans_count_once(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "spans-a.jsonl", checkout_trace(1))
    write_jsonl(tmp_path / "spans-b.jsonl", checkout_trace(1))  # the same file copied
    analysis = ft.analyze(tmp_path)
    assert analysis.span_count == 5
    assert analysis.report()["duplicate_spans"] == 5
    assert analysis.get_trace(trace_hex(1))["span_count"] == 5  # type: ignore[index]


def test_odd_values_survive_the_round_trip(tmp_path: Path) -> None:
    record = span(1, 1, None, 'naïve ✓ "quoted"', "svc\\x", 0, 1)
    record["attributes"] = {
        "big": 2**63 - 1,
        "neg": -5,
        "f": 0.1,
        "list": [1, "a", True, None],
        "nested": {"k": [1.5, {"deep": "é"}]},
        "e": "\u00e9\u2028",
    }
    record["events"] = [{"name": "e1", "ts_ns": BASE_NS, "level": "info", "attributes": {}}]
    write_jsonl(tmp_path / "spans.jsonl", [record])
    trace = ft.analyze(tmp_path).get_trace(trace_hex(1))
    assert trace is not None
    [got] = trace["spans"]
    assert {k: got[k] for k in record} == record
    [op] = _core.operation_stats(tmp_path)["operations"]
    assert (op["service"], op["operation"]) == ("svc\\x", 'naïve ✓ "quoted"')
    assert math.isclose(op["p50"], 1.0)
