#!/usr/bin/env python3
"""Generate the golden test fixtures in tests/fixtures/<name>/.

Run from the repository root:

    /work/venv/bin/python reference/make_fixtures.py

Each fixture directory holds exactly:
  model.safetensors    the model (metadata "runnel.config"), tensors F32/F16/BF16
  inputs.safetensors   "tokens" (I64 [T]; I32 for tokens_i32) or "frames" (F32 [T, dim])
  outputs.safetensors  "outputs" (F32 [T, output.dim]): logits computed in float64 from
                       the weights exactly as stored in the file, then cast to f32.

Every fixture is cross-checked against the independent step-by-step implementation
(runnel_ref.StepRunner, fed with the tensors read back from the written file).
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import torch

torch.set_num_threads(1)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import runnel_ref as R  # noqa: E402

OUT_DIR = os.path.join(os.path.dirname(HERE), "tests", "fixtures")
TOL = 1e-5

FMT = R.FORMAT


def cfg(input, d_model, blocks, output, **kw):
    c = {"format": FMT, "input": input, "d_model": d_model, "blocks": blocks}
    c.update(kw)
    c["output"] = {"dim": output}
    return c


def tok(v):
    return {"kind": "tokens", "vocab": v}


def frm(d):
    return {"kind": "frames", "dim": d}


def attn(heads, window, ffn_dim=None, activation=None, **kw):
    b = {"kind": "attention", "heads": heads, "window": window}
    if ffn_dim is not None:
        b["ffn_dim"] = ffn_dim
    if activation is not None:
        b["activation"] = activation
    b.update(kw)
    return b


# name -> spec. "explicit": write the config with every defaulted key filled in;
# otherwise the config is written exactly as given here (defaulted keys omitted).
FIXTURES = {
    "tok_lstm": dict(
        seed=1, T=48, dtype="F32", explicit=False,
        config=cfg(tok(50), 32, [{"kind": "lstm"}], 50),
        about="tokens; one LSTM block, every default (num_layers, hidden, norm, residual, "
              "norm_eps, final_norm omitted from the config)"),
    "tok_lstm2_attn_gru": dict(
        seed=2, T=64, dtype="F32", explicit=True,
        config=cfg(tok(50), 48, [
            {"kind": "lstm", "num_layers": 2},
            attn(4, 8, 96, "gelu"),
            {"kind": "gru"},
        ], 50),
        about="tokens; 2-layer LSTM, attention (4 heads, window 8, FFN 96, gelu), GRU; "
              "T = 8 x window so the KV cache wraps many times; all keys explicit"),
    "frames_gru": dict(
        seed=3, T=50, dtype="F32", explicit=False,
        config=cfg(frm(13), 24, [{"kind": "gru", "num_layers": 2}], 7),
        about="frames input (input.weight/bias); 2-layer GRU; output dim differs from input"),
    "odd_width_attn": dict(
        seed=4, T=60, dtype="F32", explicit=False,
        config=cfg(tok(37), 40, [
            {"kind": "lstm"},
            attn(5, 6, 64, "relu"),
            attn(5, 3),
        ], 37),
        about="width 40 with 5 heads (head dim 8); two attention blocks, windows 6 and 3, "
              "the second without FFN (ffn_dim omitted -> 0, no norm2/ffn tensors)"),
    "no_norm_no_residual": dict(
        seed=5, T=40, dtype="F32", explicit=True,
        config=cfg(frm(5), 20, [
            {"kind": "lstm", "hidden": 28, "norm": False, "residual": False},
            {"kind": "gru", "hidden": 12, "norm": False, "residual": False},
            attn(3, 4, 24, "silu"),
        ], 4, final_norm=False),
        about="frames; width changes 20 -> 28 -> 12 through non-residual, un-normed "
              "LSTM/GRU blocks (no blocks.i.norm.* tensors); attention on width 12 "
              "(3 heads, silu FFN); final_norm false (no norm_f.* tensors)"),
    "activations": dict(
        seed=6, T=50, dtype="F32", explicit=True, ffn_scale=(2.5, 6.0),
        config=cfg(tok(40), 32, [
            {"kind": "lstm"},
            attn(4, 5, 48, "gelu"),
            attn(4, 5, 48, "gelu_tanh"),
            attn(4, 5, 48, "relu"),
            attn(4, 5, 48, "silu"),
        ], 40),
        about="LSTM then four attention blocks (window 5, FFN 48) with activations gelu, "
              "gelu_tanh, relu, silu; FFN weights scaled up (ffn.0 x2.5, ffn.2 x6) so that "
              "confusing gelu with gelu_tanh changes the logits by 4e-4 to 5e-4"),
    "f16_weights": dict(
        seed=7, T=48, dtype="F16", explicit=True,
        config=cfg(tok(30), 24, [
            {"kind": "lstm", "num_layers": 2},
            attn(4, 6, 48, "gelu"),
            {"kind": "gru"},
        ], 30),
        about="like tok_lstm2_attn_gru, smaller, all tensors stored as F16"),
    "bf16_weights": dict(
        seed=8, T=50, dtype="BF16", explicit=True,
        config=cfg(frm(8), 24, [
            {"kind": "gru"},
            attn(2, 7, 40, "gelu_tanh"),
        ], 6),
        about="frames; GRU + attention (2 heads, window 7, gelu_tanh FFN), all tensors BF16"),
    "norm_eps": dict(
        seed=9, T=40, dtype="F32", explicit=True, embed_scale=0.02,
        config=cfg(tok(20), 16, [
            attn(1, 1, 32, "relu"),
            {"kind": "lstm"},
        ], 20, norm_eps=1e-3),
        about="norm_eps 1e-3 with tiny embeddings (scale 0.02, variance ~4e-4) so the eps "
              "dominates LayerNorm; attention with window 1 (attends only to itself) and "
              "a single head"),
    "window_exceeds_T": dict(
        seed=10, T=40, dtype="F32", explicit=False,
        config=cfg(tok(20), 16, [
            {"kind": "gru"},
            attn(16, 1000),
        ], 20),
        about="window 1000 > T = 40 (plain causal attention); 16 heads on width 16 "
              "(head dim 1); no FFN"),
    "stacked_narrow": dict(
        seed=11, T=50, dtype="F32", explicit=True,
        config=cfg(frm(6), 20, [
            {"kind": "lstm", "num_layers": 3, "hidden": 12, "residual": False},
            {"kind": "gru", "num_layers": 2, "hidden": 16, "residual": False},
            attn(4, 4, 32, "silu"),
        ], 9),
        about="stacked RNNs whose hidden differs from their input width (in_0 = W, "
              "in_K = H for K > 0): 3-layer LSTM 20 -> 12, 2-layer GRU 12 -> 16, with norm"),
    "tokens_i32": dict(
        seed=12, T=40, dtype="F32", explicit=True, token_dtype=torch.int32,
        config=cfg(tok(25), 16, [
            {"kind": "gru"},
            attn(2, 4, 16, "gelu"),
        ], 25),
        about="tokens stored as I32 in inputs.safetensors (contract section 4 allows I64 or I32)"),
    # ---- the contract's §6 additions
    "split_qkv": dict(
        seed=13, T=60, dtype="F32", explicit=False, split={1},
        no_bias={"blocks.1.attn.out_proj"},
        config=cfg(tok(30), 24, [
            {"kind": "lstm"},
            attn(4, 6, 48, "gelu"),
        ], 30),
        about="§6.1 the tutorial's attention: q_proj/k_proj/v_proj/out_proj (4 heads, "
              "window 6), biased q/k/v with an unbiased out_proj (§6.5)"),
    "gqa_rope": dict(
        seed=14, T=64, dtype="F32", explicit=False, split={1, 2},
        config=cfg(tok(30), 32, [
            {"kind": "gru"},
            attn(4, 8, 64, "silu", kv_heads=2, pos="rope"),
            attn(4, 5, kv_heads=1, pos="rope", rope_theta=500),
        ], 30),
        about="§6.2 + §6.3 grouped-query attention (4 heads, 2 KV heads) with RoPE "
              "(default theta), then multi-query (1 KV head) with RoPE theta 500 written as "
              "a JSON integer; T = 8 x window, so positions pass the window many times"),
    "alibi_odd_heads": dict(
        seed=15, T=60, dtype="F16", explicit=False, split={2},
        config=cfg(tok(30), 24, [
            {"kind": "lstm"},
            attn(6, 7, 48, "gelu", pos="alibi"),
            attn(3, 4, pos="alibi", kv_heads=3),
        ], 30),
        about="§6.3 ALiBi with 6 heads (not a power of two: slopes of 4 then every other of "
              "8) via nn.MultiheadAttention's naming, then 3 heads split; stored F16"),
    "rms_no_bias": dict(
        seed=16, T=50, dtype="BF16", explicit=False,
        no_bias={"input", "blocks.0.lstm", "blocks.1.attn", "blocks.1.ffn.0",
                 "blocks.1.ffn.2", "head"},
        config=cfg(frm(7), 16, [
            {"kind": "lstm"},
            attn(2, 5, 32, "gelu"),
            {"kind": "gru", "hidden": 12, "residual": False},
        ], 5, norm_kind="rms"),
        about="§6.4 + §6.5 RMSNorm everywhere (no norm biases) and no bias in input, the "
              "LSTM, nn.MultiheadAttention(bias=False), both FFN linears and the head; BF16"),
    "lstm_proj": dict(
        seed=17, T=50, dtype="F32", explicit=False, split={2},
        no_bias={"blocks.0.norm", "norm_f", "blocks.2.attn.q_proj", "blocks.2.attn.k_proj"},
        config=cfg(tok(30), 16, [
            {"kind": "lstm", "num_layers": 2, "hidden": 24, "proj_size": 16},
            {"kind": "lstm", "hidden": 20, "proj_size": 12, "residual": False},
            attn(2, 6, 24, "relu", pos="rope", rope_theta=100.0),
            {"kind": "gru"},
        ], 30),
        about="§6.6 LSTM proj_size: 2 stacked layers hidden 24 -> proj 16 (residual), then "
              "hidden 20 -> proj 12 (not residual, width 16 -> 12); LayerNorm(bias=False) "
              "for blocks.0.norm and norm_f; split attention with RoPE whose q/k have no bias"),
}


def make_interesting_(model: torch.nn.Module, gen: torch.Generator) -> None:
    """Start from PyTorch's default init and perturb it so nothing is an identity."""
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.LayerNorm):
                mod.weight.copy_(1.0 + 0.1 * torch.randn(mod.weight.shape, generator=gen))
                if mod.bias is not None:
                    mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=gen))
            elif isinstance(mod, torch.nn.RMSNorm):
                mod.weight.copy_(1.0 + 0.1 * torch.randn(mod.weight.shape, generator=gen))
            elif isinstance(mod, R.SplitAttention):
                for lin in (mod.q_proj, mod.k_proj):
                    lin.weight.mul_(2.0)
                for lin in (mod.q_proj, mod.k_proj, mod.v_proj, mod.out_proj):
                    if lin.bias is not None:
                        lin.bias.copy_(0.1 * torch.randn(lin.bias.shape, generator=gen))
            elif isinstance(mod, torch.nn.MultiheadAttention) and mod.in_proj_bias is None:
                mod.in_proj_weight[: 2 * mod.embed_dim].mul_(2.0)
            elif isinstance(mod, torch.nn.MultiheadAttention):
                # default init: biases 0, logits small -> nearly uniform attention.
                W = mod.embed_dim
                mod.in_proj_weight[: 2 * W].mul_(2.0)  # sharper q.k
                mod.in_proj_bias.copy_(0.1 * torch.randn(mod.in_proj_bias.shape, generator=gen))
                mod.out_proj.bias.copy_(0.1 * torch.randn(mod.out_proj.bias.shape, generator=gen))


