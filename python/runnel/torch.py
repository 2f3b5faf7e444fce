"""`runnel.torch.export`: a contract model file (safetensors + `runnel.config`) from a live
PyTorch module built from stock modules, the configuration derived from the modules themselves.

The module must have the contract's structure (docs/CONTRACT.md), which is what its attribute
names give its `state_dict`:

- input: `embed` (`nn.Embedding`, token input) or `input` (`nn.Linear`, frame input);
- `blocks` (`nn.ModuleList` or `nn.Sequential`), each block either
  - recurrent: `lstm` (`nn.LSTM`) or `gru` (`nn.GRU`), optionally `norm` (`nn.LayerNorm` /
    `nn.RMSNorm`) before it; or
  - attention: `norm1`, `attn` (`nn.MultiheadAttention`, or a module with `q_proj`, `k_proj`,
    `v_proj`, `out_proj` `nn.Linear`s — the tutorial's hand-written attention), and optionally
    `norm2` + `ffn` (`nn.Sequential(nn.Linear, activation, nn.Linear)` with `nn.GELU`,
    `nn.GELU(approximate="tanh")`, `nn.ReLU` or `nn.SiLU`);
- optionally `norm_f`, then `head` (`nn.Linear`).

What the modules do not carry is asked for: each attention block's `window`, each recurrent
block's `residual`, an attention block's `pos` (`"none"`, `"rope"`, `"alibi"`) and `rope_theta`,
and the head count of a hand-written attention module (read from its `num_heads`, `n_heads` or
`heads` attribute when it has one). Each may be given as one value for every block, as a list
(one entry per block, `None` where it does not apply), or as a dict from block index to value;
or set as an attribute of the block (`block.window = 48`). Anything the contract cannot express
(a bidirectional LSTM, `batch_first=False` is fine but `kdim`/`vdim`, `add_bias_kv`, a norm
without a weight, an unknown activation, extra parameters) is refused, naming the module.
"""
from __future__ import annotations

import json
from typing import Any

import torch
import torch.nn as nn

__all__ = ["export", "ExportError"]


class ExportError(ValueError):
    """The module cannot be expressed in the model contract (the message names the module)."""


def _per_block(value: Any, i: int, name: str):
    if isinstance(value, dict):
        return value.get(i)
    if isinstance(value, (list, tuple)):
        if i >= len(value):
            raise ExportError(f"{name}: {len(value)} values for more blocks")
        return value[i]
    return value


def _ask(block: nn.Module, arg: Any, i: int, name: str, required: bool = True):
    v = _per_block(arg, i, name)
    if v is None:
        v = getattr(block, name, None)
        if isinstance(v, (nn.Module, torch.Tensor)):
            v = None
    if v is None and required:
        raise ExportError(
            f"blocks.{i}: `{name}` is not carried by the modules: pass {name}=... to export() "
            f"or set blocks[{i}].{name}"
        )
    return v


def _norm(m: Any, where: str, kinds: set, eps: set) -> bool:
    """Records a norm module's kind and eps; False if `m` is None."""
    if m is None:
        return False
    rms = getattr(nn, "RMSNorm", None)
    if isinstance(m, nn.LayerNorm):
        kinds.add("layer")
        if not m.elementwise_affine:
            raise ExportError(f"{where}: a LayerNorm without weight (elementwise_affine=False)")
        eps.add(float(m.eps))
    elif rms is not None and isinstance(m, rms):
        kinds.add("rms")
        if not m.elementwise_affine:
            raise ExportError(f"{where}: an RMSNorm without weight (elementwise_affine=False)")
        if m.eps is None:
            raise ExportError(f"{where}: RMSNorm(eps=None); give it an explicit eps")
        eps.add(float(m.eps))
    else:
        raise ExportError(f"{where}: {type(m).__name__} is not a LayerNorm or RMSNorm")
    if len(m.normalized_shape) != 1:
        raise ExportError(f"{where}: normalizes over {tuple(m.normalized_shape)}, not one dimension")
    return True


def _activation(m: nn.Module, where: str) -> str:
    if isinstance(m, nn.GELU):
        return "gelu_tanh" if m.approximate == "tanh" else "gelu"
    if isinstance(m, nn.ReLU):
        return "relu"
    if isinstance(m, nn.SiLU):
        return "silu"
    raise ExportError(f"{where}: activation {type(m).__name__} (supported: GELU, ReLU, SiLU)")


