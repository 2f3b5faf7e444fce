"""Write models/{charlm,chargru}/calibration.txt: 8,000 characters from the middle of each demo
model's *training* side of the text (never the held-out slice), paragraph-aligned, for the
integer mode's calibration (docs/INTEGER.md) and reference/integer_sim.py.

    python reference/make_calibration.py [--janeaustenr-dir DIR]
    python reference/make_calibration.py --tokens-only   # only the .safetensors from the .txt

Each calibration.txt also gets calibration.safetensors: its characters as `tokens` (I32, the
demo vocabulary of converter/src/text.rs), the inputs file `runnel convert --integer --calibrate`
takes.

Uses train_charlm.py's text pipeline (the r-cran-janeaustenr package, fetched with apt-get if
not installed) and checks that it reproduces each model's heldout.txt at the split it trained with.
"""
import argparse
import os

import train_charlm as tc

MODELS = {"charlm": ["prideprejudice", "persuasion"], "chargru": ["emma"]}
HELDOUT_FRAC = 0.05  # train_charlm.py's default
CHARS = 8000


def write_tokens(txt_path):
    """calibration.txt -> calibration.safetensors (`tokens`, I32 [T])."""
    import numpy as np
    from safetensors.numpy import save_file

    with open(txt_path, encoding="ascii") as f:
        text = f.read()
    ids = [0 if c == "\n" else ord(c) - 31 for c in text]
    assert all(0 <= i < 96 for i in ids), "characters outside the demo vocabulary"
    out = txt_path[: -len(".txt")] + ".safetensors"
    save_file({"tokens": np.array(ids, dtype=np.int32)}, out)
    print(f"{out}: {len(ids)} tokens")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--janeaustenr-dir")
    ap.add_argument("--tokens-only", action="store_true")
    args = ap.parse_args()
    root = os.path.join(os.path.dirname(__file__), "..", "models")
    if args.tokens_only:
        for model in MODELS:
            write_tokens(os.path.join(root, model, "calibration.txt"))
        return
    texts = tc.read_austen(tc.find_janeaustenr(args.janeaustenr_dir))
    for model, books in MODELS.items():
        text = tc.normalize("\n\n".join("\n".join(texts[b]) for b in books))
        split = int(len(tc.encode(text)) * (1 - HELDOUT_FRAC))
        split = text.index("\n\n", split) + 2
        with open(os.path.join(root, model, "heldout.txt"), encoding="ascii") as f:
            held = f.read()
        assert text[split:split + len(held)] == held, f"{model}: not the split it trained with"
        train = text[:split]
        at = train.index("\n\n", len(train) // 2) + 2
        out = os.path.join(root, model, "calibration.txt")
        with open(out, "w", encoding="ascii", newline="\n") as f:
            f.write(train[at:at + CHARS])
        print(f"{out}: {CHARS} chars of the training side from offset {at}")
        write_tokens(out)


if __name__ == "__main__":
    main()
