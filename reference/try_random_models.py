#!/usr/bin/env python3
"""Tries runnel as a new user would: builds random contract models directly from stock PyTorch
modules (independently of runnel_ref.py), saves them with safetensors, converts and runs them with
the `runnel` CLI, and compares with PyTorch's outputs (f32: |d| <= 1e-4 (1 + |y|)).

    cargo build --release -p runnel-converter
    /work/venv/bin/python reference/try_random_models.py [--count 20] [--seed 1]
"""
import argparse
import json
import math
import pathlib
import random
import subprocess
import sys
import tempfile

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
RUNNEL = ROOT / "target" / "release" / "runnel"
ACTS = {"gelu": nn.GELU(), "gelu_tanh": nn.GELU(approximate="tanh"), "relu": nn.ReLU(), "silu": nn.SiLU()}


class Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d = cfg["d_model"]
        if cfg["input"]["kind"] == "tokens":
            self.embed = nn.Embedding(cfg["input"]["vocab"], d)
        else:
            self.input = nn.Linear(cfg["input"]["dim"], d)
        self.blocks = nn.ModuleList()
        w = d
        for b in cfg["blocks"]:
            m = nn.Module()
            if b["kind"] in ("lstm", "gru"):
                h = b.get("hidden", w)
                if b.get("norm", True):
                    m.norm = nn.LayerNorm(w, eps=cfg.get("norm_eps", 1e-5))
                cls = nn.LSTM if b["kind"] == "lstm" else nn.GRU
                setattr(m, b["kind"], cls(w, h, num_layers=b.get("num_layers", 1), batch_first=True))
                w = h
            else:
                m.norm1 = nn.LayerNorm(w, eps=cfg.get("norm_eps", 1e-5))
                m.attn = nn.MultiheadAttention(w, b["heads"], batch_first=True)
                if b.get("ffn_dim", 0) > 0:
                    m.norm2 = nn.LayerNorm(w, eps=cfg.get("norm_eps", 1e-5))
                    m.ffn = nn.Sequential(nn.Linear(w, b["ffn_dim"]), ACTS[b.get("activation", "gelu")], nn.Linear(b["ffn_dim"], w))
            self.blocks.append(m)
        if cfg.get("final_norm", True):
            self.norm_f = nn.LayerNorm(w, eps=cfg.get("norm_eps", 1e-5))
        self.head = nn.Linear(w, cfg["output"]["dim"])

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
                a, _ = m.attn(u, u, u, attn_mask=mask, need_weights=False)
                x = x + a
                if hasattr(m, "ffn"):
                    x = x + m.ffn(m.norm2(x))
        if hasattr(self, "norm_f"):
            x = self.norm_f(x)
        return self.head(x)


def random_config(rng):
    heads = rng.choice([1, 2, 3, 4, 6, 8])
    d = heads * rng.choice([2, 4, 5, 8, 12])
    cfg = {"format": "runnel-model/1", "d_model": d, "output": {"dim": rng.randint(1, 40)}}
    cfg["input"] = {"kind": "tokens", "vocab": rng.randint(1, 200)} if rng.random() < 0.6 else {"kind": "frames", "dim": rng.randint(1, 30)}
    if rng.random() < 0.3:
        cfg["norm_eps"] = rng.choice([1e-6, 1e-3, 0.1])
    if rng.random() < 0.3:
        cfg["final_norm"] = False
    blocks, w = [], d
    for _ in range(rng.randint(1, 5)):
        if rng.random() < 0.55:
            b = {"kind": rng.choice(["lstm", "gru"])}
            if rng.random() < 0.4:
                b["num_layers"] = rng.randint(1, 3)
            if rng.random() < 0.3:
                b["residual"] = False
                b["hidden"] = rng.randint(2, 48)
                if rng.random() < 0.5:
                    b["norm"] = False
            blocks.append(b)
            w = b.get("hidden", w)
        else:
            hs = [h for h in range(1, w + 1) if w % h == 0]
            b = {"kind": "attention", "heads": rng.choice(hs), "window": rng.choice([1, 2, 3, 7, 16, 64])}
            if rng.random() < 0.7:
                b["ffn_dim"] = rng.randint(1, 4 * w)
                b["activation"] = rng.choice(list(ACTS))
            blocks.append(b)
    cfg["blocks"] = blocks
    return cfg


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
            cfg = random_config(rng)
            model = Model(cfg).eval()
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
            print(f"[{n}] {'ok ' if ok else 'BAD'} err {err:.2e} T={T} {str(dtype)[6:]} {json.dumps(cfg)}")
    print(f"{args.count - bad} passed, {bad} failed (worst {worst:.2e})")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
