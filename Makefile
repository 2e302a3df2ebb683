# ferrotrace — everything a fresh machine with Rust, Python 3.9+ and make needs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
export VIRTUAL_ENV := $(abspath $(VENV))

.PHONY: install test test-versions wheel check-dist demo bench lint clean docs fuzz check-deep loom valgrind

# The CPython versions ferrotrace supports (pyproject.toml says the same).
# For each, the newest patch release under pyenv, else pythonX.Y on PATH;
# free-threaded builds (3.13t) are not supported and not picked.
PY_VERSIONS := 3.9 3.10 3.11 3.12 3.13
find_python = $(or $(shell ls -d $(HOME)/.pyenv/versions/$(1).[0-9]*/bin/python$(1) 2>/dev/null | grep -v 't/bin/' | sort -V | tail -n 1),$(shell command -v python$(1) 2>/dev/null))
PYTHONS := $(strip $(foreach v,$(PY_VERSIONS),$(call find_python,$(v))))
# Wheels are linked against this machine's glibc: the manylinux policy it
# allows (Debian 12's glibc 2.36 needs symbols of glibc 2.34). maturin audits
# each wheel against it and fails the build if the wheel needs more.
MANYLINUX ?= manylinux_2_34

# The OpenTelemetry bridge's tests run the real instrumentations (and
# opentelemetry-instrument, beside opentelemetry-distro's configurator);
# sqlalchemy below 2.1, the versions its instrumentation supports.
$(VENV)/.deps: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "maturin>=1.9.4,<2" "pytest>=7" "hypothesis>=6" "ruff" "mypy" "numpy" "rich" "fastapi" "uvicorn" "httpx" "httpx2" "requests" "opentelemetry-sdk" "opentelemetry-proto" "opentelemetry-exporter-otlp-proto-http" "opentelemetry-exporter-zipkin-json" "cryptography" "playwright"
	$(PY) -m pip install -q "aiohttp" "sqlalchemy<2.1" "opentelemetry-distro" \
		"opentelemetry-instrumentation-asgi" "opentelemetry-instrumentation-fastapi" \
		"opentelemetry-instrumentation-requests" "opentelemetry-instrumentation-httpx" \
		"opentelemetry-instrumentation-aiohttp-client" "opentelemetry-instrumentation-sqlalchemy" \
		"opentelemetry-instrumentation-dbapi" "opentelemetry-instrumentation-sqlite3" \
		"opentelemetry-instrumentation-threading" "opentelemetry-instrumentation-logging"
	touch $@

# Build the Rust extension (release, LTO) into the virtualenv.
install: $(VENV)/.deps
	$(VENV)/bin/maturin develop --release -q

# The browser tests (tests/test_ui.py) need Debian's chromium; without it
# they are skipped and the summary says why (-ra). Playwright's own browser
# download is never used.
test: install
	cargo test -q
	$(PY) -m pytest -q

# The suite on the oldest and the newest supported CPython (what CI runs),
# each in its own virtualenv (.venv-3.9, .venv-3.13). Both must be found.
test-versions:
	@test -n "$(call find_python,3.9)" || { echo "test-versions: no CPython 3.9 found"; exit 1; }
	@test -n "$(call find_python,3.13)" || { echo "test-versions: no CPython 3.13 found"; exit 1; }
	$(MAKE) test PYTHON=$(call find_python,3.9) VENV=.venv-3.9
	$(MAKE) test PYTHON=$(call find_python,3.13) VENV=.venv-3.13

# One wheel per supported CPython found (version-specific, not abi3: abi3
# measured slower, see README "Installing"), and the sdist, into dist/.
wheel: $(VENV)/.deps
	@test -n "$(PYTHONS)" || { echo "wheel: no CPython $(PY_VERSIONS) found"; exit 1; }
	@echo "building wheels for: $(PYTHONS)"
	$(VENV)/bin/maturin build --release --out dist --compatibility $(MANYLINUX) $(addprefix -i ,$(PYTHONS))
	$(VENV)/bin/maturin sdist --out dist

# The sdist builds from source with pip (Rust on PATH) in a fresh virtualenv,
# and the installed package records spans (tests/packaging_smoke.py). A full
# release build: minutes. Cargo's output is kept in target/check-dist.
check-dist: $(VENV)/.deps
	rm -f dist/ferrotrace-*.tar.gz
	$(VENV)/bin/maturin sdist --out dist
	rm -rf target/check-dist/venv target/check-dist/traces
	$(PYTHON) -m venv target/check-dist/venv
	env -u VIRTUAL_ENV CARGO_TARGET_DIR=$(abspath target/check-dist/cargo) \
		target/check-dist/venv/bin/python -m pip install -q dist/ferrotrace-*.tar.gz
	cd target/check-dist && env -u VIRTUAL_ENV venv/bin/python $(abspath tests/packaging_smoke.py) traces
	@echo "check-dist: the sdist built from source, installed, and recorded spans"

