"""The process-wide tracer behind `ft.traced`, `ft.configure` and `ft.get_tracer`."""

from __future__ import annotations

import threading
from typing import Any

from ferrotrace import _core

_lock = threading.Lock()


def configure(**options: Any) -> _core.Tracer:
    """Creates the global tracer with `options` (see `Tracer`) and returns it.

    Options not given come from the environment (FERROTRACE_SERVICE_NAME,
    OTEL_SERVICE_NAME, FERROTRACE_OUTPUT_DIR, ...). A previous global tracer
    is flushed; spans it still has open finish into it.
    """
    tracer = _core.Tracer(**options)
    with _lock:
        previous = _core._global_tracer()
        _core._set_global_tracer(tracer)
    if previous is not None:
        previous.flush(timeout=5.0)
    return tracer


def get_tracer() -> _core.Tracer:
    """The global tracer, configured from the environment if `configure` was never called."""
    tracer = _core._global_tracer()
    if tracer is not None:
        return tracer
    with _lock:
        tracer = _core._global_tracer()
        if tracer is None:
            tracer = _core.Tracer()
            _core._set_global_tracer(tracer)
    return tracer
