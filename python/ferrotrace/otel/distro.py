"""The ``opentelemetry_distro`` entry point ``ferrotrace``, for ``opentelemetry-instrument``.

    OTEL_PYTHON_DISTRO=ferrotrace OTEL_PYTHON_CONFIGURATOR=ferrotrace \\
        opentelemetry-instrument python app.py

The distro sets no defaults of its own (ferrotrace's are its options'); the
configurator (``ferrotrace.otel.Configurator``) configures the global tracer
from the environment and installs ferrotrace's TracerProvider before the
instrumentors run. This module imports ``opentelemetry-instrumentation``,
which ``opentelemetry-instrument`` comes with.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro

__all__ = ["Distro"]


class Distro(BaseDistro):
    """Runs every installed instrumentor, as the default distro does."""

    def _configure(self, **kwargs: Any) -> None:
        pass
