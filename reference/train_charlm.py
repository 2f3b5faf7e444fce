#!/usr/bin/env python3
"""Train a runnel-model/1 character-level language model: the demo ("charlm") or a variant.

The model follows the runnel model contract (runnel-model/1) exactly: stock PyTorch modules,
state_dict names as in the contract's section 2, config JSON in the safetensors metadata key
`runnel.config`, and the training forward uses nn.MultiheadAttention (batch_first) over the whole
sequence with the boolean mask (j > i) | (j <= i - window) and no positional encoding.

Text: Jane Austen's novels (public domain), taken from the Debian package `r-cran-janeaustenr`
(MIT-licensed packaging of the Project Gutenberg texts). The script fetches the .deb with
`apt-get download` (no R needed: the R lazy-load database is parsed here) unless
--janeaustenr-dir points at an unpacked/installed copy of the R package.

Vocabulary (96 ids): id 0 = '\\n', id 1..=95 = ASCII bytes 32..=126 (id = byte - 31).

Presets (`--arch`; each sets the architecture, books, file dtype and training-length defaults):

* `charlm` (default, -> models/charlm/): the demo model, d_model 96, [lstm, attention (4 heads,
  window 48, ffn 192, gelu), lstm], trained on "Pride and Prejudice" + "Persuasion", stored as
  F32; 4000 steps of 192 chars, 20-min cap. Run as is, it keeps its original log format and its
  own step-by-step check (below), so the default run reproduces models/charlm.
* `chargru` (-> models/chargru/): d_model 64, [gru (2 layers), attention (2 heads, window 32,
  ffn 128, relu), gru], trained on "Emma" (a novel the demo never saw), stored as F16.
* `wide`: d_model 128, [lstm, attention (8 heads, window 64, ffn 256, silu), attention (8 heads,
  window 16, no ffn), lstm], trained on "Sense and Sensibility", stored as F32. (One-off check,
  not kept in the repository.)
`chargru` and `wide` default to 1500 steps of 160 chars and a 7.5-min cap. `--config FILE.json`
trains any other runnel-model/1 token config instead (with the books/dtype/recipe of `--arch`);
`--books`, `--dtype`, `--name`, `--steps`, `--seq`, `--max-minutes` override single settings.

Checks. The demo run compares the full-sequence forward with an independent step-by-step
implementation (`stepwise_logits`, KV cache of `window`) and saves F32. Every other run (any
preset but `charlm`, `--config`, or a dtype other than F32) rounds the trained weights to the
file dtype *before* the reference numbers are computed, so `reference_bpc.json` describes exactly
the model in the file (which readers load as f32); the numbers are also re-computed from the
saved file and cross-checked with `runnel_ref.StepRunner` (float64, step by step).

Retrain the demo (CPU, single thread, ~20 min):
    python reference/train_charlm.py --out models/charlm
Regenerate models/chargru (CPU, 1 thread, about 8 min):
    python reference/train_charlm.py --arch chargru --out models/chargru
"""
import argparse
import glob
import gzip
import json
import math
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runnel_ref  # noqa: E402

VOCAB = 96
BOOKS = ["prideprejudice", "persuasion"]  # concatenated in this order; held-out slice = tail


def _cfg(d_model, blocks):
    return {"format": "runnel-model/1", "input": {"kind": "tokens", "vocab": VOCAB},
            "d_model": d_model, "blocks": blocks, "norm_eps": 1e-5, "final_norm": True,
            "output": {"dim": VOCAB}}


CONFIG = _cfg(96, [
    {"kind": "lstm", "num_layers": 1, "hidden": 96, "norm": True, "residual": True},
    {"kind": "attention", "heads": 4, "window": 48, "ffn_dim": 192, "activation": "gelu"},
    {"kind": "lstm", "num_layers": 1, "hidden": 96, "norm": True, "residual": True},
])

# Training-length defaults (overridable: --steps, --seq, --max-minutes); `monitor_streams` is the
# number of 2000-char held-out streams for the periodic heldout_bpc, `sample_chars` the lengths of
# the greedy and the temperature-0.8 sample at the end of the log.
_VARIANT_RECIPE = dict(steps=1500, seq=160, max_minutes=7.5, monitor_streams=8,
                       sample_chars=(200, 300))
