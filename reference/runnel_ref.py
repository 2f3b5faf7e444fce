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

_TOP_KEYS = {"format", "input", "d_model", "blocks", "norm_eps", "final_norm", "output"}
_RNN_KEYS = {"kind", "num_layers", "hidden", "norm", "residual"}
_ATTN_KEYS = {"kind", "heads", "window", "ffn_dim", "activation"}

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
            _check_keys(b, _RNN_KEYS, where)
            nb = {
                "kind": kind,
                "num_layers": _int(b.get("num_layers", 1), f"{where}.num_layers", 1),
                "hidden": _int(b.get("hidden", width), f"{where}.hidden", 1),
                "norm": _bool(b.get("norm", True), f"{where}.norm"),
                "residual": _bool(b.get("residual", True), f"{where}.residual"),
            }
            if nb["residual"] and nb["hidden"] != width:
                raise ConfigError(
                    f"{where}.hidden: residual block needs hidden == input width "
                    f"{width}, got {nb['hidden']}")
            nb["_in_width"] = width
            width = nb["hidden"] if not nb["residual"] else width
            nb["_out_width"] = width
        elif kind == "attention":
            _check_keys(b, _ATTN_KEYS, where)
            nb = {
                "kind": kind,
                "heads": _int(b.get("heads"), f"{where}.heads", 1),
                "window": _int(b.get("window"), f"{where}.window", 1),
                "ffn_dim": _int(b.get("ffn_dim", 0), f"{where}.ffn_dim", 0),
                "activation": b.get("activation", "gelu"),
            }
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
    """A normalized config without the private ``_`` entries (all keys explicit)."""
    def strip(d):
        return {k: v for k, v in d.items() if not k.startswith("_")}
    c = strip(ncfg)
    c["blocks"] = [strip(b) for b in ncfg["blocks"]]
    return c


# --------------------------------------------------------------------------- modules

def make_activation(name: str) -> nn.Module:
    return {
        "gelu": lambda: nn.GELU(),
        "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
        "relu": lambda: nn.ReLU(),
        "silu": lambda: nn.SiLU(),
    }[name]()


