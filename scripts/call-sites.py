#!/usr/bin/env python3
"""Lists what an ELF links of a family of functions and every call to them, located in the source
through the debug information (innermost runnel frame first):

    scripts/call-sites.py <elf>                # core's panic entry points (the default)
    scripts/call-sites.py --soft-float <elf>   # the compiler's soft-float routines
    scripts/call-sites.py --soft-float --reachable-from PREFIX <elf>

Used by scripts/nopanic-check.sh --report; the soft-float list measures how much float work a
core without an FPU does (docs/INTEGER.md).

--reachable-from PREFIX: only the routines reachable from the functions whose symbol starts with
PREFIX (the roots), walking the call graph of the disassembly through direct calls and branches
between functions (Arm `bl`/`b.w`, RISC-V `jal`/`j`/branches and `auipc`+`jalr` pairs): prints
each root, the reachable routines with one call path each and their call sites in reachable code
by source line, and the indirect calls (`blx rN`, `jalr` through a register) in reachable code,
which the walk cannot follow. Exits 1 if a routine is reachable, or if an indirect call is (the
proof would be incomplete); 2 if no root matched. Used by scripts/nofloat-check.sh.
Needs llvm-nm, llvm-objdump and llvm-addr2line."""
import re, subprocess, sys, collections, bisect, os
args = sys.argv[1:]
soft_float = "--soft-float" in args
roots_prefix = None
if "--reachable-from" in args:
    i = args.index("--reachable-from")
    roots_prefix = args[i + 1]
    del args[i:i + 2]
elf = [a for a in args if not a.startswith("--")][0]
ROOT = os.path.realpath(__file__).rsplit("/scripts/", 1)[0] + "/"


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
# every function (text symbol with a size): start -> (end, name), to map addresses to functions
funcs = {}
for line in nm.splitlines():
    parts = line.split(None, 3)
    if len(parts) == 4 and parts[2] in "tTwW" and int(parts[1], 16) > 0:
        a = int(parts[0], 16) & ~1
        funcs.setdefault(a, (a + int(parts[1], 16), parts[3]))
for a, (size, n) in panic.items():  # a routine without a size (an alias) still counts
    funcs.setdefault(a, (a + max(size, 2), n))
starts = sorted(funcs)


def func_of(addr):
    i = bisect.bisect_right(starts, addr) - 1
    if i >= 0 and addr < funcs[starts[i]][0]:
        return starts[i]
    return None


edges = collections.defaultdict(set)      # function -> functions it calls or branches to
calls = collections.defaultdict(list)     # function -> [(call address, target function)]
indirect = collections.defaultdict(list)  # function -> [address of an indirect call]
sites = []
cur = None
auipc = None


def edge(at, tgt):
    g = func_of(tgt)
    f = func_of(at)
    if g is not None and f is not None and g != f:
        edges[f].add(g)
        calls[f].append((at, g))


for line in dis.splitlines():
    m = re.match(r"^([0-9a-f]+) <(.*)>:", line)
    if m:
        cur = int(m.group(1), 16)
        continue
    if cur in panic:
        continue
    m = re.match(r"^\s*([0-9a-f]+):\s+(\S+)\s+.*?0x([0-9a-f]+)\s*<", line)
    if m:
        if m.group(2).split(".")[0] not in ("ldr", "adr", "ldrd", "vldr"):
            if int(m.group(3), 16) in panic:
                sites.append(int(m.group(1), 16))
            edge(int(m.group(1), 16), int(m.group(3), 16))
        continue
    # indirect calls: Arm `blx rN` / `bx rN` other than `bx lr`, RISC-V `jalr` not after an `auipc`
    m = re.match(r"^\s*([0-9a-f]+):\s+(blx|bx)\s+(r\d+|ip|sl|fp)\s*$", line)
    if m:
        indirect[func_of(int(m.group(1), 16))].append(int(m.group(1), 16))
        continue
    # RISC-V far calls: `auipc ra, hi` then `jalr lo(ra)`, which objdump does not resolve
    m = re.match(r"^\s*([0-9a-f]+):\s+auipc\s+(\w+), (-?\d+)", line)
    if m:
        auipc = (int(m.group(1), 16), m.group(2), int(m.group(3)))
        continue
    m = re.match(r"^\s*([0-9a-f]+):\s+jalr\s+(?:\w+, )?(-?\d+)\((\w+)\)", line)
    # a zero offset prints as `jalr ra`
    m0 = re.match(r"^\s*([0-9a-f]+):\s+jalr\s+(\w+)\s*$", line)
    if m is None and m0 and auipc and auipc[1] == m0.group(2):
        m = re.match(r"^\s*([0-9a-f]+):\s+jalr\s+(?:\w+, )?(-?\d+)\((\w+)\)",
                     f"{m0.group(1)}: jalr 0({m0.group(2)})")
    if m and auipc and auipc[1] == m.group(3):
        tgt = (auipc[0] + (auipc[2] << 12) + int(m.group(2))) & 0xFFFFFFFF
        if tgt in panic:
            sites.append(int(m.group(1), 16))
        edge(int(m.group(1), 16), tgt)
    elif m or re.match(r"^\s*([0-9a-f]+):\s+jalr\s+(\w+)\s*$", line):
        a = int(re.match(r"^\s*([0-9a-f]+):", line).group(1), 16)
        indirect[func_of(a)].append(a)
    auipc = None