PRESETS = {
    "charlm": dict(
        config=CONFIG, books=BOOKS, dtype="F32", name="charlm",
        prompt="It was a fine morning, and Elizabeth",
        steps=4000, seq=192, max_minutes=20.0, monitor_streams=12, sample_chars=(300, 400),
        demo=True),
    "chargru": dict(
        config=_cfg(64, [
            {"kind": "gru", "num_layers": 2, "hidden": 64, "norm": True, "residual": True},
            {"kind": "attention", "heads": 2, "window": 32, "ffn_dim": 128, "activation": "relu"},
            {"kind": "gru", "num_layers": 1, "hidden": 64, "norm": True, "residual": True},
        ]),
        books=["emma"], dtype="F16", name="chargru",
        prompt="Emma Woodhouse, handsome, clever, and rich,", **_VARIANT_RECIPE),
    "wide": dict(
        config=_cfg(128, [
            {"kind": "lstm", "num_layers": 1, "hidden": 128, "norm": True, "residual": True},
            {"kind": "attention", "heads": 8, "window": 64, "ffn_dim": 256, "activation": "silu"},
            {"kind": "attention", "heads": 8, "window": 16, "ffn_dim": 0},
            {"kind": "lstm", "num_layers": 1, "hidden": 128, "norm": True, "residual": True},
        ]),
        books=["sensesensibility"], dtype="F32", name="wide",
        prompt="The family of Dashwood had long been settled", **_VARIANT_RECIPE),
}


# --------------------------------------------------------------------------------------------
# Text: minimal reader for R's serialization format (XDR, version 2/3) and lazy-load databases.
# Handles what janeaustenr's data uses: character vectors, lists, attributes, symbols.
# --------------------------------------------------------------------------------------------
class _RReader:
    def __init__(self, buf):
        self.b = buf
        self.p = 0
        self.refs = []

    def _int(self):
        v = struct.unpack(">i", self.b[self.p:self.p + 4])[0]
        self.p += 4
        return v

    def header(self):
        if self.b[:2] != b"X\n":
            raise ValueError("not an XDR R serialization stream")
        self.p = 2
        ver = self._int()
        self._int()
        self._int()
        if ver == 3:
            n = self._int()
            self.p += n

    def item(self):
        flags = self._int()
        t = flags & 0xFF
        has_attr = flags & (1 << 9)
        has_tag = flags & (1 << 10)
        if t == 254 or t in (242, 250, 251, 252, 253):  # NILVALUE / special environments
            return None
        if t == 255:  # REFSXP
            return self.refs[(flags >> 8) - 1]
        if t == 1:  # SYMSXP
            sym = ("sym", self.item())
            self.refs.append(sym)
            return sym
        if t == 9:  # CHARSXP
            n = self._int()
            if n == -1:
                return None
            s = self.b[self.p:self.p + n].decode("utf-8", "replace")
            self.p += n
            return s
        if t in (2, 6):  # LISTSXP / LANGSXP
            attr = self.item() if has_attr else None
            tag = self.item() if has_tag else None
            car = self.item()
            cdr = self.item()
            return ("list", tag, car, cdr, attr)
        if t in (16, 19):  # STRSXP / VECSXP
            n = self._int()
            v = [self.item() for _ in range(n)]
        elif t in (10, 13):  # LGLSXP / INTSXP
            n = self._int()
            v = struct.unpack(">%di" % n, self.b[self.p:self.p + 4 * n])
            self.p += 4 * n
        elif t == 14:  # REALSXP
            n = self._int()
            v = struct.unpack(">%dd" % n, self.b[self.p:self.p + 8 * n])
            self.p += 8 * n
        else:
            raise ValueError("unsupported R SEXP type %d" % t)
        attr = self.item() if has_attr else None
        return ("vec", t, v, attr)


def _names(attr):
    while attr is not None:
        _, tag, car, cdr, _ = attr
        if tag == ("sym", "names"):
            return car[2]
        attr = cdr
    return None


def read_austen(pkg_dir):
    """Return {book: [lines]} from an R package directory of janeaustenr."""
    base = os.path.join(pkg_dir, "data", "Rdata")
    r = _RReader(gzip.decompress(open(base + ".rdx", "rb").read()))
    r.header()
    index = r.item()
    variables = index[2][_names(index[3]).index("variables")]
    names = _names(variables[3])
    raw = open(base + ".rdb", "rb").read()
    out = {}
    for name, ref in zip(names, variables[2]):
        off, ln = ref[2]
        blob = raw[off:off + ln]
        body = blob[4:]
        if body[:1] == b"Z":  # type-tagged zlib (R >= 2.10 compress=2/3 uses tags)
            body = body[1:]
        rr = _RReader(zlib.decompress(body))
        rr.header()
        vec = rr.item()
        out[name] = [x if x is not None else "" for x in vec[2]]
    return out


