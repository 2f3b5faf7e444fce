"""Write runtime/src/kernels/int_tables.rs: the fixed tables of the integer kernels
(docs/INTEGER.md). Each entry is round-half-away-from-zero of the exact function value scaled to
Q0.15, computed in float64; the runtime's unit tests recompute every entry and check it.

    python reference/make_int_tables.py
"""
import math
import os

N = 513  # entries: 512 segments


def q15(v):
    r = math.floor(abs(v) * 32768 + 0.5)
    return int(math.copysign(min(r, 32768), v))


def table(name, doc, f, lo, step, ty="i16"):
    vals = [q15(f(lo + i * step)) for i in range(N)]
    if ty == "i16":
        vals = [max(-32767, min(v, 32767)) for v in vals]
    body = ",\n".join("    " + ", ".join(str(v) for v in vals[i:i + 12]) for i in range(0, N, 12))
    return f"/// {doc}\npub(crate) static {name}: [{ty}; {N}] = [\n{body},\n];\n"


out = [
    "//! Tables of the integer kernels, written by `reference/make_int_tables.py` (do not edit).\n"
    "//! Entry `i` is the function at `lo + i·step`, in Q0.15, rounded half away from zero.\n",
    table("SIGMOID_Q15", "`σ(x)` for `x = −8 + i/32`, Q0.15 (saturated to 32767).",
          lambda x: 1 / (1 + math.exp(-x)), -8.0, 1 / 32),
    table("TANH_Q15", "`tanh(x)` for `x = −8 + i/32`, Q0.15 (saturated to ±32767).",
          math.tanh, -8.0, 1 / 32),
    table("EXP_NEG_Q15", "`e^(−x)` for `x = i/32` (0 ≤ x ≤ 16), Q0.15 (`e^0` = 32768).",
          lambda x: math.exp(-x), 0.0, 1 / 32, ty="u16"),
]
path = os.path.join(os.path.dirname(__file__), "..", "runtime", "src", "kernels", "int_tables.rs")
with open(path, "w") as f:
    f.write("\n".join(out))
print("wrote", path)
