#!/usr/bin/env bash
# Host step time of the demo model, this tree against a base commit, measured side by side in one
# run (so the speed-up is a ratio, not two figures from different days).
#
#   scripts/bench-host-vs.sh [BASE_COMMIT] [ROUNDS]     # default: 5a82186, 5 rounds
#
# Builds, in this tree and in a git worktree of BASE_COMMIT (under ${TMPDIR:-/tmp}), the converter
# and benches/examples/step_time.rs (copied into the base tree: it uses only the API both share),
# converts models/charlm in each mode with each tree's own converter (the formats may differ), and
# runs the two step_time binaries alternately ROUNDS times over models/charlm/heldout.txt. Prints
# per mode the median over rounds of each build's median µs per step, and base / this.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
base=${1:-5a82186}
rounds=${2:-5}
work=${TMPDIR:-/tmp}/runnel-bench-vs-$base
modes="f32:f32 f16:f16 int8:int8"
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}

if [ ! -d "$work/tree" ]; then
  mkdir -p "$work"
  git -C "$root" worktree add --detach "$work/tree" "$base" >/dev/null
fi
mkdir -p "$work/tree/benches/examples"
cp "$root/benches/examples/step_time.rs" "$work/tree/benches/examples/step_time.rs"

build() { # tree target_dir
  (cd "$1" && CARGO_TARGET_DIR=$2 cargo build -q --release -p runnel-converter --bin runnel \
    && CARGO_TARGET_DIR=$2 cargo build -q --release -p runnel-benches --example step_time)
}
build "$root" "$root/target"
build "$work/tree" "$work/target"

declare -A args
for side in this base; do
  if [ $side = this ]; then t=$root/target; else t=$work/target; fi
  args[$side]=""
  for m in $modes; do
    w=${m%%:*}; kv=${m##*:}
    out="$work/$side-$w-$kv.rnl"
    "$t/release/runnel" convert "$root/models/charlm/charlm.safetensors" --weights "$w" --kv "$kv" \
      -o "$out" >/dev/null
    args[$side]+=" $w/$kv=$out"
  done
  # The integer-only mode (this tree only; compared with the base's int8/int8, the mode it
  # replaces on cores without an FPU), calibrated on the training side of the text.
  if [ $side = this ] && "$t/release/runnel" convert --help | grep -q -- --integer; then
    out="$work/$side-integer.rnl"
    "$t/release/runnel" convert "$root/models/charlm/charlm.safetensors" --integer \
      --calibrate "$root/models/charlm/calibration.safetensors" -o "$out" >/dev/null
    args[$side]+=" integer=$out"
  fi
done

log="$work/rounds.txt"
: >"$log"
for r in $(seq "$rounds"); do
  # shellcheck disable=SC2086
  "$root/target/release/examples/step_time" "$root/models/charlm/heldout.txt" ${args[this]} | sed "s/^/this /" >>"$log"
  # shellcheck disable=SC2086
  "$work/target/release/examples/step_time" "$root/models/charlm/heldout.txt" ${args[base]} | sed "s/^/base /" >>"$log"
done

echo "host µs per step (median over $rounds alternating rounds of each build's median), base $base"
python3 - "$log" "$base" <<'PY'
import sys, statistics, collections
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    side, mode, med, *_ = line.split()
    d[(side, mode)].append(float(med.split("=")[1]))
print(f"| mode | {sys.argv[2]} | this tree | speed-up |")
print("|---|---|---|---|")
for mode in sorted({m for _, m in d}, key=lambda m: ["f32/f32", "f16/f16", "int8/int8"].index(m) if m in ["f32/f32", "f16/f16", "int8/int8"] else 9):
    base = "int8/int8" if mode == "integer" else mode
    if ("base", base) not in d:
        continue
    b = statistics.median(d[("base", base)]); t = statistics.median(d[("this", mode)])
    label = "integer (base: int8/int8)" if mode == "integer" else mode
    print(f"| {label} | {b:.1f} | {t:.1f} | {b / t:.2f}x |")
PY
