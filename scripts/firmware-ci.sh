#!/usr/bin/env bash
# Build, lint and run the firmware (firmware/ workspace) the way CI does.
#
#   scripts/firmware-ci.sh            # everything
#   RUNNEL_SKIP_INSTALL=1 scripts/firmware-ci.sh   # don't run install-ci-deps.sh
#   RUNNEL_FW_KEEP_LOGS=1 ...                      # keep the per-check logs
#   RUNNEL_FW_MODEL=tok_lstm2_attn_gru ...         # embed a tests/fixtures model instead
#                                                  # of the demo model (no budget check)
#   RUNNEL_BLESS=1 ...                             # rewrite firmware/budget.toml with
#                                                  # the measured figures
#   CARGO_TARGET_DIR=/tmp/t ...                    # build elsewhere (default firmware/target)
#
# Checks: rustfmt, clippy (host + both targets), host unit tests of
# runnel-fw-common; model blobs prepared by scripts/fw-blobs.sh (default: the
# demo model models/charlm, 64 characters of its held-out text); release
# builds of the QEMU and real-board firmware; QEMU runs of the demo on the
# three emulated boards (Cortex-M4F mps2-an386, Cortex-M3 mps2-an385 without
# FPU or DSP, RV32IMAC virt) whose per-step argmax/checksums must equal the host runtime's
# (runnel-fw-host check; every weight type, the integer-only mode through its
# integer entry point step_token_int), with the int8 kernel microbenchmarks; the budget
# (firmware/budget.toml: instructions per step, code, static RAM, peak stack
# and kernel cost must not grow more than 10%) and a self-test that the
# budget check does fail; the no-float proof of the integer-only mode
# (scripts/nofloat-check.sh) and its self-test; counter calibration, the panic path (exit status
# 101) and the placeholder fallback; sizes.
# Ends with the line "firmware: N passed, N failed"; exits non-zero on failure.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
export CARGO_TERM_COLOR=never

if [ "${RUNNEL_SKIP_INSTALL:-0}" != 1 ]; then
  "$here/install-ci-deps.sh" || { echo "firmware: install-ci-deps.sh failed"; echo "firmware: 0 passed, 1 failed"; exit 1; }
fi

cd "$root/firmware"
logdir=$(mktemp -d "${TMPDIR:-/tmp}/runnel-fw-ci.XXXXXX")
pass=0; fail=0; failed=()

# check NAME EXPECTED_STATUS CMD... ; output goes to $logdir/NAME.log
check() {
  local name=$1 want=$2; shift 2
  local t0=$SECONDS
  "$@" >"$logdir/$name.log" 2>&1
  local rc=$?
  if [ "$rc" = "$want" ]; then
    pass=$((pass + 1)); echo "ok   $name ($((SECONDS - t0))s)"
  else
    fail=$((fail + 1)); failed+=("$name")
    echo "FAIL $name (status $rc, expected $want) -- last lines of $logdir/$name.log:"
    tail -n 25 "$logdir/$name.log" | sed 's/^/     | /'
  fi
}

# a QEMU run must exit 0 and print the summary line; with blobs, its log must
# match the host runtime step by step
qemu_demo() {
  local name=$1 arch=$2 elf=$3 blobs=${4:-}
  local log="$logdir/$name.decoded"
  "$root/scripts/run-qemu.sh" "$arch" "$elf" >"$log" 2>&1; local rc=$?
  cat "$log"
  [ $rc = 0 ] || return $rc
  grep -q "summary steps=" "$log" || { echo "no summary line"; return 1; }
  if [ -n "$blobs" ]; then
    "$host_tool" check --blobs "$blobs" --log "$log"
  fi
}
# firmware/nopanic with one deliberate panic must fail to link, naming the check's symbol
nopanic_selftest() {
  local out
  out=$(cargo build --release --target $ARM -p runnel-fw-nopanic --features deliberate-panic 2>&1) && { echo "linked despite a deliberate panic"; return 0; }
  grep -q runnel_link_check_a_panic_is_reachable <<<"$out" || { echo "$out"; echo "failed for another reason"; return 0; }
  echo "link failed as it must: $(grep -m1 -o 'undefined symbol: runnel_link_check_a_panic_is_reachable' <<<"$out")"
  return 101
}

# the no-float check built with one deliberate float operation in the integer step's wrapper
# must fail on both targets, naming it
nofloat_selftest() {
  local out rc
  out=$("$root/scripts/nofloat-check.sh" --deliberate-float 2>&1); rc=$?
  echo "$out"
  [ $rc != 0 ] || { echo "the check passed despite a deliberate float operation"; return 1; }
  [ "$(grep -cE '^soft-float routines reachable: [1-9]' <<<"$out")" = 2 ] || { echo "failed for another reason"; return 1; }
  grep -q 'nofloat.rs:' <<<"$out" || { echo "the call site is not named"; return 1; }
}

