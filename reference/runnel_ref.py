"""PyTorch reference implementation of the runnel model contract (runnel-model/1).

See docs/CONTRACT.md for the
authoritative description. This file holds two independent implementations:

* ``RunnelRef``: an ``nn.Module`` built from stock PyTorch modules only
  (``nn.Embedding``, ``nn.Linear``, ``nn.LayerNorm``, ``nn.LSTM``, ``nn.GRU``,
  ``nn.MultiheadAttention(batch_first=True)``, ``nn.Sequential``) whose
  ``state_dict()`` keys are exactly the contract's tensor names. Its ``forward``
  runs a whole sequence at once (batch 1), attention masked with
  ``(j > i) | (j <= i - window)``.
* ``StepRunner``: plain tensor ops, one step at a time, explicit LSTM/GRU cell
  equations, LayerNorm written out, and a KV cache holding the last ``window``
  steps. Reads only the state dict and the config.

``save_model`` writes a model file (safetensors, metadata ``runnel.config``).
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import torch
import torch.nn as nn

FORMAT = "runnel-model/1"
ACTIVATIONS = ("gelu", "gelu_tanh", "relu", "silu")

_TOP_KEYS = {"format", "input", "d_model", "blocks", "norm_eps", "final_norm", "output",
             "norm_kind"}
_RNN_KEYS = {"kind", "num_layers", "hidden", "norm", "residual"}
_LSTM_KEYS = _RNN_KEYS | {"proj_size"}
_ATTN_KEYS = {"kind", "heads", "kv_heads", "window", "ffn_dim", "activation", "pos", "rope_theta"}
POS_KINDS = ("none", "rope", "alibi")
NORM_KINDS = ("layer", "rms")

DTYPES = {
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
}


# --------------------------------------------------------------------------- config

class ConfigError(ValueError):
    pass


def _check_keys(obj: dict, allowed: set, where: str) -> None:
    if not isinstance(obj, dict):
        raise ConfigError(f"{where}: expected a JSON object")
    for k in obj:
        if k not in allowed:
            raise ConfigError(f"{where}: unknown key {k!r}")


def _int(v: Any, where: str, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ConfigError(f"{where} must be an integer >= {minimum}, got {v!r}")
    return v


def _bool(v: Any, where: str) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(f"{where} must be a boolean, got {v!r}")
    return v


def normalize_config(cfg: dict) -> dict:
    """Validate a runnel config and return a copy with every default filled in.

    Each block of the result also carries ``in_width``/``out_width`` entries
    (prefixed with ``_``) which are *not* part of the file format.
    """
    _check_keys(cfg, _TOP_KEYS, "config")
    if cfg.get("format") != FORMAT:
        raise ConfigError(f"format: expected {FORMAT!r}, got {cfg.get('format')!r}")
    out: dict = {"format": FORMAT}

    inp = cfg.get("input")
    if not isinstance(inp, dict) or "kind" not in inp:
        raise ConfigError("input: expected an object with a kind")
    if inp["kind"] == "tokens":
        _check_keys(inp, {"kind", "vocab"}, "input")
        out["input"] = {"kind": "tokens", "vocab": _int(inp.get("vocab"), "input.vocab", 1)}
    elif inp["kind"] == "frames":
        _check_keys(inp, {"kind", "dim"}, "input")
        out["input"] = {"kind": "frames", "dim": _int(inp.get("dim"), "input.dim", 1)}
    else:
        raise ConfigError(f"input.kind: unknown kind {inp['kind']!r}")

    d_model = _int(cfg.get("d_model"), "d_model", 1)
    out["d_model"] = d_model
    eps = cfg.get("norm_eps", 1e-5)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise ConfigError(f"norm_eps must be a positive number, got {eps!r}")
    out["norm_eps"] = float(eps)
    out["final_norm"] = _bool(cfg.get("final_norm", True), "final_norm")
    out["norm_kind"] = cfg.get("norm_kind", "layer")
    if out["norm_kind"] not in NORM_KINDS:
        raise ConfigError(f"norm_kind: unknown {out['norm_kind']!r}")

    blocks = cfg.get("blocks")
    if not isinstance(blocks, list):
        raise ConfigError("blocks: expected a list")
    width = d_model
    nblocks = []
    for i, b in enumerate(blocks):
        where = f"blocks[{i}]"
        if not isinstance(b, dict):
            raise ConfigError(f"{where}: expected an object")
        kind = b.get("kind")
        if kind in ("lstm", "gru"):
            _check_keys(b, _LSTM_KEYS if kind == "lstm" else _RNN_KEYS, where)
            nb = {
                "kind": kind,
                "num_layers": _int(b.get("num_layers", 1), f"{where}.num_layers", 1),
                "hidden": _int(b.get("hidden", width), f"{where}.hidden", 1),
                "norm": _bool(b.get("norm", True), f"{where}.norm"),
                "residual": _bool(b.get("residual", True), f"{where}.residual"),
            }
            if kind == "lstm":
                nb["proj_size"] = _int(b.get("proj_size", 0), f"{where}.proj_size", 0)
                if nb["proj_size"] >= nb["hidden"]:
                    raise ConfigError(f"{where}.proj_size must be below hidden")
            outw = nb.get("proj_size") or nb["hidden"]
            if nb["residual"] and outw != width:
                raise ConfigError(
                    f"{where}.hidden: residual block needs its output width == input width "
                    f"{width}, got {outw}")
            nb["_in_width"] = width
            width = outw
            nb["_out_width"] = width
        elif kind == "attention":
            _check_keys(b, _ATTN_KEYS, where)
            nb = {
                "kind": kind,
                "heads": _int(b.get("heads"), f"{where}.heads", 1),
                "window": _int(b.get("window"), f"{where}.window", 1),
                "ffn_dim": _int(b.get("ffn_dim", 0), f"{where}.ffn_dim", 0),
                "activation": b.get("activation", "gelu"),
                "pos": b.get("pos", "none"),
            }
            nb["kv_heads"] = _int(b.get("kv_heads", nb["heads"]), f"{where}.kv_heads", 1)
            if nb["heads"] % nb["kv_heads"]:
                raise ConfigError(f"{where}.kv_heads must divide heads")
            if nb["pos"] not in POS_KINDS:
                raise ConfigError(f"{where}.pos: unknown {nb['pos']!r}")
            if nb["pos"] == "rope":
                th = b.get("rope_theta", 10000.0)
                if isinstance(th, bool) or not isinstance(th, (int, float)) or not th > 0:
                    raise ConfigError(f"{where}.rope_theta must be a positive number")
                nb["rope_theta"] = float(th)
                if (width // nb["heads"]) % 2:
                    raise ConfigError(f"{where}.pos: rope needs an even head width")
            elif "rope_theta" in b:
                raise ConfigError(f"{where}.rope_theta applies only with pos rope")
            if nb["activation"] not in ACTIVATIONS:
                raise ConfigError(f"{where}.activation: unknown activation {nb['activation']!r}")
            if width % nb["heads"] != 0:
                raise ConfigError(f"{where}.heads: {nb['heads']} does not divide width {width}")
            nb["_in_width"] = width
            nb["_out_width"] = width
        else:
            raise ConfigError(f"{where}.kind: unknown kind {kind!r}")
        nblocks.append(nb)
    out["blocks"] = nblocks

    outp = cfg.get("output")
    if not isinstance(outp, dict):
        raise ConfigError("output: expected an object")
    _check_keys(outp, {"dim"}, "output")
    out["output"] = {"dim": _int(outp.get("dim"), "output.dim", 1)}
    out["_width"] = width
    return out


def public_config(ncfg: dict) -> dict:
    """A normalized config without the private ``_`` entries (all §1 keys explicit; the §6 keys
    only where they differ from their defaults, so a §1–§5 model's file is as before)."""
    def strip(d):
        return {k: v for k, v in d.items() if not k.startswith("_")}
    c = strip(ncfg)
    if c.get("norm_kind") == "layer":
        del c["norm_kind"]
    blocks = []
    for b in ncfg["blocks"]:
        b = strip(b)
        if b.get("kv_heads") == b.get("heads"):
            b.pop("kv_heads", None)
        if b.get("pos") == "none":
            del b["pos"]
        if b.get("proj_size") == 0:
            del b["proj_size"]
        blocks.append(b)
    c["blocks"] = blocks
    return c


# --------------------------------------------------------------------------- modules

def make_activation(name: str) -> nn.Module:
    return {
        "gelu": lambda: nn.GELU(),
        "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
        "relu": lambda: nn.ReLU(),
        "silu": lambda: nn.SiLU(),
    }[name]()


def make_norm(kind: str, W: int, eps: float, bias: bool = True) -> nn.Module:
    """``nn.LayerNorm`` (optionally ``bias=False``) or ``nn.RMSNorm`` (contract §6.4)."""
    if kind == "rms":
        return nn.RMSNorm(W, eps=eps)
    return nn.LayerNorm(W, eps=eps, bias=bias)


def alibi_slopes(n: int) -> list:
    """The ALiBi paper's slopes, in the contract's order (§6.3)."""
    if math.log2(n).is_integer():
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start ** i for i in range(n)]
    c = 2 ** math.floor(math.log2(n))
    return alibi_slopes(c) + alibi_slopes(2 * c)[0::2][: n - c]


