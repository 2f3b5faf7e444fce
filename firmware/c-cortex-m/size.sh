#!/usr/bin/env bash
# Flash and static RAM the runnel C library adds to the C firmware, two ways:
#  1. full build minus baseline build (the same program with the library calls compiled out);
#  2. from the full build's map file: the input sections that come from librunnel_capi.a.
# Flash = .isr_vector + .text + .rodata + .data (load image), without .runnel_blobs (the model
# blobs and input stream); RAM = .data + .bss (the stack comes on top).
#
#   size.sh FULL.elf BASELINE.elf FULL.map
set -euo pipefail
[ $# = 3 ] || { echo "usage: $0 FULL.elf BASELINE.elf FULL.map" >&2; exit 2; }

# prints: text rodata data bss blobs
sections() {
  arm-none-eabi-size -A -d "$1" | awk '
    $1 == ".isr_vector" || $1 == ".text" { text += $2 }
    $1 == ".rodata" { rodata += $2 }
    $1 == ".data" { data += $2 }
    $1 == ".bss" { bss += $2 }
    $1 == ".runnel_blobs" { blobs += $2 }
    END { printf "%d %d %d %d %d\n", text, rodata, data, bss, blobs }'
}
read -r ft fr fd fb fblobs < <(sections "$1")
read -r bt br bd bb _ < <(sections "$2")

# map: sum the sizes of input sections from librunnel_capi.a per output section
read -r mt mr md mb < <(awk '
  /^Linker script and memory map/ { on = 1; next }
  !on { next }
  /^[.A-Za-z_]/ { split($1, a, " "); out = a[1]; pending = ""; next }   # an output section
  /^ [.A-Za-z_]/ && NF == 1 { pending = $1; next }                      # name alone, rest below
  {
    line = $0
    if (pending != "") { line = pending " " line; pending = "" }
    n = split(line, f, " ")
    if (n < 4 || f[2] !~ /^0x/ || f[3] !~ /^0x/ || line !~ /librunnel_capi\.a\(/) next
    size = strtonum_hex(f[3])
    if (out == ".text") t += size
    else if (out == ".rodata") r += size
    else if (out == ".data") d += size
    else if (out == ".bss") b += size
  }
  function strtonum_hex(s,   i, c, v) {
    v = 0; s = tolower(substr(s, 3))
    for (i = 1; i <= length(s); i++) { c = index("0123456789abcdef", substr(s, i, 1)) - 1; v = v * 16 + c }
    return v
  }
  END { printf "%d %d %d %d\n", t, r, d, b }' "$3")

printf '%-34s %8s %8s %6s %6s %9s %8s\n' "" text rodata data bss flash ram
printf '%-34s %8d %8d %6d %6d %9d %8d\n' "C firmware with runnel" "$ft" "$fr" "$fd" "$fb" $((ft + fr + fd)) $((fd + fb))
printf '%-34s %8d %8d %6d %6d %9d %8d\n' "baseline (no library calls)" "$bt" "$br" "$bd" "$bb" $((bt + br + bd)) $((bd + bb))
printf '%-34s %8d %8d %6d %6d %9d %8d\n' "difference" $((ft - bt)) $((fr - br)) $((fd - bd)) $((fb - bb)) $((ft + fr + fd - bt - br - bd)) $((fd + fb - bd - bb))
printf '%-34s %8d %8d %6d %6d %9d %8d\n' "librunnel_capi.a sections (map)" "$mt" "$mr" "$md" "$mb" $((mt + mr + md)) $((md + mb))
echo "(blobs and input stream, not counted: $fblobs bytes; the difference in bss is the firmware's own self-check statics)"
echo "library-added flash (map): $((mt + mr + md)) bytes; library-added static RAM (map): $((md + mb)) bytes"