def read_tensors(path: str) -> tuple[dict, dict]:
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
        return {k: f.get_tensor(k) for k in f.keys()}, meta


def build(name: str, spec: dict) -> dict:
    torch.manual_seed(spec["seed"])
    gen = torch.Generator().manual_seed(1000 + spec["seed"])
    raw = spec["config"]
    ncfg = R.normalize_config(raw)
    file_cfg = R.public_config(ncfg) if spec["explicit"] else raw
    model = R.RunnelRef(file_cfg, no_bias=spec.get("no_bias"), split=spec.get("split")).eval()
    make_interesting_(model, gen)
    if "embed_scale" in spec:
        with torch.no_grad():
            model.embed.weight.mul_(spec["embed_scale"])

    if "ffn_scale" in spec:
        with torch.no_grad():
            for blk in model.blocks:
                if getattr(blk, "ffn", None) is not None:
                    blk.ffn[0].weight.mul_(spec["ffn_scale"][0])
                    blk.ffn[2].weight.mul_(spec["ffn_scale"][1])

    T = spec["T"]
    if ncfg["input"]["kind"] == "tokens":
        V = ncfg["input"]["vocab"]
        inputs = torch.randint(0, V, (T,), generator=gen)
        inputs[1], inputs[2] = 0, V - 1  # boundary ids
        inputs = inputs.to(spec.get("token_dtype", torch.int64))
        in_name = "tokens"
    else:
        inputs = torch.randn(T, ncfg["input"]["dim"], generator=gen, dtype=torch.float32)
        in_name = "frames"

    d = os.path.join(OUT_DIR, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    mpath = os.path.join(d, "model.safetensors")
    R.save_model(model, file_cfg, mpath, spec["dtype"])  # rounds model weights in place

    # Reference outputs: float64 whole-sequence forward of the (rounded) model.
    ref64 = R.run_f64(model, inputs)
    outputs = ref64.to(torch.float32).contiguous()
    save_file({in_name: inputs.contiguous()}, os.path.join(d, "inputs.safetensors"))
    save_file({"outputs": outputs}, os.path.join(d, "outputs.safetensors"))

    # Cross-check 1: independent step-by-step implementation on the tensors read
    # back from the written file (checks the file, the rounding and our reading of §3).
    tensors, meta = read_tensors(mpath)
    assert json.loads(meta["runnel.config"]) == file_cfg
    assert set(tensors) == set(R.expected_tensor_shapes(file_cfg, spec.get("no_bias"),
                                                        spec.get("split")))
    assert all(t.dtype == R.DTYPES[spec["dtype"]] for t in tensors.values())
    step = R.StepRunner({k: v.to(torch.float32) for k, v in tensors.items()}, file_cfg).run(inputs)
    step_diff = (step - ref64).abs().max().item()
    assert step_diff < TOL, f"{name}: step-by-step differs from module by {step_diff}"

    # Cross-check 2: causality -- outputs for a prefix equal the prefix of outputs.
    half = T // 2
    pre = R.run_f64(model, inputs[:half])
    causal_diff = (pre - ref64[:half]).abs().max().item()
    assert causal_diff < TOL, f"{name}: prefix outputs differ by {causal_diff}"

    # Informative: how far a plain f32 forward is from the f64 reference.
    with torch.no_grad():
        f32 = model.float()(inputs)
    f32_diff = (f32.double() - ref64).abs().max().item()

    params = sum(p.numel() for p in model.parameters())
    return dict(name=name, T=T, params=params, dtype=spec["dtype"], step_diff=step_diff,
                causal_diff=causal_diff, f32_diff=f32_diff,
                out_absmax=ref64.abs().max().item(), about=spec["about"])


def main() -> None:
    os.makedirs(OUT_DIR, exist_ok=True)
    only = sys.argv[1:]
    rows = []
    for name, spec in FIXTURES.items():
        if only and name not in only:
            continue
        r = build(name, spec)
        rows.append(r)
        print(f"{name:22s} T={r['T']:3d} params={r['params']:6d} {r['dtype']:4s} "
              f"step|diff|={r['step_diff']:.2e} causal={r['causal_diff']:.2e} "
              f"f32-vs-f64={r['f32_diff']:.2e} max|y|={r['out_absmax']:.2f}")
    worst = max(r["step_diff"] for r in rows)
    print(f"step-by-step cross-check passed on {len(rows)} fixtures; max |diff| = {worst:.3e}")


if __name__ == "__main__":
    main()
