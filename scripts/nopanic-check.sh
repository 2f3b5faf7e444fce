#!/usr/bin/env bash
# Link-time proof that runnel's entry points contain no reachable panic in the firmware build.
#
#   scripts/nopanic-check.sh            # link firmware/nopanic for the M4F and RV32IMAC targets
#   scripts/nopanic-check.sh --report   # also list the panics that remain and their bytes
#   CARGO_TARGET_DIR=/tmp/t ...          # build elsewhere (default firmware/target)
#
# firmware/nopanic calls Model::from_bytes, Session::new, both steps, reset, snapshot and restore
# on inputs hidden from the optimiser; its panic handler calls an undefined symbol, so the link
# fails if any panic path survives (see firmware/nopanic/src/main.rs). With --report, a second
# build (feature allow-panic: a panic handler that links) is inspected by scripts/call-sites.py;
# a failed link prints that list too.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
target_dir=${CARGO_TARGET_DIR:-$root/firmware/target}
export CARGO_TARGET_DIR=$target_dir
report=0
[ "${1:-}" = "--report" ] && report=1
status=0
for target in thumbv7em-none-eabihf riscv32imac-unknown-none-elf; do
  echo "--- $target"
  log=$(mktemp)
  list=$report
  if (cd firmware && cargo build -q --release --target "$target" -p runnel-fw-nopanic --bin runnel-nopanic 2> "$log"); then
    echo "linked: no reachable panic"
  else
    if grep -q runnel_link_check_a_panic_is_reachable "$log"; then
      echo "FAILED: a panic is reachable from runnel's entry points; they are:"
      list=1
    else
      cat "$log"
    fi
    status=1
  fi
  rm -f "$log"
  if [ $list = 1 ]; then
    (cd firmware && cargo build -q --release --target "$target" -p runnel-fw-nopanic --bin runnel-nopanic --features allow-panic)
    scripts/call-sites.py "$target_dir/$target/release/runnel-nopanic"
  fi
done
exit $status
