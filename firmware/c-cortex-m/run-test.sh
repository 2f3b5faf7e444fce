#!/usr/bin/env bash
# The C firmware end to end: build the static library for thumbv7em, prepare the demo-model
# blobs and input stream (scripts/fw-blobs.sh: the Rust firmware's blobs, with the host
# runtime's per-step results), build the C firmware, run it under QEMU mps2-an386, and compare
# its per-step (step, argmax, checksum) with the host runtime's for every blob (int8, f16, f32,
# and the integer-only blob through the integer entry points, its checksums over the int32
# logits); then report the flash/RAM the library adds.
#
#   firmware/c-cortex-m/run-test.sh [FIXTURE]      # default: the demo model (charlm)
#
# Environment: RUNNEL_QEMU_TIMEOUT (seconds, default 300), RUNNEL_C_FW_BUILD (build directory,
# default firmware/c-cortex-m/build), RUNNEL_SKIP_INSTALL=1 (do not install missing tools),
# CARGO_TARGET_DIR (where cargo builds the library; default target/).
# Ends with "c-firmware: N passed, N failed"; exits non-zero on any failure.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
export CARGO_TERM_COLOR=never
build=${RUNNEL_C_FW_BUILD:-$here/build}
blobs=$build/blobs
timeout_s=${RUNNEL_QEMU_TIMEOUT:-300}
fixture=${1:-}
mkdir -p "$build"
build=$(cd "$build" && pwd)
blobs=$build/blobs
log=$build/runnel-c-fw.out  # the firmware's output (check logs are $build/NAME.log)
tgt=${CARGO_TARGET_DIR:-$root/target}

pass=0; fail=0; failed=()
# check NAME CMD...: output to $build/NAME.log, shown on failure
check() {
  local name=$1; shift
  local t0=$SECONDS
  "$@" >"$build/$name.log" 2>&1
  local rc=$?
  if [ $rc = 0 ]; then
    pass=$((pass + 1)); echo "ok   $name ($((SECONDS - t0))s)"
  else
    fail=$((fail + 1)); failed+=("$name")
    echo "FAIL $name (status $rc) -- last lines of $build/$name.log:"
    tail -n 25 "$build/$name.log" | sed 's/^/     | /'
  fi
  return $rc
}
finish() {
  [ $fail = 0 ] || echo "failed: ${failed[*]} (logs in $build)"
  echo "c-firmware: $pass passed, $fail failed"
  [ $fail = 0 ]
  exit
}

tools() {
  local missing=0
  for t in arm-none-eabi-gcc arm-none-eabi-size qemu-system-arm; do
    command -v "$t" >/dev/null || { echo "missing $t"; missing=1; }
  done
  if [ $missing = 1 ] && [ "${RUNNEL_SKIP_INSTALL:-0}" != 1 ]; then
    if [ -x "$root/scripts/install-ci-deps.sh" ]; then
      "$root/scripts/install-ci-deps.sh"
    else
      apt-get update -qq && apt-get install -y -qq gcc-arm-none-eabi qemu-system-arm
    fi
  fi
  for t in arm-none-eabi-gcc arm-none-eabi-size qemu-system-arm; do command -v "$t" >/dev/null || return 1; done
  rustup target list --installed | grep -qx thumbv7em-none-eabihf || rustup target add thumbv7em-none-eabihf
}

staticlib() {
  cd "$root" && cargo build -p runnel-capi --release --target thumbv7em-none-eabihf
}

prepare_blobs() {
  RUNNEL_FW_BLOBS=$blobs "$root/scripts/fw-blobs.sh" ${fixture:+"$fixture"}
}

firmware() {
  make -C "$here" BUILD="$build" BLOBS="$blobs" \
    RUNNEL_LIB="$tgt/thumbv7em-none-eabihf/release/librunnel_capi.a" all
}

# the same firmware built with CMake through runnel::runnel (capi/CMakeLists.txt), reusing the
# library cargo built above; it must compute the same steps as the Makefile build
cmake_firmware() {
  command -v cmake >/dev/null || { echo "cmake not found (scripts/install-ci-deps.sh installs it)"; return 1; }
  cmake -S "$here" -B "$build/cmake" -DCMAKE_TOOLCHAIN_FILE="$here/arm-none-eabi.cmake" \
    -DRUNNEL_RUST_TARGET=thumbv7em-none-eabihf -DRUNNEL_CARGO_TARGET_DIR="$tgt" \
    -DRUNNEL_FW_BLOBS="$blobs" && cmake --build "$build/cmake" || return 1
  timeout -k 5 "$timeout_s" qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic \
    -semihosting-config enable=on,target=native -icount shift=0 \
    -kernel "$build/cmake/runnel-c-fw.elf" </dev/null >"$build/cmake.out" 2>&1 || return 1
  diff <(grep -E '^(model|step=)' "$log" | awk '{print $1, $2, $3}') \
       <(grep -E '^(model|step=)' "$build/cmake.out" | awk '{print $1, $2, $3}') &&
    echo "the CMake build computes what the Makefile build computes ($(grep -c '^step=' "$build/cmake.out") steps)"
}

qemu_run() {
  timeout -k 5 "$timeout_s" qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic \
    -semihosting-config enable=on,target=native -icount shift=0 \
    -kernel "$build/runnel-c-fw.elf" </dev/null >"$log" 2>&1
  local rc=$?
  cat "$log"
  [ $rc = 124 ] && echo "timed out after ${timeout_s}s"
  return $rc
}

# (step, argmax, checksum) of blob $1: the firmware's lines vs the host runtime's expected file
compare() {
  local w=$1
  awk -v w="$w" '
    /^model weights=/ { cur = ($2 == "weights=" w) ; next }
    /^(summary|result) / { cur = 0 }
    cur && /^step=/ { print $1, $2, $3 }' "$log" >"$build/got.$w.txt"
  awk '/^step=/ { print $1, $2, $3 }' "$blobs/expected.$w.txt" >"$build/want.$w.txt"
  local n; n=$(wc -l <"$build/want.$w.txt")
  [ "$n" -gt 0 ] || { echo "no expected steps for $w"; return 1; }
  if diff -u "$build/want.$w.txt" "$build/got.$w.txt"; then
    echo "$w: $n steps: step, argmax and checksum equal the host runtime's"
  else
    echo "$w: the C firmware differs from the host runtime (- host, + firmware)"
    return 1
  fi
}

check tools tools || finish
check staticlib staticlib || finish
check blobs prepare_blobs || finish
check build firmware || finish
check qemu qemu_run
for w in $(awk '$1 == "blob" { print $2 }' "$blobs/manifest.txt"); do
  check "compare-$w" compare "$w"
done
check cmake cmake_firmware
# docs/RELIABILITY.md: no core panic function is linked into the C firmware (the library is built
# without fat LTO, so this is not the Rust link-time proof; scripts/call-sites.py lists them)
no_panic() {
  "$root/scripts/call-sites.py" "$build/runnel-c-fw.elf" && "$root/scripts/call-sites.py" "$build/runnel-c-fw.elf" | grep -qx "call sites: 0"
}
check no-panic no_panic
echo "--- per blob (from the QEMU log)"
grep -E "^(runnel-c-fw|self-check|summary|result|exit)" "$log" | sed 's/^/  /'
echo "--- flash/RAM the library adds (bytes)"
check size "$here/size.sh" "$build/runnel-c-fw.elf" "$build/runnel-c-fw-baseline.elf" "$build/runnel-c-fw.map" &&
  sed 's/^/  /' "$build/size.log"
finish