def find_janeaustenr(explicit=None):
    if explicit:
        return explicit
    for d in ("/usr/lib/R/site-library/janeaustenr", "/usr/local/lib/R/site-library/janeaustenr"):
        if os.path.isdir(d):
            return d
    tmp = tempfile.mkdtemp(prefix="janeaustenr-")
    subprocess.run(["apt-get", "download", "r-cran-janeaustenr"], cwd=tmp, check=True)
    deb = glob.glob(os.path.join(tmp, "r-cran-janeaustenr_*.deb"))[0]
    subprocess.run(["dpkg-deb", "-x", deb, os.path.join(tmp, "x")], check=True)
    return os.path.join(tmp, "x/usr/lib/R/site-library/janeaustenr")


TRANSLATE = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u2013": "-", "\u2014": "--", "\u2015": "--", "\u2012": "-", "\u2010": "-", "\u2011": "-",
    "\u2026": "...", "\u00a0": " ", "\t": " ", "\r": "",
}


def normalize(text):
    """Map to the runnel char vocabulary: '\\n' and ASCII 32..126; collapse blank-line runs."""
    out = []
    for ch in text:
        ch = TRANSLATE.get(ch, ch)
        for c in ch:
            if c == "\n" or 32 <= ord(c) <= 126:
                out.append(c)
    lines = [l.rstrip(" ") for l in "".join(out).split("\n")]
    res, blank = [], 0
    for l in lines:
        if l.strip() == "":
            blank += 1
            if blank > 1:
                continue
            res.append("")
        else:
            blank = 0
            res.append(l)
    return "\n".join(res).strip("\n") + "\n"


def encode(text):
    return np.array([0 if c == "\n" else ord(c) - 31 for c in text], dtype=np.int64)


def decode(ids):
    return "".join("\n" if i == 0 else chr(int(i) + 31) for i in ids)


# --------------------------------------------------------------------------------------------
# Model, built from a runnel-model/1 config with the contract's module names.
# --------------------------------------------------------------------------------------------
ACTS = {"gelu": lambda: nn.GELU(), "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
        "relu": lambda: nn.ReLU(), "silu": lambda: nn.SiLU()}


def make_norm(width, eps, kind="layer"):
    """The model's norm module (`norm_kind`, contract §6.4)."""
    return nn.RMSNorm(width, eps=eps) if kind == "rms" else nn.LayerNorm(width, eps=eps)


class RecurrentBlock(nn.Module):
    def __init__(self, kind, width, hidden, num_layers, norm, residual, eps, norm_kind="layer"):
        super().__init__()
        self.kind, self.residual = kind, residual
        if norm:
            self.norm = make_norm(width, eps, norm_kind)
        else:
            self.norm = None
        rnn = nn.LSTM if kind == "lstm" else nn.GRU
        setattr(self, kind, rnn(width, hidden, num_layers=num_layers, batch_first=True))

    def forward(self, x):
        u = self.norm(x) if self.norm is not None else x
        h, _ = getattr(self, self.kind)(u)
        return x + h if self.residual else h


