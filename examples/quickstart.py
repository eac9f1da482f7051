"""The whole path in Python: a PyTorch model, compressed, predicted, simulated and written as Verilog.

    pip install -e ".[torch]"
    python examples/quickstart.py [--out DIR] [--simulator icarus|verilator]

A small LSTM classifier is trained in PyTorch on a toy task (is the running sum
of the first feature positive at the end?), then:

1. ``lstm_hw.compress`` prunes it to the hardware's bank-balanced pattern while
   fine-tuning with quantization-aware training, and picks the number formats;
2. ``lstm_hw.convert`` makes the accelerator (``strict``: the compressed weights
   fit the pattern, so nothing is dropped);
3. ``predict`` runs the bit-exact model of the hardware on the test set;
4. ``simulate`` runs the generated Verilog on a few sequences and must give the
   very same words (else ``lstm_hw.SimulationMismatch``);
5. ``write`` writes what ``lstm-hw generate`` writes: Verilog, ``.mem`` files,
   metadata, constraints and Vivado scripts.

About 15 seconds on two cores with Icarus; Verilator adds its build.
"""

import argparse
from pathlib import Path

import numpy as np
import torch

import lstm_hw


class Classifier(torch.nn.Module):
    """The user's own model class: an LSTM and a linear head on its last step."""

    def __init__(self, inputs=3, hidden=16, classes=2):
        super().__init__()
        self.lstm = torch.nn.LSTM(inputs, hidden, batch_first=True)
        self.head = torch.nn.Linear(hidden, classes)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.head(y[:, -1])


def toy_data(n, rng):
    x = rng.uniform(-1, 1, (n, 8, 3))
    return x, (x[:, :, 0].sum(axis=1) > 0).astype(np.int64)


def train(model, x, y, steps=150):
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()
    with torch.no_grad():
        return float((model(xt).argmax(1) == yt).float().mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("quickstart_out"), help="where the Verilog goes")
    parser.add_argument("--simulator", choices=("icarus", "verilator"), default="icarus")
    args = parser.parse_args()

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x, y = toy_data(512, rng)
    x_test, y_test = toy_data(256, rng)
    model = Classifier()
    print(f"float model: {train(model, x, y):.1%} training accuracy")

    # 1. Prune to 4 banks at density 0.5 while fine-tuning with QAT; formats chosen from the data.
    #    At most 4 epochs, to keep the example quick; by default it runs until held-out data stops improving.
    config = {"model": {"return_sequences": False}, "sparsity": {"banks": 4, "density": 0.5}}
    weights, config, report = lstm_hw.compress(model, config, data=(x, y), epochs=4)
    print("formats:", ", ".join(f"{k} s{v['bits']}.{v['frac']}" for k, v in report["formats"].items()))

    # 2. The accelerator.
    acc = lstm_hw.convert(weights, config, strict=True)
    print(acc)

    # 3. The bit-exact model of the hardware: real x in, the output words' real values out.
    logits = acc.predict(x_test)[:, -1]              # (N, 1, 2): only the last step is emitted
    print(f"bit-exact model: {np.mean(logits.argmax(axis=1) == y_test):.1%} test accuracy")

    # 4. The generated Verilog, bit for bit against the golden model.
    y_rtl = acc.simulate(x_test[:4], simulator=args.simulator)
    assert np.array_equal(y_rtl, acc.predict(x_test[:4]))
    print(f"{args.simulator}: 4 sequences, every output word equal to the golden model's")

    # 5. Everything Vivado needs.
    written = acc.write(args.out, force=True)
    meta = acc.metadata
    print(f"wrote {len(written)} files to {args.out}: {meta['macs']} MACs, "
          f"{meta['cycles_per_timestep']} cycles per timestep, latency {meta['latency_cycles']} cycles")


if __name__ == "__main__":
    main()
