"""Process lifecycle hooks: flush at exit, a fresh pipeline after fork.

* At normal interpreter exit every tracer is flushed and stopped, bounded by
  FERROTRACE_EXIT_TIMEOUT seconds (default 5) so exit never hangs.
* Around fork the locks a child could inherit held (the global tracer's,
  the tracer registry) are taken before and released after, in both
  processes.
* In a forked child each tracer gets a new buffer and writer thread, and ids
  are reseeded; spans the parent had buffered stay the parent's to write.
* A `multiprocessing` child started by fork ends with `os._exit()`, which
  skips atexit; it is flushed by a multiprocessing finalizer instead.
"""

from __future__ import annotations

import atexit
import os
import sys

from ferrotrace import _core, _global

_installed = False


def _exit_timeout() -> float:
    raw = os.environ.get("FERROTRACE_EXIT_TIMEOUT", "")
    try:
        value = float(raw)
    except ValueError:
        return 5.0
    return value if value >= 0 and value == value else 5.0


def _at_exit() -> None:
    try:
        _core._shutdown_all(timeout=_exit_timeout())
    except Exception:  # exit must go on whatever happens here
        pass


def _flush_before_multiprocessing_exit() -> None:
    try:
        _core._flush_all(timeout=_exit_timeout())
    except Exception:
        pass


def _register_multiprocessing_flush(_: object = None) -> None:
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.Finalize(None, _flush_before_multiprocessing_exit, exitpriority=100)


def _before_fork() -> None:
    # The locks a child must not inherit held: the global tracer's (Python
    # and Rust) and the tracer registry. Taken here, released by the hooks
    # below in both processes.
    _global._lock.acquire()
    _core._before_fork()


def _after_fork_in_parent() -> None:
    _core._after_fork_in_parent()
    _global._lock.release()


def _after_fork_in_child() -> None:
    _core._after_fork_in_child()
    _global._lock.release()
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        # A multiprocessing child clears its finalizers after fork, then
        # runs the after-fork hooks: register the flush from one of those.
        util.register_after_fork(_core, _register_multiprocessing_flush)


def install_process_hooks() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    atexit.register(_at_exit)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(
            before=_before_fork,
            after_in_parent=_after_fork_in_parent,
            after_in_child=_after_fork_in_child,
        )
