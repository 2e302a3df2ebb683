"""A wheel of ferrotrace installs with pip, and works, where no Rust toolchain exists.

The wheel is built here, for the interpreter running the tests, with the
virtualenv's maturin (what `make wheel` uses, with maturin's manylinux audit).
`make install` has already compiled the same release build in target/, so
maturin only packs it (seconds); after a source change without `make install`
it compiles first (minutes), which is slow but still checks the current code.
The wheel then goes into a fresh virtualenv with pip, from a PATH without
cargo, rustc or maturin and with the Rust variables unset, and a new
interpreter records spans there. The sdist (build from source) is checked by
`make check-dist`, which compiles everything and is too slow for this suite.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from conftest import by_name, clean_env, read_spans

ROOT = Path(__file__).resolve().parent.parent
SMOKE = Path(__file__).resolve().parent / "packaging_smoke.py"
RUST_TOOLS = ("cargo", "rustc", "rustup", "maturin")
RUST_VARIABLES = ("CARGO", "RUSTC", "RUSTUP", "RUSTFLAGS", "RUSTDOCFLAGS", "PYO3_", "MATURIN")


def run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float):
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"{' '.join(cmd)}: exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    return proc


def without_rust(env: dict[str, str]) -> dict[str, str]:
    """`env` as on a machine with no Rust toolchain: no PATH entry holding a
    Rust tool (nor maturin), no Cargo/rustup/PyO3/maturin variable."""
    out = {k: v for k, v in env.items() if not k.startswith(RUST_VARIABLES)}
    out.pop("VIRTUAL_ENV", None)
    out["PATH"] = os.pathsep.join(
        d
        for d in env.get("PATH", "").split(os.pathsep)
        if d and not any((Path(d) / tool).exists() for tool in RUST_TOOLS)
    )
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    maturin = Path(sys.executable).parent / "maturin"
    assert maturin.exists(), (
        f"{maturin} not found: run the tests from the Makefile's virtualenv (make test)"
    )
    out = tmp_path_factory.mktemp("wheel")
    run(
        [str(maturin), "build", "--release", "--out", str(out), "-i", sys.executable],
        env=clean_env(),
        cwd=ROOT,
        timeout=1800,
    )
    wheels = list(out.glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_is_tagged_for_this_interpreter_and_manylinux(wheel: Path) -> None:
    # name-version-python-abi-platform.whl (PEP 427)
    _name, _version, python_tag, abi_tag, platform_tag = wheel.stem.split("-")
    ours = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert (python_tag, abi_tag) == (ours, ours)
    machine = sysconfig.get_platform().split("-", 1)[1]
    assert re.fullmatch(rf"manylinux_2_\d+_{machine}", platform_tag), platform_tag
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        # The one native file is the extension; no bundled shared library
        # (maturin's audit would have added a ferrotrace.libs/ directory).
        native = [n for n in names if ".so" in n]
        assert native == [f"ferrotrace/_core{sysconfig.get_config_var('EXT_SUFFIX')}"]
        assert "ferrotrace/_core.pyi" in names and "ferrotrace/py.typed" in names
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
    text = metadata.decode()
    assert "Requires-Python: >=3.9" in text
    for minor in range(9, 14):
        assert f"Classifier: Programming Language :: Python :: 3.{minor}\n" in text


def test_wheel_installs_and_records_spans_without_rust(wheel: Path, tmp_path: Path) -> None:
    env = without_rust(clean_env())
    for tool in ("cargo", "rustc"):
        assert shutil.which(tool, path=env["PATH"]) is None, f"{tool} still on PATH"

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], env=env, cwd=tmp_path, timeout=300)
    python = venv / "bin" / "python"
    run(
        [str(python), "-m", "pip", "install", "--no-index", str(wheel)],
        env=env,
        cwd=tmp_path,
        timeout=300,
    )

    out = tmp_path / "traces"
    proc = run([str(python), str(SMOKE), str(out)], env=env, cwd=tmp_path, timeout=120)
    report = json.loads(proc.stdout)
    site = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['platlib'])"],
            env=env,
            cwd=tmp_path,
            timeout=60,
        ).stdout.strip()
    )
    # The installed copy did the work, not this checkout's python/ tree.
    assert Path(report["package"]).parent == site / "ferrotrace"
    assert Path(report["core"]).parent == site / "ferrotrace"
    assert report["result"] == 42
    assert report["flushed"] is True
    assert (report["spans_written"], report["spans_dropped"]) == (3, 0)

    spans = by_name(read_spans(out))
    assert len(spans) == 3, sorted(spans)
    outer, inner = spans["packaged.outer"], spans["packaged.inner"]
    assert outer["service"] == "packaged"
    assert outer["attributes"]["check"] == "installed"
    assert outer["attributes"]["python"] == sys.version.split()[0]
    assert inner["parent_id"] == outer["span_id"]
    assert inner["trace_id"] == outer["trace_id"]

    # The console script was installed too, and reads those files.
    stats = json.loads(
        run(
            [str(venv / "bin" / "ferrotrace"), "stats", str(out), "--json"],
            env=env,
            cwd=tmp_path,
            timeout=60,
        ).stdout
    )
    assert {row["operation"]: row["count"] for row in stats}["packaged.inner"] == 1
    version = run(
        [str(venv / "bin" / "ferrotrace"), "--version"], env=env, cwd=tmp_path, timeout=60
    ).stdout
    assert version.split() == ["ferrotrace", report["version"]]
