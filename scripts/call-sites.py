#!/usr/bin/env python3
"""Lists what an ELF links of a family of functions and every call to them, located in the source
through the debug information (innermost runnel frame first):

    scripts/call-sites.py <elf>                # core's panic entry points (the default)
    scripts/call-sites.py --soft-float <elf>   # the compiler's soft-float routines

Used by scripts/nopanic-check.sh --report; the soft-float list measures how much float work a
core without an FPU does (docs/INTEGER.md). Needs llvm-nm, llvm-objdump and llvm-addr2line."""
import re, subprocess, sys, collections
args = sys.argv[1:]
soft_float = "--soft-float" in args
elf = [a for a in args if not a.startswith("--")][0]
ROOT = __file__.rsplit("/scripts/", 1)[0] + "/"


def strip(path):
    """A source path relative to the repository (or to the Rust source for core)."""
    return path.split(ROOT)[-1].split("/library/")[-1]

nm = subprocess.run(["llvm-nm", "-C", "-S", elf], capture_output=True, text=True).stdout
PANIC = r"core::(panicking|slice::index|option::unwrap_failed|option::expect_failed|result::unwrap_failed|fmt|str::slice_error_fail|cell::panic)"
# libgcc / compiler-builtins names: single and double precision arithmetic, comparisons and
# conversions (RISC-V and Arm EABI spellings)
SOFT_FLOAT = r"^(__(add|sub|mul|div|neg)[sd]f3|__(eq|ne|gt|ge|lt|le|unord|cmp)[sd]f2|__fix(uns)?[sd]f[sd]i|__float(un)?[sd]i[sd]f|__extendsfdf2|__truncdfsf2|__aeabi_[fd](add|sub|mul|div|rsub|cmp\w*|2\w+|neg)|__aeabi_[iu]i?2[fd]|__aeabi_[lu]l2[fd]|__aeabi_[fd]2[iu]\w*)$"
PAT = re.compile(SOFT_FLOAT if soft_float else PANIC)
panic = {}
for line in nm.splitlines():
    parts = line.split(None, 3)
    if len(parts) == 4 and parts[2] in "tT" and PAT.search(parts[3]):
        panic[int(parts[0], 16) & ~1] = (int(parts[1], 16), parts[3])
dis = subprocess.run(["llvm-objdump", "-d", "--no-show-raw-insn", elf], capture_output=True, text=True).stdout
sites = []
cur = None
auipc = None
for line in dis.splitlines():
    m = re.match(r"^([0-9a-f]+) <(.*)>:", line)
    if m:
        cur = int(m.group(1), 16)
        continue
    if cur in panic:
        continue
    m = re.match(r"^\s*([0-9a-f]+):\s+(\S+)\s+.*?0x([0-9a-f]+)\s*<", line)
    if m:
        if int(m.group(3), 16) in panic and m.group(2) not in ("ldr", "adr"):
            sites.append(int(m.group(1), 16))
        continue
    # RISC-V far calls: `auipc ra, hi` then `jalr lo(ra)`, which objdump does not resolve
    m = re.match(r"^\s*([0-9a-f]+):\s+auipc\s+(\w+), (-?\d+)", line)
    if m:
        auipc = (int(m.group(1), 16), m.group(2), int(m.group(3)))
        continue
    m = re.match(r"^\s*([0-9a-f]+):\s+jalr\s+(?:\w+, )?(-?\d+)\((\w+)\)", line)
    if m and auipc and auipc[1] == m.group(3):
        tgt = (auipc[0] + (auipc[2] << 12) + int(m.group(2))) & 0xFFFFFFFF
        if tgt in panic:
            sites.append(int(m.group(1), 16))
    auipc = None
what = "soft-float routines" if soft_float else "panic entry points"
print(f"{what} linked: {len(panic)}, {sum(s for s,_ in panic.values())} bytes")
for a,(s,n) in sorted(panic.items()):
    print(f"  {s:6d} B  {n}")
print(f"call sites: {len(sites)}")
if sites:
    # one address per addr2line run: with -i the inlined frames of several addresses are not delimited
    for a in sites:
        o = subprocess.run(["llvm-addr2line", "-f", "-C", "-i", "-e", elf, hex(a)], capture_output=True, text=True).stdout.splitlines()
        chain = [f"{strip(o[i+1])} ({o[i].split('::')[-1] if '::' in o[i] else o[i]})" for i in range(0, len(o)-1, 2)]
        # first frame in runnel code
        first = next((c for c in chain if 'runtime/src' in c), chain[0] if chain else '?')
        print(f"  {a:#x}: {first}   <= " + " <- ".join(chain[:4]))
