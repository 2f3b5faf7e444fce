#!/usr/bin/env bash
# The Python package (python/): build and install it into a virtual environment with pip
# (maturin), with PyTorch for the exporter, then run its pytest suite; then a smoke run of the
# peer comparison (benches/peers: one short round, every contender's bits/char checked).
#
#   scripts/python-tests.sh
#
# Environment: RUNNEL_PY_VENV (default target/py-venv; kept between runs, pip's cache makes
# reruns fast), CARGO_TARGET_DIR (default target/python for the package; the smoke run builds
# its Rust program in the workspace's own target directory, target/ by default).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${RUNNEL_PY_VENV:-$root/target/py-venv}
rust_target=${CARGO_TARGET_DIR:-$root/target}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target/python}
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# the native module's Rust code: formatted and lint-free like the rest
cargo fmt --check --manifest-path "$root/python/Cargo.toml"
cargo clippy -q --manifest-path "$root/python/Cargo.toml" -- -D warnings

# the venv, with ONNX Runtime for the smoke run below (wheels of a few tens of MB)
RUNNEL_PY_VENV=$venv "$root/scripts/py-venv.sh" onnx onnxruntime
# -rs: say so if a test skips (none should: torch is installed above)
"$venv/bin/python" -m pytest -q -rs "$root/python/tests"

# the peer comparison's smoke run: 200 steps, one round, the Rust program in the dev profile
# (its dependencies are built by `cargo test --workspace` in CI); --check fails the run if a
# contender's bits/char is off runnel's f32 step (a broken ONNX export, a lost state)
CARGO_TARGET_DIR=$rust_target "$venv/bin/python" "$root/benches/peers/run.py" \
  --rounds 1 --steps 200 --profile dev --check --work "$rust_target/peers-smoke"
