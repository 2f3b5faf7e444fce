#!/usr/bin/env python3
"""Prints a markdown table of the criterion `step` benchmark (median µs per step) from
target/criterion, after `cargo bench -p runnel-benches --bench step`."""
import json
import pathlib

root = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion" / "step"
rows = {}
for est in sorted(root.glob("*/new/estimates.json")):
    model, mode = est.parts[-3].rsplit("_", 1)
    rows.setdefault(model, {})[mode] = json.loads(est.read_text())["median"]["point_estimate"] / 1000.0
print("| model | f32/f32 µs | f16/f16 µs | int8/int8 µs |")
print("|---|---|---|---|")
for model, modes in sorted(rows.items()):
    cells = [f"{modes[m]:.1f}" if m in modes else "–" for m in ("f32", "f16", "int8")]
    print(f"| {model} | " + " | ".join(cells) + " |")
