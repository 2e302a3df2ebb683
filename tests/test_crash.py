"""Crash and overload: a process killed mid-write, a file-size limit, a full
disk, and exact accounting under many threads, asyncio tasks and a tiny
buffer. Each test reads what is on disk back with the same readers users
have (`ft.analyze`, the streamed reader behind `ferrotrace stats`, the CLI,
`ferrotrace serve`), never through the tracer that wrote it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ferrotrace as ft
import pytest
from conftest import check_span_record, clean_env, read_spans, strict_loads
from ferrotrace import _core

WAIT_S = 60.0

# --------------------------------------------------------------------------
# SIGKILL mid-write
# --------------------------------------------------------------------------

# Large spans and a drain every 100 ms: each drain is one write of several
# megabytes, and a SIGKILL that lands inside it stops the kernel's copy at a
# page boundary, mid-line. The parent kills as soon as it sees a file grow.
WRITER_CHILD = """
    import sys
    import ferrotrace as ft
    t = ft.Tracer(service_name="killed", output_dir=sys.argv[1], flush_interval_ms=100,
                  buffer_size=65536, max_file_size_mb=1024)
    blob = "x" * 4000
    print("ready", flush=True)
    i = 0
    while True:
        with t.start_span("write", tags={"i": i, "blob": blob}):
            pass
        i += 1
"""

KILL_ATTEMPTS = 10


def files_size(directory: Path) -> int:
    if not directory.exists():
        return 0
    return sum(p.stat().st_size for p in directory.iterdir())


def kill_mid_write(directory: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(WRITER_CHILD), str(directory)],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        deadline = time.monotonic() + WAIT_S
        last = files_size(directory)
        while (size := files_size(directory)) <= last or size == 0:
            last = size
            if time.monotonic() > deadline:
                pytest.fail("the child never wrote")
            time.sleep(0.0005)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        child.kill()
        child.communicate()
    assert child.returncode == -signal.SIGKILL


def complete_and_torn(path: Path) -> tuple[list[dict[str, Any]], bytes]:
    """The file's complete lines (each a valid record) and its unterminated tail."""
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    records = read_jsonl_bytes(data[:cut], path)
    return records, data[cut:]


def read_jsonl_bytes(data: bytes, path: Path) -> list[dict[str, Any]]:
    records = []
    for body in data.decode("utf-8").split("\n")[:-1]:
        record = strict_loads(body)
        assert isinstance(record, dict), f"{path}: not an object: {body[:200]!r}"
        records.append(record)
    return records


