"""The digits example: train, compress and verify an LSTM classifier on real data.

    python examples/digits.py [--out examples/digits_out] [--rtl-samples 100] [--sim verilator]

1. Data: scikit-learn's bundled handwritten digits (``load_digits``, no
   network): 1797 images of 8 x 8 pixels, each read row by row as a sequence
   of 8 steps x 8 features (pixel / 16), split 70 / 30 with a fixed seed.
2. Train a float model in PyTorch: LSTM(8 -> 32) and a Linear(32 -> 10) head
   on the last step (seeded, Adam).
3. For every density (1, 0.5, 0.25, 0.125) and weight width (16, 8, 6 bits):
   ``lstm_hw.compression.compress.compress_files`` prunes the LSTM bank-balanced (4 banks) while
   fine-tuning with quantization-aware training, and chooses the fraction bits
   of each format from the training data; then ``lstm_hw.compression.evaluate.evaluate``
   scores the float model, the pruned float model and the bit-exact golden
   model on the whole test set, and the generated RTL (under Verilator) on the
   first test sequences, which must equal the golden model bit for bit.
4. Prints the README table and writes ``results.json``, ``table.md`` and the
   pictures (accuracy against density, the sparsity pattern of the first
   layer, the weight histogram with the chosen format) into ``--out``.

Needs the torch extra: ``pip install -e '.[torch]'`` (the test extra has it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from lstm_hw.compression.compress import compress_files
from lstm_hw.compression.evaluate import evaluate
from lstm_hw.compression.plots import plot_accuracy_vs_density, plot_sparsity, plot_weight_histogram
from lstm_hw.config.schema import load_config
from lstm_hw.model.design import build_design
from lstm_hw.model.torch_io import import_torch
from lstm_hw.model.weights import load_weights

DENSITIES = (1.0, 0.5, 0.25, 0.125)
WEIGHT_BITS = (16, 8, 6)
HIDDEN = 32
BANKS = 4
SEED = 0
TRAIN_EPOCHS = 60


def digits():
    from sklearn.datasets import load_digits
    data = load_digits()
    x = data.images.astype(np.float64) / 16.0          # (N, 8, 8): 8 steps of 8 features
    y = data.target.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(y))
    cut = int(0.7 * len(y))
    return (x[order[:cut]], y[order[:cut]]), (x[order[cut:]], y[order[cut:]])


def train(x, y, path: Path, hidden: int = HIDDEN, epochs: int = TRAIN_EPOCHS) -> float:
    """Train the float model LSTM(8 -> ``hidden``) + Linear(``hidden`` -> 10), save its state_dict with
    ``torch.save``; return its training accuracy."""
    torch = import_torch("training the digits model")
    torch.manual_seed(SEED)
    torch.set_num_threads(1)

    class DigitsLSTM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(8, hidden, batch_first=True)
            self.fc = torch.nn.Linear(hidden, 10)

        def forward(self, v):
            out, _ = self.lstm(v)
            return self.fc(out[:, -1])

    model = DigitsLSTM()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    gen = torch.Generator().manual_seed(SEED)
    for _ in range(epochs):
        for idx in torch.randperm(len(yt), generator=gen).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    torch.save(model.state_dict(), path)
    with torch.no_grad():
        return float((model(xt).argmax(1) == yt).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("examples/digits_out"))
    ap.add_argument("--rtl-samples", type=int, default=100, help="test sequences run on the RTL (0: none)")
    ap.add_argument("--sim", choices=["verilator", "icarus"], default="verilator")
    args = ap.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    (x_tr, y_tr), (x_te, y_te) = digits()
    np.savez(out / "train.npz", x=x_tr, y=y_tr)
    np.savez(out / "test.npz", x=x_te, y=y_te)
    t0 = time.perf_counter()
    model = out / "digits_lstm.pt"
    acc = train(x_tr, y_tr, model)
    print(f"trained float model: train accuracy {acc:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)

    rows = []
    for bits in WEIGHT_BITS:
        for density in DENSITIES:
            name = f"d{density:g}_w{bits}"
            cfg = out / f"{name}.toml"
            cfg.write_text(f"[model]\nreturn_sequences = false\n[quant]\nweight = {{ bits = {bits} }}\n"
                           f"[sparsity]\nbanks = {BANKS}\ndensity = {density}\n")
            t1 = time.perf_counter()
            # the default fine-tuning: until a held-out tenth of train.npz stops improving
            report = compress_files(model, cfg, out / name, out / "train.npz", seed=SEED, force=True)
            config = load_config(out / name / "config.toml")
            weights = load_weights(out / name / "weights.npz", config)
            from lstm_hw.model.torch_io import load_model
            original = load_model(model)[0]
            res = evaluate(config, weights, x_te, y_te, original=original,
                           rtl=args.sim if args.rtl_samples else None, rtl_samples=args.rtl_samples)
            design = build_design(config, weights)
            row = {"density": density, "weight_bits": bits, "weight_format": str(config.quant.weight),
                   "macs": sum(p.banks * p.rows for p in design.layers) + (design.head.banks if design.head else 0),
                   "float": res["float"]["accuracy"], "pruned_float": res["pruned_float"]["accuracy"],
                   "golden": res["golden"]["accuracy"], "finetune_epochs": report["finetune"]["epochs_run"],
                   "seconds": round(time.perf_counter() - t1, 1)}
            if "rtl" in res:
                row.update(rtl=res["rtl"]["accuracy"], rtl_samples=res["rtl"]["samples"],
                           golden_on_rtl_samples=res["rtl"]["golden_on_same_samples"]["accuracy"],
                           rtl_mismatches=res["rtl"]["mismatches_vs_golden"])
                if row["rtl_mismatches"]:
                    sys.exit(f"{name}: the RTL differs from the golden model in {row['rtl_mismatches']} words")
            rows.append(row)
            print(f"{name}: float {row['float']:.4f}, pruned float {row['pruned_float']:.4f}, "
                  f"golden {row['golden']:.4f}" + (f", rtl {row['rtl']:.4f} on {row['rtl_samples']} "
                  f"(golden {row['golden_on_rtl_samples']:.4f}, bit-exact)" if "rtl" in row else "")
                  + f" [{row['finetune_epochs']} epochs, {row['seconds']} s]", flush=True)
            if density == 0.25 and bits == 8:
                layer = design.layers[0]
                plot_sparsity(layer.w_float[:, layer.input_size:], BANKS, out / "sparsity_d0.25.png",
                              title="Layer 0 W_hh, density 0.25, 4 banks")
                plot_weight_histogram(layer.w_float, config.quant.weight, out / "weights_d0.25_w8.png",
                                      title="Layer 0 weights, density 0.25")

    n_rtl = rows[0].get("rtl_samples")
    lines = ["| Density | Weight format | Float | Pruned float | Golden (bit-exact) |"
             + (f" RTL, first {n_rtl} | Golden, same {n_rtl} |" if n_rtl else ""),
             "|---:|---|---:|---:|---:|" + ("---:|---:|" if n_rtl else "")]
    for r in rows:
        lines.append(f"| {r['density']:g} | {r['weight_format']} | {r['float']:.2%} | {r['pruned_float']:.2%} "
                     f"| {r['golden']:.2%} |" + (f" {r['rtl']:.2%} | {r['golden_on_rtl_samples']:.2%} |"
                                                 if n_rtl else ""))
    table = "\n".join(lines)
    print(table)
    (out / "table.md").write_text(table + "\n")
    (out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    # The RTL ran on a sample only (and equals the golden model there): leave it out of the plot.
    plot_accuracy_vs_density([{k: v for k, v in r.items() if k != "rtl"} for r in rows],
                             out / "accuracy_vs_density.png", title="Digits: test accuracy against density")
    print(f"done in {time.perf_counter() - t0:.0f} s; results in {out}")


if __name__ == "__main__":
    main()
