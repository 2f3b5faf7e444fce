#!/usr/bin/env python3
"""Generate malformed model files in tests/fixtures/malformed/.

Run from the repository root:

    /work/venv/bin/python reference/make_malformed.py

Each file breaks exactly one rule of the contract (everything else about it is
valid). malformed/expected.json maps each file name to a substring that the error
message about that file must contain (the offending key, value or tensor name).
The script checks itself with a small Python validator (``validate`` below) that
follows the contract; the Rust converter must reject every file too.
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

OUT_DIR = os.path.join(os.path.dirname(HERE), "tests", "fixtures", "malformed")


def base_config() -> dict:
    return {
        "format": R.FORMAT,
        "input": {"kind": "tokens", "vocab": 8},
        "d_model": 8,
        "blocks": [
            {"kind": "lstm"},
            {"kind": "attention", "heads": 2, "window": 2, "ffn_dim": 8},
        ],
        "output": {"dim": 8},
    }


def tensors_for(shapes: dict, gen: torch.Generator) -> dict:
    return {k: 0.1 * torch.randn(s, generator=gen) for k, s in sorted(shapes.items())}


def valid(cfg: dict, gen) -> dict:
    return tensors_for(R.expected_tensor_shapes(cfg), gen)


def cases(gen):
    """name -> (config JSON string or None for no metadata, tensors, expected substring)."""
    out = {}

    c = base_config()
    t = valid(c, gen)
    t["blocks.0.lstm.weight_ih_l0"] = 0.1 * torch.randn(32, 7, generator=gen)
    out["bad_shape"] = (json.dumps(c), t, "blocks.0.lstm.weight_ih_l0")

    c = base_config()
    t = valid(c, gen)
    del t["blocks.1.attn.out_proj.weight"]
    out["missing_tensor"] = (json.dumps(c), t, "blocks.1.attn.out_proj.weight")

    c = base_config()
    t = valid(c, gen)
    t["blocks.0.lstm.weight_ih_l1"] = 0.1 * torch.randn(32, 8, generator=gen)
    out["extra_tensor"] = (json.dumps(c), t, "blocks.0.lstm.weight_ih_l1")

    c = base_config()
    t = valid(c, gen)
    t["head.weight"] = torch.randint(-3, 3, (8, 8), generator=gen, dtype=torch.int32)
    out["bad_dtype"] = (json.dumps(c), t, "head.weight")

    c = base_config()
    t = valid(c, gen)
    c["foo"] = 1
    out["unknown_key"] = (json.dumps(c), t, "foo")

    c = base_config()
    c["blocks"] = [{"kind": "lstm"}]
    t = valid(c, gen)
    c["blocks"].append({"kind": "conv1d"})
    out["unknown_kind"] = (json.dumps(c), t, "conv1d")

    c = base_config()
    t = valid(c, gen)  # shapes do not depend on heads
    c["blocks"][1]["heads"] = 3
    out["bad_heads"] = (json.dumps(c), t, "heads")

    c = base_config()
    t = valid(c, gen)  # shapes do not depend on window
    c["blocks"][1]["window"] = 0
    out["window_zero"] = (json.dumps(c), t, "window")

    c = base_config()
    c["blocks"][0] = {"kind": "lstm", "hidden": 12, "residual": False}
    t = valid(c, gen)  # tensors consistent with hidden 12 ...
    c["blocks"][0]["residual"] = True  # ... but a residual block needs hidden == 8
    c["blocks"] = c["blocks"][:1]  # keep the width story simple: lstm then head
    t = {k: v for k, v in t.items() if not k.startswith("blocks.1.")}
    t["head.weight"] = 0.1 * torch.randn(8, 8, generator=gen)
    t["norm_f.weight"] = 1.0 + 0.1 * torch.randn(8, generator=gen)
    t["norm_f.bias"] = 0.1 * torch.randn(8, generator=gen)
    out["residual_hidden"] = (json.dumps(c), t, "hidden")

    c = base_config()
    t = valid(c, gen)
    out["no_config"] = (None, t, "runnel.config")

    c = base_config()
    t = valid(c, gen)
    out["bad_json"] = ('{"format": "runnel-model/1", "input": ', t, "runnel.config")

    c = base_config()
    t = valid(c, gen)
    c["format"] = "runnel-model/2"
    out["bad_format"] = (json.dumps(c), t, "format")

    c = base_config()
    t = valid(c, gen)
    c["blocks"][1]["activation"] = "swish"
    out["bad_activation"] = (json.dumps(c), t, "swish")

    c = base_config()
    t = valid(c, gen)
    c["input"] = {"kind": "audio", "vocab": 8}
    out["bad_input_kind"] = (json.dumps(c), t, "audio")

    c = base_config()
    t = valid(c, gen)
    del c["d_model"]
    out["missing_d_model"] = (json.dumps(c), t, "d_model")

    # ---- §6 additions
    c = base_config()
    t = valid(c, gen)
    t["blocks.1.attn.q_proj.weight"] = 0.1 * torch.randn(8, 8, generator=gen)
    out["mixed_attn_naming"] = (json.dumps(c), t, "blocks.1.attn.q_proj.weight")

    c = base_config()
    t = valid(c, gen)
    del t["blocks.0.lstm.bias_hh_l0"]
    out["bias_pair_lstm"] = (json.dumps(c), t, "blocks.0.lstm.bias_hh_l0")

    c = base_config()
    t = valid(c, gen)
    del t["blocks.1.attn.in_proj_bias"]
    out["bias_pair_mha"] = (json.dumps(c), t, "blocks.1.attn.in_proj_bias")

    c = base_config()
    t = valid(c, gen)
    c["blocks"][1]["kv_heads"] = 1  # grouped-query attention with in_proj_weight
    out["kv_heads_packed"] = (json.dumps(c), t, "kv_heads")

    c = base_config()
    t = valid(c, gen)
    c["blocks"][1]["kv_heads"] = 3
    out["kv_heads_not_dividing"] = (json.dumps(c), t, "kv_heads")

    c = base_config()
    t = valid(c, gen)
    c["blocks"][1]["rope_theta"] = 10000
    out["rope_theta_without_rope"] = (json.dumps(c), t, "rope_theta")

    c = base_config()
    t = valid(c, gen)
    c["blocks"][1]["pos"] = "sinusoidal"
    out["bad_pos"] = (json.dumps(c), t, "sinusoidal")

    c = base_config()
    c["blocks"][0] = {"kind": "gru"}
    t = valid(c, gen)
    c["blocks"][0]["proj_size"] = 4
    out["proj_size_gru"] = (json.dumps(c), t, "proj_size")

    c = base_config()
    t = valid(c, gen)
    c["norm_kind"] = "batch"
    out["bad_norm_kind"] = (json.dumps(c), t, "batch")

    c = base_config()
    t = valid(c, gen)  # LayerNorm tensors, biases included ...
    c["norm_kind"] = "rms"  # ... but an RMSNorm has no bias
    out["rms_with_bias"] = (json.dumps(c), t, "blocks.0.norm.bias")
    return out


def validate(path: str) -> None:
    """Minimal contract validator: raises ValueError naming the problem."""
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
        if "runnel.config" not in meta:
            raise ValueError("missing metadata key runnel.config")
        try:
            cfg = json.loads(meta["runnel.config"])
        except json.JSONDecodeError as e:
            raise ValueError(f"runnel.config is not valid JSON: {e}")
        ncfg = R.normalize_config(cfg)  # raises ConfigError naming the key
        names = set(f.keys())
        split = set()
        for i, b in enumerate(ncfg["blocks"]):
            p = f"blocks.{i}.attn."
            sp = sorted(n for n in names if n.startswith(p) and "_proj." in n
                        and not n.startswith(p + "out_proj"))
            if sp and any(n.startswith(p + "in_proj") for n in names):
                raise ValueError(f"block {i} mixes in_proj_weight with {sp[0]}")
            if sp:
                split.add(i)
            elif b["kind"] == "attention" and b["kv_heads"] != b["heads"]:
                raise ValueError(f"blocks[{i}].kv_heads needs q_proj/k_proj/v_proj")
            pairs = []
            if b["kind"] == "attention" and not sp:
                pairs.append((p + "in_proj_bias", p + "out_proj.bias"))
            if b["kind"] in ("lstm", "gru"):
                n = f"blocks.{i}.{b['kind']}."
                pairs += [(f"{n}bias_ih_l{k}", f"{n}bias_hh_l{k}")
                          for k in range(b["num_layers"])]
            for a, z in pairs:
                if (a in names) != (z in names):
                    raise ValueError(f"missing tensor {z if a in names else a}")
        shapes = R.expected_tensor_shapes(cfg, split=split)
        # §6.5: a bias may be absent (pairs checked above)
        shapes = {k: v for k, v in shapes.items()
                  if k in names or not (k.endswith("bias") or ".bias_" in k)}
        for k in sorted(set(shapes) - names):
            raise ValueError(f"missing tensor {k}")
        for k in sorted(names - set(shapes)):
            raise ValueError(f"unexpected tensor {k}")
        for k in sorted(names):
            t = f.get_tensor(k)
            if t.dtype not in R.DTYPES.values():
                raise ValueError(f"tensor {k}: dtype {t.dtype} is not F32/F16/BF16")
            if list(t.shape) != shapes[k]:
                raise ValueError(f"tensor {k}: shape {list(t.shape)}, expected {shapes[k]}")


def main() -> None:
    if os.path.isdir(OUT_DIR):
        shutil.rmtree(OUT_DIR)
    os.makedirs(OUT_DIR)
    gen = torch.Generator().manual_seed(4242)
    expected = {}
    for name, (cfg_json, tensors, needle) in cases(gen).items():
        fname = f"{name}.safetensors"
        path = os.path.join(OUT_DIR, fname)
        meta = None if cfg_json is None else {"runnel.config": cfg_json}
        save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata=meta)
        size = os.path.getsize(path)
        assert size < 10_000, f"{fname} is {size} bytes"
        try:
            validate(path)
        except ValueError as e:
            assert needle in str(e), f"{fname}: {needle!r} not in {e!s}"
            print(f"{fname:32s} {size:5d} B  rejected: {e}")
        else:
            raise AssertionError(f"{fname} was accepted")
        expected[fname] = needle
    with open(os.path.join(OUT_DIR, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"wrote {len(expected)} malformed files + expected.json to {OUT_DIR}")


if __name__ == "__main__":
    main()
