#!/usr/bin/env bash
# The Python environment of the package's tests (scripts/python-tests.sh) and of the peer
# comparison (scripts/bench-peers.sh): a virtual environment with numpy, pytest, safetensors,
# PyTorch, any extra packages named on the command line, and the runnel package built from this
# tree with pip (maturin), reinstalled on every call so that it matches the tree.
#
#   scripts/py-venv.sh [PIP_PACKAGE...]
#
# Environment: RUNNEL_PY_VENV (default target/py-venv; kept between runs, pip's cache makes
# reruns fast), CARGO_TARGET_DIR (default target/python) for the package's native module.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${RUNNEL_PY_VENV:-$root/target/py-venv}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target/python}
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
export PATH="$venv/bin:$PATH"  # maturin, for the build below
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q "maturin>=1.5,<2" numpy pytest safetensors "$@"
# PyTorch for the exporter tests (runnel.torch) and the peer comparison, from PyPI (a few GB the
# first time; pip's cache keeps reruns fast)
"$venv/bin/python" -c "import torch" 2>/dev/null || "$venv/bin/pip" install -q torch
# --no-build-isolation: build with the venv's maturin (no second download per run)
"$venv/bin/pip" install -q --no-build-isolation --force-reinstall --no-deps "$root/python"
