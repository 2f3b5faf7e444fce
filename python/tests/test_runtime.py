"""The Python package against the repository's fixtures: convert → load → stream reproduces
PyTorch (the fixtures' expected outputs), in every storage mode; sessions, snapshots and errors."""
import os

import numpy as np
import pytest
from safetensors.numpy import load_file

import runnel

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
# The same per-mode bounds as the Rust conformance tests (max |got - want| / (1 + |want|)).
TOLERANCE = {("f32", "f32"): 1e-4, ("f16", "f16"): 5e-2, ("int8", "int8"): 0.25}


def fixture(name):
    d = os.path.join(FIXTURES, name)
    inputs = load_file(os.path.join(d, "inputs.safetensors"))
    want = load_file(os.path.join(d, "outputs.safetensors"))["outputs"]
    return os.path.join(d, "model.safetensors"), inputs, want


@pytest.mark.parametrize("name", ["tok_lstm", "frames_gru", "tok_lstm2_attn_gru"])
@pytest.mark.parametrize("mode", sorted(TOLERANCE))
def test_convert_then_run_reproduces_pytorch(tmp_path, name, mode):
    model, inputs, want = fixture(name)
    blob = tmp_path / "m.rnl"
    report = runnel.convert(model, blob, weights=mode[0], kv=mode[1])
    assert report["flash_bytes"] == blob.stat().st_size
    assert report["tensors"] and all("snr_db" in t for t in report["tensors"])
    m = runnel.Model.load(str(blob))
    assert m.info["state_bytes"] == report["state_bytes"]
    data = inputs["tokens"] if "tokens" in inputs else inputs["frames"].astype(np.float32)
    got = m.session().run(data)
    assert got.shape == want.shape and got.dtype == np.float32
    err = np.max(np.abs(got - want) / (1 + np.abs(want)))
    assert err <= TOLERANCE[mode], f"{name} {mode}: {err}"


@pytest.mark.parametrize("name", ["tok_lstm2_attn_gru", "frames_gru"])
def test_integer_mode_calibrates_and_runs(tmp_path, name):
    model, inputs, want = fixture(name)
    blob = tmp_path / "m.rnl"
    cal = os.path.join(FIXTURES, name, "inputs.safetensors")
    with pytest.raises(runnel.RunnelError, match="calibrate"):
        runnel.convert(model, blob, integer=True)
    report = runnel.convert(model, blob, integer=True, calibrate=cal)
    assert report["integer"] and any(s["name"] == "x" for s in report["sites"])
    m = runnel.Model.load(str(blob))
    assert m.info["integer"]
    data = inputs["tokens"] if "tokens" in inputs else inputs["frames"].astype(np.float32)
    got = m.session().run(data)
    err = np.max(np.abs(got - want) / (1 + np.abs(want)))
    assert err <= 0.2, f"{name} integer: {err}"


def test_steps_equal_run_and_snapshots_continue_bit_for_bit(tmp_path):
    model, inputs, _ = fixture("tok_lstm2_attn_gru")
    blob = tmp_path / "m.rnl"
    runnel.convert(model, blob)
    m = runnel.Model.load(blob.read_bytes())  # from bytes too
    toks = inputs["tokens"]
    a = m.session()
    one_by_one = np.stack([a.step_token(int(t)) for t in toks])
    b = runnel.Session(m)
    assert np.array_equal(one_by_one, b.run(toks))
    c = m.session()
    c.run(toks[:10])
    snap = c.snapshot()
    assert len(snap) == m.info["snapshot_bytes"]
    d = m.session()
    d.restore(snap)
    assert np.array_equal(d.run(toks[10:]), one_by_one[10:])
    d.reset()
    assert np.array_equal(d.run(toks), one_by_one)


def test_errors_are_exceptions_with_the_runtimes_message(tmp_path):
    model, _, _ = fixture("tok_lstm")
    blob = tmp_path / "m.rnl"
    runnel.convert(model, blob)
    s = runnel.Model.load(str(blob)).session()
    vocab = runnel.Model.load(str(blob)).info["vocab"]
    with pytest.raises(runnel.RunnelError, match="out of range"):
        s.step_token(vocab)
    with pytest.raises(runnel.RunnelError):
        s.step_frame(np.zeros(3, dtype=np.float32))  # a token model
    with pytest.raises(runnel.RunnelError, match="snapshot"):
        s.restore(b"not a snapshot at all, far too short")
    with pytest.raises(runnel.RunnelError):
        runnel.Model.load(b"\0" * 64)
    with pytest.raises(runnel.RunnelError, match="refusing to overwrite"):
        runnel.convert(model, model)
    with pytest.raises(runnel.RunnelError, match="unknown type"):
        runnel.convert(model, tmp_path / "x.rnl", weights="int4")


def test_frames_without_features_are_an_error(tmp_path):
    model, _, _ = fixture("frames_gru")
    blob = tmp_path / "m.rnl"
    runnel.convert(model, blob)
    with pytest.raises(runnel.RunnelError, match="no features"):
        runnel.Model.load(str(blob)).session().run(np.zeros((3, 0), dtype=np.float32))
