#!/usr/bin/env bash
# runnel against ONNX Runtime (f32 and quantize_dynamic int8) and PyTorch eager on the demo
# model, in one run, interleaved: µs/step and bits/char of each contender (benches/peers/run.py
# says how each is measured; docs/PERFORMANCE.md has the results).
#
#   scripts/bench-peers.sh [--rounds 7] [--steps 0] [--json FILE] [--check]
#
# Sets up the venv of scripts/python-tests.sh (RUNNEL_PY_VENV, default target/py-venv) with ONNX
# Runtime added, then runs the comparison. Cargo builds the package's native module and the Rust
# contender (release) in CARGO_TARGET_DIR if it is set, else in target/python and target/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${RUNNEL_PY_VENV:-$root/target/py-venv}
rust_target=${CARGO_TARGET_DIR:-$root/target}
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}

CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target/python} RUNNEL_PY_VENV=$venv \
  "$root/scripts/py-venv.sh" onnx onnxruntime
CARGO_TARGET_DIR=$rust_target exec "$venv/bin/python" "$root/benches/peers/run.py" "$@"