def rope_rotate(x: torch.Tensor, pos: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotary embedding, "rotate half": x [..., T, D] at absolute positions ``pos`` [T]."""
    D = x.shape[-1]
    d = torch.arange(D // 2, dtype=torch.float64)
    ang = pos.to(torch.float64).unsqueeze(-1) * theta ** (-2.0 * d / D)  # [T, D/2], float64
    c, s = torch.cos(ang).to(x.dtype), torch.sin(ang).to(x.dtype)
    x1, x2 = x[..., : D // 2], x[..., D // 2:]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)


def windowed_attention(q, k, v, heads, kv_heads, window, pos, theta):
    """Full-sequence causal attention over the last ``window`` steps (q [T, W], k, v [T, G·D]),
    grouped-query heads, RoPE at absolute positions or ALiBi on t − j."""
    T, W = q.shape
    D = W // heads
    qh = q.reshape(T, heads, D).transpose(0, 1)  # [h, T, D]
    kh = k.reshape(T, kv_heads, D).transpose(0, 1)
    vh = v.reshape(T, kv_heads, D).transpose(0, 1)
    rep = heads // kv_heads
    kh = kh.repeat_interleave(rep, dim=0)
    vh = vh.repeat_interleave(rep, dim=0)
    p = torch.arange(T)
    if pos == "rope":
        qh = rope_rotate(qh, p, theta)
        kh = rope_rotate(kh, p, theta)
    s = qh @ kh.transpose(1, 2) / math.sqrt(D)  # [h, T, T]
    i, j = p.unsqueeze(1), p.unsqueeze(0)
    if pos == "alibi":
        m = torch.tensor(alibi_slopes(heads), dtype=s.dtype).reshape(heads, 1, 1)
        s = s - m * (i - j).to(s.dtype)
    s = s.masked_fill((j > i) | (j <= i - window), float("-inf"))
    a = torch.softmax(s, dim=-1) @ vh  # [h, T, D]
    return a.transpose(0, 1).reshape(T, W)


class SplitAttention(nn.Module):
    """The tutorial's hand-written attention (§6.1): q_proj, k_proj, v_proj, out_proj."""

    def __init__(self, W, heads, kv_heads, bias):
        super().__init__()
        D = W // heads
        self.q_proj = nn.Linear(W, W, bias=bias.get("q_proj", True))
        self.k_proj = nn.Linear(W, kv_heads * D, bias=bias.get("k_proj", True))
        self.v_proj = nn.Linear(W, kv_heads * D, bias=bias.get("v_proj", True))
        self.out_proj = nn.Linear(W, W, bias=bias.get("out_proj", True))


class RecurrentBlock(nn.Module):
    def __init__(self, b: dict, eps: float, norm_kind: str = "layer", bias: dict | None = None):
        super().__init__()
        bias = bias or {}
        self.kind = b["kind"]
        self.residual = b["residual"]
        W, H, L = b["_in_width"], b["hidden"], b["num_layers"]
        if b["norm"]:
            self.norm = make_norm(norm_kind, W, eps, bias.get("norm", True))
        else:
            self.norm = None
        kw = {"bias": bias.get(self.kind, True)}
        if b.get("proj_size"):
            kw["proj_size"] = b["proj_size"]
        cls = nn.LSTM if self.kind == "lstm" else nn.GRU
        setattr(self, self.kind, cls(W, H, num_layers=L, batch_first=True, **kw))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [1, T, W]
        u = self.norm(x) if self.norm is not None else x
        h, _ = getattr(self, self.kind)(u)  # zero initial state
        return x + h if self.residual else h


class AttentionBlock(nn.Module):
    def __init__(self, b: dict, eps: float, norm_kind: str = "layer", bias: dict | None = None,
                 split: bool = False):
        super().__init__()
        bias = bias or {}
        W = b["_in_width"]
        self.b = b
        self.window = b["window"]
        self.split = split or b["kv_heads"] != b["heads"]
        self.norm1 = make_norm(norm_kind, W, eps, bias.get("norm1", True))
        if self.split:
            self.attn = SplitAttention(W, b["heads"], b["kv_heads"], bias)
        else:
            self.attn = nn.MultiheadAttention(W, b["heads"], batch_first=True,
                                              bias=bias.get("attn", True))
        F = b["ffn_dim"]
        if F > 0:
            self.norm2 = make_norm(norm_kind, W, eps, bias.get("norm2", True))
            self.ffn = nn.Sequential(nn.Linear(W, F, bias=bias.get("ffn.0", True)),
                                     make_activation(b["activation"]),
                                     nn.Linear(F, W, bias=bias.get("ffn.2", True)))
        else:
            self.norm2 = None
            self.ffn = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [1, T, W]
        T = x.shape[1]
        i = torch.arange(T).unsqueeze(1)
        j = torch.arange(T).unsqueeze(0)
        mask = (j > i) | (j <= i - self.window)  # True = not allowed
        u = self.norm1(x)
        b = self.b
        if self.split:
            u0 = u[0]
            a = windowed_attention(self.attn.q_proj(u0), self.attn.k_proj(u0),
                                   self.attn.v_proj(u0), b["heads"], b["kv_heads"],
                                   self.window, b["pos"], b.get("rope_theta", 0.0))
            a = self.attn.out_proj(a).unsqueeze(0)
        elif b["pos"] != "none":
            W = u.shape[-1]
            qkv = nn.functional.linear(u[0], self.attn.in_proj_weight, self.attn.in_proj_bias)
            a = windowed_attention(qkv[:, :W], qkv[:, W:2 * W], qkv[:, 2 * W:], b["heads"],
                                   b["heads"], self.window, b["pos"], b.get("rope_theta", 0.0))
            a = self.attn.out_proj(a).unsqueeze(0)
        else:
            a, _ = self.attn(u, u, u, attn_mask=mask, need_weights=False)
        x = x + a
        if self.ffn is not None:
            x = x + self.ffn(self.norm2(x))
        return x


class RunnelRef(nn.Module):
    """Whole-sequence reference model. ``state_dict()`` keys == contract tensor names."""

    def __init__(self, config: dict, no_bias: set | None = None, split: set | None = None):
        """``no_bias``: modules built with ``bias=False``, by contract name (``"head"``,
        ``"input"``, ``"norm_f"``, ``"blocks.1.attn.out_proj"``, ``"blocks.1.attn"`` (a whole
        ``nn.MultiheadAttention``), ``"blocks.0.lstm"``, ``"blocks.1.norm1"``, ``"blocks.1.ffn.0"``).
        ``split``: indices of attention blocks written with q_proj/k_proj/v_proj (always when
        ``kv_heads`` < ``heads``)."""
        super().__init__()
        no_bias = set(no_bias or ())
        split = set(split or ())
        self.no_bias, self.split = no_bias, split
        ncfg = normalize_config(config)
        self.ncfg = ncfg
        d = ncfg["d_model"]
        eps = ncfg["norm_eps"]
        nk = ncfg["norm_kind"]
        if ncfg["input"]["kind"] == "tokens":
            self.embed = nn.Embedding(ncfg["input"]["vocab"], d)
        else:
            self.input = nn.Linear(ncfg["input"]["dim"], d, bias="input" not in no_bias)
        blocks = []
        for i, b in enumerate(ncfg["blocks"]):
            pre = f"blocks.{i}."
            bias = {n[len(pre):].removeprefix("attn."): False
                    for n in no_bias if n.startswith(pre)}
            if f"blocks.{i}.attn" in no_bias:
                bias["attn"] = False
            if b["kind"] in ("lstm", "gru"):
                blocks.append(RecurrentBlock(b, eps, nk, bias))
            else:
                blocks.append(AttentionBlock(b, eps, nk, bias, i in split))
        self.blocks = nn.ModuleList(blocks)
        W = ncfg["_width"]
        self.norm_f = make_norm(nk, W, eps, "norm_f" not in no_bias) if ncfg["final_norm"] else None
        self.head = nn.Linear(W, ncfg["output"]["dim"], bias="head" not in no_bias)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs: tokens [T] (integer) or frames [T, dim]. Returns logits [T, output.dim]."""
        if self.ncfg["input"]["kind"] == "tokens":
            x = self.embed(inputs.long())
        else:
            x = self.input(inputs.to(self.head.weight.dtype))
        x = x.unsqueeze(0)
        for blk in self.blocks:
            x = blk(x)
        if self.norm_f is not None:
            x = self.norm_f(x)
        return self.head(x).squeeze(0)


def expected_tensor_shapes(config: dict, no_bias: set | None = None,
                           split: set | None = None) -> dict:
    """Contract §2 table (with §6), computed directly from the config (independent of
    modules); ``no_bias`` and ``split`` as for ``RunnelRef``."""
    s = _all_tensor_shapes(config, split or set())
    nb = set(no_bias or ())
    def dropped(name):
        if not name.endswith("bias") and "bias_" not in name:
            return False
        for m in nb:
            if name.startswith(m + ".") and (name[len(m) + 1:] in ("bias", "in_proj_bias")
                                             or name[len(m) + 1:].startswith("bias_")
                                             or name[len(m) + 1:] == "out_proj.bias"):
                return True
        return False
    return {k: v for k, v in s.items() if not dropped(k)}


def _all_tensor_shapes(config: dict, split: set) -> dict:
    c = normalize_config(config)
    rms = c["norm_kind"] == "rms"
    d = c["d_model"]
    s: dict = {}
    if c["input"]["kind"] == "tokens":
        s["embed.weight"] = [c["input"]["vocab"], d]
    else:
        s["input.weight"] = [d, c["input"]["dim"]]
        s["input.bias"] = [d]
    for i, b in enumerate(c["blocks"]):
        W = b["_in_width"]
        p = f"blocks.{i}."
        if b["kind"] in ("lstm", "gru"):
            H = b["hidden"]
            P = b.get("proj_size", 0)
            R = P or H
            g = (4 if b["kind"] == "lstm" else 3) * H
            if b["norm"]:
                s[p + "norm.weight"] = [W]
                if not rms:
                    s[p + "norm.bias"] = [W]
            for k in range(b["num_layers"]):
                n = f"{p}{b['kind']}."
                s[f"{n}weight_ih_l{k}"] = [g, W if k == 0 else R]
                s[f"{n}weight_hh_l{k}"] = [g, R]
                s[f"{n}bias_ih_l{k}"] = [g]
                s[f"{n}bias_hh_l{k}"] = [g]
                if P:
                    s[f"{n}weight_hr_l{k}"] = [P, H]
        else:
            s[p + "norm1.weight"] = [W]
            if not rms:
                s[p + "norm1.bias"] = [W]
            if i in split or b["kv_heads"] != b["heads"]:
                KW = b["kv_heads"] * (W // b["heads"])
                for m, r in (("q", W), ("k", KW), ("v", KW)):
                    s[p + f"attn.{m}_proj.weight"] = [r, W]
                    s[p + f"attn.{m}_proj.bias"] = [r]
            else:
                s[p + "attn.in_proj_weight"] = [3 * W, W]
                s[p + "attn.in_proj_bias"] = [3 * W]
            s[p + "attn.out_proj.weight"] = [W, W]
            s[p + "attn.out_proj.bias"] = [W]
            F = b["ffn_dim"]
            if F > 0:
                s[p + "norm2.weight"] = [W]
                if not rms:
                    s[p + "norm2.bias"] = [W]
                s[p + "ffn.0.weight"] = [F, W]
                s[p + "ffn.0.bias"] = [F]
                s[p + "ffn.2.weight"] = [W, F]
                s[p + "ffn.2.bias"] = [W]
    W = c["_width"]
    if c["final_norm"]:
        s["norm_f.weight"] = [W]
        if not rms:
            s["norm_f.bias"] = [W]
    s["head.weight"] = [c["output"]["dim"], W]
    s["head.bias"] = [c["output"]["dim"]]
    return s


# --------------------------------------------------------------------------- saving

def round_weights_(model: nn.Module, dtype: str) -> nn.Module:
    """Round every parameter (in place) to ``dtype`` and back to its own dtype."""
    td = DTYPES[dtype]
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(td).to(p.dtype))
    return model


def save_model(model: RunnelRef, config: dict, path: str, dtype: str = "F32") -> dict:
    """Write ``model.state_dict()`` as safetensors with tensors in ``dtype``
    (``"F32"``, ``"F16"`` or ``"BF16"``) and metadata ``runnel.config`` = JSON of ``config``.

    NOTE: the model's parameters are rounded to ``dtype`` *in place* first, so that
    after this call the model computes exactly what a reader of the file (which
    reads every tensor as f32) computes. Returns the tensors written.
    """
    from safetensors.torch import save_file

    normalize_config(config)  # the config written must be valid
    round_weights_(model, dtype)
    td = DTYPES[dtype]
    tensors = {k: v.detach().to(td).contiguous().clone() for k, v in model.state_dict().items()}
    shapes = expected_tensor_shapes(config, getattr(model, "no_bias", None),
                                    getattr(model, "split", None))
    got = {k: list(v.shape) for k, v in tensors.items()}
    assert got == shapes, f"state_dict disagrees with the contract: {got} vs {shapes}"
    save_file(tensors, path, metadata={"runnel.config": json.dumps(config)})
    return tensors


def load_model(path: str) -> tuple[RunnelRef, dict]:
    """Read a model file back (all tensors as f32)."""
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        config = json.loads(f.metadata()["runnel.config"])
        sd = {k: f.get_tensor(k).to(torch.float32) for k in f.keys()}
    # The naming and the modules without bias, from the tensor names (§6.1, §6.5).
    split = {int(k.split(".")[1]) for k in sd if ".attn.q_proj." in k}
    probe = RunnelRef(config, split=split)
    no_bias = set()
    for k in probe.state_dict():
        if k in sd:
            continue
        mod, _, param = k.rpartition(".")
        if param == "in_proj_bias" or (mod.endswith("attn.out_proj")
                                       and mod.endswith(".attn.out_proj")
                                       and int(k.split(".")[1]) not in split):
            no_bias.add(k.split(".attn")[0] + ".attn")
        else:  # `M.bias`, `M.bias_ih_lK`: module M
            no_bias.add(mod)
    model = RunnelRef(config, no_bias=no_bias, split=split)
    model.load_state_dict(sd, strict=True)
    return model.eval(), config


# --------------------------------------------------------------------------- step by step

def _layer_norm(x, w, b, eps):
    mean = x.mean()
    var = ((x - mean) ** 2).mean()  # biased
    return (x - mean) / torch.sqrt(var + eps) * w + b


def _act(name, x):
    if name == "gelu":
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    if name == "gelu_tanh":
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if name == "relu":
        return torch.clamp(x, min=0.0)
    if name == "silu":
        return x / (1.0 + torch.exp(-x))
    raise ValueError(name)


def _sigmoid(x):
    return 1.0 / (1.0 + torch.exp(-x))


class StepRunner:
    """Independent one-step-at-a-time implementation reading only tensors + config."""

    def __init__(self, tensors: dict, config: dict, dtype=torch.float64):
        self.c = normalize_config(config)
        self.t = {k: v.to(dtype) for k, v in tensors.items()}
        self.dtype = dtype
        self.reset()

    def reset(self):
        self.state = []
        for b in self.c["blocks"]:
            if b["kind"] in ("lstm", "gru"):
                R = b.get("proj_size") or b["hidden"]
                z = [torch.zeros(b["hidden"], dtype=self.dtype) for _ in range(b["num_layers"])]
                zr = [torch.zeros(R, dtype=self.dtype) for _ in range(b["num_layers"])]
                if b["kind"] == "lstm":
                    self.state.append({"h": zr, "c": z})
                else:
                    self.state.append({"h": z})
            else:
                # absolute positions here (keys cached rotated), unlike the runtime
                self.state.append({"k": [], "v": [], "pos": []})

    def _b(self, name, n):
        """A bias, zeros when the model has none (§6.5)."""
        v = self.t.get(name)
        return v if v is not None else torch.zeros(n, dtype=self.dtype)

    def _norm(self, x, prefix):
        t, eps = self.t, self.c["norm_eps"]
        if self.c["norm_kind"] == "rms":
            return x / torch.sqrt((x * x).mean() + eps) * t[prefix + ".weight"]
        return _layer_norm(x, t[prefix + ".weight"], self._b(prefix + ".bias", x.shape[0]), eps)

    def step(self, inp) -> torch.Tensor:
        t, c = self.t, self.c
        eps = c["norm_eps"]
        if c["input"]["kind"] == "tokens":
            x = t["embed.weight"][int(inp)]
        else:
            x = t["input.weight"] @ inp.to(self.dtype) + self._b("input.bias", c["d_model"])
        for i, (b, st) in enumerate(zip(c["blocks"], self.state)):
            p = f"blocks.{i}."
            if b["kind"] in ("lstm", "gru"):
                u = self._norm(x, p + "norm") if b["norm"] else x
                H = b["hidden"]
                G = (4 if b["kind"] == "lstm" else 3) * H
                for k in range(b["num_layers"]):
                    n = f"{p}{b['kind']}."
                    gi = t[f"{n}weight_ih_l{k}"] @ u + self._b(f"{n}bias_ih_l{k}", G)
                    gh = t[f"{n}weight_hh_l{k}"] @ st["h"][k] + self._b(f"{n}bias_hh_l{k}", G)
                    if b["kind"] == "lstm":
                        g = gi + gh
                        ig = _sigmoid(g[0:H])
                        fg = _sigmoid(g[H:2 * H])
                        gg = torch.tanh(g[2 * H:3 * H])
                        og = _sigmoid(g[3 * H:4 * H])
                        cn = fg * st["c"][k] + ig * gg
                        hn = og * torch.tanh(cn)
                        if b.get("proj_size"):
                            hn = t[f"{n}weight_hr_l{k}"] @ hn
                        st["c"][k] = cn
                    else:
                        r = _sigmoid(gi[0:H] + gh[0:H])
                        z = _sigmoid(gi[H:2 * H] + gh[H:2 * H])
                        nn_ = torch.tanh(gi[2 * H:3 * H] + r * gh[2 * H:3 * H])
                        hn = (1.0 - z) * nn_ + z * st["h"][k]
                    st["h"][k] = hn
                    u = hn
                x = x + u if b["residual"] else u
            else:
                W = b["_in_width"]
                nh, G = b["heads"], b["kv_heads"]
                hd = W // nh
                KW = G * hd
                u = self._norm(x, p + "norm1")
                if p + "attn.q_proj.weight" in t:
                    q = t[p + "attn.q_proj.weight"] @ u + self._b(p + "attn.q_proj.bias", W)
                    k_ = t[p + "attn.k_proj.weight"] @ u + self._b(p + "attn.k_proj.bias", KW)
                    v = t[p + "attn.v_proj.weight"] @ u + self._b(p + "attn.v_proj.bias", KW)
                else:
                    qkv = t[p + "attn.in_proj_weight"] @ u + self._b(p + "attn.in_proj_bias", 3 * W)
                    q, k_, v = qkv[:W], qkv[W:2 * W], qkv[2 * W:]
                pos = len(st["pos"]) and st["pos"][-1] + 1  # absolute position of this step
                if b["pos"] == "rope":
                    th = b["rope_theta"]
                    P = torch.tensor([pos])
                    q = rope_rotate(q.reshape(nh, 1, hd), P, th).reshape(W)
                    k_ = rope_rotate(k_.reshape(G, 1, hd), P, th).reshape(KW)
                st["k"].append(k_)
                st["v"].append(v)
                st["pos"].append(pos)
                if len(st["k"]) > b["window"]:  # keep the last `window` steps incl. this one
                    st["k"].pop(0)
                    st["v"].pop(0)
                    st["pos"].pop(0)
                K = torch.stack(st["k"]).reshape(-1, G, hd)  # [n, G, hd]
                V = torch.stack(st["v"]).reshape(-1, G, hd)
                dist = torch.tensor([pos - j for j in st["pos"]], dtype=self.dtype)
                slopes = alibi_slopes(nh)
                qh = q.reshape(nh, hd)
                heads = []
                for h in range(nh):
                    g = h // (nh // G)
                    s = (K[:, g, :] @ qh[h]) / math.sqrt(hd)  # [n]
                    if b["pos"] == "alibi":
                        s = s - slopes[h] * dist
                    s = torch.exp(s - s.max())
                    w = s / s.sum()
                    heads.append(w @ V[:, g, :])
                a = torch.cat(heads)
                x = x + t[p + "attn.out_proj.weight"] @ a + self._b(p + "attn.out_proj.bias", W)
                if b["ffn_dim"] > 0:
                    F = b["ffn_dim"]
                    f = self._norm(x, p + "norm2")
                    f = _act(b["activation"], t[p + "ffn.0.weight"] @ f + self._b(p + "ffn.0.bias", F))
                    x = x + t[p + "ffn.2.weight"] @ f + self._b(p + "ffn.2.bias", W)
        if c["final_norm"]:
            x = self._norm(x, "norm_f")
        return t["head.weight"] @ x + self._b("head.bias", c["output"]["dim"])

    def run(self, inputs: torch.Tensor) -> torch.Tensor:
        self.reset()
        return torch.stack([self.step(inputs[s]) for s in range(inputs.shape[0])])


def run_f64(model: RunnelRef, inputs: torch.Tensor) -> torch.Tensor:
    """Whole-sequence forward in float64 on a copy of ``model`` (model unchanged)."""
    m = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        return m(inputs if inputs.dtype in (torch.int64, torch.int32) else inputs.double())
