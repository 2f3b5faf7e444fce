#!/usr/bin/env bash
# Every check and test of runnel, as CI runs them. Installs what it needs (Rust targets and
# components, QEMU, arm-none-eabi-gcc, defmt-print, nightly and cargo-fuzz) on a fresh Debian
# machine.
#
#   scripts/test-all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export CARGO_TERM_COLOR=never

step() { echo; echo "==> $*"; }

step "install dependencies"
scripts/install-ci-deps.sh

step "format"
cargo fmt --all -- --check
(cd fuzz && cargo fmt -- --check)

step "clippy (host, all targets)"
cargo clippy --workspace --all-targets -- -D warnings

step "runtime builds for bare metal (the no_std proof), with clippy"
for t in thumbv7em-none-eabihf thumbv7m-none-eabi riscv32imac-unknown-none-elf; do
  cargo clippy -p runnel --target "$t" -- -D warnings
  cargo clippy -p runnel --target "$t" --features defmt -- -D warnings
  cargo clippy -p runnel-capi --target "$t" -- -D warnings
  cargo build -p runnel --target "$t" --release
done

step "docs (every public item documented)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps -q

step "tests (unit, kernel harness, conformance, robustness, accuracy, CLI, C API from C)"
cargo test --workspace

step "32-bit and undefined behaviour: the runtime's unit tests under Miri on i686 (32-bit usize)"
# `soft-float`: libm's square root is inline assembly on x86, which Miri cannot run; the soft-float
# path gives the same bits. The tests include the 32-bit overflow regressions (model::tests).
(cd runtime && cargo +nightly miri test --target i686-unknown-linux-gnu --features soft-float)

step "undefined behaviour: the C API's Rust-side tests under Miri (they read fixture files)"
# (the object life cycle, snapshots and status codes, the integer entry points' among them
# (integer_status_codes); same_bits_as_the_runtime streams whole
# fixtures and takes too long interpreted — it runs natively above)
(cd capi && MIRIFLAGS=-Zmiri-disable-isolation cargo +nightly miri test --test api \
  --features runnel/soft-float -- reopening snapshot status_codes)

step "Python package: build it with pip (maturin) into a venv, run its pytest suite and the peer comparison's smoke run"
scripts/python-tests.sh

step "fuzz smoke (every cargo-fuzz target for 20 s from its seeds)"
scripts/fuzz-smoke.sh

if [ -x scripts/firmware-ci.sh ]; then
  step "firmware under QEMU (bit-identity with the host, footprint)"
  RUNNEL_SKIP_INSTALL=1 scripts/firmware-ci.sh
fi

step "C API: C firmware under QEMU (bit-identity with the host, footprint)"
firmware/c-cortex-m/run-test.sh

echo
echo "all checks passed"
