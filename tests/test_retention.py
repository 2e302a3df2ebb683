"""Span files that never fill the disk: retention (`max_files`), compression of rotated files
(`compress_rotated`), and readers that read `.jsonl.gz` as they read `.jsonl`."""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import ferrotrace as ft
import pytest
from conftest import clean_env, read_jsonl, read_spans, run_python
from ferrotrace import cli

# Compression runs on a background thread; tests wait for it (never time it).
WAIT_S = 120.0


def ferrotrace_warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "ferrotrace" and r.levelno == logging.WARNING
    ]


def family_files(directory: Path, prefix: str, pid: int | None = None) -> list[Path]:
    """A family's files, plain and compressed (never a `.tmp`)."""
    pid = os.getpid() if pid is None else pid
    pattern = re.compile(rf"{prefix}-.+-{pid}-\d+\.jsonl(\.gz)?")
    return sorted(p for p in directory.iterdir() if pattern.fullmatch(p.name))


def read_any(path: Path) -> list[dict[str, Any]]:
    """The records of one file, gunzipped with Python's own gzip when compressed."""
    if path.name.endswith(".gz"):
        plain = path.with_name(path.name + ".plain")
        plain.write_bytes(gzip.decompress(path.read_bytes()))
        try:
            return read_jsonl(plain)
        finally:
            plain.unlink()
    return read_jsonl(path)


def wait_until_compressed(directory: Path, left_plain: tuple[Path, ...] = ()) -> None:
    """Waits until every rotated file is compressed: one plain file (the open one) per
    family, besides `left_plain`, and no compression under way."""
    family = re.compile(r"(.+)-\d+\.jsonl(\.gz)?")
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        names = [p.name for p in directory.iterdir() if p not in left_plain]
        families = {m.group(1) for m in map(family.fullmatch, names) if m}
        plain = [n for n in names if n.endswith(".jsonl")]
        if len(plain) == len(families) and not any(n.endswith(".tmp") for n in names):
            return
        time.sleep(0.01)
    pytest.fail(f"rotated files not compressed in {WAIT_S} s: {sorted(os.listdir(directory))}")


def write_spans(tracer: ft.Tracer, n: int, per_flush: int, pad: int = 100) -> None:
    for i in range(n):
        with tracer.start_span("work", tags={"i": i, "pad": "x" * pad}):
            pass
        if i % per_flush == per_flush - 1:
            assert tracer.flush(timeout=10.0)
    assert tracer.flush(timeout=10.0)


# --------------------------------------------------------------------------
# Retention
# --------------------------------------------------------------------------


def test_retention_over_many_rotations_keeps_the_newest_and_counts_the_rest(
    make_tracer, tmp_path, caplog
):
    caplog.set_level(logging.WARNING, logger="ferrotrace")
    d = tmp_path / "kept"
    t = make_tracer(d, max_file_size_mb=0.001, max_files=3)
    # Each flush writes ~1.2 KB of spans: a new span file per flush, ~40 rotations.
    write_spans(t, 200, per_flush=5)
    spans_family = family_files(d, "spans")
    traces_family = family_files(d, "traces")
    # Three rotated files and the open one, in each family.
    assert len(spans_family) == 4
    assert len(traces_family) == 4
    assert sorted(p.name for p in d.iterdir()) == sorted(
        p.name for p in spans_family + traces_family
    )
    m = t.metrics()
    on_disk = len(spans_family) + len(traces_family)
    assert m["files_deleted"] > 40
    assert m["files_deleted"] == m["files_opened"] - on_disk
    # What disappeared is exactly what is counted: every span written is on disk or deleted.
    spans = read_spans(d)
    assert m["spans_written"] == 200
    assert m["spans_deleted"] == 200 - len(spans)
    assert m["spans_dropped"] == 0
    # The newest survive, oldest deleted first.
    assert sorted(s["attributes"]["i"] for s in spans) == list(range(200 - len(spans), 200))
    assert sorted(Path(p) for p in t.files()) == sorted(spans_family + traces_family)
    # One log line, the first time.
    told = [w for w in ferrotrace_warnings(caplog) if "max_files" in w]
    assert len(told) == 1
    assert "spans_deleted" in told[0]


