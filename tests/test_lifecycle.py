"""Process lifecycle: shutdown, fork, multiprocessing, interpreter exit."""

from __future__ import annotations

import gc
import json
import re
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import ferrotrace as ft
import pytest
from conftest import (
    clean_env,
    read_jsonl,
    read_spans,
    read_traces,
    run_python,
    span_files,
)


def spans_by_pid(directory: Path) -> dict[int, list[dict]]:
    """Span records grouped by the pid in their file's name."""
    out: dict[int, list[dict]] = {}
    for path in span_files(directory):
        m = re.fullmatch(r"spans-.+-(\d+)-\d+\.jsonl", path.name)
        assert m, path.name
        out.setdefault(int(m.group(1)), []).extend(read_jsonl(path))
    return out


# --------------------------------------------------------------------------
# shutdown
# --------------------------------------------------------------------------


def test_shutdown_writes_pending_spans(make_tracer, tmp_path):
    d = tmp_path / "sd"
    t = make_tracer(d, flush_interval_ms=60000)
    for _ in range(100):
        with t.start_span("s"):
            pass
    t.shutdown(timeout=10)
    assert len(read_spans(d)) == 100
    assert len(read_traces(d)) == 100
    assert t.metrics()["spans_written"] == 100


def test_spans_after_shutdown_are_counted_not_raised(make_tracer, tmp_path):
    d = tmp_path / "after"
    t = make_tracer(d)
    open_span = t.start_span("open across shutdown")
    with t.start_span("before"):
        pass
    t.shutdown(timeout=10)
    before_files = {p: p.read_bytes() for p in span_files(d)}

    @t.traced("traced after")
    def f(x):
        return x + 1

    with t.start_span("after") as s:
        s.set_tag("k", "v")
        s.log("e")
    assert f(1) == 2
    open_span.finish()
    t.flush(timeout=1)
    t.shutdown(timeout=1)  # idempotent
    m = t.metrics()
    assert m["spans_dropped_after_shutdown"] == 3
    assert m["spans_dropped"] == 3
    assert m["spans_finished"] == 4
    assert m["spans_written"] == 1
    assert {p: p.read_bytes() for p in span_files(d)} == before_files


def test_flush_after_shutdown_does_not_hang(make_tracer, tmp_path):
    d = tmp_path / "x"
    t = make_tracer(d, flush_interval_ms=60000)
    for _ in range(10):
        with t.start_span("s"):
            pass
    assert t.shutdown(timeout=10) is True
    # Shutdown wrote everything, so flush has nothing to wait for: True at
    # once. Waiting on the stopped writer instead would time out and say False.
    assert t.flush(timeout=2) is True
    assert t.flush(timeout=0) is True
    assert len(read_spans(d)) == 10
    assert t.metrics()["spans_written"] == 10


def test_dropped_tracer_still_writes_its_spans(tmp_path):
    d = tmp_path / "gc"

    def emit():
        t = ft.Tracer(service_name="gc", output_dir=d, flush_interval_ms=60000)
        for _ in range(10):
            t.start_span("s").finish()

    emit()
    gc.collect()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(read_spans(d)) < 10:
        time.sleep(0.02)
    assert len(read_spans(d)) == 10


# --------------------------------------------------------------------------
# fork
# --------------------------------------------------------------------------

FORK_SCRIPT = """
import json, os, sys, traceback
import ferrotrace as ft

MODE = {mode!r}
t = ft.Tracer(service_name="forky", output_dir={out!r}, flush_interval_ms=60000)
for i in range(5):
    with t.start_span(f"before{{i}}"):
        pass
# Precondition: the "before" spans are still buffered (not yet on disk) at fork.
pre_fork_files = sorted(os.listdir({out!r})) if os.path.isdir({out!r}) else []
open_span = t.start_span("open_at_fork")
with t.start_span("active_at_fork"):
    pid = os.fork()
    if pid == 0:
        try:
            # Spans of the child's own; the parent's open span stays the parent's.
            remote = ft.SpanContext("ab" * 16, "cd" * 8, is_remote=True)
            for i in range(5):
                with t.start_span(f"child{{i}}", parent=remote):
                    with t.start_span(f"child{{i}}.inner"):
                        pass
            open_span.finish()
            ok = t.flush(timeout=10) if MODE == "flush" else True
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        if MODE == "flush":
            os._exit(0 if ok else 3)
        sys.exit(0)
_, status = os.waitpid(pid, 0)
assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
for i in range(5):
    with t.start_span(f"after{{i}}"):
        pass
open_span.finish()
assert t.flush(timeout=10)
print(json.dumps({{"parent": os.getpid(), "child": pid, "pre_fork_files": pre_fork_files}}))
"""