demo: install
	$(PY) examples/demo.py
	$(PY) examples/services/run_demo.py
	@echo
	@echo "To look at these traces: $(VENV)/bin/ferrotrace serve demo-traces"
	@echo "then open http://127.0.0.1:16686/ in a browser: search, trace waterfall, service graph"
	@echo "(/graph), operations (/operations) and error groups (/errors); Jaeger API under /api/."

$(VENV)/.bench-deps: $(VENV)/.deps
	$(PY) -m pip install -q opentelemetry-sdk ddtrace pytracingx || \
		echo "some peers could not be installed; the benchmark reports them as skipped"
	touch $@

bench: install $(VENV)/.bench-deps
	cargo bench -q --bench writer
	cargo bench -q --bench export_encode
	cargo bench -q --bench redact
	$(PY) benches/bench_hotpath.py
	$(PY) benches/bench_cpu.py
	$(PY) benches/bench_redact.py
	$(PY) benches/bench_otel.py
	$(PY) benches/bench_throughput.py
	$(PY) benches/bench_analysis.py
	$(PY) benches/bench_compress.py
	$(PY) benches/bench_export.py
	$(PY) benches/bench_serve.py

lint: install
	cargo fmt --check
	cargo clippy -q --all-targets -- -D warnings
	cargo clippy -q --all-targets --features python -- -D warnings
	$(VENV)/bin/ruff check python tests benches examples
	$(VENV)/bin/ruff format --check python tests benches examples
	$(PY) -m mypy.stubtest ferrotrace._core --allowlist .stubtest-allowlist

# Deeper checks, not part of `make test` (README, "Deeper checks"):
# loom model checks of the lock-free and atomic pieces, the Rust unit tests
# under valgrind memcheck, and a short fuzz run.
check-deep: loom valgrind
	$(MAKE) fuzz FUZZ_SECONDS=20

# Every interleaving of the loom_model tests within 3 preemptions (unbounded
# does not finish for the two-stage flush model). Their own target dir and
# cfg: RUSTFLAGS reach every crate, and tokio leaves out its `net` module
# under the customary `--cfg loom`.
loom:
	LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg ferrotrace_loom" CARGO_TARGET_DIR=target/loom \
		cargo test -q --lib loom_

# The core's unit tests (no Python) under memcheck, all of them, built with
# the `valgrind` profile (Cargo.toml; unoptimised gzip would take hours):
# any memory error or definite leak fails, no suppressions. "Possibly lost"
# blocks are not shown: they belong to background threads still running at
# exit (never joined past a deadline, by design: ARCHITECTURE.md, "Exit").
# Property tests run 16 cases instead of 256.
valgrind:
	cargo test -q --profile valgrind --lib --no-run
	bin=$$(cargo test --profile valgrind --lib --no-run 2>&1 | sed -n 's/.*Executable unittests src\/lib.rs (\(.*\))/\1/p'); \
	PROPTEST_CASES=16 valgrind -q --error-exitcode=1 --leak-check=full \
		--show-leak-kinds=definite --errors-for-leak-kinds=definite \
		$$bin --test-threads=2 -q

clean:
	rm -rf $(VENV) target

# The README's option table, regenerated from the option list in src/options.rs.
docs: install
	$(PY) -c "import re, pathlib; from ferrotrace import _core; p = pathlib.Path('README.md'); s = p.read_text(); table = _core._options_markdown(); p.write_text(re.sub(r'(<!-- options:[^\n]*-->\n).*?(<!-- /options -->)', lambda m: m.group(1) + table + m.group(2), s, flags=re.S))"

# cargo-fuzz targets (fuzz/fuzz_targets/), each run FUZZ_SECONDS from its
# seed corpus (fuzz/corpus/<target>/); fails on the first crash or broken
# invariant and leaves the input in fuzz/artifacts/<target>/. Stable Rust:
# RUSTC_BOOTSTRAP lets cargo-fuzz pass its -Z sanitizer flags (AddressSanitizer).
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := propagation config duration jsonl otlp_protobuf otlp_json zipkin serve_body
fuzz:
	@command -v cargo-fuzz >/dev/null || { echo "make fuzz needs cargo-fuzz: cargo install cargo-fuzz"; exit 1; }
	RUSTC_BOOTSTRAP=1 cargo fuzz build -O
	@for t in $(FUZZ_TARGETS); do \
		echo "== fuzz $$t for $(FUZZ_SECONDS) s (log: fuzz/target/$$t.log)"; \
		if ! RUSTC_BOOTSTRAP=1 cargo fuzz run -O $$t -- -max_total_time=$(FUZZ_SECONDS) \
				-rss_limit_mb=2048 -print_final_stats=1 > fuzz/target/$$t.log 2>&1; then \
			tail -n 40 fuzz/target/$$t.log; exit 1; \
		fi; \
		grep -E "stat::number_of_executed_units|Done [0-9]+ runs" fuzz/target/$$t.log; \
	done
