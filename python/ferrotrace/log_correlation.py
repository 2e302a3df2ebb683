"""Log correlation: trace and span ids on every log record.

    ft.instrument_logging()
    logging.basicConfig(format="%(asctime)s %(levelname)s [%(trace_id)s %(span_id)s] %(message)s")

Every ``LogRecord`` created while a span is active carries ``trace_id`` (32
hex) and ``span_id`` (16 hex) attributes, usable in format strings and read by
JSON formatters; outside a span both are empty strings, so format strings
never fail. Implemented as a log record factory wrapping the current one;
calling it again is harmless.
"""

from __future__ import annotations

import logging
from typing import Any

from ferrotrace._core import current_span

_MARK = "__ferrotrace_log_factory__"


def instrument_logging() -> None:
    """Adds ``trace_id`` and ``span_id`` to every log record."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, _MARK, False):
        return

    def record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        span = current_span()
        if span is None:
            record.trace_id = ""
            record.span_id = ""
        else:
            record.trace_id = span.trace_id
            record.span_id = span.span_id
        return record

    setattr(record_factory, _MARK, True)
    logging.setLogRecordFactory(record_factory)