def source(a):
    """The inlined frames of the code at address `a`, innermost first."""
    # one address per addr2line run: with -i the inlined frames of several addresses are not delimited
    o = subprocess.run(["llvm-addr2line", "-f", "-C", "-i", "-e", elf, hex(a)], capture_output=True, text=True).stdout.splitlines()
    return [f"{strip(o[i+1])} ({o[i].split('::')[-1] if '::' in o[i] else o[i]})" for i in range(0, len(o)-1, 2)]


def name(f):
    return funcs[f][1] if f in funcs else hex(f)


if roots_prefix is not None:
    what = "soft-float routines" if soft_float else "panic entry points"
    roots = [a for a in starts if funcs[a][1].startswith(roots_prefix)]
    if not roots:
        print(f"no function symbol starts with {roots_prefix}")
        sys.exit(2)
    # breadth first from the roots, remembering how each function was reached
    via = {r: None for r in roots}
    todo = collections.deque(roots)
    while todo:
        f = todo.popleft()
        if f in panic:
            continue
        for g in sorted(edges[f]):
            if g not in via:
                via[g] = f
                todo.append(g)
    print(f"roots ({len(roots)}): " + ", ".join(name(r) for r in roots))
    print(f"functions reachable from them: {len(via)}, {sum(funcs[f][0] - f for f in via)} bytes")
    hit = sorted(f for f in via if f in panic)
    print(f"{what} reachable: {len(hit)}")
    for f in hit:
        path = []
        g = f
        while g is not None:
            path.append(name(g))
            g = via[g]
        print(f"  {name(f)}   via " + " <- ".join(path[1:6]) + (" <- ..." if len(path) > 6 else ""))
    bad_sites = [(a, g) for f in via if f not in panic for (a, g) in calls[f] if g in panic]
    if bad_sites:
        print(f"call sites in reachable code: {len(bad_sites)}")
        for a, g in sorted(bad_sites):
            chain = source(a)
            first = next((c for c in chain if 'runtime/src' in c), chain[0] if chain else '?')
            print(f"  {a:#x} -> {name(g)}: {first}   <= " + " <- ".join(chain[:4]))
    ind = sorted(a for f in via if f not in panic for a in indirect.get(f, []))
    print(f"indirect calls in reachable code (not followed): {len(ind)}")
    for a in ind:
        chain = source(a)
        print(f"  {a:#x} in {name(func_of(a))}: " + " <- ".join(chain[:3]))
    sys.exit(1 if hit or ind else 0)

what = "soft-float routines" if soft_float else "panic entry points"
print(f"{what} linked: {len(panic)}, {sum(s for s,_ in panic.values())} bytes")
for a,(s,n) in sorted(panic.items()):
    print(f"  {s:6d} B  {n}")
print(f"call sites: {len(sites)}")
if sites:
    for a in sites:
        chain = source(a)
        # first frame in runnel code
        first = next((c for c in chain if 'runtime/src' in c), chain[0] if chain else '?')
        print(f"  {a:#x}: {first}   <= " + " <- ".join(chain[:4]))
