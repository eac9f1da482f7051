"""Fine-tuning against the dense float model: old fixed-epoch settings against the validation-driven defaults.

    python benchmarks/finetune.py [--quick] [--work DIR]

Data: scikit-learn's digits as in examples/digits.py (8 steps of 8 pixels,
70/30 split, seed 0). Models: the example's LSTM(8 -> 32) + Linear(32 -> 10)
trained as the example trains it, and two smaller ones (hidden 16 and 24)
trained the same way for 150 epochs, as a model trained elsewhere would
come. Each is compressed to density 0.25 (4 banks) with 8-bit weights by
``lstm_hw.compress`` under several fine-tuning settings, and scored on the
539 test images in the bit-exact golden model
(``lstm_hw.compression.evaluate.evaluate``):

- ``old defaults``: 10 epochs, lr 1e-3, no QAT, no validation and the ramp
  over the first two thirds of the epochs (``val_fraction = 0``, a
  ``ramp_epochs`` beyond the cap): what ``compress`` did by default before;
- ``old, 24 epochs QAT`` and ``old, 100 epochs lr 3e-3``: the issue's other points;
- ``defaults``: the validation-driven fine-tuning with every default
  (``lstm_hw.compression.options.FINETUNE_DEFAULTS``), and under seeds 1
  and 2 (another split and order), for the spread;
- variations of the defaults: no QAT and a constant learning rate (seeds 0
  to 2 each), a cosine learning rate, lr 1e-3, and a 10-epoch ramp with a
  patience of 10.

Prints a Markdown table and writes benchmarks/results/finetune.json. Seconds
are the compress call's wall time (one thread, as fine-tuning runs); the
machine's load changes them. ``--quick``: the defaults and old defaults only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import digits as example  # noqa: E402  (examples/digits.py: the data and the float training)

from lstm_hw.compression.compress import compress  # noqa: E402
from lstm_hw.compression.evaluate import evaluate  # noqa: E402
from lstm_hw.model.torch_io import load_model  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "finetune.json"
CONFIG = {"model": {"return_sequences": False}, "quant": {"weight": {"bits": 8}},
          "sparsity": {"banks": 4, "density": 0.25}}
# name, hidden size, float training epochs (the example's model as the example trains it)
MODELS = (("digits example (h32)", 32, example.TRAIN_EPOCHS), ("small h16", 16, 150), ("small h24", 24, 150))
# no validation, all epochs run, the ramp over the first two thirds of them (ramp_length caps it there)
OLD = {"epochs": 10, "lr": 1e-3, "qat": False, "val_fraction": 0.0, "ramp_epochs": 1000}
SETTINGS = (
    ("old defaults", OLD),
    ("old, 24 epochs QAT", {**OLD, "epochs": 24, "qat": True}),
    ("old, 100 epochs lr 3e-3", {**OLD, "epochs": 100, "lr": 3e-3}),
    ("defaults", {}),
    ("defaults, seed 1", {"seed": 1}),
    ("defaults, seed 2", {"seed": 2}),
    ("defaults, no QAT", {"qat": False}),
    ("defaults, no QAT, seed 1", {"qat": False, "seed": 1}),
    ("defaults, no QAT, seed 2", {"qat": False, "seed": 2}),
    ("defaults, constant lr", {"lr_schedule": "constant"}),
    ("defaults, constant lr, seed 1", {"lr_schedule": "constant", "seed": 1}),
    ("defaults, constant lr, seed 2", {"lr_schedule": "constant", "seed": 2}),
    ("defaults, cosine lr", {"lr_schedule": "cosine"}),
    ("defaults, lr 1e-3", {"lr": 1e-3}),
    ("defaults, ramp 10, patience 10", {"ramp_epochs": 10, "patience": 10}),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="old defaults and defaults only")
    ap.add_argument("--work", type=Path, default=Path("build/finetune_bench"), help="where the float models go")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    (x_tr, y_tr), (x_te, y_te) = example.digits()
    settings = [s for s in SETTINGS if not args.quick or s[0] in ("old defaults", "defaults")]
    rows = []
    for model_name, hidden, train_epochs in MODELS:
        path = args.work / f"digits_h{hidden}.pt"
        if not path.exists():
            example.train(x_tr, y_tr, path, hidden=hidden, epochs=train_epochs)
        original = load_model(path)[0]
        for setting, options in settings:
            t0 = time.perf_counter()
            weights, config, report = compress(str(path), CONFIG, (x_tr, y_tr), **options)
            seconds = time.perf_counter() - t0
            res = evaluate(config, weights, x_te, y_te, original=original)
            ft = report["finetune"]
            row = {"model": model_name, "hidden": hidden, "setting": setting, "options": options,
                   "float": res["float"]["accuracy"], "pruned_float": res["pruned_float"]["accuracy"],
                   "golden": res["golden"]["accuracy"], "epochs_run": ft["epochs_run"],
                   "best_epoch": ft["best_epoch"], "stopped": ft["stopped"], "seconds": round(seconds, 1)}
            row["golden_minus_float"] = row["golden"] - row["float"]
            rows.append(row)
            print(f"{model_name} / {setting}: float {row['float']:.2%}, golden {row['golden']:.2%} "
                  f"({100 * row['golden_minus_float']:+.2f}), {row['epochs_run']} epochs, {seconds:.1f} s",
                  file=sys.stderr, flush=True)
    print("| Model | Fine-tuning | Dense float | Golden, d 0.25, 8 bits | Golden − float | Epochs run (best) "
          "| Seconds |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        best = f" ({r['best_epoch']})" if r["best_epoch"] else ""
        print(f"| {r['model']} | {r['setting']} | {r['float']:.2%} | {r['golden']:.2%} "
              f"| {100 * r['golden_minus_float']:+.2f} | {r['epochs_run']}{best} | {r['seconds']:.1f} |")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