def test_max_files_zero_keeps_every_file(make_tracer, tmp_path):
    d = tmp_path / "all"
    t = make_tracer(d, max_file_size_mb=0.001, max_files=0)
    write_spans(t, 150, per_flush=5)
    m = t.metrics()
    assert len(family_files(d, "spans")) >= 30
    assert m["files_deleted"] == 0
    assert m["spans_deleted"] == 0
    assert len(read_spans(d)) == 150


def test_retention_is_per_tracer_family(make_tracer, tmp_path):
    """Two tracers of one process in one directory, same service: each deletes its own files."""
    d = tmp_path / "two"
    a = make_tracer(d, max_file_size_mb=0.001, max_files=2)
    b = make_tracer(d, max_file_size_mb=0.001, max_files=50)
    write_spans(b, 60, per_flush=5)
    b_files = set(b.files())
    write_spans(a, 200, per_flush=5)
    assert set(b.files()) == b_files
    assert all(Path(p).exists() for p in b_files)
    assert b.metrics()["files_deleted"] == 0
    assert a.metrics()["files_deleted"] > 0
    assert len(read_spans(d)) == 60 + 200 - a.metrics()["spans_deleted"]


TWO_PROCESS_CHILD = """
    import json, os, sys
    import ferrotrace as ft
    t = ft.Tracer(service_name="shared", output_dir=sys.argv[1], max_file_size_mb=0.002,
                  max_files=2, compress_rotated=sys.argv[2] == "gz")
    for i in range(600):
        with t.start_span("work", tags={"i": i, "pid": os.getpid(), "pad": "y" * 100}):
            pass
        if i % 10 == 9:
            assert t.flush(timeout=10.0)
    assert t.flush(timeout=10.0)
    m = t.metrics()
    files = t.files()
    t.shutdown(timeout=10.0)
    print(json.dumps({"pid": os.getpid(), "metrics": m, "files": files}))
"""


@pytest.mark.parametrize("mode", ["plain", "gz"])
def test_two_processes_in_one_directory_never_delete_each_others_files(tmp_path, mode):
    d = tmp_path / "shared"
    d.mkdir()
    # Files of another process of the same service (pid 1 is never ours).
    foreign_plain = d / "spans-shared-1-0.jsonl"
    foreign_gz = d / "spans-shared-1-1.jsonl.gz"
    foreign_plain.write_text('{"not": "ours"}\n')
    foreign_gz.write_bytes(gzip.compress(b'{"not": "ours either"}\n'))
    before = {p: p.read_bytes() for p in (foreign_plain, foreign_gz)}

    children = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(TWO_PROCESS_CHILD), str(d), mode],
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        results.append(json.loads(out))

    assert {p: p.read_bytes() for p in (foreign_plain, foreign_gz)} == before
    for result in results:
        pid, m = result["pid"], result["metrics"]
        mine = family_files(d, "spans", pid)
        # Two rotated files and the last open one; each child deleted only its own.
        assert 2 <= len(mine) <= 3, mine
        assert m["files_deleted"] > 5
        records = [r for p in mine for r in read_any(p)]
        assert {r["attributes"]["pid"] for r in records} == {pid}
        assert m["spans_written"] == 600
        assert len(records) + m["spans_deleted"] == 600
        # Its list of files is its files on disk (compressed since listed, maybe).
        listed = {p.removesuffix(".gz") for p in result["files"] if "/spans-" in p}
        assert listed == {str(p).removesuffix(".gz") for p in mine}


# --------------------------------------------------------------------------
# Compression
# --------------------------------------------------------------------------


def test_rotated_files_are_gzipped_and_nothing_is_lost(make_tracer, tmp_path):
    d = tmp_path / "gz"
    t = make_tracer(d, max_file_size_mb=0.002, max_files=0, compress_rotated=True)
    write_spans(t, 300, per_flush=10)
    wait_until_compressed(d)
    spans = family_files(d, "spans")
    compressed = [p for p in spans if p.name.endswith(".jsonl.gz")]
    assert len(compressed) >= 10
    assert len(spans) == len(compressed) + 1
    # Python's gzip reads every file: a standard gzip stream, complete.
    records = [r for p in spans for r in read_any(p)]
    assert sorted(r["attributes"]["i"] for r in records) == list(range(300))
    assert sorted(Path(p) for p in t.files()) == sorted(
        family_files(d, "spans") + family_files(d, "traces")
    )
    assert ft.analyze(d).span_count == 300
    total_plain = sum(len(json.dumps(r)) for r in records)
    assert sum(p.stat().st_size for p in compressed) < total_plain / 3


