# ferrotrace — everything a fresh machine with Rust, Python 3.9+ and make needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
export VIRTUAL_ENV := $(abspath $(VENV))

.PHONY: install test demo bench lint clean

$(VENV)/.deps: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "maturin>=1.9.4,<2" "pytest>=7" "hypothesis>=6" "ruff" "mypy" "numpy" "rich" "fastapi" "uvicorn" "httpx" "httpx2" "requests" "opentelemetry-sdk"
	touch $@

# Build the Rust extension (release, LTO) into the virtualenv.
install: $(VENV)/.deps
	$(VENV)/bin/maturin develop --release -q

test: install
	cargo test -q
	$(PY) -m pytest -q

demo: install
	$(PY) examples/demo.py
	$(PY) examples/services/run_demo.py

$(VENV)/.bench-deps: $(VENV)/.deps
	$(PY) -m pip install -q opentelemetry-sdk ddtrace pytracingx || \
		echo "some peers could not be installed; the benchmark reports them as skipped"
	touch $@

bench: install $(VENV)/.bench-deps
	cargo bench -q --bench writer
	cargo bench -q --bench export_encode
	$(PY) benches/bench_hotpath.py
	$(PY) benches/bench_throughput.py
	$(PY) benches/bench_analysis.py

lint: install
	cargo fmt --check
	cargo clippy -q --all-targets -- -D warnings
	cargo clippy -q --all-targets --features python -- -D warnings
	$(VENV)/bin/ruff check python tests benches examples
	$(VENV)/bin/ruff format --check python tests benches examples
	$(PY) -m mypy.stubtest ferrotrace._core --allowlist .stubtest-allowlist

clean:
	rm -rf $(VENV) target
