#!/usr/bin/env bash
# Run a runnel firmware ELF under QEMU and decode its defmt log.
#
#   scripts/run-qemu.sh <arm|arm-m3|riscv> <elf> [extra qemu args...]
#
# arm   : qemu-system-arm -machine mps2-an386 -cpu cortex-m4   (Cortex-M4F)
# arm-m3: qemu-system-arm -machine mps2-an385 -cpu cortex-m3   (Cortex-M3: no FPU, no DSP)
# riscv : qemu-system-riscv32 -machine virt -bios none          (RV32IMAC)
# both with -nographic -semihosting-config enable=on,target=native -icount shift=0
#
# The firmware writes defmt frames to semihosting stdout; they are piped
# through `defmt-print -e <elf>`. The script exits with the firmware's
# semihosting exit status (124 on timeout).
#
# Environment:
#   RUNNEL_QEMU_TIMEOUT  seconds before the run is killed (default 120)
#   RUNNEL_QEMU_RAW      if set, also save the raw defmt byte stream there
#   DEFMT_PRINT          decoder binary (default: defmt-print on PATH)
#
# Also used as the cargo runner for the QEMU targets (firmware/.cargo/config.toml).
set -uo pipefail

usage() { echo "usage: $0 <arm|arm-m3|riscv> <elf> [qemu args...]" >&2; exit 2; }
[ $# -ge 2 ] || usage
arch=$1; elf=$2; shift 2
[ -f "$elf" ] || { echo "run-qemu: no such ELF: $elf" >&2; exit 2; }

case "$arch" in
  arm-m3|thumbv7m*)    qemu=(qemu-system-arm -machine mps2-an385 -cpu cortex-m3) ;;
  arm|cortex-m|thumb*) qemu=(qemu-system-arm -machine mps2-an386 -cpu cortex-m4) ;;
  riscv|riscv32*)      qemu=(qemu-system-riscv32 -machine virt -bios none) ;;
  *) usage ;;
esac
qemu+=(-nographic -semihosting-config enable=on,target=native -icount shift=0 -kernel "$elf" "$@")

timeout_s=${RUNNEL_QEMU_TIMEOUT:-120}
decoder=${DEFMT_PRINT:-defmt-print}
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
command -v "${qemu[0]}" >/dev/null || { echo "run-qemu: ${qemu[0]} not found (scripts/install-ci-deps.sh)" >&2; exit 127; }
command -v "$decoder" >/dev/null || { echo "run-qemu: $decoder not found (scripts/install-ci-deps.sh)" >&2; exit 127; }

raw_sink=(cat)
if [ -n "${RUNNEL_QEMU_RAW:-}" ]; then raw_sink=(tee "$RUNNEL_QEMU_RAW"); fi

# stdin from /dev/null: QEMU's -nographic monitor must not eat the terminal/CI input
timeout -k 5 "$timeout_s" "${qemu[@]}" </dev/null | "${raw_sink[@]}" | "$decoder" -e "$elf"
st=("${PIPESTATUS[@]}")
qemu_rc=${st[0]}; dec_rc=${st[2]}
if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
  echo "run-qemu: timed out after ${timeout_s}s" >&2
  exit 124
fi
if [ "$dec_rc" != 0 ]; then
  echo "run-qemu: $decoder failed (status $dec_rc)" >&2
  [ "$qemu_rc" != 0 ] || qemu_rc=3
fi
if [ "$qemu_rc" != 0 ]; then echo "run-qemu: firmware exit status $qemu_rc" >&2; fi
exit "$qemu_rc"
