#!/usr/bin/env bash
# Prepare the model blobs the firmware embeds (firmware/blobs/, not committed).
#
#   scripts/fw-blobs.sh [charlm|FIXTURE] [--weights int8,f16,f32,integer] [--kv int8] [--steps N]
#   scripts/fw-blobs.sh --model M.safetensors (--inputs I.safetensors | --text T.txt)
#                       [--calibrate C.txt|C.safetensors] [...]
#
# charlm (the default) is the demo character model, models/charlm/charlm.safetensors,
# fed the first N characters (--steps, default $RUNNEL_FW_STEPS or 64) of
# models/charlm/heldout.txt. FIXTURE is a directory name under tests/fixtures/
# (e.g. tok_lstm2_attn_gru), fed its inputs.safetensors (all steps unless --steps).
# Converts the model once per weight type with the runnel converter (`integer`:
# the integer-only mode, calibrated on --calibrate: for charlm
# models/charlm/calibration.txt, for a fixture its inputs), writes the
# input stream, and records what the host runtime computes for it (per-step
# argmax + output checksum, run checksum) so that the firmware can check
# itself and `runnel-fw-host check` can compare a firmware log step by step.
#
# Output directory: $RUNNEL_FW_BLOBS, default firmware/blobs. The firmware
# build (firmware/app/build.rs) reads the same variable; with
# RUNNEL_FW_WEIGHTS=int8 (say) it embeds only some of the blobs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}

which=charlm
args=()
model=""; inputs=""; text=""; steps=""; calibrate=""
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$(realpath "$2"); shift 2 ;;
    --inputs) inputs=$(realpath "$2"); shift 2 ;;
    --text) text=$(realpath "$2"); shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --calibrate) calibrate=$(realpath "$2"); shift 2 ;;
    --weights|--kv) args+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    -*) echo "fw-blobs: unknown option $1" >&2; exit 2 ;;
    *) which=$1; shift ;;
  esac
done
if [ -z "$model" ]; then
  if [ "$which" = charlm ]; then
    model="$root/models/charlm/charlm.safetensors"
    text="$root/models/charlm/heldout.txt"
    calibrate=${calibrate:-$root/models/charlm/calibration.txt}
    steps=${steps:-${RUNNEL_FW_STEPS:-64}}
  else
    model="$root/tests/fixtures/$which/model.safetensors"
    inputs="$root/tests/fixtures/$which/inputs.safetensors"
  fi
fi
[ -f "$model" ] || { echo "fw-blobs: no model $model" >&2; exit 2; }
if [ -n "$text" ]; then
  [ -f "$text" ] || { echo "fw-blobs: no text $text" >&2; exit 2; }
  args+=(--text "$text")
else
  [ -f "$inputs" ] || { echo "fw-blobs: no inputs $inputs (give --inputs or --text)" >&2; exit 2; }
  args+=(--inputs "$inputs")
fi
[ -z "$steps" ] || args+=(--steps "$steps")
[ -z "$calibrate" ] || args+=(--calibrate "$calibrate")
out=${RUNNEL_FW_BLOBS:-$root/firmware/blobs}
mkdir -p "$out"
out=$(realpath "$out")
rm -f "$out"/*.rnl "$out"/expected.*.txt "$out"/manifest.txt "$out"/inputs.bin "$out"/inputs_i8.bin

cd "$root/firmware"
cargo run -q --profile host -p runnel-fw-host -- prepare \
  --model "$model" --out "$out" "${args[@]}"
