#!/usr/bin/env bash
# Instructions per step of each function of the firmware, from a QEMU instruction trace.
#
#   scripts/fw-profile.sh [--weights integer|int8|f16|f32] [--board arm|arm-m3|riscv]
#                         [--steps N] [--top K] [--pcs REGEX]
#
# Builds the QEMU firmware for the board with only the demo model's blob of that weight
# type, once fed 1 character and once N + 1 (default N = 64), runs both under QEMU with
# one instruction per translation block (`-d exec,nochain`, streamed through awk: nothing
# is written to disk), and prints for each function the difference of its instruction
# counts divided by N: the mean cost per step of steps 2 … N + 1 without the start-up
# (loading, validation, `Session::new`). Inlined functions count for their caller.
# With --pcs REGEX, also the instructions per step at each address of the functions whose
# (mangled) name matches REGEX, from the longer run (start-up included), as
# "count address function", for reading beside `objdump -d` of the same ELF (kept in the
# target directory).
# Takes about a minute per 64 steps on the M4F (integer).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

weights=integer; board=arm; steps=64; top=25; pcs=""
while [ $# -gt 0 ]; do
  case "$1" in
    --weights) weights=$2; shift 2 ;;
    --board) board=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --top) top=$2; shift 2 ;;
    --pcs) pcs=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "fw-profile: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$board" in
  arm) target=thumbv7em-none-eabihf; pkg=runnel-fw-cortex-m; bin=runnel-fw-mps2-an386
       qemu=(qemu-system-arm -machine mps2-an386 -cpu cortex-m4) ;;
  arm-m3) target=thumbv7m-none-eabi; pkg=runnel-fw-cortex-m3; bin=runnel-fw-mps2-an385
       qemu=(qemu-system-arm -machine mps2-an385 -cpu cortex-m3) ;;
  riscv) target=riscv32imac-unknown-none-elf; pkg=runnel-fw-riscv; bin=runnel-fw-qemu-virt
       qemu=(qemu-system-riscv32 -machine virt -bios none) ;;
  *) echo "fw-profile: unknown board $board" >&2; exit 2 ;;
esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/firmware/target}

count() { # $1 = characters fed; prints "count symbol" lines
  local blobs="$work/blobs$1"
  RUNNEL_FW_BLOBS=$blobs "$here/fw-blobs.sh" charlm --weights "$weights" --steps "$1" >/dev/null
  (cd "$root/firmware" && RUNNEL_FW_BLOBS=$blobs RUNNEL_FW_WEIGHTS=$weights \
    cargo build -q --release --target "$target" -p "$pkg" --bin "$bin")
  mkfifo "$work/trace$1"
  awk -v pat="$pcs" -v pcfile="$work/pcs$1" '
    { c[$NF]++ }
    pat != "" && $NF ~ pat { split($4, f, "/"); p[f[2] " " $NF]++ }
    END {
      for (k in c) print c[k], k
      for (k in p) print p[k], k > pcfile
    }' "$work/trace$1" > "$work/count$1" &
  timeout 1800 "${qemu[@]}" -nographic -semihosting-config enable=on,target=native \
    -icount shift=0 -accel tcg,one-insn-per-tb=on -d exec,nochain -D "$work/trace$1" \
    -kernel "$CARGO_TARGET_DIR/$target/release/$bin" >/dev/null || true
  wait
}
count 1
count $((steps + 1))
awk -v n="$steps" -v top="$top" '
  FNR == NR { a[$2] = $1; next }
  { d = $1 - a[$2]; if (d > 0) { c[$2] = d; t += d } }
  END {
    printf "%12s  %6s  %s\n", "instr/step", "share", "function"
    for (k in c) printf "%12.0f  %5.1f%%  %s\n", c[k] / n, 100 * c[k] / t, k | "sort -rn | head -" top
    close("sort -rn | head -" top)
    printf "%12.0f  %5.1f%%  total\n", t / n, 100
  }' "$work/count1" "$work/count$((steps + 1))"
if [ -n "$pcs" ]; then
  echo
  echo "per address (instructions per step, start-up included), functions matching $pcs:"
  awk -v n="$steps" '{ printf "%10.1f %s %s\n", $1 / (n + 1), $2, $3 }' "$work/pcs$((steps + 1))" | sort -k3,3 -k2,2
fi