def _recurrent(b: nn.Module, i: int, width: int, residual, kinds, eps) -> tuple[dict, int]:
    where = f"blocks.{i}"
    cell = "lstm" if hasattr(b, "lstm") else "gru"
    rnn = getattr(b, cell)
    want = nn.LSTM if cell == "lstm" else nn.GRU
    if not isinstance(rnn, want):
        raise ExportError(f"{where}.{cell}: {type(rnn).__name__}, expected nn.{want.__name__}")
    if rnn.bidirectional:
        raise ExportError(f"{where}.{cell}: bidirectional (a stream runs forward only)")
    if rnn.input_size != width:
        raise ExportError(f"{where}.{cell}: input_size {rnn.input_size}, the running width is {width}")
    cfg = {"kind": cell, "num_layers": rnn.num_layers, "hidden": rnn.hidden_size}
    cfg["norm"] = _norm(getattr(b, "norm", None), f"{where}.norm", kinds, eps)
    res = _ask(b, residual, i, "residual")
    cfg["residual"] = bool(res)
    out = rnn.hidden_size
    if cell == "lstm" and getattr(rnn, "proj_size", 0):
        cfg["proj_size"] = rnn.proj_size
        out = rnn.proj_size
    return cfg, out


def _attention(b: nn.Module, i: int, width: int, opts: dict, kinds, eps) -> dict:
    where = f"blocks.{i}"
    attn = b.attn
    if not _norm(getattr(b, "norm1", None), f"{where}.norm1", kinds, eps):
        raise ExportError(f"{where}: an attention block needs norm1")
    cfg = {"kind": "attention"}
    if isinstance(attn, nn.MultiheadAttention):
        if attn.embed_dim != width:
            raise ExportError(f"{where}.attn: embed_dim {attn.embed_dim}, the running width is {width}")
        if not attn._qkv_same_embed_dim:
            raise ExportError(f"{where}.attn: kdim/vdim differ from embed_dim")
        if attn.bias_k is not None or attn.add_zero_attn:
            raise ExportError(f"{where}.attn: add_bias_kv / add_zero_attn")
        cfg["heads"] = attn.num_heads
    else:
        names = ("q_proj", "k_proj", "v_proj", "out_proj")
        if not all(isinstance(getattr(attn, n, None), nn.Linear) for n in names):
            raise ExportError(
                f"{where}.attn: {type(attn).__name__} is neither nn.MultiheadAttention nor a "
                "module with q_proj, k_proj, v_proj, out_proj nn.Linear layers"
            )
        heads = _per_block(opts.get("heads"), i, "heads")
        for n in ("num_heads", "n_heads", "heads"):
            if heads is None and isinstance(getattr(attn, n, None), int):
                heads = getattr(attn, n)
        if heads is None:
            raise ExportError(f"{where}.attn: pass heads=... (the module has no num_heads)")
        cfg["heads"] = heads
        if width % heads:
            raise ExportError(f"{where}.attn: {heads} heads do not divide the width {width}")
        hd = width // heads
        kv = attn.k_proj.out_features
        if kv % hd or attn.v_proj.out_features != kv:
            raise ExportError(f"{where}.attn: k_proj/v_proj widths {kv}, "
                              f"{attn.v_proj.out_features} are not a whole number of heads of {hd}")
        if kv // hd != heads:
            cfg["kv_heads"] = kv // hd
    cfg["window"] = int(_ask(b, opts.get("window"), i, "window"))
    ffn = getattr(b, "ffn", None)
    if ffn is not None:
        if not (isinstance(ffn, nn.Sequential) and len(ffn) == 3 and isinstance(ffn[0], nn.Linear)
                and isinstance(ffn[2], nn.Linear)):
            raise ExportError(f"{where}.ffn: expected nn.Sequential(nn.Linear, activation, nn.Linear)")
        if not _norm(getattr(b, "norm2", None), f"{where}.norm2", kinds, eps):
            raise ExportError(f"{where}: an FFN needs norm2")
        cfg["ffn_dim"] = ffn[0].out_features
        cfg["activation"] = _activation(ffn[1], f"{where}.ffn.1")
    else:
        cfg["ffn_dim"] = 0
    pos = _ask(b, opts.get("pos"), i, "pos", required=False) or "none"
    if pos != "none":
        cfg["pos"] = pos
        theta = _ask(b, opts.get("rope_theta"), i, "rope_theta", required=False)
        if pos == "rope" and theta is not None:
            cfg["rope_theta"] = float(theta)
    return cfg


