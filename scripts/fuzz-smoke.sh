#!/usr/bin/env bash
# Builds the fuzz targets (fuzz/, cargo-fuzz on nightly, AddressSanitizer and debug assertions) and
# runs each one from its committed seeds (fuzz/corpus/<target>/) for a short time, one process at
# a time. Fails on any crash, leak, timeout or out-of-memory; the input that did it is left in
# fuzz/artifacts/<target>/. Prints executions, exec/s, coverage and corpus size per target.
#
#   scripts/fuzz-smoke.sh                                  # every target, 20 s each
#   FUZZ_SECONDS=600 scripts/fuzz-smoke.sh blob converter  # a long run of some targets
#
# New inputs go to fuzz/corpus-<target>/ (not committed), so a later run starts from them.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
# The fuzz crate is its own workspace with its own target dir (fuzz/target).
unset CARGO_TARGET_DIR

seconds="${FUZZ_SECONDS:-20}"
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo +nightly fuzz list); fi

echo "[fuzz-smoke] build ${targets[*]}" >&2
# (build parallelism: CARGO_BUILD_JOBS, as for every cargo command)
if [ $# -gt 0 ]; then
  for t in "${targets[@]}"; do cargo +nightly fuzz build -a "$t"; done
else
  cargo +nightly fuzz build -a
fi

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
failed=()
printf '%-16s %12s %9s %7s %7s %7s\n' target executions exec/s cov ft corpus >"$logs/table"
for t in "${targets[@]}"; do
  echo "[fuzz-smoke] run $t for ${seconds}s" >&2
  mkdir -p "corpus-$t"
  log="$logs/$t.log"
  if ! cargo +nightly fuzz run -a "$t" "corpus-$t" "corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    failed+=("$t")
    tail -n 60 "$log" >&2
  fi
  stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
  # The last status line: "#123 DONE cov: 456 ft: 789 corp: 12/3456b ..."
  last="$(grep -E '^#[0-9]+[[:space:]].*cov: ' "$log" | tail -1 || true)"
  field() { sed -n "s/.* $1: \([^ ]*\).*/\1/p" <<<"$last"; }
  printf '%-16s %12s %9s %7s %7s %7s\n' "$t" "$(stat number_of_executed_units)" \
    "$(stat average_exec_per_sec)" "$(field cov)" "$(field ft)" "$(field corp)" >>"$logs/table"
done
cat "$logs/table"
if [ ${#failed[@]} -gt 0 ]; then
  echo "[fuzz-smoke] FAILED: ${failed[*]} (inputs in fuzz/artifacts/<target>/)" >&2
  exit 1
fi