@pytest.mark.parametrize("mode", ["flush", "exit"])
def test_fork_child_writes_its_own_spans_once(tmp_path, mode):
    out = tmp_path / "out"
    proc = run_python(FORK_SCRIPT.format(mode=mode, out=str(out)), cwd=tmp_path)
    pids = json.loads(proc.stdout.strip().splitlines()[-1])
    parent_pid, child_pid = pids["parent"], pids["child"]
    assert pids["pre_fork_files"] == []
    groups = spans_by_pid(out)
    assert set(groups) == {parent_pid, child_pid}
    all_spans = [s for spans in groups.values() for s in spans]
    ids = Counter(s["span_id"] for s in all_spans)
    assert all(c == 1 for c in ids.values()), [i for i, c in ids.items() if c > 1]

    parent_names = Counter(s["name"] for s in groups[parent_pid])
    child_names = Counter(s["name"] for s in groups[child_pid])
    expected_parent = {f"before{i}" for i in range(5)} | {f"after{i}" for i in range(5)}
    expected_parent |= {"open_at_fork", "active_at_fork"}
    assert parent_names == Counter(expected_parent)
    expected_child = {f"child{i}" for i in range(5)} | {f"child{i}.inner" for i in range(5)}
    assert child_names == Counter(expected_child)

    child_ids = {s["span_id"] for s in groups[child_pid]}
    parent_ids = {s["span_id"] for s in groups[parent_pid]}
    assert not child_ids & parent_ids
    by_name = {s["name"]: s for s in all_spans}
    for i in range(5):
        assert by_name[f"child{i}.inner"]["parent_id"] == by_name[f"child{i}"]["span_id"]
        assert by_name[f"child{i}"]["parent_id"] == "cd" * 8
    child_traces = {s["trace_id"] for s in groups[child_pid]}
    parent_traces = {s["trace_id"] for s in groups[parent_pid]}
    assert not child_traces & parent_traces - {"ab" * 16}

    summaries = read_traces(out)
    roots = Counter(s["root_span_id"] for s in summaries)
    assert all(c == 1 for c in roots.values())
    assert {s["operation"] for s in summaries} == (
        {f"before{i}" for i in range(5)}
        | {f"after{i}" for i in range(5)}
        | {f"child{i}" for i in range(5)}
        | {"open_at_fork", "active_at_fork"}
    )


MP_SCRIPT = """
import json, os, multiprocessing as mp
import ferrotrace as ft

OUT = {out!r}
ft.configure(service_name="mp", output_dir=OUT, flush_interval_ms=60000)
local = ft.Tracer(service_name="mplocal", output_dir=OUT, flush_interval_ms=60000)

@ft.traced("work")
def work(n):
    for i in range(n):
        with local.start_span("local-work"):
            pass
    return os.getpid()

def target(n):
    work(n)

def pool_task(n):
    return work(n)

if __name__ == "__main__":
    ctx = mp.get_context("fork")
    with ft.get_tracer().start_span("parent-root"):
        pass
    procs = [ctx.Process(target=target, args=(20,)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0, p.exitcode
    pool = ctx.Pool(2)
    pool_pids = pool.map(pool_task, [5] * 4)
    pool.close()
    pool.join()
    ft.get_tracer().flush(10)
    local.flush(10)
    print(json.dumps({{"parent": os.getpid(), "procs": [p.pid for p in procs],
                      "pool": sorted(set(pool_pids))}}))
"""


def test_multiprocessing_fork_children_write_their_spans(tmp_path):
    out = tmp_path / "out"
    proc = run_python(MP_SCRIPT.format(out=str(out)), cwd=tmp_path)
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    groups = spans_by_pid(out)
    for pid in info["procs"]:
        names = Counter(s["name"] for s in groups.get(pid, []))
        assert names == Counter({"work": 1, "local-work": 20}), (pid, names)
    pool_work = Counter()
    for pid in info["pool"]:
        for s in groups.get(pid, []):
            pool_work[s["name"]] += 1
    assert pool_work == Counter({"work": 4, "local-work": 20})
    parent = Counter(s["name"] for s in groups.get(info["parent"], []))
    assert parent == Counter({"parent-root": 1})
    ids = [s["span_id"] for spans in groups.values() for s in spans]
    assert len(ids) == len(set(ids))


