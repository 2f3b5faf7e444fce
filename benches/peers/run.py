"""runnel against ONNX Runtime and PyTorch eager on the demo model, in one run, interleaved.

    scripts/bench-peers.sh [--rounds 7] [--steps 0] [--json FILE] [--check]
    # = scripts/py-venv.sh onnx onnxruntime (runnel from this tree, torch), then this file

Every contender streams the held-out text of ``models/charlm`` one character per step from zero
state, on one thread:

* runnel (Rust): ``benches/peers/runnel_step.rs`` (one process per contender and round) on blobs
  converted f32/f32, f16/f16 and int8/int8;
* runnel (Python): the ``runnel`` package, ``Session.step_token`` once per step (f32 and int8),
  and ``Session.run`` over the whole stream in one call (int8);
* ONNX Runtime (Python, CPU provider, intra/inter-op threads 1): one step exported with
  ``torch.onnx.export`` (opset 17) from ``step_model.StepModel`` (state as inputs and outputs,
  the attention cache a fixed-shape window with a mask), as f32 and as
  ``onnxruntime.quantization.quantize_dynamic`` int8 (default options: QInt8 weights,
  per tensor), ``InferenceSession.run`` once per step;
* PyTorch eager: the same ``StepModel`` (stock modules of the contract's reference model) called
  once per step under ``torch.inference_mode()``, ``torch.set_num_threads(1)``.

Each round runs every contender once over the stream (the order rotates between rounds); a
contender's time for a round is its whole timed pass divided by its steps (Python-side loops
included: that is the cost of stepping from Python). The table shows the median over the rounds,
and the median over the rounds of each contender's time ÷ runnel Rust int8's. Logits are copied
into a preallocated array inside the loop and scored after it, so bits/char come from each
contender's own logits. Python contenders get one untimed warm-up pass over 200 steps first; the
Rust program does its own.

``--check`` fails unless every float contender's bits/char is within 1e-3 of runnel Rust f32's
(so the ONNX export and the eager step compute the runtime's step) and every int8 one is within
2% of it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models/charlm/charlm.safetensors"
TEXT = ROOT / "models/charlm/heldout.txt"
WARMUP = 200
# the baseline of the ratio column
BASELINE = "runnel Rust int8/int8"


def encode(text: str) -> list[int]:
    """The demo model's vocabulary (as ``runnel_converter::text``): '\\n' is 0, printable ASCII
    32..=126 is byte − 31, other characters are skipped."""
    return [0 if c == "\n" else ord(c) - 31 for c in text if c == "\n" or " " <= c <= "~"]


def bits_per_char(logits: np.ndarray, ids: list[int]) -> float:
    """Mean of −log2 softmax(logits[t])[ids[t + 1]] over the stream, in float64 (the formula of
    ``runnel_converter::text::surprisal_bits``)."""
    x = logits[:-1].astype(np.float64)
    mx = x.max(axis=1)
    lse = mx + np.log(np.exp(x - mx[:, None]).sum(axis=1))
    nxt = np.asarray(ids[1:])
    return float(((lse - x[np.arange(len(nxt)), nxt]) / np.log(2.0)).mean())


# --------------------------------------------------------------------------- contenders
# Each contender has a name, a mode ("f32", "f16" or "int8", for --check), ``warm_up(ids)`` and
# ``run(ids)``, which streams ``ids`` from zero state and returns (µs per step, bits/char).


class RustContender:
    """One runnel blob through the Rust program (a fresh process per round)."""

    def __init__(self, name, mode, exe, blob, steps):
        self.name, self.mode, self.exe, self.blob, self.steps = name, mode, exe, blob, steps

    def warm_up(self, ids):
        pass  # the program warms up itself before its timed pass

    def run(self, ids):
        out = subprocess.run([str(self.exe), str(TEXT), str(self.steps), f"x={self.blob}"],
                             check=True, capture_output=True, text=True).stdout
        r = json.loads(out.splitlines()[-1])
        if r["steps"] != len(ids):
            raise RuntimeError(f"{self.name}: streamed {r['steps']} steps, expected {len(ids)}")
        return r["us_per_step"], r["bits_per_char"]


class PyContender:
    """A stepping loop in this process. ``make(ids)`` returns ``(reset, loop)``: ``reset()``
    goes back to zero state (not timed), ``loop()`` streams ``ids`` and returns the logits."""

    def __init__(self, name, mode, make):
        self.name, self.mode, self.make = name, mode, make

    def warm_up(self, ids):
        reset, loop = self.make(ids[:WARMUP])
        reset()
        loop()

    def run(self, ids):
        reset, loop = self.make(ids)
        reset()
        t0 = time.perf_counter()
        logits = loop()
        dt = time.perf_counter() - t0
        return dt * 1e6 / len(ids), bits_per_char(np.asarray(logits), ids)


def runnel_py(blob, vocab, whole_stream=False):
    """The runnel Python package: one ``step_token`` per step, or ``run`` over the stream."""
    import runnel

    session = runnel.Model.load(str(blob)).session()

    def make(ids):
        out = np.empty((len(ids), vocab), np.float32)
        tokens = np.asarray(ids, dtype=np.uint32)

        def loop():
            if whole_stream:
                return session.run(tokens)
            for t, tok in enumerate(ids):
                out[t] = session.step_token(tok)
            return out
        return session.reset, loop
    return make


def onnxruntime_py(path, state_names, initial_state, vocab):
    """ONNX Runtime, CPU provider, one thread, ``InferenceSession.run`` once per step with the
    state fed back (numpy in and out: faster here than ``run_with_ort_values``)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    out_names = ["logits", *[n + "_out" for n in state_names]]
    state = {}

    def reset():
        state.clear()
        state.update(zip(state_names, initial_state))

    def make(ids):
        out = np.empty((len(ids), vocab), np.float32)
        tokens = [np.array([t], dtype=np.int64) for t in ids]

        def loop():
            feeds = dict(state)
            for t, tok in enumerate(tokens):
                feeds["token"] = tok
                r = sess.run(out_names, feeds)
                out[t] = r[0][0, 0]
                feeds = dict(zip(state_names, r[1:]))
            return out
        return reset, loop
    return make


