#!/usr/bin/env bash
# Writes the committed seed corpora fuzz/corpus/<target>/ from the test fixtures (tests/fixtures/),
# with the workspace's `runnel` CLI. Run again after a format or contract change.
#
#   fuzz/seed-corpus.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fx=tests/fixtures
out=fuzz/corpus
rm -rf "$out"
mkdir -p "$out/blob" "$out/blob_structured" "$out/converter"

cargo build -q -p runnel-converter --bin runnel
runnel="${CARGO_TARGET_DIR:-target}/debug/runnel"

# blob: small converted blobs (no .rnl suffix: *.rnl is git-ignored); bigger ones would slow
# every execution down (libFuzzer's -max_len follows the largest seed).
for m in window_exceeds_T:int8 window_exceeds_T:f16 window_exceeds_T:f32 frames_gru:int8 \
  tokens_i32:int8 stacked_narrow:int8; do
  name="${m%%:*}" ty="${m##*:}"
  "$runnel" convert "$fx/$name/model.safetensors" -o "$out/blob/$name-$ty" --weights "$ty" --kv "$ty" >/dev/null
done

# blob_structured: one byte per seed blob (Plan::seed; no edits, no cut): the intact blobs.
for i in 0 1 2 3 4 5 6 7 8; do printf "\\x$i" >"$out/blob_structured/seed-$i"; done

# converter: small models, the malformed ones, and the `runnel.config` texts alone.
for name in window_exceeds_T tokens_i32 bf16_weights frames_gru; do
  cp "$fx/$name/model.safetensors" "$out/converter/$name.safetensors"
  python3 -c 'import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
sys.stdout.write(json.loads(b[8:8 + n])["__metadata__"]["runnel.config"])' \
    "$fx/$name/model.safetensors" >"$out/converter/$name.json"
done
cp "$fx"/malformed/*.safetensors "$out/converter/"
du -sh "$out"/*
