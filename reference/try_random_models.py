#!/usr/bin/env python3
"""Tries runnel as a new user would: builds random contract models directly from stock PyTorch
modules (independently of runnel_ref.py), saves them with safetensors, converts and runs them with
the `runnel` CLI, and compares with PyTorch's outputs (f32: |d| <= 1e-4 (1 + |y|)).

    cargo build --release -p runnel-converter
    /work/venv/bin/python reference/try_random_models.py [--count 20] [--seed 1]

(`RUNNEL=path/to/runnel` if the binary is elsewhere, e.g. under another CARGO_TARGET_DIR.)
The models draw from every option of the contract, §6 included: split q/k/v projections with
grouped-query heads, RoPE and ALiBi, RMSNorm, modules built with bias=False, LSTM proj_size.
"""
import argparse
import json
import math
import os
import pathlib
import random
import subprocess
import sys
import tempfile

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
RUNNEL = pathlib.Path(os.environ.get("RUNNEL", ROOT / "target" / "release" / "runnel"))
ACTS = {"gelu": nn.GELU(), "gelu_tanh": nn.GELU(approximate="tanh"), "relu": nn.ReLU(), "silu": nn.SiLU()}


def make_norm(cfg, w, bias=True):
    eps = cfg.get("norm_eps", 1e-5)
    if cfg.get("norm_kind", "layer") == "rms":
        return nn.RMSNorm(w, eps=eps)
    return nn.LayerNorm(w, eps=eps, bias=bias)


def slopes(n):
    if math.log2(n).is_integer():
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start ** i for i in range(n)]
    c = 2 ** math.floor(math.log2(n))
    return slopes(c) + slopes(2 * c)[0::2][: n - c]