def test_compression_with_retention(make_tracer, tmp_path):
    d = tmp_path / "both"
    t = make_tracer(d, max_file_size_mb=0.002, max_files=3, compress_rotated=True)
    write_spans(t, 400, per_flush=10)
    wait_until_compressed(d)
    spans = family_files(d, "spans")
    assert [p.name.endswith(".gz") for p in spans].count(True) == 3
    assert len(spans) == 4
    m = t.metrics()
    analysis = ft.analyze(d)
    assert analysis.span_count + m["spans_deleted"] == 400
    assert analysis.skipped_lines == 0


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_during_compression_loses_nothing(make_tracer, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="ferrotrace")
    d = tmp_path / "full"
    # Only the flush drains (no timed drain mid-loop), so the 10 spans make
    # one batch and one file.
    t = make_tracer(
        d, max_file_size_mb=0.002, max_files=0, compress_rotated=True, flush_interval_ms=60_000
    )
    write_spans(t, 10, per_flush=10)
    [doomed] = [Path(p) for p in t.files() if Path(p).name.startswith("spans")]
    lines_before = read_jsonl(doomed)
    # Its compressed data will go to /dev/full: every write fails with ENOSPC.
    tmp = doomed.with_name(doomed.name + ".gz.tmp")
    tmp.symlink_to("/dev/full")
    write_spans(t, 100, per_flush=10)  # rotates it out, and more
    deadline = time.monotonic() + WAIT_S
    while os.path.lexists(tmp) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not os.path.lexists(tmp), "the failed compression's temporary file was removed"
    wait_until_compressed(d, left_plain=(doomed,))
    assert read_jsonl(doomed) == lines_before
    assert not doomed.with_name(doomed.name + ".gz").exists()
    assert Path("/dev/full").exists()
    later = [p for p in family_files(d, "spans") if p.name.endswith(".gz")]
    assert later, "the compressor went on with the next files"
    assert len(read_spans_anywhere(d)) == 110
    assert ft.analyze(d).span_count == 110
    t.metrics()  # logs pending warnings
    told = [w for w in ferrotrace_warnings(caplog) if "cannot compress" in w]
    assert len(told) == 1 and "nothing is lost" in told[0]
    assert t.metrics()["spans_dropped"] == 0


def read_spans_anywhere(directory: Path) -> list[dict[str, Any]]:
    return [r for p in family_files(directory, "spans") for r in read_any(p)]


SIGKILL_CHILD = """
    import os, sys
    import ferrotrace as ft
    t = ft.Tracer(service_name="killed", output_dir=sys.argv[1], max_file_size_mb=24,
                  max_files=0, compress_rotated=True)
    def burst(n):
        for i in range(n):
            with t.start_span("big", tags={"blob": os.urandom(1500).hex()}):
                pass
        assert t.flush(timeout=30.0)
    burst(8000)   # ~26 MB: the first file fills up
    burst(10)     # this batch opens the second file, rotating the first out
    print(t.metrics()["spans_written"], flush=True)
    sys.stdin.read()   # wait to be killed
"""


def test_sigkill_during_compression_leaves_the_plain_file_or_a_complete_gz(tmp_path):
    d = tmp_path / "killed"
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SIGKILL_CHILD), str(d)],
        env=clean_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        written = int(child.stdout.readline())
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if any(p.name.endswith(".gz.tmp") for p in d.iterdir()):
                break
            time.sleep(0.001)
        else:
            pytest.fail(f"no compression seen: {sorted(os.listdir(d))}")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        child.kill()
        child.communicate()
    assert child.returncode == -signal.SIGKILL
    names = sorted(p.name for p in d.iterdir())
    plain = [n for n in names if n.startswith("spans") and n.endswith(".jsonl")]
    complete = [n for n in names if n.startswith("spans") and n.endswith(".jsonl.gz")]
    # The rotated file is there, plain (beside the unfinished .tmp) or as a complete .gz.
    assert len(plain) + len(complete) >= 2, names
    for name in complete:
        gzip.decompress((d / name).read_bytes())  # raises if incomplete
    analysis = ft.analyze(d)
    assert analysis.span_count == written
    assert analysis.skipped_lines == 0
    assert analysis.report()["duplicate_spans"] == 0


