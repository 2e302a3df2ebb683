"""The OpenTelemetry API bridge: spans made through ``opentelemetry.trace`` are ferrotrace spans.

    from opentelemetry import trace
    from ferrotrace.otel import TracerProvider

    trace.set_tracer_provider(TracerProvider())       # the global ferrotrace tracer
    trace.set_tracer_provider(TracerProvider(tracer))  # or a given one

Every ``opentelemetry-instrumentation-*`` package then records through
ferrotrace: same files, exporters, sampling and analysis as ``@traced`` and
``tracer.start_span``, at a fraction of the SDK's cost. There is one current
span for both APIs: an OpenTelemetry span started inside a ferrotrace ``with``
block is its child and the other way round, ``trace.get_current_span()`` and
``ft.current_span()`` see the same span, and ``opentelemetry.propagate.inject``
writes ferrotrace's ids. The other keys of OpenTelemetry's ``Context``
(baggage, suppress-instrumentation flags) are kept, and ``context.attach`` /
``detach`` work across callbacks as with the SDK.

Instrumentations' scopes (tracer name and version) and links are kept in the
JSONL records and in exports. Importing this module imports
``opentelemetry-api`` (``pip install ferrotrace[otel]``); ``import ferrotrace``
alone never does. See README.md, "OpenTelemetry instrumentations".
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Callable, TypeVar

from opentelemetry import trace

import ferrotrace as ft
from ferrotrace import _core

__all__ = ["Configurator", "TracerProvider"]

F = TypeVar("F", bound=Callable[..., Any])

_logger = logging.getLogger("ferrotrace")


class Resource:
    """The attributes describing the process (read-only)."""

    def __init__(self, attributes: dict[str, str]) -> None:
        self.attributes: Mapping[str, str] = MappingProxyType(attributes)

    def __repr__(self) -> str:
        return f"Resource({dict(self.attributes)!r})"


def _sdk_provider_already_set() -> Any:
    """The global provider if one that is not ours is already set, else None."""
    current = getattr(trace, "_TRACER_PROVIDER", None)
    if current is None or isinstance(current, TracerProvider):
        return None
    return current


class TracerProvider(trace.TracerProvider):
    """An ``opentelemetry.trace.TracerProvider`` recording into a ferrotrace tracer.

    ``tracer=None`` records into the global tracer (``ft.configure`` /
    ``ft.get_tracer``), looked up at each span, so configuring it later takes
    effect. Creating one switches ferrotrace to OpenTelemetry's context for
    the current span (README.md, "OpenTelemetry instrumentations").
    """

    def __init__(self, tracer: _core.Tracer | None = None) -> None:
        if tracer is not None and not isinstance(tracer, _core.Tracer):
            raise TypeError(
                f"TracerProvider(tracer=...) takes a ferrotrace Tracer or None, "
                f"not {type(tracer).__name__}"
            )
        self._tracer = tracer
        self._tracers: dict[tuple[str, str | None, str | None], _core.OTelTracer] = {}
        self._lock = threading.Lock()
        _core._otel_install()
        other = _sdk_provider_already_set()
        if other is not None:
            _logger.warning(
                "ferrotrace: an OpenTelemetry TracerProvider (%s) is already the global one, "
                "and OpenTelemetry does not let it be replaced: instrumentations keep "
                "recording through it, not through ferrotrace. Only tracers taken from this "
                "ferrotrace TracerProvider record into ferrotrace. To run instrumentations on "
                "ferrotrace, set OTEL_PYTHON_CONFIGURATOR=ferrotrace (opentelemetry-instrument) "
                "or call trace.set_tracer_provider(ferrotrace.otel.TracerProvider()) before "
                "anything else sets one.",
                type(other).__module__ + "." + type(other).__qualname__,
            )

    @property
    def tracer(self) -> _core.Tracer:
        """The ferrotrace tracer spans are recorded into (now)."""
        return self._tracer if self._tracer is not None else ft.get_tracer()

    @property
    def resource(self) -> Resource:
        """What instrumentations read of the SDK's ``provider.resource``: its
        ``attributes`` (``service.name`` and the ``telemetry.sdk.*`` ones)."""
        return Resource(
            {
                "service.name": self.tracer.service_name,
                "telemetry.sdk.name": "ferrotrace",
                "telemetry.sdk.language": "python",
                "telemetry.sdk.version": ft.__version__,
            }
        )

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> _core.OTelTracer:
        """A tracer for one instrumentation scope (its name and version are
        recorded on every span it makes; scope attributes are not kept)."""
        key = (instrumenting_module_name, instrumenting_library_version, schema_url)
        found = self._tracers.get(key)
        if found is None:
            with self._lock:
                found = self._tracers.get(key)
                if found is None:
                    found = _core.OTelTracer(
                        self._tracer,
                        instrumenting_module_name,
                        instrumenting_library_version,
                        schema_url,
                    )
                    self._tracers[key] = found
        return found

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Waits until every span finished so far is delivered; as ``Tracer.flush``."""
        return self.tracer.flush(timeout=timeout_millis / 1000)

    def shutdown(self) -> None:
        """Flushes and stops the tracer (ferrotrace also does this at exit)."""
        self.tracer.shutdown()


class Configurator:
    """The ``opentelemetry_configurator`` entry point ``ferrotrace``.

    ``opentelemetry-instrument`` with ``OTEL_PYTHON_CONFIGURATOR=ferrotrace``
    calls it before the instrumentors run: the global ferrotrace tracer is
    configured from the environment (FERROTRACE_* and OTEL_SERVICE_NAME,
    OTEL_TRACES_EXPORTER, OTEL_TRACES_SAMPLER[_ARG], OTEL_EXPORTER_OTLP_*,
    OTEL_RESOURCE_ATTRIBUTES, OTEL_PROPAGATORS, ...) and a ferrotrace
    ``TracerProvider`` becomes OpenTelemetry's global provider.
    """

    def configure(self, **kwargs: Any) -> None:
        configure_opentelemetry()


def configure_opentelemetry() -> TracerProvider | None:
    """Makes a ferrotrace ``TracerProvider`` over the global tracer the global
    OpenTelemetry provider; returns it, or None (with a warning) when another
    provider is already set."""
    options: dict[str, Any] = {}
    if not (os.environ.get("FERROTRACE_SERVICE_NAME") or os.environ.get("OTEL_SERVICE_NAME")):
        # OpenTelemetry's other place for the service name.
        name = _resource_service_name(os.environ.get("OTEL_RESOURCE_ATTRIBUTES", ""))
        if name:
            options["service_name"] = name
    if options or _core._global_tracer() is None:
        ft.configure(**options)
    provider = TracerProvider()
    other = _sdk_provider_already_set()
    if other is not None:
        # TracerProvider() said so; setting ours would only log OpenTelemetry's refusal.
        return None
    trace.set_tracer_provider(provider)
    return provider


def _resource_service_name(resource_attributes: str) -> str | None:
    for item in resource_attributes.split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip() == "service.name" and value.strip():
            from urllib.parse import unquote

            return unquote(value.strip())
    return None


def _decorate(current_span: Any, func: F) -> F:
    """``@tracer.start_as_current_span(...)``: a new span around each call of
    ``func``, ended when a coroutine function's coroutine finishes."""
    recreate = current_span._recreate
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with recreate():
                return await func(*args, **kwargs)

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with recreate():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
