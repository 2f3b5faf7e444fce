#!/usr/bin/env bash
# The Python package (python/): build and install it into a virtual environment with pip
# (maturin), with PyTorch for the exporter, then run its pytest suite.
#
#   scripts/python-tests.sh
#
# Environment: RUNNEL_PY_VENV (default target/py-venv; kept between runs, pip's cache makes
# reruns fast), CARGO_TARGET_DIR (default target/python).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${RUNNEL_PY_VENV:-$root/target/py-venv}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target/python}
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# the native module's Rust code: formatted and lint-free like the rest
cargo fmt --check --manifest-path "$root/python/Cargo.toml"
cargo clippy -q --manifest-path "$root/python/Cargo.toml" -- -D warnings

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
export PATH="$venv/bin:$PATH"  # maturin, for the build below
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q "maturin>=1.5,<2" numpy pytest safetensors
# PyTorch for the exporter tests (runnel.torch), from PyPI (a few GB the first time; pip's cache
# keeps reruns fast)
"$venv/bin/python" -c "import torch" 2>/dev/null || "$venv/bin/pip" install -q torch
# --no-build-isolation: build with the venv's maturin (no second download per run)
"$venv/bin/pip" install -q --no-build-isolation --force-reinstall --no-deps "$root/python"
# -rs: say so if a test skips (none should: torch is installed above)
"$venv/bin/python" -m pytest -q -rs "$root/python/tests"