# the panic self-test must exit 101 after logging "panic at"
qemu_panic() {
  local out; out=$("$root/scripts/run-qemu.sh" "$1" "$2" 2>&1); local rc=$?
  echo "$out"
  grep -q "panic at" <<<"$out" || { echo "no panic log"; return 1; }
  return $rc
}

ARM=thumbv7em-none-eabihf
M3=thumbv7m-none-eabi
RV=riscv32imac-unknown-none-elf
# honour CARGO_TARGET_DIR (e.g. to time a cold build without touching firmware/target)
tgt=${CARGO_TARGET_DIR:-$root/firmware/target}
A=$tgt/$ARM/release
C3=$tgt/$M3/release
R=$tgt/$RV/release

export RUNNEL_FW_BLOBS=${RUNNEL_FW_BLOBS:-$root/firmware/blobs}
fw_model=${RUNNEL_FW_MODEL:-${RUNNEL_FW_FIXTURE:-charlm}}
budget_file=$root/firmware/budget.toml
unset RUNNEL_FW_WEIGHTS
host_tool=$tgt/host/runnel-fw-host

# rustfmt on firmware/ sources only (`cargo fmt --all` would also reformat the
# path dependencies runtime/ and converter/, which belong to others)
# (firmware/c-cortex-m is not part of this workspace and has its own checks)
fmt_check() { find . -name '*.rs' -not -path './target/*' -not -path './c-cortex-m/*' -print0 | xargs -0 rustfmt --edition 2021 --check; }
check fmt 0 fmt_check
check host-tests 0 cargo test -p runnel-fw-common
check clippy-host 0 cargo clippy -p runnel-fw-common --all-targets -- -D warnings
# a newcomer's plain `cargo check` in firmware/ works (default members: the host crates)
check plain-cargo-check 0 cargo check -q
check clippy-arm 0 cargo clippy --release --target $ARM -p runnel-fw-cortex-m -p runnel-fw-nrf52840 -p runnel-fw-nopanic --all-targets -- -D warnings
check clippy-m3 0 cargo clippy --release --target $M3 -p runnel-fw-cortex-m3 --all-targets -- -D warnings
check clippy-riscv 0 cargo clippy --release --target $RV -p runnel-fw-riscv -p runnel-fw-rp2350-riscv -p runnel-fw-nopanic --all-targets -- -D warnings
check clippy-host-tool 0 cargo clippy --profile host -p runnel-fw-host -- -D warnings
check blobs 0 "$root/scripts/fw-blobs.sh" "$fw_model"
check build-arm 0 cargo build --release --target $ARM -p runnel-fw-cortex-m --bins --examples
check build-m3 0 cargo build --release --target $M3 -p runnel-fw-cortex-m3
check build-riscv 0 cargo build --release --target $RV -p runnel-fw-riscv --bins --examples
check build-nrf52840 0 cargo build --release --target $ARM -p runnel-fw-nrf52840
check build-rp2350-riscv 0 cargo build --release --target $RV -p runnel-fw-rp2350-riscv
# runnel's entry points are statically panic-free (a link-time proof), and the proof can fail
check nopanic 0 "$root/scripts/nopanic-check.sh"
check nopanic-selftest 101 nopanic_selftest
# the integer-only mode's step reaches no soft-float routine (RV32IMAC, Cortex-M3), and the check can fail
check nofloat 0 "$root/scripts/nofloat-check.sh"
check nofloat-selftest 0 nofloat_selftest
check qemu-arm-demo 0 qemu_demo qemu-arm-demo arm $A/runnel-fw-mps2-an386 "$RUNNEL_FW_BLOBS"
check qemu-m3-demo 0 qemu_demo qemu-m3-demo arm-m3 $C3/runnel-fw-mps2-an385 "$RUNNEL_FW_BLOBS"
check qemu-riscv-demo 0 qemu_demo qemu-riscv-demo riscv $R/runnel-fw-qemu-virt "$RUNNEL_FW_BLOBS"
check qemu-arm-calibrate 0 "$root/scripts/run-qemu.sh" arm $A/examples/systick_calibrate
check qemu-riscv-calibrate 0 "$root/scripts/run-qemu.sh" riscv $R/examples/minstret_calibrate
check qemu-arm-panic 101 qemu_panic arm $A/examples/panic_exit
check qemu-riscv-panic 101 qemu_panic riscv $R/examples/panic_exit