# --------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compressed_and_plain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same spans twice: as written with compress_rotated (rotated files gzipped by
    ferrotrace) and as plain files (gunzipped by Python's gzip)."""
    gz_dir = tmp_path_factory.mktemp("compressed")
    front = ft.Tracer(
        service_name="front",
        output_dir=gz_dir,
        max_file_size_mb=0.004,
        max_files=0,
        compress_rotated=True,
    )
    back = ft.Tracer(
        service_name="back",
        output_dir=gz_dir,
        max_file_size_mb=0.004,
        max_files=0,
        compress_rotated=True,
    )
    try:
        for i in range(120):
            with front.start_span(f"GET /item/{i % 4}", kind="server") as root:
                with back.start_span("db.query", kind="server", parent=root) as db:
                    db.set_tag("rows", i)
                    if i % 7 == 0:
                        db.set_error(f"timeout after {i} ms")
            if i % 10 == 9:
                assert front.flush(timeout=10.0) and back.flush(timeout=10.0)
        assert front.flush(timeout=10.0) and back.flush(timeout=10.0)
        wait_until_compressed(gz_dir)
    finally:
        front.shutdown(timeout=10.0)
        back.shutdown(timeout=10.0)
    plain_dir = tmp_path_factory.mktemp("plain")
    for p in gz_dir.iterdir():
        if p.name.endswith(".gz"):
            (plain_dir / p.name[: -len(".gz")]).write_bytes(gzip.decompress(p.read_bytes()))
        else:
            shutil.copy(p, plain_dir / p.name)
    assert len(list(gz_dir.glob("spans*.jsonl.gz"))) >= 4
    assert not list(plain_dir.glob("*.gz"))
    return gz_dir, plain_dir


def test_analyze_reads_gz_with_the_same_results(compressed_and_plain):
    gz_dir, plain_dir = compressed_and_plain
    gz, plain = ft.analyze(gz_dir), ft.analyze(plain_dir)
    assert gz.span_count == plain.span_count == 240
    assert gz.trace_count == plain.trace_count == 120
    assert gz.files == plain.files
    assert gz.skipped_lines == plain.skipped_lines == 0
    assert gz.operations() == plain.operations()
    assert gz.latency_stats() == plain.latency_stats()
    assert gz.service_dependencies() == plain.service_dependencies()
    assert gz.service_dependencies() == [{"caller": "front", "callee": "back", "calls": 120}]
    assert gz.error_groups() == plain.error_groups()
    assert gz.error_traces() == plain.error_traces()
    assert len(gz.error_traces()) == 18
    assert gz.slow_traces(0) == plain.slow_traces(0)
    some = gz.error_traces()[0]["trace_id"]
    assert gz.get_trace(some) == plain.get_trace(some)
    assert gz.render_tree(some) == plain.render_tree(some)
    assert gz.critical_path(some) == plain.critical_path(some)


CLI_COMMANDS = [
    ["stats"],
    ["stats", "--sketch"],
    ["stats", "--self-time"],
    ["traces", "--limit", "0"],
    ["traces", "--errors"],
    ["deps"],
    ["errors"],
    ["tree", "{trace}"],
    ["critical-path", "{trace}"],
]


@pytest.mark.parametrize("command", CLI_COMMANDS, ids=lambda c: " ".join(c))
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_every_cli_command_reads_gz_with_the_same_results(
    compressed_and_plain, capsys, command, as_json
):
    gz_dir, plain_dir = compressed_and_plain
    trace = ft.analyze(plain_dir).error_traces()[0]["trace_id"]
    outputs = []
    for directory in (gz_dir, plain_dir):
        argv = [a.format(trace=trace) for a in command]
        argv.insert(1 if command[0] not in ("tree", "critical-path") else 2, str(directory))
        if as_json:
            argv.append("--json")
        assert cli.main(argv) == 0
        out, err = capsys.readouterr()
        assert err == ""
        outputs.append(out.replace(str(directory), "DIR"))
    assert outputs[0] == outputs[1]
    assert outputs[0].strip()


def test_a_truncated_gz_gives_its_readable_lines(compressed_and_plain, tmp_path, capsys):
    gz_dir, _ = compressed_and_plain
    d = tmp_path / "cut"
    shutil.copytree(gz_dir, d)
    victim = max(d.glob("spans*.jsonl.gz"), key=lambda p: p.stat().st_size)
    whole = len(read_any(victim))
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    analysis = ft.analyze(d)
    assert analysis.skipped_lines == 1
    assert 240 - whole < analysis.span_count < 240
    first = analysis.report()["first_skipped"]
    assert first["path"] == str(victim)
    assert "cut short or damaged" in first["error"]
    # The CLI says so on stderr and answers from the rest.
    assert cli.main(["stats", str(d)]) == 0
    out, err = capsys.readouterr()
    assert "skipped 1 malformed line" in err
    assert "Traceback" not in err and out.strip()


# --------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------


def test_options_from_keywords_and_environment(make_tracer, tmp_path, monkeypatch):
    t = make_tracer(tmp_path, max_files=5, compress_rotated=True)
    assert t.config["max_files"] == 5
    assert t.config["compress_rotated"] is True
    monkeypatch.setenv("FERROTRACE_MAX_FILES", "0")
    monkeypatch.setenv("FERROTRACE_COMPRESS_ROTATED", "true")
    t = make_tracer(tmp_path)
    assert t.config["max_files"] == 0
    assert t.config["compress_rotated"] is True
    t = make_tracer(tmp_path, max_files=7, compress_rotated=False)
    assert (t.config["max_files"], t.config["compress_rotated"]) == (7, False)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"max_files": -1}, ValueError),
        ({"max_files": "3"}, TypeError),
        ({"max_files": 2.5}, TypeError),
        ({"compress_rotated": "yes"}, TypeError),
        ({"compress_rotated": 1}, TypeError),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else v.__name__,
)
def test_bad_keyword_values(tmp_path, kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        ft.Tracer(output_dir=tmp_path, **kwargs)


@pytest.mark.parametrize(
    "var, raw, key, default",
    [
        ("FERROTRACE_MAX_FILES", "-1", "max_files", 20),
        ("FERROTRACE_MAX_FILES", "lots", "max_files", 20),
        ("FERROTRACE_MAX_FILES", "2.5", "max_files", 20),
        ("FERROTRACE_COMPRESS_ROTATED", "maybe", "compress_rotated", False),
        ("FERROTRACE_COMPRESS_ROTATED", "gzip", "compress_rotated", False),
    ],
)
def test_bad_environment_values_warn_and_fall_back(
    make_tracer, tmp_path, monkeypatch, caplog, var, raw, key, default
):
    caplog.set_level(logging.WARNING, logger="ferrotrace")
    monkeypatch.setenv(var, raw)
    t = make_tracer(tmp_path)
    assert t.config[key] == default
    warnings = ferrotrace_warnings(caplog)
    assert len(warnings) == 1 and var in warnings[0]


def test_after_fork_the_child_starts_its_own_families(tmp_path):
    d = tmp_path / "forked"
    proc = run_python(
        f"""
        import json, os
        import ferrotrace as ft
        t = ft.Tracer(service_name="f", output_dir={str(d)!r}, max_file_size_mb=0.001,
                      max_files=2, compress_rotated=True)
        def work(n):
            for i in range(n):
                with t.start_span("s", tags={{"pad": "z" * 200, "pid": os.getpid()}}):
                    pass
                assert t.flush(timeout=10.0)
        work(10)
        before = t.files()
        pid = os.fork()
        if pid == 0:
            work(40)
            deleted = t.metrics()["files_deleted"]
            t.shutdown(timeout=10.0)
            os._exit(0 if deleted > 0 else 3)
        _, status = os.waitpid(pid, 0)
        kept = all(os.path.exists(p) or os.path.exists(p + ".gz") for p in before)
        t.shutdown(timeout=10.0)
        print(json.dumps({{"parent": os.getpid(), "child": pid, "status": status, "kept": kept}}))
        """,
        cwd=tmp_path,
    )
    result = json.loads(proc.stdout)
    assert result["status"] == 0, "the child deleted some of its own files"
    assert result["kept"], "the child deleted none of the parent's files"
    for pid in (result["parent"], result["child"]):
        mine = family_files(d, "spans", pid)
        assert 1 <= len(mine) <= 3, mine
        assert {r["attributes"]["pid"] for p in mine for r in read_any(p)} == {pid}