class RecurrentBlock(nn.Module):
    def __init__(self, b: dict, eps: float):
        super().__init__()
        self.kind = b["kind"]
        self.residual = b["residual"]
        W, H, L = b["_in_width"], b["hidden"], b["num_layers"]
        if b["norm"]:
            self.norm = nn.LayerNorm(W, eps=eps)
        else:
            self.norm = None
        cls = nn.LSTM if self.kind == "lstm" else nn.GRU
        setattr(self, self.kind, cls(W, H, num_layers=L, batch_first=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [1, T, W]
        u = self.norm(x) if self.norm is not None else x
        h, _ = getattr(self, self.kind)(u)  # zero initial state
        return x + h if self.residual else h


class AttentionBlock(nn.Module):
    def __init__(self, b: dict, eps: float):
        super().__init__()
        W = b["_in_width"]
        self.window = b["window"]
        self.norm1 = nn.LayerNorm(W, eps=eps)
        self.attn = nn.MultiheadAttention(W, b["heads"], batch_first=True)
        F = b["ffn_dim"]
        if F > 0:
            self.norm2 = nn.LayerNorm(W, eps=eps)
            self.ffn = nn.Sequential(nn.Linear(W, F), make_activation(b["activation"]), nn.Linear(F, W))
        else:
            self.norm2 = None
            self.ffn = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [1, T, W]
        T = x.shape[1]
        i = torch.arange(T).unsqueeze(1)
        j = torch.arange(T).unsqueeze(0)
        mask = (j > i) | (j <= i - self.window)  # True = not allowed
        u = self.norm1(x)
        a, _ = self.attn(u, u, u, attn_mask=mask, need_weights=False)
        x = x + a
        if self.ffn is not None:
            x = x + self.ffn(self.norm2(x))
        return x


class RunnelRef(nn.Module):
    """Whole-sequence reference model. ``state_dict()`` keys == contract tensor names."""

    def __init__(self, config: dict):
        super().__init__()
        ncfg = normalize_config(config)
        self.ncfg = ncfg
        d = ncfg["d_model"]
        eps = ncfg["norm_eps"]
        if ncfg["input"]["kind"] == "tokens":
            self.embed = nn.Embedding(ncfg["input"]["vocab"], d)
        else:
            self.input = nn.Linear(ncfg["input"]["dim"], d)
        self.blocks = nn.ModuleList(
            RecurrentBlock(b, eps) if b["kind"] in ("lstm", "gru") else AttentionBlock(b, eps)
            for b in ncfg["blocks"])
        W = ncfg["_width"]
        self.norm_f = nn.LayerNorm(W, eps=eps) if ncfg["final_norm"] else None
        self.head = nn.Linear(W, ncfg["output"]["dim"])

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


def expected_tensor_shapes(config: dict) -> dict:
    """Contract §2 table, computed directly from the config (independent of modules)."""
    c = normalize_config(config)
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
            g = (4 if b["kind"] == "lstm" else 3) * H
            if b["norm"]:
                s[p + "norm.weight"] = [W]
                s[p + "norm.bias"] = [W]
            for k in range(b["num_layers"]):
                n = f"{p}{b['kind']}."
                s[f"{n}weight_ih_l{k}"] = [g, W if k == 0 else H]
                s[f"{n}weight_hh_l{k}"] = [g, H]
                s[f"{n}bias_ih_l{k}"] = [g]
                s[f"{n}bias_hh_l{k}"] = [g]
        else:
            s[p + "norm1.weight"] = [W]
            s[p + "norm1.bias"] = [W]
            s[p + "attn.in_proj_weight"] = [3 * W, W]
            s[p + "attn.in_proj_bias"] = [3 * W]
            s[p + "attn.out_proj.weight"] = [W, W]
            s[p + "attn.out_proj.bias"] = [W]
            F = b["ffn_dim"]
            if F > 0:
                s[p + "norm2.weight"] = [W]
                s[p + "norm2.bias"] = [W]
                s[p + "ffn.0.weight"] = [F, W]
                s[p + "ffn.0.bias"] = [F]
                s[p + "ffn.2.weight"] = [W, F]
                s[p + "ffn.2.bias"] = [W]
    W = c["_width"]
    if c["final_norm"]:
        s["norm_f.weight"] = [W]
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
    shapes = expected_tensor_shapes(config)
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
    model = RunnelRef(config)
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
                z = [torch.zeros(b["hidden"], dtype=self.dtype) for _ in range(b["num_layers"])]
                if b["kind"] == "lstm":
                    self.state.append({"h": list(z), "c": [x.clone() for x in z]})
                else:
                    self.state.append({"h": list(z)})
            else:
                self.state.append({"k": [], "v": []})

    def step(self, inp) -> torch.Tensor:
        t, c = self.t, self.c
        eps = c["norm_eps"]
        if c["input"]["kind"] == "tokens":
            x = t["embed.weight"][int(inp)]
        else:
            x = t["input.weight"] @ inp.to(self.dtype) + t["input.bias"]
        for i, (b, st) in enumerate(zip(c["blocks"], self.state)):
            p = f"blocks.{i}."
            if b["kind"] in ("lstm", "gru"):
                u = _layer_norm(x, t[p + "norm.weight"], t[p + "norm.bias"], eps) if b["norm"] else x
                H = b["hidden"]
                for k in range(b["num_layers"]):
                    n = f"{p}{b['kind']}."
                    gi = t[f"{n}weight_ih_l{k}"] @ u + t[f"{n}bias_ih_l{k}"]
                    gh = t[f"{n}weight_hh_l{k}"] @ st["h"][k] + t[f"{n}bias_hh_l{k}"]
                    if b["kind"] == "lstm":
                        g = gi + gh
                        ig = _sigmoid(g[0:H])
                        fg = _sigmoid(g[H:2 * H])
                        gg = torch.tanh(g[2 * H:3 * H])
                        og = _sigmoid(g[3 * H:4 * H])
                        cn = fg * st["c"][k] + ig * gg
                        hn = og * torch.tanh(cn)
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
                nh = b["heads"]
                hd = W // nh
                u = _layer_norm(x, t[p + "norm1.weight"], t[p + "norm1.bias"], eps)
                qkv = t[p + "attn.in_proj_weight"] @ u + t[p + "attn.in_proj_bias"]
                q, k_, v = qkv[:W], qkv[W:2 * W], qkv[2 * W:]
                st["k"].append(k_)
                st["v"].append(v)
                if len(st["k"]) > b["window"]:  # keep the last `window` steps incl. this one
                    st["k"].pop(0)
                    st["v"].pop(0)
                K = torch.stack(st["k"]).reshape(-1, nh, hd)  # [n, heads, hd]
                V = torch.stack(st["v"]).reshape(-1, nh, hd)
                qh = q.reshape(nh, hd)
                heads = []
                for h in range(nh):
                    s = (K[:, h, :] @ qh[h]) / math.sqrt(hd)  # [n]
                    s = torch.exp(s - s.max())
                    w = s / s.sum()
                    heads.append(w @ V[:, h, :])
                a = torch.cat(heads)
                x = x + t[p + "attn.out_proj.weight"] @ a + t[p + "attn.out_proj.bias"]
                if b["ffn_dim"] > 0:
                    f = _layer_norm(x, t[p + "norm2.weight"], t[p + "norm2.bias"], eps)
                    f = _act(b["activation"], t[p + "ffn.0.weight"] @ f + t[p + "ffn.0.bias"])
                    x = x + t[p + "ffn.2.weight"] @ f + t[p + "ffn.2.bias"]
        if c["final_norm"]:
            x = _layer_norm(x, t["norm_f.weight"], t["norm_f.bias"], eps)
        return t["head.weight"] @ x + t["head.bias"]

    def run(self, inputs: torch.Tensor) -> torch.Tensor:
        self.reset()
        return torch.stack([self.step(inputs[s]) for s in range(inputs.shape[0])])


def run_f64(model: RunnelRef, inputs: torch.Tensor) -> torch.Tensor:
    """Whole-sequence forward in float64 on a copy of ``model`` (model unchanged)."""
    m = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        return m(inputs if inputs.dtype in (torch.int64, torch.int32) else inputs.double())
