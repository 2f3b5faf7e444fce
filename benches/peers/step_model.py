"""One streaming step of a runnel contract model as a PyTorch module with its whole state as
tensors in and out: the PyTorch eager contender of the peer comparison, and what is exported to
ONNX for ONNX Runtime.

The module reuses the stock modules of the contract's reference model (``runnel.reference
.RunnelRef``: ``nn.Embedding``, ``nn.LayerNorm``, ``nn.LSTM``/``nn.GRU``, the
``nn.MultiheadAttention``'s projection weights, the FFN's ``nn.Sequential``, the head) and
computes what the runtime's ``step`` computes:

* a recurrent block carries its ``nn.LSTM`` (h, c) or ``nn.GRU`` h, shaped [layers, 1, hidden];
* an attention block carries its projected keys and values for the last ``window`` steps,
  [heads, window, head width] each, oldest first, plus an additive mask [window] (0 for a filled
  slot, -inf for an empty one). Each step shifts all three left by one and appends this step's
  key, value and 0 — a fixed-shape "shift-left" cache, so the ONNX graph has no data-dependent
  shapes. At the start every slot is empty; after ``window`` steps the cache holds exactly the
  contract's window (the last ``window`` steps including this one).

Only what the demo model uses is supported (tokens input, LayerNorm, lstm/gru blocks,
attention with ``heads == kv_heads`` and no positional encoding); anything else raises.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from runnel.reference import RunnelRef
from torch import nn


class StepModel(nn.Module):
    """``forward(token, *state) -> (logits, *new_state)``: token int64 [1], logits [1, 1, vocab].

    Activations are [batch 1, time 1, width] throughout, so that ``nn.Linear`` exports as
    ``MatMul`` + ``Add`` (2-D input would give ``Gemm``, which ``quantize_dynamic`` leaves f32).
    """

    def __init__(self, ref: RunnelRef):
        super().__init__()
        c = ref.ncfg
        if c["input"]["kind"] != "tokens" or c["norm_kind"] != "layer" or ref.split:
            raise ValueError("the step model supports token input, LayerNorm and fused attention")
        for b in c["blocks"]:
            if b["kind"] == "attention" and (b["pos"] != "none" or b["kv_heads"] != b["heads"]):
                raise ValueError("the step model supports attention without pos and with MHA")
        self.ref = ref
        self.cfg = c

    def initial_state(self) -> list[torch.Tensor]:
        """The zero state of a new stream, in ``forward``'s order."""
        state = []
        for b in self.cfg["blocks"]:
            if b["kind"] in ("lstm", "gru"):
                z = torch.zeros(b["num_layers"], 1, b["hidden"])
                state += [z, z.clone()] if b["kind"] == "lstm" else [z]
            else:
                heads, w = b["heads"], b["window"]
                hd = b["_in_width"] // heads
                state += [torch.zeros(heads, w, hd), torch.zeros(heads, w, hd),
                          torch.full((w,), float("-inf"))]
        return state

    def state_names(self) -> list[str]:
        """Names of the state tensors, in ``forward``'s order (ONNX input names)."""
        names = []
        for i, b in enumerate(self.cfg["blocks"]):
            if b["kind"] == "lstm":
                names += [f"b{i}_h", f"b{i}_c"]
            elif b["kind"] == "gru":
                names += [f"b{i}_h"]
            else:
                names += [f"b{i}_k", f"b{i}_v", f"b{i}_mask"]
        return names

    def forward(self, token: torch.Tensor, *state: torch.Tensor):
        ref, cfg = self.ref, self.cfg
        x = ref.embed(token).unsqueeze(0)  # [1, 1, W]
        state = list(state)
        new_state = []
        for b, blk in zip(cfg["blocks"], ref.blocks):
            if b["kind"] in ("lstm", "gru"):
                u = blk.norm(x) if blk.norm is not None else x
                rnn = getattr(blk, b["kind"])
                if b["kind"] == "lstm":
                    h, c = state.pop(0), state.pop(0)
                    y, (h, c) = rnn(u, (h, c))
                    new_state += [h, c]
                else:
                    y, h = rnn(u, state.pop(0))
                    new_state += [h]
                x = x + y if b["residual"] else y
            else:
                x = self._attention(b, blk, x, state, new_state)
        if ref.norm_f is not None:
            x = ref.norm_f(x)
        return (ref.head(x), *new_state)

    @staticmethod
    def _attention(b, blk, x, state, new_state):
        """One step of an attention block with the shift-left cache (see the module doc)."""
        W, heads = b["_in_width"], b["heads"]
        hd = W // heads
        kc, vc, mask = state.pop(0), state.pop(0), state.pop(0)
        u = blk.norm1(x)
        qkv = F.linear(u, blk.attn.in_proj_weight, blk.attn.in_proj_bias)  # [1, 1, 3W]
        q, k, v = (t.reshape(heads, 1, hd) for t in qkv.split(W, dim=-1))
        kc = torch.cat([kc[:, 1:], k], dim=1)  # [heads, window, hd], oldest first
        vc = torch.cat([vc[:, 1:], v], dim=1)
        mask = torch.cat([mask[1:], torch.zeros(1)])
        s = q @ kc.transpose(1, 2) * (1.0 / math.sqrt(hd)) + mask  # [heads, 1, window]
        a = (torch.softmax(s, dim=-1) @ vc).reshape(1, 1, W)
        x = x + blk.attn.out_proj(a)
        if blk.ffn is not None:
            x = x + blk.ffn(blk.norm2(x))
        new_state += [kc, vc, mask]
        return x


def export_onnx(step: StepModel, path: str, opset: int = 17) -> None:
    """Export one step to ONNX, inputs ``token`` and the state, outputs ``logits`` and the state
    with ``_out`` appended, weights inside the one file.

    With the TorchScript-based exporter (``dynamo=False``): it folds the reordering of the LSTM
    gate weights (PyTorch's i, f, g, o to ONNX's i, o, f, c) into constants, so ONNX Runtime's
    ``quantize_dynamic`` turns the ``LSTM`` nodes into int8 ``DynamicQuantizeLSTM``. The
    torch.export-based exporter (torch 2.15) computes the reordering with ``Slice``/``Concat``
    nodes in the graph, which leaves the LSTMs f32 after ``quantize_dynamic`` and made ONNX
    Runtime's int8 step about 1.3x slower here.
    """
    names = step.state_names()
    args = (torch.zeros(1, dtype=torch.int64), *step.initial_state())
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer warnings
        torch.onnx.export(step, args, path, input_names=["token", *names],
                          output_names=["logits", *[n + "_out" for n in names]],
                          opset_version=opset, dynamo=False)