# --------------------------------------------------------------------------
# Interpreter exit
# --------------------------------------------------------------------------


def test_exit_without_flush_writes_everything(tmp_path):
    out = tmp_path / "out"
    run_python(
        f"""
        import ferrotrace as ft
        t = ft.Tracer(service_name="exit", output_dir={str(out)!r}, flush_interval_ms=60000)
        for i in range(1000):
            with t.start_span("root", tags={{"i": i}}):
                with t.start_span("child"):
                    pass
        """,
        cwd=tmp_path,
    )
    spans = read_spans(out)
    assert len(spans) == 2000
    assert sorted(s["attributes"]["i"] for s in spans if s["name"] == "root") == list(range(1000))
    assert len(read_traces(out)) == 1000


def test_exit_flushes_global_tracer_and_several_tracers(tmp_path):
    out = tmp_path / "out"
    run_python(
        f"""
        import ferrotrace as ft
        ft.configure(service_name="g", output_dir={str(out)!r}, flush_interval_ms=60000)
        others = [ft.Tracer(service_name=f"s{{i}}", output_dir={str(out)!r},
                            flush_interval_ms=60000) for i in range(3)]

        @ft.traced
        def handler():
            for t in others:
                with t.start_span("inner"):
                    pass

        for _ in range(50):
            handler()
        """,
        cwd=tmp_path,
    )
    counts = Counter(s["service"] for s in read_spans(out))
    assert counts == Counter({"g": 50, "s0": 50, "s1": 50, "s2": 50})


def test_exit_with_uncaught_exception_still_flushes(tmp_path):
    out = tmp_path / "out"
    code = f"""
        import ferrotrace as ft
        t = ft.Tracer(service_name="crash", output_dir={str(out)!r}, flush_interval_ms=60000)
        with t.start_span("ok"):
            pass
        with t.start_span("crashing"):
            raise RuntimeError("fatal")
        """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "RuntimeError: fatal" in proc.stderr
    spans = {s["name"]: s for s in read_spans(out)}
    assert set(spans) == {"ok", "crashing"}
    assert spans["crashing"]["status"] == "error"
    assert spans["crashing"]["error"]["type"] == "RuntimeError"


def test_exit_with_open_span_and_daemon_thread_does_not_hang(tmp_path):
    out = tmp_path / "out"
    run_python(
        f"""
        import threading
        import ferrotrace as ft
        t = ft.Tracer(service_name="daemon", output_dir={str(out)!r}, flush_interval_ms=60000)
        started = threading.Event()

        def spam():
            while True:
                with t.start_span("daemon"):
                    with t.start_span("daemon-child") as s:
                        s.set_tag("k", "v" * 50)
                started.set()

        threading.Thread(target=spam, daemon=True).start()
        assert started.wait(10)
        never_finished = t.start_span("never finished")
        for i in range(100):
            with t.start_span("main", tags={{"i": i}}):
                pass
        """,
        cwd=tmp_path,
        timeout=30,
    )
    spans = read_spans(out)  # every line complete and strict
    main = sorted(s["attributes"]["i"] for s in spans if s["name"] == "main")
    assert main == list(range(100))
    assert "never finished" not in {s["name"] for s in spans}
    assert any(s["name"] == "daemon" for s in spans)


FORK_STRESS_SCRIPT = """
import json, os, threading
import ferrotrace as ft

t = ft.Tracer(service_name="stress", output_dir={out!r}, buffer_size=1024, flush_interval_ms=1)
stop = threading.Event()

def spam():
    while not stop.is_set():
        with t.start_span("spam") as s:
            s.set_tag("k", "v")
            with t.start_span("spam-child"):
                pass

threads = [threading.Thread(target=spam, daemon=True) for _ in range(2)]
for th in threads:
    th.start()
children = []
for i in range({forks}):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            with t.start_span("forked", tags={{"i": i}}):
                pass
            code = 0 if t.flush(timeout=10) else 3
        finally:
            os._exit(code)
    children.append(pid)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (i, status)
stop.set()
for th in threads:
    th.join()
assert t.flush(timeout=10)
print(json.dumps(children))
"""