def torch_eager(step, vocab):
    """PyTorch eager: ``StepModel`` called once per step, state fed back."""
    import torch

    state = []

    def reset():
        state[:] = step.initial_state()

    def make(ids):
        out = torch.empty(len(ids), vocab)
        tokens = [torch.tensor([t]) for t in ids]

        def loop():
            st = list(state)
            with torch.inference_mode():
                for t, tok in enumerate(tokens):
                    logits, *st = step(tok, *st)
                    out[t] = logits[0, 0]
            return out.numpy()
        return reset, loop
    return make


# --------------------------------------------------------------------------- setup


def build_rust(profile: str) -> Path:
    """Builds ``benches/peers/runnel_step.rs`` (cargo example ``peers``) and returns its path."""
    msgs = subprocess.run(
        ["cargo", "build", "-q", "--profile", profile, "-p", "runnel-benches", "--example", "peers",
         "--message-format=json-render-diagnostics"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    for line in msgs.splitlines():
        m = json.loads(line)
        if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "peers" \
                and m.get("executable"):
            return Path(m["executable"])
    raise RuntimeError("cargo built no `peers` executable")


def prepare(work: Path, profile: str, steps: int):
    """Blobs, ONNX models and the contenders, in the order of the table."""
    import onnx
    import runnel
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from runnel.reference import load_model

    sys.path.insert(0, str(Path(__file__).parent))
    from step_model import StepModel, export_onnx

    work.mkdir(parents=True, exist_ok=True)
    blobs = {}
    for mode in ("f32", "f16", "int8"):
        blobs[mode] = work / f"charlm-{mode}.rnl"
        runnel.convert(str(MODEL), str(blobs[mode]), weights=mode, kv=mode)
    # the integer-only mode, calibrated on the training side of the text (docs/INTEGER.md)
    blobs["integer"] = work / "charlm-integer.rnl"
    runnel.convert(str(MODEL), str(blobs["integer"]), integer=True,
                   calibrate=str(MODEL.parent / "calibration.safetensors"))

    ref, _ = load_model(str(MODEL))
    step = StepModel(ref).eval()
    vocab = ref.ncfg["output"]["dim"]
    onnx_f32, onnx_int8 = work / "charlm-step-f32.onnx", work / "charlm-step-int8.onnx"
    export_onnx(step, str(onnx_f32))
    onnx.checker.check_model(str(onnx_f32))
    # quantize_dynamic's defaults (int8 weights, per tensor). Its advice (on the root logger) to
    # run onnxruntime.quantization's pre-processing first is silenced: that made no difference
    # to speed or bits/char here.
    logging.getLogger().setLevel(logging.ERROR)
    quantize_dynamic(str(onnx_f32), str(onnx_int8), weight_type=QuantType.QInt8)

    exe = build_rust(profile)
    names = step.state_names()
    init = [t.numpy() for t in step.initial_state()]
    contenders = [
        RustContender("runnel Rust f32/f32", "f32", exe, blobs["f32"], steps),
        RustContender("runnel Rust f16/f16", "f16", exe, blobs["f16"], steps),
        RustContender(BASELINE, "int8", exe, blobs["int8"], steps),
        RustContender("runnel Rust integer", "int8", exe, blobs["integer"], steps),
        PyContender("runnel Python f32/f32 (step_token)", "f32", runnel_py(blobs["f32"], vocab)),
        PyContender("runnel Python int8/int8 (step_token)", "int8",
                    runnel_py(blobs["int8"], vocab)),
        PyContender("runnel Python int8/int8 (Session.run)", "int8",
                    runnel_py(blobs["int8"], vocab, whole_stream=True)),
        PyContender("ONNX Runtime f32", "f32", onnxruntime_py(onnx_f32, names, init, vocab)),
        PyContender("ONNX Runtime int8 (quantize_dynamic)", "int8",
                    onnxruntime_py(onnx_int8, names, init, vocab)),
        PyContender("PyTorch eager f32", "f32", torch_eager(step, vocab)),
    ]
    sizes = {"runnel f32 blob": blobs["f32"].stat().st_size,
             "runnel int8 blob": blobs["int8"].stat().st_size,
             "onnx f32": onnx_f32.stat().st_size, "onnx int8": onnx_int8.stat().st_size}
    return contenders, sizes


def versions() -> dict:
    import onnxruntime
    import runnel
    import torch

    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "runnel": runnel.__version__, "onnxruntime": onnxruntime.__version__,
            "torch": torch.__version__, "numpy": np.__version__}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7, help="rounds (the table shows medians)")
    ap.add_argument("--steps", type=int, default=0, help="steps per pass (0: the whole text)")
    ap.add_argument("--profile", default="release", help="cargo profile of the Rust program")
    ap.add_argument("--work", type=Path, default=ROOT / "target/peers",
                    help="where the blobs and ONNX models are written")
    ap.add_argument("--json", type=Path, help="also write the results to this file")
    ap.add_argument("--check", action="store_true",
                    help="fail unless every contender's bits/char is close to runnel Rust f32's")
    args = ap.parse_args()

    import torch
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)

    ids = encode(TEXT.read_text())
    if args.steps:
        ids = ids[:args.steps]
    contenders, sizes = prepare(args.work, args.profile, len(ids))
    for c in contenders:
        c.warm_up(ids)

    times = {c.name: [] for c in contenders}
    bpc = {}
    for r in range(args.rounds):
        k = r % len(contenders)  # rotate the order so that no contender always goes first
        for c in contenders[k:] + contenders[:k]:
            us, bits = c.run(ids)
            times[c.name].append(us)
            bpc[c.name] = bits
        print(f"round {r + 1}/{args.rounds} (µs/step): "
              + ", ".join(f"{n} {t[-1]:.1f}" for n, t in times.items()), file=sys.stderr)

    med = {n: statistics.median(t) for n, t in times.items()}
    # the ratio to the baseline per round (both measured seconds apart), then its median: less
    # sensitive to the load of a shared machine changing between rounds than med / med
    ratio = {n: statistics.median(a / b for a, b in zip(t, times[BASELINE]))
             for n, t in times.items()}
    env = versions()
    print(f"\n{len(ids)} steps of {TEXT.relative_to(ROOT)}, {args.rounds} interleaved rounds, "
          f"one thread; {env['cpu']} ({env['cores']} cores); python {env['python']}, "
          f"onnxruntime {env['onnxruntime']}, torch {env['torch']}, runnel {env['runnel']}")
    print(f"\n| contender | µs/step (median) | min–max | × {BASELINE} (median of rounds) "
          "| bits/char |")
    print("|---|---|---|---|---|")
    for n, t in times.items():
        print(f"| {n} | {med[n]:.1f} | {min(t):.1f}–{max(t):.1f} | {ratio[n]:.2f} "
              f"| {bpc[n]:.4f} |")
    print("\nfile bytes: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))

    if args.json:
        args.json.write_text(json.dumps({"steps": len(ids), "rounds": args.rounds, "env": env,
                                         "sizes": sizes, "us_per_step": times,
                                         "median_us_per_step": med, "median_ratio": ratio,
                                         "bits_per_char": bpc},
                                        indent=1))
    if args.check:
        # float contenders must agree with runnel's f32 step to 1e-3, int8 ones to within 2%
        f32 = bpc["runnel Rust f32/f32"]
        bad = [c.name for c in contenders
               if abs(bpc[c.name] - f32) > (0.02 * f32 if c.mode == "int8" else 1e-3)]
        if bad:
            sys.exit(f"bits/char disagree with runnel Rust f32 ({f32:.4f}): "
                     + ", ".join(f"{n} {bpc[n]:.4f}" for n in bad))
        print(f"check: every contender's bits/char is close to runnel Rust f32's ({f32:.4f})")


if __name__ == "__main__":
    main()
