#!/usr/bin/env python3
"""Train a runnel-model/1 character LM with an architecture other than the demo's.

`train_charlm.py` (the demo model) has its architecture fixed in code; this script reuses its
text reader, vocabulary, model builder (stock PyTorch modules, contract tensor names), training
recipe and one-stream evaluation, but takes the architecture, the books and the tensor dtype of
the saved file as arguments. It exists to check that the runtime's accuracy bounds
(tests/tests/accuracy.rs) hold on models other than the demo.

Presets (`--arch`):

* `chargru` (-> models/chargru/): d_model 64, [gru (2 layers), attention (2 heads, window 32,
  ffn 128, relu), gru], trained on *Emma* (a novel the demo never saw), stored as F16.
* `wide`: d_model 128, [lstm, attention (8 heads, window 64, ffn 256, silu), attention (8 heads,
  window 16, no ffn), lstm], trained on *Sense and Sensibility*, stored as F32. (One-off check,
  not kept in the repository.)

`--config FILE.json` trains any other runnel-model/1 token config instead.

If the file dtype is F16/BF16, the trained weights are rounded to it *before* the reference
numbers are computed, so `reference_bpc.json` describes exactly the model in the file (which
readers load as f32). The numbers are also re-computed from the saved file, and cross-checked
with `runnel_ref.StepRunner` (float64, step by step, KV cache of `window`).

Regenerate models/chargru (CPU, 1 thread, about 8 min):
    python reference/train_variant.py --arch chargru --out models/chargru
"""
import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_charlm import (VOCAB, RunnelModel, decode, encode, find_janeaustenr,  # noqa: E402
                          normalize, read_austen, sample, stream_eval)
import runnel_ref  # noqa: E402


def _cfg(d_model, blocks):
    return {"format": "runnel-model/1", "input": {"kind": "tokens", "vocab": VOCAB},
            "d_model": d_model, "blocks": blocks, "norm_eps": 1e-5, "final_norm": True,
            "output": {"dim": VOCAB}}


PRESETS = {
    "chargru": dict(
        config=_cfg(64, [
            {"kind": "gru", "num_layers": 2, "hidden": 64, "norm": True, "residual": True},
            {"kind": "attention", "heads": 2, "window": 32, "ffn_dim": 128, "activation": "relu"},
            {"kind": "gru", "num_layers": 1, "hidden": 64, "norm": True, "residual": True},
        ]),
        books=["emma"], dtype="F16", name="chargru",
        prompt="Emma Woodhouse, handsome, clever, and rich,"),
    "wide": dict(
        config=_cfg(128, [
            {"kind": "lstm", "num_layers": 1, "hidden": 128, "norm": True, "residual": True},
            {"kind": "attention", "heads": 8, "window": 64, "ffn_dim": 256, "activation": "silu"},
            {"kind": "attention", "heads": 8, "window": 16, "ffn_dim": 0},
            {"kind": "lstm", "num_layers": 1, "hidden": 128, "norm": True, "residual": True},
        ]),
        books=["sensesensibility"], dtype="F32", name="wide",
        prompt="The family of Dashwood had long been settled"),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", choices=sorted(PRESETS), default="chargru")
    ap.add_argument("--config", default=None, help="runnel-model/1 JSON file (overrides --arch)")
    ap.add_argument("--books", default=None, help="comma-separated janeaustenr book names")
    ap.add_argument("--dtype", choices=["F32", "F16", "BF16"], default=None)
    ap.add_argument("--name", default=None, help="model file stem")
    ap.add_argument("--out", required=True)
    ap.add_argument("--janeaustenr-dir", default=None)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=160)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--max-minutes", type=float, default=7.5)
    ap.add_argument("--heldout-frac", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()

    preset = dict(PRESETS[args.arch])
    if args.config:
        preset["config"] = json.load(open(args.config))
        preset["name"] = os.path.splitext(os.path.basename(args.config))[0]
    cfg = preset["config"]
    books = args.books.split(",") if args.books else preset["books"]
    dtype = args.dtype or preset["dtype"]
    name = args.name or preset["name"]
    runnel_ref.normalize_config(cfg)  # fail early on an invalid config

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

    # ---- data (same preprocessing and split rule as train_charlm.py)
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
    mon = held_ids[4000:]
    nmon = min(len(mon) // 2000, 8)
    mon_batch = torch.from_numpy(mon[: nmon * 2000].reshape(nmon, 2000))

    # ---- model
    model = RunnelModel(cfg)
    nparams = sum(p.numel() for p in model.parameters())
    log("config: " + json.dumps(cfg))
    log("parameters: %d; file dtype %s" % (nparams, dtype))
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
    log("training: steps=%d batch=%d seq=%d lr=%g AdamW cosine, 1 thread, cap %.1f min"
        % (args.steps, args.batch, args.seq, args.lr, args.max_minutes))
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
        if (step + 1) % 100 == 0 or step == 0:
            log("step %5d  lr %.5f  train_loss %.4f (bpc %.3f)  heldout_bpc %.4f  %.0fs"
                % (step + 1, lr_at(step), run_loss / run_n, run_loss / run_n / math.log(2),
                   mon_bpc(), el))
            run_loss, run_n = 0.0, 0
        if el > args.max_minutes * 60:
            log("wall-time cap reached at step %d (lr schedule not finished)" % (step + 1))
            break
    log("training time: %.1f s (%d steps)" % (time.time() - t0, step + 1))

    # ---- round to the file dtype first: the reference numbers describe the model in the file
    bpc32, acc32 = stream_eval(model, heldout_ids)
    log("heldout.txt before rounding (f32 weights): bpc %.6f  top1 %.4f" % (bpc32, acc32))
    model.eval()
    path = os.path.join(args.out, name + ".safetensors")
    runnel_ref.save_model(model, cfg, path, dtype)  # rounds the parameters in place, checks names
    bpc, acc = stream_eval(model, heldout_ids)
    log("heldout.txt (4000 chars, one stream, full-seq forward with windowed mask, %s-rounded "
        "weights): bpc %.6f  top1 %.4f" % (dtype, bpc, acc))

    # ---- cross-checks: the saved file, and the step-by-step float64 implementation
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
    for k, v in tensors.items():
        log("  %-32s %s" % (k, list(v.shape)))
    with open(os.path.join(args.out, "reference_bpc.json"), "w") as f:
        json.dump({"heldout_bpc": round(bpc, 6), "top1_accuracy": round(acc, 6), "chars": 4000}, f)
        f.write("\n")

    prompt = preset.get("prompt", "It was")
    log("sample (greedy, prompt %r):" % prompt)
    log(sample(model, prompt, 200, 0.0, gen))
    log("sample (temperature 0.8, prompt %r):" % prompt)
    log(sample(model, prompt, 300, 0.8, torch.Generator().manual_seed(args.seed)))
    logf.close()


if __name__ == "__main__":
    main()
