"""`runnel.torch.export`: stock-PyTorch models written as contract files that the runtime then
runs as PyTorch does (within 1e-4), and what the contract cannot express refused by name."""
import importlib.util
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # scripts/python-tests.sh installs CPU torch; CI runs these
import torch.nn as nn  # noqa: E402

import runnel  # noqa: E402
import runnel.torch as rt  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
spec = importlib.util.spec_from_file_location("runnel_ref", os.path.join(ROOT, "reference", "runnel_ref.py"))
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)

CONFIGS = [
    {"input": {"kind": "tokens", "vocab": 40}, "d_model": 32, "blocks": [
        {"kind": "lstm", "num_layers": 2, "hidden": 32, "norm": True, "residual": True},
        {"kind": "attention", "heads": 4, "window": 6, "ffn_dim": 48, "activation": "gelu"},
        {"kind": "gru", "num_layers": 1, "hidden": 24, "norm": False, "residual": False}],
     "final_norm": True, "output": {"dim": 40}},
    {"input": {"kind": "frames", "dim": 7}, "d_model": 16, "blocks": [
        {"kind": "gru", "num_layers": 1, "hidden": 16, "norm": True, "residual": True},
        {"kind": "attention", "heads": 2, "window": 3, "ffn_dim": 0, "activation": "relu"}],
     "final_norm": False, "output": {"dim": 5}},
    {"input": {"kind": "tokens", "vocab": 17}, "d_model": 24, "blocks": [
        {"kind": "attention", "heads": 3, "window": 5, "ffn_dim": 32, "activation": "silu"},
        {"kind": "attention", "heads": 2, "window": 9, "ffn_dim": 16, "activation": "gelu_tanh"}],
     "final_norm": True, "output": {"dim": 17}},
]


# the contract's §6 additions, as a user writes them: RMSNorm, nn.LSTM(proj_size=...), the
# tutorial's q_proj/k_proj/v_proj attention with grouped-query heads and RoPE, ALiBi, bias=False
SECTION6 = (
    {"input": {"kind": "tokens", "vocab": 30}, "d_model": 32, "norm_kind": "rms", "blocks": [
        {"kind": "lstm", "num_layers": 2, "hidden": 48, "proj_size": 32, "norm": True,
         "residual": True},
        {"kind": "attention", "heads": 4, "kv_heads": 2, "window": 5, "ffn_dim": 48,
         "activation": "gelu", "pos": "rope", "rope_theta": 500.0},
        {"kind": "attention", "heads": 4, "window": 4, "ffn_dim": 0, "pos": "alibi"}],
     "final_norm": True, "output": {"dim": 30}},
    {"head", "blocks.1.attn.out_proj", "blocks.2.attn"},  # modules built with bias=False
    {1},  # attention blocks written with q_proj/k_proj/v_proj
)


def build(cfg, seed, no_bias=None, split=None):
    torch.manual_seed(seed)
    full = dict(cfg, format="runnel-model/1", norm_eps=1e-5)
    m = ref.RunnelRef(full, no_bias=no_bias, split=split).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.3)
    return full, m


def inputs_for(cfg, steps=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    if cfg["input"]["kind"] == "tokens":
        return torch.randint(0, cfg["input"]["vocab"], (steps,), generator=g)
    return torch.randn(steps, cfg["input"]["dim"], generator=g)


@pytest.mark.parametrize("k", range(len(CONFIGS)))
def test_export_then_convert_then_run_equals_pytorch(tmp_path, k):
    full, m = build(CONFIGS[k], k)
    windows = [b.get("window") for b in full["blocks"]]
    residual = [b.get("residual") for b in full["blocks"]]
    path = tmp_path / "m.safetensors"
    cfg = rt.export(m, path, window=windows, residual=residual)
    def canon(c):  # an FFN-less block's activation means nothing
        c = ref.normalize_config(c)
        for b in c["blocks"]:
            if b.get("ffn_dim") == 0:
                b.pop("activation", None)
        return c

    assert canon(cfg) == canon(full), "the derived config is the model's"
    runnel.convert(path, tmp_path / "m.rnl", weights="f32", kv="f32")
    x = inputs_for(full)
    with torch.no_grad():
        y = m(x).numpy()
    got = runnel.Model.load(str(tmp_path / "m.rnl")).session().run(
        x.numpy() if x.dtype == torch.int64 else x.numpy().astype(np.float32))
    err = np.max(np.abs(got - y) / (1 + np.abs(y)))
    assert err < 1e-4, err


def test_section_6_modules_export_and_run_as_pytorch(tmp_path):
    cfg, no_bias, split = SECTION6
    full, m = build(cfg, 7, no_bias, split)
    path = tmp_path / "m.safetensors"
    out = rt.export(m, path, window=[None, 5, 4], residual=[True, None, None],
                    heads=[None, 4, None], pos=[None, "rope", "alibi"],
                    rope_theta=[None, 500.0, None])
    assert out["norm_kind"] == "rms" and out["blocks"][0]["proj_size"] == 32
    assert out["blocks"][1]["kv_heads"] == 2 and out["blocks"][2]["pos"] == "alibi"
    assert ref.normalize_config(out) == ref.normalize_config(full)
    runnel.convert(path, tmp_path / "m.rnl", weights="f32", kv="f32")
    x = inputs_for(full, steps=24)
    with torch.no_grad():
        y = m(x).numpy()
    got = runnel.Model.load(str(tmp_path / "m.rnl")).session().run(x.numpy())
    err = np.max(np.abs(got - y) / (1 + np.abs(y)))
    assert err < 1e-4, err


def test_what_the_contract_cannot_express_is_refused_by_name(tmp_path):
    full, m = build(CONFIGS[0], 0)
    windows = [None, 6, None]
    # the reference's blocks carry `window` and `residual` as attributes; a user's may not
    del m.blocks[1].window
    del m.blocks[0].residual
    with pytest.raises(rt.ExportError, match=r"blocks\.1: `window`"):
        rt.export(m, tmp_path / "a.safetensors", residual=[True, None, False])
    with pytest.raises(rt.ExportError, match=r"blocks\.0: `residual`"):
        rt.export(m, tmp_path / "a.safetensors", window=windows)
    m.blocks[0].lstm = nn.LSTM(32, 32, bidirectional=True)
    with pytest.raises(rt.ExportError, match=r"blocks\.0\.lstm: bidirectional"):
        rt.export(m, tmp_path / "a.safetensors", window=windows, residual=[True, None, False])
    full, m = build(CONFIGS[2], 2)
    m.blocks[0].ffn[1] = nn.Tanh()
    with pytest.raises(rt.ExportError, match=r"blocks\.0\.ffn\.1: activation Tanh"):
        rt.export(m, tmp_path / "a.safetensors", window=5)
    full, m = build(CONFIGS[2], 2)
    m.extra = nn.Linear(3, 3)  # a parameter the contract has no name for
    with pytest.raises(rt.ExportError, match="extra"):
        rt.export(m, tmp_path / "a.safetensors", window=[5, 9])


def test_the_reference_is_importable_from_the_package(tmp_path):
    import runnel.reference as pkg_ref

    full, m = build(CONFIGS[0], 3)
    path = tmp_path / "m.safetensors"
    rt.export(m, path, window=[None, 6, None], residual=[True, None, False])
    model, cfg = pkg_ref.load_model(str(path))
    x = inputs_for(full)
    with torch.no_grad():
        assert torch.allclose(model(x), m(x))
    steps = pkg_ref.StepRunner(dict(model.state_dict()), cfg).run(x)
    assert torch.allclose(steps.float(), m(x), atol=1e-4)
