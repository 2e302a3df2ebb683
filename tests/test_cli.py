"""The `ferrotrace` command line: every subcommand, `--json`, and bad input."""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import ferrotrace as ft
import pytest
from ferrotrace import cli
from test_analysis_files import checkout_trace, scatter, span, trace_hex, write_jsonl


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ferrotrace", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def ok(*args: str) -> str:
    proc = run(*args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return proc.stdout


def run_json(*args: str) -> Any:
    return json.loads(ok(*args, "--json"))


def fails(status: int, *args: str) -> str:
    """Runs a command that must fail with one clear line on stderr."""
    proc = run(*args)
    assert proc.returncode == status, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ferrotrace")
    return lines[0]


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three services' files: 20 checkout traces (1..20, 1 s apart, each with
    a failed db call), 5 slow searches (101..105) and one fast health check."""
    directory = tmp_path_factory.mktemp("traces")
    records = []
    for trace in range(1, 21):
        records += checkout_trace(trace, offset_ms=trace * 1000)
    for trace in range(101, 106):
        start = 30_000 + trace
        records.append(span(trace, 1, None, "GET /search", "api", start, start + 1500))
        records.append(span(trace, 2, 1, "search.query", "search", start + 1, start + 1400))
    records.append(span(200, 1, None, "GET /health", "frontend", 40_000, 40_000.3))
    scatter(directory, records, seed=1)
    return directory


@pytest.fixture(scope="module")
def analysis(traces: Path) -> ft.Analysis:
    return ft.analyze(traces)


# --------------------------------------------------------------------------
# Subcommands
# --------------------------------------------------------------------------


def test_stats(traces: Path, analysis: ft.Analysis) -> None:
    out = ok("stats", str(traces))
    header, *rows = out.splitlines()
    assert header.split() == [
        "SERVICE",
        "OPERATION",
        "COUNT",
        "ERRORS",
        "ERR%",
        "P50",
        "P95",
        "P99",
        "TOTAL",
    ]
    assert len(rows) == 8
    assert rows[0].split()[:3] == ["api", "GET", "/search"]  # most total time first
    db = next(r for r in rows if "db.insert" in r)
    assert db.split()[2:5] == ["20", "20", "100.0%"]

    ops = run_json("stats", str(traces))
    full = {(o["service"], o["operation"]): o for o in analysis.operations()}
    assert {(o["service"], o["operation"]) for o in ops} == full.keys()
    for op in ops:
        for field in ("count", "error_count", "error_rate", "p50", "p95", "p99", "total_ms"):
            assert op[field] == pytest.approx(full[(op["service"], op["operation"])][field])
        assert op["self_ms"] is None


def test_stats_options(traces: Path) -> None:
    ops = run_json("stats", str(traces), "--self-time")
    search = next(o for o in ops if o["operation"] == "GET /search")
    assert search["self_ms"] == pytest.approx(5 * 101.0)
    assert 0 < search["time_share"] < 1
    out = ok("stats", str(traces), "--self-time")
    assert out.splitlines()[0].split()[-2:] == ["SELF", "SHARE"]

    sketched = run_json("stats", str(traces), "--sketch")
    assert len(sketched) == 8
    assert all(o["count"] for o in sketched)

    # Equal counts keep the default order: most total time first.
    only = run_json("stats", str(traces), "--service", "orders", "--sort", "count")
    assert [(o["service"], o["operation"]) for o in only] == [
        ("orders", "orders.create"),
        ("orders", "db.insert"),
    ]
    by_p99 = run_json("stats", str(traces), "--sort", "p99", "--limit", "2")
    assert [o["operation"] for o in by_p99] == ["GET /search", "search.query"]
    by_name = run_json("stats", str(traces), "--sort", "name")
    assert [(o["service"], o["operation"]) for o in by_name] == sorted(
        (o["service"], o["operation"]) for o in by_name
    )


def test_traces(traces: Path) -> None:
    listed = run_json("traces", str(traces))
    assert len(listed) == 20  # the default limit
    assert listed[0]["operation"] == "GET /health"  # most recent first
    assert "spans" not in listed[0]
    assert len(run_json("traces", str(traces), "--limit", "0")) == 26

    errors = run_json("traces", str(traces), "--errors", "--limit", "3")
    assert [t["trace_id"] for t in errors] == [trace_hex(n) for n in (20, 19, 18)]
    assert all(t["status"] == "error" for t in errors)

    slow = run_json("traces", str(traces), "--min-duration", "1.2s")
    assert sorted(t["trace_id"] for t in slow) == [trace_hex(n) for n in range(101, 106)]
    assert len(run_json("traces", str(traces), "--min-duration", "100ms", "--limit", "0")) == 25
    assert len(run_json("traces", str(traces), "--min-duration", "300us", "--limit", "0")) == 26
    assert len(run_json("traces", str(traces), "--min-duration", "301us", "--limit", "0")) == 25

    searches = run_json("traces", str(traces), "--service", "search")
    assert len(searches) == 5 and {t["operation"] for t in searches} == {"GET /search"}
    by_op = run_json("traces", str(traces), "--operation", "db.insert", "--limit", "0")
    assert len(by_op) == 20
    assert run_json("traces", str(traces), "--service", "api", "--operation", "db.insert") == []
    slowest = run_json("traces", str(traces), "--sort", "slowest", "--limit", "1")
    assert slowest[0]["duration_ms"] == 1500.0

    # Tags: all on one span, with --service and --operation.
    clients = run_json("traces", str(traces), "--tag", "span.kind=client", "--limit", "0")
    assert len(clients) == 20
    failed_db = run_json(
        "traces", str(traces), "--tag", "error=true", "--tag", "span.kind=client", "--limit", "0"
    )
    assert [t["trace_id"] for t in failed_db] == [trace_hex(n) for n in range(20, 0, -1)]
    assert run_json("traces", str(traces), "--tag", "error=true", "--service", "search") == []
    fast = run_json("traces", str(traces), "--max-duration", "200ms", "--limit", "0")
    assert len(fast) == 21 and all(t["duration_ms"] <= 200 for t in fast)

    out = ok("traces", str(traces), "--errors", "--limit", "2")
    header, *rows = out.splitlines()
    assert header.split()[:3] == ["TRACE", "ID", "START"]
    assert len(rows) == 2 and rows[0].startswith(trace_hex(20))
    assert "GET /checkout" in rows[0] and "100.0ms" in rows[0]


def test_tree(traces: Path, analysis: ft.Analysis) -> None:
    out = ok("tree", trace_hex(7), str(traces))
    assert out.rstrip("\n") == analysis.render_tree(trace_hex(7))
    lines = out.splitlines()
    assert lines[1].startswith("└─ GET /checkout (frontend) - 100.0ms")
    assert "✗ error: TimeoutError: query 7 timed out" in lines[-1]
    # Ids are read in any case.
    assert ok("tree", trace_hex(200).upper(), str(traces)).startswith(f"Trace {trace_hex(200)}")
    trace = run_json("tree", trace_hex(7), str(traces))
    assert trace == analysis.get_trace(trace_hex(7))


def test_critical_path(traces: Path) -> None:
    path = run_json("critical-path", trace_hex(7), str(traces))
    assert sum(s["duration_ms"] for s in path) == pytest.approx(100.0)
    assert path[0]["name"] == "GET /checkout"
    assert "db.insert" in [s["name"] for s in path]
    out = ok("critical-path", trace_hex(7), str(traces))
    header, *rows = out.splitlines()
    assert header.split() == ["#", "SPAN", "SERVICE", "AT", "DURATION", "SHARE"]
    assert len(rows) == len(path)
    assert rows[0].split()[1:4] == ["GET", "/checkout", "frontend"]


def test_deps(traces: Path) -> None:
    edges = [
        {"caller": "api", "callee": "auth", "calls": 20},
        {"caller": "api", "callee": "orders", "calls": 20},
        {"caller": "api", "callee": "search", "calls": 5},
        {"caller": "frontend", "callee": "api", "calls": 20},
    ]
    assert run_json("deps", str(traces)) == edges
    assert json.loads(ok("deps", str(traces), "--format", "json")) == edges

    text = ok("deps", str(traces)).splitlines()
    assert text[0].split() == ["CALLER", "CALLEE", "CALLS"]
    assert [line.split() for line in text[1:]] == [
        [e["caller"], e["callee"], str(e["calls"])] for e in edges
    ]

    dot = ok("deps", str(traces), "--format", "dot")
    assert dot.startswith("digraph services {")
    assert '"frontend" -> "api" [label="20"];' in dot
    assert dot.rstrip().endswith("}")

    mermaid = ok("deps", str(traces), "--format", "mermaid").splitlines()
    assert mermaid[0] == "graph LR"
    ids = {
        line.split('["')[1].rstrip('"]'): line.split("[")[0].strip()
        for line in mermaid
        if '["' in line
    }
    assert set(ids) == {"api", "auth", "frontend", "orders", "search"}
    assert f"  {ids['frontend']} -->|20| {ids['api']}" in mermaid


def test_errors(traces: Path) -> None:
    assert run_json("errors", str(traces), "--service", "frontend") == []
    assert len(run_json("errors", str(traces), "--service", "orders")) == 1
    groups = run_json("errors", str(traces))
    assert len(groups) == 1
    [group] = groups
    assert (group["count"], group["type"], group["message"]) == (
        20,
        "TimeoutError",
        "query <num> timed out",
    )
    assert group["example_trace_id"] == trace_hex(20)
    assert group["operation"] == "db.insert" and group["service"] == "orders"
    out = ok("errors", str(traces))
    header, row = out.splitlines()
    assert header.split()[:4] == ["COUNT", "SERVICE", "OPERATION", "ERROR"]
    assert row.split()[:3] == ["20", "orders", "db.insert"]
    assert "TimeoutError: query <num> timed out" in row and trace_hex(20) in row


def test_a_single_file_and_the_default_directory(traces: Path, tmp_path: Path) -> None:
    one = next(iter(sorted(traces.rglob("spans*.jsonl"))))
    assert run_json("stats", str(one))
    local = tmp_path / "traces"
    write_jsonl(local / "spans-1.jsonl", checkout_trace(1))
    proc = subprocess.run(
        [sys.executable, "-m", "ferrotrace", "deps", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "FERROTRACE_OUTPUT_DIR"},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == 3


def test_version_and_help() -> None:
    assert ok("--version").strip() == f"ferrotrace {ft.__version__}"
    out = ok("--help")
    for command in ("stats", "traces", "tree", "deps", "errors", "critical-path"):
        assert command in out
    assert "--min-duration" in ok("traces", "--help")


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------


def test_bad_input_exits_with_one_line(traces: Path, tmp_path: Path) -> None:
    d = str(traces)
    missing = str(tmp_path / "missing")
    assert fails(1, "stats", missing) == f"ferrotrace: {missing}: no such file or directory"
    for command in ("traces", "deps", "errors"):
        fails(1, command, missing)
    fails(1, "tree", trace_hex(1), missing)
    unknown = trace_hex(0xDEAD)
    for command in ("tree", "critical-path"):
        line = fails(1, command, unknown, d)
        assert line.startswith(f"ferrotrace: no trace {unknown} in {d}")
    line = fails(2, "tree", "not-a-trace-id", d)
    assert "invalid trace id 'not-a-trace-id'" in line
    fails(2, "critical-path", "0" * 32, d)
    line = fails(2, "traces", d, "--min-duration", "20xs")
    assert "invalid duration '20xs'" in line
    fails(2, "traces", d, "--min-duration", "-5ms")
    fails(2, "traces", d, "--min-duration", "fast")
    line = fails(2, "traces", d, "--min-duration", "1s", "--max-duration", "100ms")
    assert "above max_duration_ms" in line
    line = fails(2, "traces", d, "--tag", "no-equals-sign")
    assert "invalid tag 'no-equals-sign': expected KEY=VALUE" in line
    line = fails(2, "deps", d, "--format", "svg")
    assert "invalid choice: 'svg'" in line
    fails(2, "traces", d, "--limit", "-1")
    fails(2, "traces", d, "--limit", "many")
    fails(2, "stats", d, "--sketch", "--self-time")
    fails(2, "stats", d, "--sort", "mood")
    fails(2, "frobnicate", d)
    fails(2, "tree")
    fails(2)
    fails(1, "stats", str(tmp_path))  # a directory without span files


def test_malformed_lines_are_reported_in_one_line(tmp_path: Path) -> None:
    good = checkout_trace(1)
    body = "".join(json.dumps(r) + "\n" for r in good)
    write_jsonl(tmp_path / "spans-1.jsonl", [], body + "garbage\n" + json.dumps(good[0])[:40])
    for args in (["stats"], ["deps"], ["errors"], ["traces"], ["tree", trace_hex(1)]):
        proc = run(*args, str(tmp_path), "--json")
        assert proc.returncode == 0
        json.loads(proc.stdout)
        [line] = proc.stderr.splitlines()
        assert line.startswith("ferrotrace: skipped 2 malformed lines (first at ")
        assert f"spans-1.jsonl:{len(good) + 1}:" in line


def test_broken_pipe_is_quiet(tmp_path: Path) -> None:
    records = [span(n, 1, None, "GET /", "api", n, n + 1) for n in range(1, 4001)]
    write_jsonl(tmp_path / "spans.jsonl", records)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ferrotrace", "traces", str(tmp_path), "--limit", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith("TRACE ID")
    proc.stdout.close()
    stderr = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=60) == cli.EXIT_BROKEN_PIPE
    assert stderr == ""


# --------------------------------------------------------------------------
# In process: interrupts, rich, progress, argument types
# --------------------------------------------------------------------------


def test_keyboard_interrupt_exits_130_quietly(
    traces: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli._core, "analyze", interrupted)
    monkeypatch.setattr(cli._core, "operation_stats", interrupted)
    assert cli.main(["deps", str(traces)]) == 130
    assert cli.main(["stats", str(traces)]) == 130
    assert capsys.readouterr() == ("", "")


def test_main_returns_statuses(traces: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["deps", str(traces), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 4
    assert cli.main(["tree", trace_hex(0xDEAD), str(traces)]) == 1
    assert cli.main(["traces", str(traces), "--min-duration", "x"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("ferrotrace") for line in err)


def test_rich_tables_on_a_terminal(traces: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    console_module = pytest.importorskip("rich.console")
    buffer = io.StringIO()
    console = console_module.Console(file=buffer, width=200, color_system=None)
    monkeypatch.setattr(cli, "_rich_console", lambda stream: console)
    assert cli.main(["stats", str(traces)]) == 0
    assert cli.main(["errors", str(traces)]) == 0
    assert cli.main(["tree", trace_hex(3), str(traces)]) == 0
    out = buffer.getvalue()
    for text in ("SERVICE", "db.insert", "100.0%", "query <num> timed out", "✗ error"):
        assert text in out
    assert "└─ GET /checkout (frontend)" in out


def test_plain_tables_when_rich_is_missing(traces: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setitem(sys.modules, "rich.console", None)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert cli._rich_console(Terminal()) is None
    assert cli._rich_console(io.StringIO()) is None

    # On a terminal without rich: the same plain, aligned tables as in a pipe.
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    assert cli.main(["stats", str(traces)]) == 0
    table = terminal.getvalue()
    assert table == ok("stats", str(traces))
    header, *rows = table.splitlines()
    assert header.split() == [
        "SERVICE",
        "OPERATION",
        "COUNT",
        "ERRORS",
        "ERR%",
        "P50",
        "P95",
        "P99",
        "TOTAL",
    ]
    assert len(rows) == 8
    db = next(r for r in rows if "db.insert" in r)
    assert db.split()[:5] == ["orders", "db.insert", "20", "20", "100.0%"]
    # Numbers are right-aligned under their titles: COUNT ends where each count ends.
    count_end = header.index("COUNT") + len("COUNT")
    assert all(row[count_end - 1].isdigit() and row[count_end] == " " for row in rows)
    assert not any(c in table for c in "─━│┃")  # no box drawing

    terminal.seek(0)
    terminal.truncate()
    assert cli.main(["errors", str(traces)]) == 0
    errors = terminal.getvalue()
    assert errors == ok("errors", str(traces))
    header, *rows = errors.splitlines()
    assert header.split()[:4] == ["COUNT", "SERVICE", "OPERATION", "ERROR"]
    assert any("query <num> timed out" in row for row in rows)


def test_progress_bar_only_for_large_inputs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    small = cli._Progress(True)
    small(0, 1000)
    small.close()
    assert capsys.readouterr().err == ""
    disabled = cli._Progress(False)
    disabled(0, cli.PROGRESS_MIN_BYTES * 2)
    disabled.close()
    assert capsys.readouterr().err == ""

    monkeypatch.setitem(sys.modules, "rich.progress", None)
    plain = cli._Progress(True)
    plain(cli.PROGRESS_MIN_BYTES, cli.PROGRESS_MIN_BYTES * 2)
    plain.close()
    assert "reading spans: 50%" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("200ms", 200.0),
        ("1.5s", 1500.0),
        ("300us", 0.3),
        ("300µs", 0.3),
        ("250ns", 0.00025),
        ("2m", 120_000.0),
        ("1h", 3_600_000.0),
        ("42", 42.0),
        (" 7 MS ", 7.0),
        (".5s", 500.0),
    ],
)
def test_parse_duration(text: str, ms: float) -> None:
    assert cli.parse_duration(text) == pytest.approx(ms)


@pytest.mark.parametrize("text", ["", "ms", "-5ms", "1.2.3s", "5 parsecs", "nan", "inf", "1e3ms"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid duration"):
        cli.parse_duration(text)


def test_parse_trace_id() -> None:
    assert cli.parse_trace_id(" 4BF92F3577B34DA6A3CE929D0E0E4736 ") == (
        "4bf92f3577b34da6a3ce929d0e0e4736"
    )
    for bad in ("4bf92f", "g" * 32, "0" * 32, "4bf92f3577b34da6a3ce929d0e0e47360"):
        with pytest.raises(argparse.ArgumentTypeError):
            cli.parse_trace_id(bad)


def test_format_ms() -> None:
    assert [cli.format_ms(v) for v in (None, 0.0421, 12.34, 4567.0, 185_000.0)] == [
        "-",
        "0.042ms",
        "12.3ms",
        "4.57s",
        "3m05.0s",
    ]


def test_console_script(traces: Path) -> None:
    script = shutil.which("ferrotrace", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the package is not installed with its console script")
    proc = subprocess.run([script, "deps", str(traces), "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == 4