def config_of(model: nn.Module, *, window=None, residual=None, pos=None, rope_theta=None,
              heads=None) -> dict:
    """The `runnel.config` of `model` (see the module documentation); raises `ExportError`."""
    kinds: set = set()
    eps: set = set()
    cfg: dict = {"format": "runnel-model/1"}
    if isinstance(getattr(model, "embed", None), nn.Embedding):
        cfg["input"] = {"kind": "tokens", "vocab": model.embed.num_embeddings}
        width = model.embed.embedding_dim
    elif isinstance(getattr(model, "input", None), nn.Linear):
        cfg["input"] = {"kind": "frames", "dim": model.input.in_features}
        width = model.input.out_features
    else:
        raise ExportError("the model needs `embed` (nn.Embedding) or `input` (nn.Linear)")
    cfg["d_model"] = width
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, (nn.ModuleList, nn.Sequential)):
        raise ExportError("the model needs `blocks` (nn.ModuleList or nn.Sequential)")
    opts = {"window": window, "pos": pos, "rope_theta": rope_theta, "heads": heads}
    out = []
    for i, b in enumerate(blocks):
        if hasattr(b, "lstm") or hasattr(b, "gru"):
            c, width = _recurrent(b, i, width, residual, kinds, eps)
        elif hasattr(b, "attn"):
            c = _attention(b, i, width, opts, kinds, eps)
        else:
            raise ExportError(f"blocks.{i}: {type(b).__name__} has no lstm, gru or attn")
        out.append(c)
    cfg["blocks"] = out
    cfg["final_norm"] = _norm(getattr(model, "norm_f", None), "norm_f", kinds, eps)
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear) or head.in_features != width:
        raise ExportError(f"the model needs `head` (nn.Linear from the width {width})")
    cfg["output"] = {"dim": head.out_features}
    if len(kinds) > 1:
        raise ExportError("the model mixes LayerNorm and RMSNorm (the contract has one norm_kind)")
    if len(eps) > 1:
        raise ExportError(f"the norms have different eps {sorted(eps)} (the contract has one norm_eps)")
    if eps:
        cfg["norm_eps"] = eps.pop()
    if kinds == {"rms"}:
        cfg["norm_kind"] = "rms"
    return cfg


def export(model: nn.Module, path, *, window=None, residual=None, pos=None, rope_theta=None,
           heads=None, dtype: str = "F32", check: bool = True) -> dict:
    """Writes `model` as a contract model file at `path` (tensors in `dtype`: F32, F16 or BF16)
    and returns its configuration. Every parameter of the model must be a contract tensor; with
    `check` (the default) the file is then converted once, so that anything the converter refuses
    (a tensor it does not expect, a shape, a non-finite weight) raises `ExportError` here."""
    import os
    import tempfile

    from safetensors.torch import save_file

    cfg = config_of(model, window=window, residual=residual, pos=pos, rope_theta=rope_theta,
                    heads=heads)
    dt = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}.get(dtype)
    if dt is None:
        raise ExportError(f"dtype {dtype!r} (F32, F16 or BF16)")
    tensors = {}
    for name, t in model.state_dict().items():
        if not t.is_floating_point():
            raise ExportError(f"{name}: a {t.dtype} tensor is not a model weight the contract knows")
        tensors[name] = t.detach().to("cpu", dt).contiguous()
    save_file(tensors, str(path), metadata={"runnel.config": json.dumps(cfg)})
    if check:
        from . import RunnelError, convert

        fd, blob = tempfile.mkstemp(suffix=".rnl")
        os.close(fd)
        try:
            convert(str(path), blob, weights="f32", kv="f32")
        except RunnelError as e:
            raise ExportError(f"the written file does not convert: {e}") from None
        finally:
            os.unlink(blob)
    return cfg
