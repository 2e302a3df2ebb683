"""Locks across fork: a child never inherits a lock another thread held."""

from __future__ import annotations

import os
import sys

import pytest
from conftest import run_python

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def test_fork_while_other_threads_replace_the_global_tracer(tmp_path):
    # Threads keep taking the global tracer's locks (configure/get_tracer)
    # and the tracer registry (new tracers) while the main thread forks.
    # Each child must use the global tracer and exit promptly; a lock held
    # at the moment of fork would hang it (and the parent's waitpid).
    code = f"""
        import os, sys, threading, time, warnings
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
        import ferrotrace as ft

        out = {str(tmp_path)!r}
        stop = threading.Event()

        def churn():
            while not stop.is_set():
                ft.configure(service_name="churn", output_dir=None)
                ft.get_tracer()
                ft.Tracer(output_dir=None).shutdown(timeout=1)

        threads = [threading.Thread(target=churn) for _ in range(3)]
        for t in threads:
            t.start()
        children = 0
        for i in range(30):
            pid = os.fork()
            if pid == 0:
                tracer = ft.configure(service_name="child", output_dir=out)
                with ft.get_tracer().start_span("in-child"):
                    pass
                os._exit(0 if tracer.flush(timeout=10) else 3)
            deadline = time.monotonic() + 20
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    assert os.waitstatus_to_exitcode(status) == 0, status
                    children += 1
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, 9)
                    raise SystemExit(f"child {{i}} hung after fork")
                time.sleep(0.01)
        stop.set()
        for t in threads:
            t.join()
        print(children)
    """
    proc = run_python(code, tmp_path, timeout=120)
    assert proc.stdout.strip() == "30"
    lines = sum(len(p.read_text().splitlines()) for p in tmp_path.glob("spans-child-*.jsonl"))
    assert lines == 30


@pytest.mark.skipif(sys.platform != "linux", reason="register_at_fork hooks checked on Linux")
def test_fork_hooks_release_the_locks_in_the_parent(tmp_path):
    code = """
        import os
        import ferrotrace as ft
        from ferrotrace import _global
        for _ in range(5):
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
        # Taken before each fork, released after: usable again here.
        assert _global._lock.acquire(timeout=1)
        _global._lock.release()
        ft.configure(service_name="after", output_dir=None)
        assert ft.get_tracer().service_name == "after"
        print("ok")
    """
    assert run_python(code, tmp_path).stdout.strip() == "ok"