class SplitAttention(nn.Module):
    """The tutorial's q_proj/k_proj/v_proj/out_proj attention with `kv_heads` and `pos` (§6)."""

    def __init__(self, width, heads, kv_heads, pos, theta):
        super().__init__()
        D = width // heads
        self.heads, self.kv_heads, self.pos, self.theta = heads, kv_heads, pos, theta
        self.q_proj = nn.Linear(width, width)
        self.k_proj = nn.Linear(width, kv_heads * D)
        self.v_proj = nn.Linear(width, kv_heads * D)
        self.out_proj = nn.Linear(width, width)

    def forward(self, u, mask):
        B, T, W = u.shape
        H, G = self.heads, self.kv_heads
        D = W // H
        q = self.q_proj(u).view(B, T, H, D).transpose(1, 2)
        k = self.k_proj(u).view(B, T, G, D).transpose(1, 2).repeat_interleave(H // G, 1)
        v = self.v_proj(u).view(B, T, G, D).transpose(1, 2).repeat_interleave(H // G, 1)
        p = torch.arange(T)
        if self.pos == "rope":
            q, k = runnel_ref.rope_rotate(q, p, self.theta), runnel_ref.rope_rotate(k, p, self.theta)
        s = q @ k.transpose(-1, -2) / math.sqrt(D)
        if self.pos == "alibi":
            m = torch.tensor(runnel_ref.alibi_slopes(H), dtype=s.dtype).view(H, 1, 1)
            s = s - m * (p[:, None] - p[None, :]).to(s.dtype)
        s = s.masked_fill(mask, float("-inf"))
        return self.out_proj((s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, W))


class AttentionBlock(nn.Module):
    def __init__(self, width, heads, window, ffn_dim, activation, eps, norm_kind="layer",
                 kv_heads=None, pos="none", theta=10000.0):
        super().__init__()
        self.window = window
        self.norm1 = make_norm(width, eps, norm_kind)
        self.split = (kv_heads or heads) != heads or pos != "none"
        if self.split:
            self.attn = SplitAttention(width, heads, kv_heads or heads, pos, theta)
        else:
            self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ffn_dim = ffn_dim
        if ffn_dim > 0:
            self.norm2 = make_norm(width, eps, norm_kind)
            self.ffn = nn.Sequential(nn.Linear(width, ffn_dim), ACTS[activation](),
                                     nn.Linear(ffn_dim, width))

    def forward(self, x):
        T = x.shape[1]
        i = torch.arange(T, device=x.device).unsqueeze(1)
        j = torch.arange(T, device=x.device).unsqueeze(0)
        mask = (j > i) | (j <= i - self.window)
        u = self.norm1(x)
        if self.split:
            a = self.attn(u, mask)
        else:
            a, _ = self.attn(u, u, u, attn_mask=mask, need_weights=False)
        x = x + a
        if self.ffn_dim > 0:
            x = x + self.ffn(self.norm2(x))
        return x


class RunnelModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        eps = cfg.get("norm_eps", 1e-5)
        nk = cfg.get("norm_kind", "layer")
        W = cfg["d_model"]
        inp = cfg["input"]
        self.input_kind = inp["kind"]
        if inp["kind"] == "tokens":
            self.embed = nn.Embedding(inp["vocab"], W)
        else:
            self.input = nn.Linear(inp["dim"], W)
        blocks = []
        for b in cfg["blocks"]:
            if b["kind"] in ("lstm", "gru"):
                H = b.get("hidden", W)
                blk = RecurrentBlock(b["kind"], W, H, b.get("num_layers", 1), b.get("norm", True),
                                     b.get("residual", True), eps, nk)
                W = W if b.get("residual", True) else H
            else:
                blk = AttentionBlock(W, b["heads"], b["window"], b.get("ffn_dim", 0),
                                     b.get("activation", "gelu"), eps, nk, b.get("kv_heads"),
                                     b.get("pos", "none"), float(b.get("rope_theta", 10000.0)))
            blocks.append(blk)
        self.blocks = nn.ModuleList(blocks)
        self.norm_f = make_norm(W, eps, nk) if cfg.get("final_norm", True) else None
        self.head = nn.Linear(W, cfg["output"]["dim"])

    def forward(self, x):
        x = self.embed(x) if self.input_kind == "tokens" else self.input(x)
        for b in self.blocks:
            x = b(x)
        if self.norm_f is not None:
            x = self.norm_f(x)
        return self.head(x)


@torch.no_grad()
def stepwise_logits(model, cfg, tokens):
    """Independent step-by-step implementation of contract section 3 (KV cache of `window`)."""
    sd = {k: v.double() for k, v in model.state_dict().items()}
    eps = cfg.get("norm_eps", 1e-5)

    def ln(x, p):
        return F.layer_norm(x, x.shape[-1:], sd[p + ".weight"], sd[p + ".bias"], eps)

    state = {}
    out = []
    for tok in tokens:
        x = sd["embed.weight"][int(tok)]
        for bi, b in enumerate(cfg["blocks"]):
            pre = "blocks.%d." % bi
            if b["kind"] == "lstm":
                u = ln(x, pre + "norm") if b.get("norm", True) else x
                h, c = state.get(bi, (torch.zeros(sd[pre + "lstm.weight_hh_l0"].shape[1], dtype=torch.float64),) * 2)
                g = (sd[pre + "lstm.weight_ih_l0"] @ u + sd[pre + "lstm.bias_ih_l0"]
                     + sd[pre + "lstm.weight_hh_l0"] @ h + sd[pre + "lstm.bias_hh_l0"])
                gi, gf, gg, go = g.chunk(4)
                c = torch.sigmoid(gf) * c + torch.sigmoid(gi) * torch.tanh(gg)
                h = torch.sigmoid(go) * torch.tanh(c)
                state[bi] = (h, c)
                x = x + h
            elif b["kind"] == "attention":
                W = x.shape[0]
                nh, dh = b["heads"], x.shape[0] // b["heads"]
                u = ln(x, pre + "norm1")
                q, k, v = (sd[pre + "attn.in_proj_weight"] @ u + sd[pre + "attn.in_proj_bias"]).chunk(3)
                ks, vs = state.get(bi, ([], []))
                ks.append(k); vs.append(v)
                ks, vs = ks[-b["window"]:], vs[-b["window"]:]
                state[bi] = (ks, vs)
                K = torch.stack(ks).view(-1, nh, dh)
                V = torch.stack(vs).view(-1, nh, dh)
                s = torch.einsum("hd,thd->ht", q.view(nh, dh), K) / math.sqrt(dh)
                o = torch.einsum("ht,thd->hd", torch.softmax(s, -1), V).reshape(W)
                x = x + sd[pre + "attn.out_proj.weight"] @ o + sd[pre + "attn.out_proj.bias"]
                if b.get("ffn_dim", 0) > 0:
                    hdn = F.gelu(sd[pre + "ffn.0.weight"] @ ln(x, pre + "norm2") + sd[pre + "ffn.0.bias"])
                    x = x + sd[pre + "ffn.2.weight"] @ hdn + sd[pre + "ffn.2.bias"]
            else:
                raise NotImplementedError(b["kind"])
        if cfg.get("final_norm", True):
            x = ln(x, "norm_f")
        out.append(sd["head.weight"] @ x + sd["head.bias"])
    return torch.stack(out)


# --------------------------------------------------------------------------------------------
@torch.no_grad()
def stream_eval(model, ids):
    """One continuous stream from zero state: bpc and top-1 accuracy of predicting ids[t+1]."""
    model.eval()
    x = torch.from_numpy(ids).unsqueeze(0)
    logits = model(x[:, :-1])[0].double()
    tgt = x[0, 1:]
    nll = F.cross_entropy(logits, tgt, reduction="mean").item()
    acc = (logits.argmax(-1) == tgt).double().mean().item()
    model.train()
    return nll / math.log(2), acc


@torch.no_grad()
def sample(model, prompt, n, temperature, gen):
    model.eval()
    ids = list(encode(prompt))
    for _ in range(n):
        ctx = torch.tensor(ids[-512:]).unsqueeze(0)  # fresh stream over the last 512 chars
        logits = model(ctx)[0, -1]
        if temperature <= 0:
            nxt = int(logits.argmax())
        else:
            p = torch.softmax(logits / temperature, -1)
            nxt = int(torch.multinomial(p, 1, generator=gen))
        ids.append(nxt)
    model.train()
    return decode(ids)


def check_saved(path, heldout_ids, bpc, log):
    """Cross-check a saved file against `bpc` (heldout.txt from the in-memory model): reload it,
    and run runnel_ref.StepRunner (float64, step by step) on its tensors. Returns the tensors."""
    loaded, lcfg = runnel_ref.load_model(path)
    with torch.no_grad():
        lg = loaded(torch.from_numpy(heldout_ids[:-1])).double()
    tgt = torch.from_numpy(heldout_ids[1:])
    bpc_file = F.cross_entropy(lg, tgt).item() / math.log(2)
    log("reloaded %s: bpc %.6f (|diff| %.2g)" % (os.path.basename(path), bpc_file, abs(bpc_file - bpc)))
    from safetensors import safe_open
    with safe_open(path, framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    dts = sorted({str(v.dtype) for v in tensors.values()})
    runner = runnel_ref.StepRunner(tensors, lcfg, dtype=torch.float64)
    sl = runner.run(torch.from_numpy(heldout_ids[:-1]))
    bpc_step = F.cross_entropy(sl, tgt).item() / math.log(2)
    acc_step = (sl.argmax(-1) == tgt).double().mean().item()
    log("StepRunner float64 over the whole stream: bpc %.6f  top1 %.4f; max |logit diff| vs "
        "f32 full-seq %.3g" % (bpc_step, acc_step, (sl - lg).abs().max().item()))
    assert abs(bpc_step - bpc) < 1e-4 * bpc, "stepwise and full-sequence forward disagree"
    log("saved %s (%d bytes, %d tensors, %s)" % (path, os.path.getsize(path), len(tensors),
                                                 ", ".join(dts)))
    return tensors


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", choices=sorted(PRESETS), default="charlm")
    ap.add_argument("--config", default=None, help="runnel-model/1 JSON file (overrides --arch)")
    ap.add_argument("--books", default=None, help="comma-separated janeaustenr book names")
    ap.add_argument("--dtype", choices=["F32", "F16", "BF16"], default=None)
    ap.add_argument("--name", default=None, help="model file stem")
    ap.add_argument("--out", default=None,
                    help="output directory (default models/charlm, for the plain demo run only)")
    ap.add_argument("--janeaustenr-dir", default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=None)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--max-minutes", type=float, default=None)
    ap.add_argument("--heldout-frac", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args(argv)

    preset = dict(PRESETS[args.arch])
    if args.config:
        preset["config"] = json.load(open(args.config))
        preset["name"] = os.path.splitext(os.path.basename(args.config))[0]
        preset["demo"] = False
    if args.books:
        preset["books"] = args.books.split(",")
    for key in ("dtype", "name", "steps", "seq", "max_minutes"):
        if getattr(args, key) is not None:
            preset[key] = getattr(args, key)
        setattr(args, key, preset[key])
    # the demo's own checks and F32 save only describe the demo model as stored in F32
    preset["demo"] = preset.get("demo", False) and args.dtype == "F32"
    if args.out is None:
        if args.arch != "charlm" or args.config or args.books or args.dtype != "F32" \
                or args.name != "charlm":
            ap.error("--out is required unless training the demo model (models/charlm)")
        args.out = os.path.join(os.path.dirname(__file__), "..", "models", "charlm")
    runnel_ref.normalize_config(preset["config"])  # fail early on an invalid config
    return args, preset


def main(argv=None):
    args, preset = parse_args(argv)
    cfg, books, dtype, demo = preset["config"], preset["books"], args.dtype, preset["demo"]

    torch.set_num_threads(1)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    logf = open(os.path.join(args.out, "train.log"), "w")

    def log(msg):
        print(msg, flush=True)
        logf.write(msg + "\n")
        logf.flush()

    # ---- data
    texts = read_austen(find_janeaustenr(args.janeaustenr_dir))
    text = normalize("\n\n".join("\n".join(texts[b]) for b in books))
    ids = encode(text)
    assert ids.min() >= 0 and ids.max() < VOCAB
    split = int(len(ids) * (1 - args.heldout_frac))
    split = text.index("\n\n", split) + 2  # held-out slice starts at a paragraph boundary
    train_ids, held_ids = ids[:split], ids[split:]
    heldout = text[split:split + 4000]
    assert len(heldout) == 4000 and all(c == "\n" or 32 <= ord(c) <= 126 for c in heldout)
    with open(os.path.join(args.out, "heldout.txt"), "w", encoding="ascii", newline="\n") as f:
        f.write(heldout)
    heldout_ids = encode(heldout)
    log("text: %s from r-cran-janeaustenr; %d chars total, %d train, %d held out (tail)"
        % ("+".join(books), len(ids), len(train_ids), len(held_ids)))
    log("heldout.txt: first 4000 chars of the held-out slice")
    # monitoring set: the held-out slice after heldout.txt, as 2000-char streams (batched)
    mon = held_ids[4000:]
    nmon = min(len(mon) // 2000, preset["monitor_streams"])
    mon_batch = torch.from_numpy(mon[: nmon * 2000].reshape(nmon, 2000))

    # ---- model
    model = RunnelModel(cfg)
    nparams = sum(p.numel() for p in model.parameters())
    log("config: " + json.dumps(cfg))
    log("parameters: %d" % nparams + ("" if demo else "; file dtype %s" % dtype))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.01)

    def lr_at(step):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        p = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))

    @torch.no_grad()
    def mon_bpc():
        model.eval()
        lg = model(mon_batch[:, :-1])
        nll = F.cross_entropy(lg.reshape(-1, VOCAB), mon_batch[:, 1:].reshape(-1)).item()
        model.train()
        return nll / math.log(2)

    gen = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    run_loss, run_n = 0.0, 0
    L = args.seq + 1
    log("training: steps=%d batch=%d seq=%d lr=%g AdamW cosine, 1 thread"
        % (args.steps, args.batch, args.seq, args.lr)
        + ("" if demo else ", cap %.1f min" % args.max_minutes))
    step = 0
    for step in range(args.steps):
        starts = torch.randint(0, len(train_ids) - L, (args.batch,), generator=gen).numpy()
        xb = torch.from_numpy(np.stack([train_ids[s:s + L] for s in starts]))
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        logits = model(xb[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), xb[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        run_loss += loss.item()
        run_n += 1
        el = time.time() - t0
        logged = (step + 1) % 100 == 0 or step == 0
        if logged:
            log("step %5d  lr %.5f  train_loss %.4f (bpc %.3f)  heldout_bpc %.4f  %.0fs"
                % (step + 1, lr_at(step), run_loss / run_n, run_loss / run_n / math.log(2),
                   mon_bpc(), el))
            run_loss, run_n = 0.0, 0
        # the demo checks the wall-time cap only at logged steps, the others at every step
        if el > args.max_minutes * 60 and (logged or not demo):
            log("wall-time cap reached at step %d" % (step + 1)
                + ("" if demo else " (lr schedule not finished)"))
            break
    log("training time: %.1f s (%d steps)" % (time.time() - t0, step + 1))

    path = os.path.join(args.out, args.name + ".safetensors")
    if demo:
        # ---- evaluate heldout.txt as one continuous stream from zero state
        bpc, acc = stream_eval(model, heldout_ids)
        log("heldout.txt (4000 chars, one stream, full-seq forward with windowed mask): "
            "bpc %.4f  top1 %.4f" % (bpc, acc))
        # check the stepwise contract semantics agree with the full-sequence forward
        n_chk = 300
        full = model(torch.from_numpy(heldout_ids[:n_chk]).unsqueeze(0))[0].double()
        step_l = stepwise_logits(model, cfg, heldout_ids[:n_chk])
        log("stepwise (KV cache window %d) vs full-sequence forward, %d steps: max |diff| %.3g"
            % (cfg["blocks"][1]["window"], n_chk, (full - step_l).abs().max().item()))
        tensors = runnel_ref.save_model(model, cfg, path, dtype)  # F32: rounding is a no-op
        log("saved %s (%d bytes, %d tensors)" % (path, os.path.getsize(path), len(tensors)))
    else:
        # ---- round to the file dtype first: the reference numbers describe the model in the file
        bpc32, acc32 = stream_eval(model, heldout_ids)
        log("heldout.txt before rounding (f32 weights): bpc %.6f  top1 %.4f" % (bpc32, acc32))
        model.eval()
        runnel_ref.save_model(model, cfg, path, dtype)  # rounds the parameters in place
        bpc, acc = stream_eval(model, heldout_ids)
        log("heldout.txt (4000 chars, one stream, full-seq forward with windowed mask, %s-rounded "
            "weights): bpc %.6f  top1 %.4f" % (dtype, bpc, acc))
        tensors = check_saved(path, heldout_ids, bpc, log)
    for k, v in tensors.items():
        log("  %-32s %s" % (k, list(v.shape)))
    with open(os.path.join(args.out, "reference_bpc.json"), "w") as f:
        json.dump({"heldout_bpc": round(bpc, 6), "top1_accuracy": round(acc, 6), "chars": 4000}, f)
        f.write("\n")

    # ---- samples
    prompt = preset["prompt"]
    n_greedy, n_sampled = preset["sample_chars"]
    log("sample (greedy, prompt %r):" % prompt)
    log(sample(model, prompt, n_greedy, 0.0, gen))
    log("sample (temperature 0.8, prompt %r):" % prompt)
    log(sample(model, prompt, n_sampled, 0.8, torch.Generator().manual_seed(args.seed)))
    logf.close()


if __name__ == "__main__":
    main()
