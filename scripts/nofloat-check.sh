#!/usr/bin/env bash
# The no-float proof of the integer-only mode: no soft-float routine is reachable from its step.
#
#   scripts/nofloat-check.sh                      # RV32IMAC and Cortex-M3 (no FPU)
#   scripts/nofloat-check.sh --deliberate-float   # the self-test build: must fail
#   CARGO_TARGET_DIR=/tmp/t ...                   # build elsewhere (default firmware/target)
#
# Builds firmware/nopanic's runnel-nofloat (release, fat LTO, like the firmware) for the cores
# without an FPU, where every float operation is a call of a compiler soft-float routine. It calls
# Session::new, step_token_int, step_frame_int, reset, snapshot and restore on opaque inputs, each
# through an #[inline(never)] wrapper named runnel_nofloat_* (see firmware/nopanic/src/nofloat.rs).
# scripts/call-sites.py --soft-float --reachable-from runnel_nofloat_ walks the call graph of the
# disassembly from those wrappers and fails if a soft-float routine (__addsf3, __aeabi_fmul,
# __floatsisf, __aeabi_dcmplt, ...) is reachable, naming the call sites by source line, or if an
# indirect call is (the walk cannot follow it). Model::from_bytes is not a root: it validates the
# f32 fields of float blobs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/firmware/target}
features=()
[ "${1:-}" = "--deliberate-float" ] && features=(--features deliberate-float)
status=0
for target in riscv32imac-unknown-none-elf thumbv7m-none-eabi; do
  echo "--- $target"
  (cd firmware && cargo build -q --release --target "$target" -p runnel-fw-nopanic --bin runnel-nofloat "${features[@]}")
  if scripts/call-sites.py --soft-float --reachable-from runnel_nofloat_ "$CARGO_TARGET_DIR/$target/release/runnel-nofloat"; then
    echo "no soft-float routine is reachable from the integer entry points"
  else
    echo "FAILED: the integer entry points reach floating point (above)"
    status=1
  fi
done
exit $status
