"""Fake-quantization simulation of runnel's planned integer-only mode (docs/INTEGER.md).

Runs a token model three ways over its held-out text and prints bits/char and top-1 agreement:
float64 with float weights; today's int8 mode (int8 weights per row, each matrix input quantized
per step by its own max); and the integer design, every activation on the static grid the
integer step will use, its scale calibrated on separate text (max |value| per site). It models
the value grids, not the exact integer rounding of each kernel: it answers "does this design keep
the accuracy?" before the runtime implements it.

    python reference/integer_sim.py models/charlm/charlm.safetensors models/charlm/calibration.txt [STEPS]

Needs numpy and safetensors (reference/requirements.txt).
"""
import json, math, sys
import numpy as np
from safetensors.numpy import load_file
from safetensors import safe_open

MODEL = sys.argv[1]
with safe_open(MODEL, "np") as f:
    cfg = json.loads(f.metadata()["runnel.config"])
T = {k: v.astype(np.float64) for k, v in load_file(MODEL).items()}
enc = lambda s: np.array([0 if c == "\n" else ord(c) - 31 for c in s])
held = enc(open(MODEL.rsplit("/", 1)[0] + "/heldout.txt").read())
cal = enc(open(sys.argv[2]).read())
eps = cfg["norm_eps"]

def sigmoid(x): return 1 / (1 + np.exp(-x))

def qw(w):  # int8 weights per row (as the converter does)
    s = np.abs(w).max(1, keepdims=True) / 127
    s[s == 0] = 1
    return np.round(w / s).clip(-127, 127) * s