def start_server(directory: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ferrotrace", "serve", str(directory), "--port", "0"]
        + ["--otlp-port", "0"],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline()


def test_sigkill_mid_write_leaves_at_most_one_torn_line_that_every_reader_skips(
    tmp_path: Path,
) -> None:
    torn_seen = 0
    for attempt in range(KILL_ATTEMPTS):
        d = tmp_path / f"kill{attempt}"
        kill_mid_write(d)
        complete: list[dict[str, Any]] = []
        torn_files = []
        for path in sorted(d.glob("spans*.jsonl")):
            records, tail = complete_and_torn(path)
            for record in records:
                check_span_record(record)
            complete += records
            if tail:
                # Only ever the last line, and only ever part of one record.
                assert b"\n" not in tail
                torn_files.append((path, len(records) + 1))
        for path in sorted(d.glob("traces*.jsonl")):
            complete_and_torn(path)  # raises on a torn line anywhere but the end
        assert len(torn_files) <= 1, torn_files
        assert len({r["span_id"] for r in complete}) == len(complete)

        # Every reader: the complete records, the torn line skipped (and
        # counted where the reader counts skipped lines).
        analysis = ft.analyze(d)
        assert analysis.span_count == len(complete)
        assert analysis.skipped_lines == len(torn_files)
        report = analysis.report()
        assert report["duplicate_spans"] == 0
        streamed = _core.operation_stats(d)["report"]
        assert (streamed["spans"], streamed["skipped_lines"]) == (len(complete), len(torn_files))
        if torn_files:
            [(path, line)] = torn_files
            assert (report["first_skipped"]["path"], report["first_skipped"]["line"]) == (
                str(path),
                line,
            )
            assert streamed["first_skipped"] == report["first_skipped"]

        cli = subprocess.run(
            [sys.executable, "-m", "ferrotrace", "stats", str(d), "--json"],
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0, cli.stderr
        assert "Traceback" not in cli.stderr
        assert sum(op["count"] for op in json.loads(cli.stdout)) == len(complete)
        assert ("skipped 1 malformed line" in cli.stderr) == bool(torn_files), cli.stderr

        # The server's follower treats an unterminated tail as a line still
        # being written: never indexed half.
        server, banner = start_server(d)
        try:
            assert f"; {len(complete)} spans indexed" in banner, banner
        finally:
            server.send_signal(signal.SIGTERM)
            _, err = server.communicate(timeout=30)
        assert server.returncode == 0, err
        assert "Traceback" not in err

        torn_seen += len(torn_files)
        if torn_seen:
            break
    # The readers above were checked against a real torn line at least once
    # (a kill timed on a growing file tears one almost every time).
    assert torn_seen == 1, f"no torn line in {KILL_ATTEMPTS} kills mid-write"


# --------------------------------------------------------------------------
# A file-size limit and a full disk: counted, never a torn line
# --------------------------------------------------------------------------

# Four bursts of 1000 spans of ~450 bytes, each flushed: ~1.8 MB in all.
BURSTS_CHILD = """
    import json, sys
    import ferrotrace as ft
    {setup}
    t = ft.Tracer(service_name="capped", output_dir=sys.argv[1], buffer_size=100_000,
                  flush_interval_ms=60_000)
    oks = []
    for burst in range(4):
        for i in range(1000):
            with t.start_span("s", tags={{"burst": burst, "i": i, "pad": "x" * 300}}):
                pass
        oks.append(t.flush(timeout=30))
    print(json.dumps({{"oks": oks, "metrics": t.metrics()}}))
"""

FILE_SIZE_LIMIT = 256 * 1024

# RLIMIT_FSIZE: a write past the limit is cut short and then fails with
# EFBIG (SIGXFSZ, which would kill the process, is ignored as servers do).
RLIMIT_SETUP = f"""
import resource, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({FILE_SIZE_LIMIT}, {FILE_SIZE_LIMIT}))
"""


def check_capped_run(directory: Path, result: dict[str, Any]) -> list[dict[str, Any]]:
    """Spans lost to the limit are counted as write errors; every file on disk
    ends on a complete line and holds exactly the spans counted as written."""
    m = result["metrics"]
    assert result["oks"][-1] is False, "a flush that lost spans must say so"
    assert m["spans_finished"] == 4000
    assert m["write_errors"] >= 1
    assert m["spans_dropped_write_error"] > 0
    assert m["spans_dropped"] == m["spans_dropped_write_error"]
    assert m["spans_written"] + m["spans_dropped"] == m["spans_finished"]
    for path in directory.iterdir():
        data = path.read_bytes()
        assert not data or data.endswith(b"\n"), f"{path.name} ends mid-line"
    spans = read_spans(directory)  # strict: every line complete and valid
    assert len(spans) == m["spans_written"]
    assert len({s["span_id"] for s in spans}) == len(spans)
    analysis = ft.analyze(directory)
    assert (analysis.span_count, analysis.skipped_lines) == (m["spans_written"], 0)
    return spans


def test_a_file_size_limit_is_counted_with_no_torn_line(tmp_path: Path) -> None:
    d = tmp_path / "capped"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(BURSTS_CHILD.format(setup=textwrap.indent(RLIMIT_SETUP, "    "))),
            str(d),
        ],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    spans = check_capped_run(d, json.loads(proc.stdout))
    assert spans, "the first file took spans up to the limit"
    for path in d.iterdir():
        assert path.stat().st_size <= FILE_SIZE_LIMIT
    assert "File too large" in proc.stderr  # warned once, not raised


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs. Mounting needs root (CAP_SYS_ADMIN); elsewhere the
    RLIMIT_FSIZE test above covers the same write path (a short write, then
    an error)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_a_full_disk_is_counted_with_no_torn_line(tiny_disk: Path) -> None:
    d = tiny_disk / "out"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(BURSTS_CHILD.format(setup="")), str(d)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    spans = check_capped_run(d, result)
    assert spans, "spans fitted before the disk filled"
    assert "No space left on device" in proc.stderr


# --------------------------------------------------------------------------
# Exact accounting under load
# --------------------------------------------------------------------------


def test_exact_accounting_with_threads_asyncio_tasks_and_a_tiny_buffer(make_tracer, tmp_path):
    d = tmp_path / "load"
    t = make_tracer(d, buffer_size=8, flush_interval_ms=60_000)
    threads_n, per_thread = 8, 2000
    tasks_n, per_task = 200, 10
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(per_thread):
                with t.start_span(f"thread-{n}", tags={"i": i}):
                    pass
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    async def task(n: int) -> None:
        with t.start_span("task", tags={"task": n}):
            for i in range(per_task - 1):
                with t.start_span("step", tags={"task": n, "i": i}):
                    await asyncio.sleep(0)

    async def tasks() -> None:
        await asyncio.gather(*(task(n) for n in range(tasks_n)))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_n)]
    for th in threads:
        th.start()
    asyncio.run(tasks())
    for th in threads:
        th.join(timeout=120)
    assert not errors
    expected = threads_n * per_thread + tasks_n * per_task
    assert t.flush(timeout=60)  # what was accepted was all written
    m = t.metrics()
    assert m["spans_finished"] == expected
    assert m["spans_dropped"] > 0, "a buffer of 8 must overflow under this load"
    assert m["spans_dropped"] == m["spans_dropped_buffer_full"]
    assert m["spans_written"] + m["spans_dropped"] == expected
    spans = read_spans(d)
    assert len(spans) == m["spans_written"]
    assert len({s["span_id"] for s in spans}) == len(spans)
    # A written step belongs to its own task's trace, whatever else was dropped.
    task_traces = {s["attributes"]["task"]: s["trace_id"] for s in spans if s["name"] == "task"}
    for s in spans:
        if s["name"] == "step" and s["attributes"]["task"] in task_traces:
            assert s["trace_id"] == task_traces[s["attributes"]["task"]]
    assert ft.analyze(d).span_count == m["spans_written"]
