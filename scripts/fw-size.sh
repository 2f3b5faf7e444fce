#!/usr/bin/env bash
# Code size and static RAM of firmware ELFs (a `size`-like report).
#
#   scripts/fw-size.sh <elf>...          # table
#   scripts/fw-size.sh --tsv <elf>...    # tab-separated, header line first
#
# Columns (bytes), from the ELF section headers:
#   text    executable alloc sections (.vector_table counts as text on Cortex-M)
#   rodata  read-only non-executable alloc PROGBITS (.rodata, .eh_frame, ...)
#   data    .data (initialised RAM; its load image is also stored in flash)
#   bss     zero-init / uninit RAM: writable NOBITS (.bss, .uninit), excluding
#           the linker's fictitious .heap/.stack regions
#   flash   text + rodata + data  (bytes that must be stored in non-volatile memory)
#   ram     data + bss            (static RAM; the stack comes on top of it)
#   blobs   bytes of embedded model blobs (symbols `*::ALIGNED*` made by
#           runnel::include_blob!), part of rodata
#   code    flash - blobs         (the firmware without its models)
#   runtime the part of `code` that is the runnel runtime: the sizes of the
#           function symbols of runnel and of what only it uses (libm, half,
#           heapless, soft-float helpers), plus the firmware's one-line
#           `Workload::step` wrapper into which LTO inlines
#           Session::step_token/step_frame. An estimate: code LTO inlined
#           elsewhere is counted where it landed.
# Non-alloc sections (.defmt, .debug_*, .symtab, ...) are not counted.
#
# Uses GNU readelf (binutils) when available, else llvm-readobj from rustup's
# llvm-tools component.
set -euo pipefail

tsv=0
if [ "${1:-}" = "--tsv" ]; then tsv=1; shift; fi
[ $# -ge 1 ] || { echo "usage: $0 [--tsv] <elf>..." >&2; exit 2; }

if command -v readelf >/dev/null 2>&1; then
  readelf_cmd=(readelf -W)
else
  sysroot=$(rustc --print sysroot)
  host=$(rustc -vV | sed -n 's/^host: //p')
  readelf_cmd=("$sysroot/lib/rustlib/$host/bin/llvm-readobj" --elf-output-style=GNU)
fi

if [ $tsv = 1 ]; then
  printf 'elf\ttext\trodata\tdata\tbss\tflash\tram\tblobs\tcode\truntime\n'
else
  printf '%-28s %7s %7s %6s %6s %7s %6s %7s %7s %7s\n' elf text rodata data bss flash ram blobs code runtime
fi
for elf in "$@"; do
  { "${readelf_cmd[@]}" -S "$elf"; "${readelf_cmd[@]}" -s -C "$elf"; } | awk -v elf="$(basename "$elf")" -v tsv=$tsv '
    function hex(s,   i, c, v) {  # portable (mawk has no strtonum)
      v = 0; s = tolower(s)
      for (i = 1; i <= length(s); i++) { c = index("0123456789abcdef", substr(s, i, 1)) - 1; v = v * 16 + c }
      return v
    }
    # lines look like: [ 2] .text PROGBITS 00000400 000514 005134 00 AX 0 0 4
    # symbol table lines: Num: Value Size Type Bind Vis Ndx Name
    /^ *[0-9]+: / && $4 == "OBJECT" && $8 ~ /::ALIGNED/ {
      blobs += ($3 ~ /^0x/) ? hex(substr($3, 3)) : $3 + 0; next
    }
    /^ *[0-9]+: / && $4 == "FUNC" {
      sz = ($3 ~ /^0x/) ? hex(substr($3, 3)) : $3 + 0
      nm = $0; sub(/^ *[0-9]+: +[^ ]+ +[^ ]+ +[^ ]+ +[^ ]+ +[^ ]+ +[^ ]+ +/, "", nm)
      if ((nm ~ /(^|[<( ])(runnel|libm|half|heapless)::/ || nm ~ /compiler_builtins::float::/ ||
           nm ~ /Workload>::step$/ ||
           nm ~ /^__((add|sub|mul|div|neg)sf3|(lt|le|gt|ge|eq|ne|unord|cmp)sf2|float(un)?sisf|fix(uns)?sfsi|extendhfsf2|truncsfhf2)$/) &&
          !(($2 SUBSEP sz) in seen)) {
        seen[$2, sz] = 1; runtime += sz
      }
      next
    }
    /^ *\[ *[0-9]+\]/ {
      sub(/^ *\[ *[0-9]+\] */, "")
      name=$1; type=$2; size=hex($5); flg=$7
      if (flg !~ /A/ || name == ".heap" || name == ".stack" || name == ".text.dummy") next
      if (type == "NOBITS") { if (flg ~ /W/) bss += size; next }
      if (name == ".data" || name ~ /^\.s?data\./) { data += size; next }
      if (flg ~ /X/ || name == ".vector_table") text += size
      else if (flg ~ /W/) data += size
      else rodata += size
    }
    END {
      flash = text + rodata + data; ram = data + bss; code = flash - blobs
      if (tsv) printf "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", elf, text, rodata, data, bss, flash, ram, blobs, code, runtime
      else printf "%-28s %7d %7d %6d %6d %7d %6d %7d %7d %7d\n", elf, text, rodata, data, bss, flash, ram, blobs, code, runtime
    }'
done