class Sim:
    """mode: 'float' (f64), 'dyn' (today's int8: dynamic per-step input quant), 'int' (static)."""
    def __init__(self, mode, ranges=None, opts=None):
        self.mode, self.R, self.o = mode, ranges, opts or {}
        self.W = {k: (qw(v) if v.ndim == 2 and mode != "float" and not k.startswith("embed") else v) for k, v in T.items()}
        if mode != "float":
            self.W["embed.weight"] = qw(T["embed.weight"])
        self.obs = {}
    def site(self, name, x, bits=8, sym=True):
        """An activation site: record its range (calibration) or quantize it statically."""
        if self.R is None:
            self.obs[name] = max(self.obs.get(name, 0), float(np.abs(x).max()))
            return x
        if self.mode != "int":
            return x
        m = self.R[name] * self.o.get("headroom", 1.0)
        qmax = 2 ** (bits - 1) - 1
        s = m / qmax if m > 0 else 1
        return np.round(x / s).clip(-qmax, qmax) * s
    def fixed(self, x, frac, bits=16):  # fixed-point grid with `frac` fractional bits
        if self.mode != "int": return x
        qmax = 2 ** (bits - 1) - 1
        return np.round(x * 2 ** frac).clip(-qmax, qmax) / 2 ** frac
    def matvec(self, w, x, b, name):
        if self.mode == "dyn":
            s = np.abs(x).max() / 127
            x = np.round(x / s) * s if s > 0 else x
        elif self.mode == "int":
            x = self.site(name, x)
        elif self.R is None:
            self.site(name, x)
        return self.W[w] @ x + (self.W[b] if b else 0)
    def ln(self, x, w, b, name):
        m = x.mean(); v = ((x - m) ** 2).mean()
        return (x - m) / np.sqrt(v + eps) * self.W[w] + self.W[b]
    def act(self, name, x):
        x = self.site(name, x, self.o.get("act_bits", 8))   # LUT input: int8
        if self.act_name == "relu":
            return np.maximum(x, 0)
        return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    def reset(self):
        self.st = []
        for b in cfg["blocks"]:
            if b["kind"] in ("lstm", "gru"): self.st.append([{"h": np.zeros(b["hidden"]), "c": np.zeros(b["hidden"])} for _ in range(b["num_layers"])])
            else: self.st.append({"k": [], "v": []})
    def step(self, tok):
        W = self.W
        x = W["embed.weight"][tok].copy()
        x = self.site("x0", x, 16)
        for i, (b, st) in enumerate(zip(cfg["blocks"], self.st)):
            p = f"blocks.{i}."
            if b["kind"] in ("lstm", "gru"):
                H = b["hidden"]; kind = b["kind"]
                u = self.ln(x, p + "norm.weight", p + "norm.bias", p + "u")
                for L, sl in enumerate(st):
                    n = f"{p}{kind}."
                    gi = self.matvec(f"{n}weight_ih_l{L}", u, f"{n}bias_ih_l{L}", f"{p}u{L}")
                    gh = self.matvec(f"{n}weight_hh_l{L}", sl["h"], f"{n}bias_hh_l{L}", f"{p}h{L}")
                    gf = self.o.get("gate_frac", 12)
                    if kind == "lstm":
                        g = self.fixed(gi + gh, gf)
                        ig, fg, og = sigmoid(g[:H]), sigmoid(g[H:2*H]), sigmoid(g[3*H:])
                        gg = np.tanh(g[2*H:3*H])
                        ig, fg, og, gg = (self.fixed(v, 15) for v in (ig, fg, og, gg))
                        c = fg * sl["c"] + ig * gg
                        c = self.site(f"{p}c{L}", c, 16) if self.mode == "int" or self.R is None else c
                        h = og * self.fixed(np.tanh(self.fixed(c, 12)), 15)
                        sl["c"] = c
                    else:
                        gi, gh = self.fixed(gi, gf), self.fixed(gh, gf)
                        r = self.fixed(sigmoid(gi[:H] + gh[:H]), 15)
                        z = self.fixed(sigmoid(gi[H:2*H] + gh[H:2*H]), 15)
                        nn_ = self.fixed(np.tanh(self.fixed(gi[2*H:] + r * gh[2*H:], gf)), 15)
                        h = (1 - z) * nn_ + z * sl["h"]
                    sl["h"] = self.fixed(h, self.o.get("h_frac", 7), self.o.get("h_frac", 7) + 1) if self.mode == "int" else h
                    u = sl["h"]
                x = x + u
                x = self.site(p + "x", x, 16)
            else:
                Wd, nh = x.shape[0], b["heads"]; hd = Wd // nh
                u = self.ln(x, p + "norm1.weight", p + "norm1.bias", p + "u")
                qkv = self.matvec(p + "attn.in_proj_weight", u, p + "attn.in_proj_bias", p + "u")
                q = self.site(p + "q", qkv[:Wd]); k = self.site(p + "k", qkv[Wd:2*Wd]); v = self.site(p + "v", qkv[2*Wd:])
                st["k"].append(k); st["v"].append(v)
                if len(st["k"]) > b["window"]: st["k"].pop(0); st["v"].pop(0)
                K = np.stack(st["k"]).reshape(-1, nh, hd); V = np.stack(st["v"]).reshape(-1, nh, hd)
                heads = []
                for h in range(nh):
                    s = K[:, h] @ q[h*hd:(h+1)*hd] / math.sqrt(hd)
                    d = s - s.max()
                    d = self.fixed(d, self.o.get("score_frac", 10), 16)
                    e = self.fixed(np.exp(d), 15, 17)     # exp LUT, Q0.15 (0..1]
                    w = self.fixed(e / e.sum(), self.o.get("p_frac", 15), 17)
                    heads.append(w @ V[:, h])
                a = np.concatenate(heads)
                x = x + self.matvec(p + "attn.out_proj.weight", a, p + "attn.out_proj.bias", p + "a")
                x = self.site(p + "x1", x, 16)
                f = self.ln(x, p + "norm2.weight", p + "norm2.bias", p + "f")
                self.act_name = b["activation"]
                f = self.act(p + "ffn_pre", self.matvec(p + "ffn.0.weight", f, p + "ffn.0.bias", p + "f"))
                x = x + self.matvec(p + "ffn.2.weight", f, p + "ffn.2.bias", p + "g")
                x = self.site(p + "x2", x, 16)
        x = self.ln(x, "norm_f.weight", "norm_f.bias", "xf")
        return self.matvec("head.weight", x, "head.bias", "xf")
    def run(self, ids):
        self.reset()
        return np.stack([self.step(t) for t in ids])

def bpc(logits, ids):
    l = logits[:-1]; t = ids[1:]
    m = l.max(1, keepdims=True); lse = m[:, 0] + np.log(np.exp(l - m).sum(1))
    return float((lse - l[np.arange(len(t)), t]).mean() / math.log(2))

N = int(sys.argv[3]) if len(sys.argv) > 3 else len(held)
ids = held[:N]
ref = Sim("float").run(ids); b0 = bpc(ref, ids)
dyn = Sim("dyn", ranges={}).run(ids)
cal_sim = Sim("float"); cal_sim.run(cal); R = cal_sim.obs
print("calibrated ranges:", {k: round(v, 2) for k, v in R.items()})
print(f"float {b0:.4f}  dyn-int8 {bpc(dyn, ids):.4f} ({bpc(dyn, ids)/b0:.4f}x) top1 {(dyn.argmax(1) == ref.argmax(1)).mean():.4f}")
for opts in [{}, {"h_frac": 15}]:  # h as int8 (Q0.7) or int16 (Q0.15)
    out = Sim("int", R, opts).run(ids)
    agree = (out.argmax(1) == ref.argmax(1)).mean()
    print(f"int {opts}: {bpc(out, ids):.4f} ({bpc(out, ids)/b0:.4f}x) top1 {agree:.4f}")
