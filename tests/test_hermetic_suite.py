"""The test suite passes whatever FERROTRACE_*/OTEL_* variables the developer's
shell exports: conftest.py clears them before anything imports a tracer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import is_tracer_variable

ROOT = Path(__file__).resolve().parent.parent

# Each of these, exported alone, made tests fail (or fastapi fail to import)
# before conftest.py cleared them all; the last three name options being added.
HOSTILE_ENVIRONMENT = {
    "OTEL_TRACES_SAMPLER": "always_off",
    "OTEL_PROPAGATORS": "b3",
    "FERROTRACE_BUFFER_SIZE": "64",
    "FERROTRACE_SAMPLE_RATE": "0",
    "FERROTRACE_OUTPUT_DIR": "none",
    "OTEL_SDK_DISABLED": "true",
    "FERROTRACE_EXPORTERS": "console",
    "OTEL_TRACES_EXPORTER": "otlp",
}

# Tests that each depend on one of the defaults above: sampling and writing,
# every configured default, the propagators, the OpenTelemetry SDK and API
# bridge (opentelemetry.propagate reads OTEL_PROPAGATORS at import), the ASGI
# middleware (fastapi imports opentelemetry, which reads OTEL_PROPAGATORS), and
# a subprocess inheriting the environment.
REPRESENTATIVE_TESTS = [
    "tests/test_span.py::test_root_span_ids_and_record",
    "tests/test_config.py::test_defaults",
    "tests/test_propagation.py::test_inject_writes_the_active_span",
    "tests/test_propagation.py::test_opentelemetry_sdk_spans_and_ours_share_traces",
    "tests/test_otel.py::test_remote_parent_from_extracted_context",
    "tests/test_integrations.py::test_incoming_trace_context_is_continued",
    "tests/test_integrations.py::test_middleware_defaults_to_tracecontext",
    "tests/test_lifecycle.py::test_exit_without_flush_writes_everything",
]


def test_the_session_sees_no_tracer_variable_from_outside():
    # The only one set is conftest's own stray-output directory.
    assert [n for n in os.environ if is_tracer_variable(n)] == ["FERROTRACE_OUTPUT_DIR"]
    assert os.environ["FERROTRACE_OUTPUT_DIR"] != "none"


def test_tests_pass_with_hostile_variables_exported(tmp_path):
    env = {**os.environ, **HOSTILE_ENVIRONMENT}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--basetemp={tmp_path / 'basetemp'}",
            *REPRESENTATIVE_TESTS,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    assert f"{len(REPRESENTATIVE_TESTS)} passed" in proc.stdout, proc.stdout[-2000:]