elfs=($A/runnel-fw-mps2-an386 $A/runnel-fw-nrf52840 $C3/runnel-fw-mps2-an385 $R/runnel-fw-qemu-virt $R/runnel-fw-rp2350-riscv)
"$root/scripts/fw-size.sh" --tsv "${elfs[@]}" >"$logdir/sizes.tsv" 2>&1

# the budget: compare the figures of both QEMU runs with firmware/budget.toml
budget_cmd=("$host_tool" budget --budget "$budget_file" --sizes "$logdir/sizes.tsv"
  --logs "mps2-an386=$logdir/qemu-arm-demo.decoded,mps2-an385=$logdir/qemu-m3-demo.decoded,qemu-virt=$logdir/qemu-riscv-demo.decoded")
# the check must be able to fail: against a budget equal to what was just
# measured but with one figure 20% lower it must fail; with one 20% higher it
# must pass and print the hint
budget_selftest() {
  local t=$logdir/budget-selftest
  "${budget_cmd[@]}" --measured-out "$t.measured.toml" >/dev/null
  [ -s "$t.measured.toml" ] || { echo "no measured figures"; return 1; }
  awk '!done && /^instructions_per_step *=/ { gsub(/_/, "", $3); $3 = int($3 * 0.8); done = 1 } 1' "$t.measured.toml" >"$t.toml"
  "${budget_cmd[@]:0:2}" --budget "$t.toml" "${budget_cmd[@]:4}" && { echo "a figure 25% over budget passed"; return 1; }
  awk '!done && /^code_bytes *=/ { gsub(/_/, "", $3); $3 = int($3 * 1.2); done = 1 } 1' "$t.measured.toml" >"$t.toml"
  "${budget_cmd[@]:0:2}" --budget "$t.toml" "${budget_cmd[@]:4}" | tee "$t.out" || { echo "a figure 17% under budget failed"; return 1; }
  grep -qE "code_bytes .* shrank" "$t.out" && grep -q "hint:" "$t.out" || { echo "no hint for a figure under budget"; return 1; }
}
# the expected per-step output is checked in (firmware/expected/): the host runtime must still
# produce it, and the QEMU runs above were held to the host's, so they produce it too
expected_dir="$root/firmware/expected"
expected_checked_in() {
  local rc=0 w
  for w in int8 f16 f32 integer; do
    if [ "${RUNNEL_BLESS:-0}" = 1 ]; then
      mkdir -p "$expected_dir" && cp "$RUNNEL_FW_BLOBS/expected.$w.txt" "$expected_dir/charlm.$w.txt"
    elif ! diff -u "$expected_dir/charlm.$w.txt" "$RUNNEL_FW_BLOBS/expected.$w.txt"; then
      echo "the $w outputs differ from firmware/expected/charlm.$w.txt; if the change is intended, RUNNEL_BLESS=1 scripts/firmware-ci.sh"
      rc=1
    fi
  done
  return $rc
}
if [ "$fw_model" = charlm ]; then
  check expected-output 0 expected_checked_in
fi

if [ "$fw_model" != charlm ]; then
  echo "skip budget (firmware/budget.toml is for the demo model, not $fw_model)"
elif [ "${RUNNEL_BLESS:-0}" = 1 ]; then
  check budget-bless 0 "${budget_cmd[@]}" --bless 1
  cat "$budget_file" | sed 's/^/  /'
else
  check budget 0 "${budget_cmd[@]}"
  check budget-selftest 0 budget_selftest
fi

echo "--- QEMU demo summaries"
grep -hE "board=|model weights=|summary|result weights=|bench kernel=" "$logdir"/qemu-*-demo.decoded 2>/dev/null | sed 's/^/  /'
echo "--- sizes (bytes)"
"$root/scripts/fw-size.sh" "${elfs[@]}" 2>&1 | sed 's/^/  /'
if [ -f "$logdir/budget.log" ]; then
  echo "--- budget (firmware/budget.toml)"
  sed 's/^/  /' "$logdir/budget.log"
fi

# fallback without blobs (last: it leaves the placeholder build in target/)
placeholder() {
  RUNNEL_FW_BLOBS=/nonexistent cargo build --release --target $RV -p runnel-fw-riscv --bin runnel-fw-qemu-virt &&
    qemu_demo qemu-riscv-placeholder riscv $R/runnel-fw-qemu-virt
}
check qemu-riscv-placeholder 0 placeholder

if [ $fail = 0 ]; then
  [ -n "${RUNNEL_FW_KEEP_LOGS:-}" ] && echo "logs in $logdir" || rm -rf "$logdir"
else
  echo "failed: ${failed[*]} (logs in $logdir)"
fi
echo "firmware: $pass passed, $fail failed"
[ $fail = 0 ]