def test_fork_while_other_threads_are_tracing(tmp_path):
    out = tmp_path / "out"
    forks = 20
    proc = run_python(
        FORK_STRESS_SCRIPT.format(out=str(out), forks=forks), cwd=tmp_path, timeout=60
    )
    children = json.loads(proc.stdout.strip().splitlines()[-1])
    groups = spans_by_pid(out)
    for i, pid in enumerate(children):
        names = [s["name"] for s in groups.get(pid, [])]
        assert names == ["forked"], (i, pid, names[:5])
        assert groups[pid][0]["attributes"] == {"i": i}
    ids = [s["span_id"] for spans in groups.values() for s in spans]
    assert len(ids) == len(set(ids))


# A thread makes its first ferrotrace calls (first span, tags, propagation,
# an error's traceback, the global tracer) while the main thread forks as
# fast as it can, so forks land while the thread creates ferrotrace's lazily
# made state. A child that inherited some of it half-made used to hang on its
# first span (PyO3's once-cells: see src/python/once.rs). Children that do not
# finish in time are counted, killed and reported.
FIRST_USE_FORK_SCRIPT = """
import os, sys, threading, time
import ferrotrace as ft

t = ft.Tracer(service_name="first-use", output_dir={out!r})
go = threading.Event()

class Headers:
    def __init__(self):
        self.data = {{}}
    def items(self):
        return self.data.items()
    def __setitem__(self, k, v):
        self.data[k] = v

@ft.traced
def decorated():
    return 1

def first_uses():
    go.wait()
    with t.start_span("thread") as s:
        s.set_tag("k", "v")
        ft.inject(Headers())
    ft.extract(Headers())
    try:
        with t.start_span("error"):
            raise ValueError("boom")
    except ValueError:
        pass
    decorated()

th = threading.Thread(target=first_uses)
th.start()
pids = []
go.set()
while th.is_alive() and len(pids) < 300:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            with t.start_span("child") as s:
                s.set_tag("k", "v")
                ft.inject(Headers())
            decorated()
            code = 0 if t.flush(timeout=5) and ft.get_tracer().flush(timeout=5) else 3
        finally:
            os._exit(code)
    pids.append(pid)
th.join()
deadline = time.monotonic() + 20
left, failed = set(pids), []
while left and time.monotonic() < deadline:
    for pid in list(left):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            left.discard(pid)
            if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
                failed.append(status)
    time.sleep(0.005)
for pid in left:
    os.kill(pid, 9)
print(len(pids), len(left), failed)
"""


def test_fork_while_a_thread_makes_its_first_ferrotrace_calls(tmp_path):
    results = []
    for run in range(8):
        proc = run_python(
            FIRST_USE_FORK_SCRIPT.format(out=str(tmp_path / f"out{run}")),
            cwd=tmp_path,
            timeout=60,
        )
        forks, hung, failed = proc.stdout.split(maxsplit=2)
        results.append((int(forks), int(hung), failed.strip()))
    assert all(forks >= 1 for forks, _, _ in results), results
    assert [(hung, failed) for _, hung, failed in results] == [(0, "[]")] * 8, results


# Deterministic: a thread is stopped inside the making of ferrotrace's
# logger (its first warning runs `logging.getLogger`, patched to wait) while
# the main thread forks. The child's own first warning needs that logger: it
# must make it itself, not wait for a thread that does not exist there.
FORK_DURING_LAZY_INIT_SCRIPT = """
import logging, os, threading, time
import ferrotrace as ft

real_get_logger = logging.getLogger
inside, forked = threading.Event(), threading.Event()

def get_logger_that_waits(name=None):
    if name == "ferrotrace" and not inside.is_set():
        inside.set()
        forked.wait(10)
    return real_get_logger(name)

logging.getLogger = get_logger_that_waits
os.environ["FERROTRACE_SAMPLE_RATE"] = "not-a-number"  # a warning per tracer
th = threading.Thread(target=ft.Tracer, kwargs=dict(service_name="t", output_dir={out!r}))
th.start()
assert inside.wait(10)
pid = os.fork()
if pid == 0:
    ft.Tracer(service_name="c", output_dir={out!r})
    os._exit(0)
forked.set()
th.join()
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    time.sleep(0.01)
else:
    os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
print("hung" if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
"""


def test_fork_while_another_thread_is_making_lazily_made_state(tmp_path):
    proc = run_python(
        FORK_DURING_LAZY_INIT_SCRIPT.format(out=str(tmp_path / "out")), cwd=tmp_path, timeout=60
    )
    assert proc.stdout.split() == ["0"], proc.stdout
    # Both the thread's warning and the child's were logged.
    assert proc.stderr.count('ignoring FERROTRACE_SAMPLE_RATE="not-a-number"') == 2, proc.stderr
