"""Tracer configuration: keyword arguments, environment variables, errors, sampling."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import ferrotrace as ft
import pytest
from conftest import clean_env, flushed_spans, read_spans, read_traces, run_python

DEFAULTS = {
    "buffer_size": 65536,
    "flush_interval_ms": 500,
    "sample_rate": 1.0,
    "max_attributes": 128,
    "max_attribute_length": 4096,
    "max_events": 128,
    "max_file_size_mb": 100,
    "max_files": 20,
    "compress_rotated": False,
}


def ferrotrace_warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "ferrotrace" and r.levelno >= logging.WARNING]


@pytest.fixture
def no_env_output_dir(monkeypatch):
    monkeypatch.delenv("FERROTRACE_OUTPUT_DIR", raising=False)


@pytest.fixture
def new_tracer():
    made = []

    def make(*args, **kwargs):
        t = ft.Tracer(*args, **kwargs)
        made.append(t)
        return t

    yield make
    for t in made:
        t.shutdown()


def test_defaults(new_tracer, no_env_output_dir):
    t = new_tracer()
    c = t.config
    assert c["service_name"] == "unknown_service"
    assert t.service_name == "unknown_service"
    assert Path(c["output_dir"]) == Path("traces")
    assert Path(t.output_dir) == Path("traces")
    for key, value in DEFAULTS.items():
        assert c[key] == value, key


def test_keyword_arguments_are_reflected_in_config(new_tracer, tmp_path):
    t = new_tracer(
        service_name="api",
        output_dir=tmp_path,
        buffer_size=1024,
        flush_interval_ms=50,
        sample_rate=0.25,
        max_attributes=10,
        max_attribute_length=20,
        max_events=5,
        max_file_size_mb=2,
    )
    c = t.config
    assert t.service_name == "api"
    assert c["service_name"] == "api"
    assert c["output_dir"] == str(tmp_path)
    assert t.output_dir == str(tmp_path)
    assert c["buffer_size"] == 1024
    assert c["flush_interval_ms"] == 50
    assert c["sample_rate"] == 0.25
    assert c["max_attributes"] == 10
    assert c["max_attribute_length"] == 20
    assert c["max_events"] == 5
    assert c["max_file_size_mb"] == 2


def test_positional_service_name_and_output_dir(new_tracer, tmp_path):
    t = new_tracer("pos", tmp_path)
    assert t.service_name == "pos"
    assert t.output_dir == str(tmp_path)
    with pytest.raises(TypeError):
        ft.Tracer("pos", tmp_path, 100)  # the rest are keyword-only


def test_output_dir_accepts_str_and_pathlike(new_tracer, tmp_path):
    assert new_tracer(output_dir=str(tmp_path / "a")).output_dir == str(tmp_path / "a")
    assert new_tracer(output_dir=tmp_path / "b").output_dir == str(tmp_path / "b")
    disabled = new_tracer(output_dir=None)
    assert disabled.output_dir is None
    assert disabled.config["output_dir"] is None


def test_none_keyword_means_default(new_tracer, tmp_path):
    t = new_tracer(service_name=None, output_dir=tmp_path, buffer_size=None, sample_rate=None)
    assert t.service_name == "unknown_service"
    assert t.config["buffer_size"] == DEFAULTS["buffer_size"]
    assert t.config["sample_rate"] == 1.0


# --------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "var, raw, key, expected",
    [
        ("FERROTRACE_BUFFER_SIZE", "128", "buffer_size", 128),
        ("FERROTRACE_FLUSH_INTERVAL_MS", "25", "flush_interval_ms", 25),
        ("FERROTRACE_SAMPLE_RATE", "0.5", "sample_rate", 0.5),
        ("FERROTRACE_SAMPLE_RATE", "0", "sample_rate", 0.0),
        ("FERROTRACE_MAX_ATTRIBUTES", "7", "max_attributes", 7),
        ("FERROTRACE_MAX_ATTRIBUTE_LENGTH", "99", "max_attribute_length", 99),
        ("FERROTRACE_MAX_EVENTS", "3", "max_events", 3),
        ("FERROTRACE_MAX_FILE_SIZE_MB", "5", "max_file_size_mb", 5),
    ],
)
def test_environment_defaults(new_tracer, tmp_path, monkeypatch, caplog, var, raw, key, expected):
    caplog.set_level(logging.WARNING, logger="ferrotrace")
    monkeypatch.setenv(var, raw)
    t = new_tracer(output_dir=tmp_path)
    assert t.config[key] == expected
    assert ferrotrace_warnings(caplog) == []


def test_environment_service_name_precedence(new_tracer, tmp_path, monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "otel-svc")
    assert new_tracer(output_dir=tmp_path).service_name == "otel-svc"
    monkeypatch.setenv("FERROTRACE_SERVICE_NAME", "ft-svc")
    assert new_tracer(output_dir=tmp_path).service_name == "ft-svc"
    assert new_tracer(service_name="kw", output_dir=tmp_path).service_name == "kw"


def test_environment_output_dir(new_tracer, tmp_path, monkeypatch):
    env_dir = tmp_path / "from-env"
    monkeypatch.setenv("FERROTRACE_OUTPUT_DIR", str(env_dir))
    t = new_tracer(service_name="e")
    assert t.output_dir == str(env_dir)
    with t.start_span("x"):
        pass
    assert len(flushed_spans(t, env_dir)) == 1
    kw = new_tracer(service_name="e", output_dir=tmp_path / "kw")
    assert kw.output_dir == str(tmp_path / "kw")
    assert new_tracer(output_dir=None).output_dir is None


@pytest.mark.parametrize("raw", ["none", "None", "NONE"])
def test_environment_output_dir_none_disables_files(new_tracer, tmp_path, monkeypatch, raw):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FERROTRACE_OUTPUT_DIR", raw)
    t = new_tracer(service_name="e")
    assert t.output_dir is None
    with t.start_span("x"):
        pass
    assert t.flush()
    assert t.files() == []
    assert list(tmp_path.iterdir()) == []


def test_keyword_beats_environment(new_tracer, tmp_path, monkeypatch):
    monkeypatch.setenv("FERROTRACE_BUFFER_SIZE", "128")
    monkeypatch.setenv("FERROTRACE_SAMPLE_RATE", "0")
    t = new_tracer(output_dir=tmp_path, buffer_size=256, sample_rate=1.0)
    assert t.config["buffer_size"] == 256
    assert t.config["sample_rate"] == 1.0


@pytest.mark.parametrize(
    "var, raw, key",
    [
        ("FERROTRACE_BUFFER_SIZE", "lots", "buffer_size"),
        ("FERROTRACE_BUFFER_SIZE", "0", "buffer_size"),
        ("FERROTRACE_BUFFER_SIZE", "-5", "buffer_size"),
        ("FERROTRACE_FLUSH_INTERVAL_MS", "soon", "flush_interval_ms"),
        ("FERROTRACE_FLUSH_INTERVAL_MS", "0", "flush_interval_ms"),
        ("FERROTRACE_SAMPLE_RATE", "half", "sample_rate"),
        ("FERROTRACE_SAMPLE_RATE", "-0.5", "sample_rate"),
        ("FERROTRACE_SAMPLE_RATE", "nan", "sample_rate"),
        ("FERROTRACE_SAMPLE_RATE", "1.5", "sample_rate"),
        ("FERROTRACE_MAX_ATTRIBUTES", "-1", "max_attributes"),
        ("FERROTRACE_MAX_ATTRIBUTES", "2.5", "max_attributes"),
        ("FERROTRACE_BUFFER_SIZE", "1e3", "buffer_size"),
        ("FERROTRACE_MAX_ATTRIBUTE_LENGTH", "abc", "max_attribute_length"),
        ("FERROTRACE_MAX_ATTRIBUTE_LENGTH", "0", "max_attribute_length"),
        ("FERROTRACE_MAX_EVENTS", "many", "max_events"),
        ("FERROTRACE_MAX_FILE_SIZE_MB", "big", "max_file_size_mb"),
        ("FERROTRACE_MAX_FILE_SIZE_MB", "inf", "max_file_size_mb"),
    ],
)
def test_bad_environment_value_is_ignored_with_one_warning(
    new_tracer, tmp_path, monkeypatch, caplog, var, raw, key
):
    caplog.set_level(logging.WARNING, logger="ferrotrace")
    monkeypatch.setenv(var, raw)
    t = new_tracer(service_name="env", output_dir=tmp_path)
    assert t.config[key] == DEFAULTS[key]
    warnings = ferrotrace_warnings(caplog)
    assert len(warnings) == 1
    assert var in warnings[0].getMessage()
    # The tracer works.
    with t.start_span("x"):
        pass
    assert len(flushed_spans(t, tmp_path)) == 1


def test_blank_environment_values_are_unset(new_tracer, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="ferrotrace")
    monkeypatch.setenv("FERROTRACE_SERVICE_NAME", "")
    monkeypatch.setenv("FERROTRACE_BUFFER_SIZE", "  ")
    t = new_tracer(output_dir=tmp_path)
    assert t.service_name == "unknown_service"
    assert t.config["buffer_size"] == DEFAULTS["buffer_size"]


# --------------------------------------------------------------------------
# Keyword errors
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"buffer_size": 0},
        {"buffer_size": -1},
        {"sample_rate": 1.5},
        {"sample_rate": -0.1},
        {"sample_rate": math.nan},
        {"sample_rate": math.inf},
        {"flush_interval_ms": 0},
        {"flush_interval_ms": -10},
        {"flush_interval_ms": math.nan},
        {"max_attributes": -1},
        {"max_attribute_length": 0},
        {"max_attribute_length": -1},
        {"max_events": -1},
        {"max_file_size_mb": 0},
        {"max_file_size_mb": -1},
        {"max_file_size_mb": math.inf},
        {"service_name": ""},
        {"service_name": "   "},
    ],
    ids=lambda kw: ",".join(f"{k}={v!r}" for k, v in kw.items()),
)
def test_bad_keyword_values_raise_value_error(tmp_path, kwargs):
    with pytest.raises(ValueError):
        ft.Tracer(output_dir=tmp_path, **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"buffer_size": "10"},
        {"buffer_size": 1.5},
        {"sample_rate": "0.5"},
        {"flush_interval_ms": "fast"},
        {"max_attributes": 2.5},
        {"max_attribute_length": [1]},
        {"max_events": "3"},
        {"max_file_size_mb": "1"},
        {"service_name": 123},
        {"service_name": b"bytes"},
        {"output_dir": 123},
        {"output_dir": b"/tmp/bytes"},
        {"unknown_option": 1},
    ],
    ids=lambda kw: ",".join(f"{k}={v!r}" for k, v in kw.items()),
)
def test_wrong_types_raise_type_error(tmp_path, kwargs):
    kwargs.setdefault("output_dir", tmp_path)
    with pytest.raises(TypeError):
        ft.Tracer(**kwargs)


def test_zero_limits_are_allowed(new_tracer, tmp_path):
    t = new_tracer(output_dir=tmp_path, max_attributes=0, max_events=0, sample_rate=0.0)
    assert t.config["max_attributes"] == 0
    assert t.config["max_events"] == 0
    assert t.config["sample_rate"] == 0.0


# --------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------


def test_sample_rate_zero_records_nothing(new_tracer, tmp_path):
    t = new_tracer(service_name="s", output_dir=tmp_path, sample_rate=0.0)
    with t.start_span("root") as root:
        assert root.sampled is False
        assert root.is_recording() is False
        root.set_tag("k", "v")  # harmless
        with t.start_span("child") as child:
            assert child.sampled is False
    assert child.parent_id == root.span_id
    assert t.flush()
    assert read_spans(tmp_path) == []
    assert read_traces(tmp_path) == []
    m = t.metrics()
    assert m["spans_finished"] == 2
    assert m["spans_unsampled"] == 2
    assert m["spans_written"] == 0
    assert m["spans_dropped"] == 0


def test_sample_rate_keeps_or_drops_whole_traces(new_tracer, tmp_path):
    t = new_tracer(service_name="s", output_dir=tmp_path, sample_rate=0.5)
    n = 2000
    sampled_roots = set()
    for _ in range(n):
        with t.start_span("root") as root:
            with t.start_span("child") as child:
                assert child.sampled == root.sampled
        if root.sampled:
            sampled_roots.add(root.trace_id)
    assert t.flush()
    spans = read_spans(tmp_path)
    assert 700 < len(sampled_roots) < 1300
    written_traces = {s["trace_id"] for s in spans}
    assert written_traces == sampled_roots
    assert len(spans) == 2 * len(sampled_roots)
    assert {s["trace_id"] for s in read_traces(tmp_path)} == sampled_roots
    m = t.metrics()
    assert m["spans_unsampled"] == 2 * (n - len(sampled_roots))
    assert m["spans_written"] == len(spans)


def test_sampled_remote_parent_is_honoured_at_rate_zero(new_tracer, tmp_path):
    t = new_tracer(service_name="s", output_dir=tmp_path, sample_rate=0.0)
    ctx = ft.SpanContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", sampled=True)
    with t.start_span("handle", parent=ctx) as span:
        pass
    assert span.sampled is True
    [rec] = flushed_spans(t, tmp_path)
    assert rec["trace_id"] == ctx.trace_id


# --------------------------------------------------------------------------
# Global tracer
# --------------------------------------------------------------------------


def test_configure_sets_the_global_tracer(tmp_path):
    try:
        t1 = ft.configure(service_name="one", output_dir=tmp_path / "one")
        assert isinstance(t1, ft.Tracer)
        assert ft.get_tracer() is t1
        assert t1.service_name == "one"
        t2 = ft.configure(service_name="two", output_dir=tmp_path / "two", sample_rate=0.5)
        assert ft.get_tracer() is t2
        assert t2 is not t1
        assert t2.config["sample_rate"] == 0.5
        with pytest.raises(ValueError):
            ft.configure(buffer_size=0)
        assert ft.get_tracer() is t2
        t1.shutdown()
        t2.shutdown()
    finally:
        ft.configure(service_name="idle", output_dir=None)


def test_get_tracer_from_environment_in_a_fresh_process(tmp_path):
    out = tmp_path / "env-out"
    proc = run_python(
        """
        import json
        import ferrotrace as ft
        t = ft.get_tracer()
        assert t is ft.get_tracer()

        @ft.traced
        def handler():
            return 42

        assert handler() == 42
        with t.start_span("explicit"):
            pass
        print(json.dumps(t.config))
        """,
        cwd=tmp_path,
        env=clean_env(
            FERROTRACE_OUTPUT_DIR=str(out),
            OTEL_SERVICE_NAME="env-service",
            FERROTRACE_SAMPLE_RATE="1",
            FERROTRACE_MAX_EVENTS="9",
        ),
    )
    config = json.loads(proc.stdout.strip().splitlines()[-1])
    assert config["service_name"] == "env-service"
    assert config["output_dir"] == str(out)
    assert config["max_events"] == 9
    spans = read_spans(out)
    assert sorted(s["name"] for s in spans) == ["explicit", "handler"]
    assert {s["service"] for s in spans} == {"env-service"}
    assert all(
        p.name.startswith(("spans-env-service-", "traces-env-service-")) for p in out.iterdir()
    )
    assert not (tmp_path / "traces").exists()


def test_bad_environment_value_warns_in_a_fresh_process(tmp_path):
    out = tmp_path / "env-out"
    proc = run_python(
        """
        import logging
        logging.basicConfig(level=logging.WARNING, format="%(name)s:%(levelname)s:%(message)s")
        import ferrotrace as ft
        t = ft.get_tracer()
        print(t.config["buffer_size"])
        """,
        cwd=tmp_path,
        env=clean_env(FERROTRACE_OUTPUT_DIR=str(out), FERROTRACE_BUFFER_SIZE="huge"),
    )
    assert proc.stdout.strip() == "65536"
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("ferrotrace:WARNING:")]
    assert len(lines) == 1
    assert "FERROTRACE_BUFFER_SIZE" in lines[0]