def rotary(x, theta):  # x [B, H, T, D]; positions 0..T-1, angles in float64
    T, D = x.shape[-2], x.shape[-1]
    ang = torch.arange(T, dtype=torch.float64)[:, None] * theta ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
    c, s = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    a, b = x[..., : D // 2], x[..., D // 2:]
    return torch.cat([a * c - b * s, b * c + a * s], -1)


class MultiHeadAttention(nn.Module):
    """The tutorial's hand-written attention, with grouped-query heads, RoPE or ALiBi."""

    def __init__(self, w, heads, kv_heads, bias):
        super().__init__()
        d = w // heads
        self.q_proj = nn.Linear(w, w, bias=bias[0])
        self.k_proj = nn.Linear(w, kv_heads * d, bias=bias[1])
        self.v_proj = nn.Linear(w, kv_heads * d, bias=bias[2])
        self.out_proj = nn.Linear(w, w, bias=bias[3])

    def forward(self, x, b, mask):
        B, T, W = x.shape
        H, G = b["heads"], b.get("kv_heads", b["heads"])
        D = W // H
        q = self.q_proj(x).view(B, T, H, D).transpose(1, 2)
        k = self.k_proj(x).view(B, T, G, D).transpose(1, 2).repeat_interleave(H // G, 1)
        v = self.v_proj(x).view(B, T, G, D).transpose(1, 2).repeat_interleave(H // G, 1)
        pos = b.get("pos", "none")
        if pos == "rope":
            q, k = rotary(q, b.get("rope_theta", 10000.0)), rotary(k, b.get("rope_theta", 10000.0))
        s = q @ k.transpose(-1, -2) / math.sqrt(D)
        if pos == "alibi":
            dist = (torch.arange(T)[:, None] - torch.arange(T)[None, :]).to(s.dtype)
            s = s - torch.tensor(slopes(H), dtype=s.dtype)[:, None, None] * dist
        s = s.masked_fill(mask, float("-inf"))
        a = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, W)
        return self.out_proj(a)


class Model(nn.Module):
    def __init__(self, cfg, opts):
        super().__init__()
        self.cfg = cfg
        d = cfg["d_model"]
        nb = opts["no_bias"]
        if cfg["input"]["kind"] == "tokens":
            self.embed = nn.Embedding(cfg["input"]["vocab"], d)
        else:
            self.input = nn.Linear(cfg["input"]["dim"], d, bias="input" not in nb)
        self.blocks = nn.ModuleList()
        w = d
        for i, b in enumerate(cfg["blocks"]):
            m = nn.Module()
            has = lambda name: f"{i}.{name}" not in nb  # noqa: E731
            if b["kind"] in ("lstm", "gru"):
                h = b.get("hidden", w)
                if b.get("norm", True):
                    m.norm = make_norm(cfg, w, has("norm"))
                cls = nn.LSTM if b["kind"] == "lstm" else nn.GRU
                kw = {"proj_size": b["proj_size"]} if b.get("proj_size") else {}
                setattr(m, b["kind"], cls(w, h, num_layers=b.get("num_layers", 1), batch_first=True, bias=has("rnn"), **kw))
                w = b.get("proj_size") or h
            else:
                m.norm1 = make_norm(cfg, w, has("norm1"))
                if i in opts["split"]:
                    m.attn = MultiHeadAttention(w, b["heads"], b.get("kv_heads", b["heads"]), [has(p) for p in ("q", "k", "v", "out")])
                else:
                    m.attn = nn.MultiheadAttention(w, b["heads"], batch_first=True, bias=has("mha"))
                if b.get("ffn_dim", 0) > 0:
                    m.norm2 = make_norm(cfg, w, has("norm2"))
                    m.ffn = nn.Sequential(nn.Linear(w, b["ffn_dim"], bias=has("ffn0")), ACTS[b.get("activation", "gelu")], nn.Linear(b["ffn_dim"], w, bias=has("ffn2")))
            self.blocks.append(m)
        if cfg.get("final_norm", True):
            self.norm_f = make_norm(cfg, w, "norm_f" not in nb)
        self.head = nn.Linear(w, cfg["output"]["dim"], bias="head" not in nb)

    def forward(self, x):
        cfg = self.cfg
        x = self.embed(x) if cfg["input"]["kind"] == "tokens" else self.input(x)
        T = x.shape[1]
        for b, m in zip(cfg["blocks"], self.blocks):
            if b["kind"] in ("lstm", "gru"):
                u = m.norm(x) if hasattr(m, "norm") else x
                y, _ = getattr(m, b["kind"])(u)
                x = x + y if b.get("residual", True) else y
            else:
                i = torch.arange(T)[:, None]
                j = torch.arange(T)[None, :]
                mask = (j > i) | (j <= i - b["window"])
                u = m.norm1(x)
                if isinstance(m.attn, MultiHeadAttention):
                    a = m.attn(u, b, mask)
                else:
                    a, _ = m.attn(u, u, u, attn_mask=mask, need_weights=False)
                x = x + a
                if hasattr(m, "ffn"):
                    x = x + m.ffn(m.norm2(x))
        if hasattr(self, "norm_f"):
            x = self.norm_f(x)
        return self.head(x)


def random_config(rng):
    """A random config and the module choices the config does not hold (naming, biases)."""
    heads = rng.choice([1, 2, 3, 4, 6, 8])
    d = heads * rng.choice([2, 4, 5, 8, 12])
    cfg = {"format": "runnel-model/1", "d_model": d, "output": {"dim": rng.randint(1, 40)}}
    cfg["input"] = {"kind": "tokens", "vocab": rng.randint(1, 200)} if rng.random() < 0.6 else {"kind": "frames", "dim": rng.randint(1, 30)}
    if rng.random() < 0.3:
        cfg["norm_eps"] = rng.choice([1e-6, 1e-3, 0.1, 1])
    if rng.random() < 0.3:
        cfg["final_norm"] = False
    if rng.random() < 0.3:
        cfg["norm_kind"] = rng.choice(["layer", "rms"])
    no_bias, split = set(), set()
    for name in ("input", "head", "norm_f"):
        if rng.random() < 0.2:
            no_bias.add(name)
    blocks, w = [], d
    for i in range(rng.randint(1, 5)):
        for name in ("norm", "rnn", "norm1", "mha", "q", "k", "v", "out", "norm2", "ffn0", "ffn2"):
            if rng.random() < 0.15:
                no_bias.add(f"{i}.{name}")
        if rng.random() < 0.55:
            b = {"kind": rng.choice(["lstm", "gru"])}
            if rng.random() < 0.4:
                b["num_layers"] = rng.randint(1, 3)
            if rng.random() < 0.3:
                b["residual"] = False
                b["hidden"] = rng.randint(2, 48)
                if rng.random() < 0.5:
                    b["norm"] = False
            if b["kind"] == "lstm" and rng.random() < 0.3:
                h = b.get("hidden", w)
                if b.get("residual", True):
                    b["hidden"] = h = w + rng.randint(1, 16)
                    b["proj_size"] = w
                elif h > 1:
                    b["proj_size"] = rng.randint(1, h - 1)
            blocks.append(b)
            w = b.get("proj_size") or b.get("hidden", w)
        else:
            hs = [h for h in range(1, w + 1) if w % h == 0]
            b = {"kind": "attention", "heads": rng.choice(hs), "window": rng.choice([1, 2, 3, 7, 16, 64])}
            if rng.random() < 0.7:
                b["ffn_dim"] = rng.randint(1, 4 * w)
                b["activation"] = rng.choice(list(ACTS))
            if rng.random() < 0.5:
                split.add(i)
                if rng.random() < 0.6:
                    b["kv_heads"] = rng.choice([g for g in range(1, b["heads"] + 1) if b["heads"] % g == 0])
                r = rng.random()
                if r < 0.35 and (w // b["heads"]) % 2 == 0:
                    b["pos"] = "rope"
                    if rng.random() < 0.5:
                        b["rope_theta"] = rng.choice([10000, 500.0, 1e6, 100])
                elif r < 0.7:
                    b["pos"] = "alibi"
            blocks.append(b)
    cfg["blocks"] = blocks
    return cfg, {"no_bias": no_bias, "split": split}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    worst, bad = 0.0, 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for n in range(args.count):
            cfg, opts = random_config(rng)
            model = Model(cfg, opts).eval()
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(0.1 * torch.randn_like(p))
            T = rng.randint(1, 90)
            if cfg["input"]["kind"] == "tokens":
                inp = torch.randint(0, cfg["input"]["vocab"], (T,))
                feed = {"tokens": inp}
            else:
                inp = torch.randn(T, cfg["input"]["dim"])
                feed = {"frames": inp}
            with torch.no_grad():
                want = model(inp[None]).squeeze(0)
            dtype = rng.choice([torch.float32, torch.float32, torch.float16, torch.bfloat16])
            sd = {k: v.to(dtype).contiguous() for k, v in model.state_dict().items()}
            if dtype != torch.float32:  # what the file holds is what PyTorch must compute with
                model.load_state_dict({k: v.float() for k, v in sd.items()})
                with torch.no_grad():
                    want = model(inp[None]).squeeze(0)
            save_file(sd, tmp / "m.safetensors", metadata={"runnel.config": json.dumps(cfg)})
            save_file(feed, tmp / "in.safetensors")
            r = subprocess.run([RUNNEL, "convert", tmp / "m.safetensors", "-o", tmp / "m.rnl", "--weights", "f32", "--kv", "f32"], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"[{n}] convert failed: {r.stderr.strip()}\n  {json.dumps(cfg)}")
                bad += 1
                continue
            r = subprocess.run([RUNNEL, "run", tmp / "m.rnl", "--inputs", tmp / "in.safetensors", "-o", tmp / "out.safetensors"], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"[{n}] run failed: {r.stderr.strip()}")
                bad += 1
                continue
            got = load_file(tmp / "out.safetensors")["outputs"]
            err = ((got - want).abs() / (1 + want.abs())).max().item() if T else 0.0
            worst = max(worst, err)
            ok = err <= 1e-4
            bad += not ok
            print(f"[{n}] {'ok ' if ok else 'BAD'} err {err:.2e} T={T} {str(dtype)[6:]} {json.dumps(cfg)} split={sorted(opts['split'])} no_bias={sorted(opts['no_bias'])}")
    print(f"{args.count - bad} passed, {bad} failed (worst {worst:.2e})")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
