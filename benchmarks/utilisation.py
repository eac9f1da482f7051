"""Predicted utilisation over a sweep of layer shapes: where the two-phase schedule reaches ideal.

    python benchmarks/utilisation.py [--hidden 128 256] [--weight-format fit|default]

One layer, input = hidden, for every bank count 1..64 (powers of two), row
lanes 1..16 and density 0.125, 0.5 and 1, with the fewest ``io_lanes`` that
keep the streams from bounding the step. For each it takes the metadata's
cycles per timestep (which the RTL simulations in tests and in
``benchmarks/core.py`` match exactly) against two ideals:

- **stored**: stored weights ÷ MACs, the cycles the schedule needs with
  every multiplier busy every cycle: what the schedule itself costs;
- **nnz**: non-zero weights ÷ MACs (the ideal of the performance goals), which also counts the
  weights that quantize to zero and the padding of banks that do not divide
  the matrix as lost.

The weights are the generator's random ones (uniform within ±1/sqrt(H), as
PyTorch initialises an LSTM). ``--weight-format fit`` (the default) gives them
8 bits with the most fraction bits that hold that range (10 for hidden 128
and 256), as one would for such weights; ``default`` keeps the config's
default s8.6, in which about 9-12 % of them round to zero: dense multiplies
the nnz ideal counts as idle.

Prints a summary and the worst cases; writes benchmarks/results/utilisation.json
(utilisation_default_format.json with ``--weight-format default``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lstm_hw.compression.compress import frac_for
from lstm_hw.config.schema import parse_config
from lstm_hw.emit.files import build_top, metadata
from lstm_hw.errors import ConfigError
from lstm_hw.model.design import build_design

RESULTS = Path(__file__).parent / "results" / "utilisation.json"
BANKS = (1, 2, 4, 8, 16, 32, 64)
ROWS = (1, 2, 4, 8, 16)
DENSITIES = (0.125, 0.5, 1.0)


def case(hidden: int, banks: int, rows: int, density: float, weight_frac: int | None = None) -> dict | None:
    """The figures of one shape, with the fewest io_lanes that are not the bound (None: not a valid config).

    ``weight_frac``: the 8-bit weights' fraction bits (None: the config's default).
    """
    quant = {} if weight_frac is None else {"quant": {"weight": {"bits": 8, "frac": weight_frac}}}
    best = None
    for lanes in range(1, banks + 1):
        try:
            config = parse_config({"model": {"input_size": hidden, "hidden_size": hidden, "num_layers": 1},
                                   "sparsity": {"banks": banks, "density": density},
                                   "hardware": {"rows": rows, "io_lanes": lanes}, **quant})
        except ConfigError:
            continue
        design = build_design(config)
        meta = metadata(design, build_top(design), [])
        layer = meta["layers"][0]
        row = {"hidden": hidden, "banks": banks, "rows": rows, "density": density, "io_lanes": lanes,
               "weight_format": str(config.quant.weight),
               "macs": layer["macs"], "cycles_per_timestep": meta["cycles_per_timestep"],
               "stored_ideal": layer["stored_weights"] / layer["macs"],
               "nnz_ideal": layer["ideal_cycles_per_timestep"],
               "input_phase_cycles": layer["input_phase_cycles"], "tail_cycles": layer["tail_cycles"],
               "stream_bound": layer["stream_cycles_per_timestep"] >= layer["compute_cycles_per_timestep"]}
        row["stored_utilisation"] = row["stored_ideal"] / row["cycles_per_timestep"]
        row["nnz_utilisation"] = row["nnz_ideal"] / row["cycles_per_timestep"]
        best = row
        if not row["stream_bound"]:
            break
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, nargs="*", default=[128, 256])
    ap.add_argument("--weight-format", choices=("fit", "default"), default="fit",
                    help="8-bit weights with the fraction bits that fit the random weights, or the default s8.6")
    args = ap.parse_args()
    # The random weights lie within +-1/sqrt(H): 8 bits with the most fraction bits that hold that.
    fracs = {h: frac_for(h ** -0.5, 8) if args.weight_format == "fit" else None for h in args.hidden}
    rows = [r for h in args.hidden for b in BANKS for n in ROWS for d in DENSITIES
            if (r := case(h, b, n, d, fracs[h])) is not None]
    out = RESULTS if args.weight_format == "fit" else RESULTS.with_name("utilisation_default_format.json")
    out.write_text(json.dumps(rows, indent=1) + "\n")
    for key in ("stored_utilisation", "nnz_utilisation"):
        ok = sum(r[key] >= 0.95 for r in rows)
        print(f"{key}: {ok} of {len(rows)} shapes within 5 % of ideal; lowest {min(r[key] for r in rows):.1%}")
    print("\nBelow 95 % of the stored ideal:")
    print("| Hidden | Banks | Rows | MACs | Density | io_lanes | Cycles/step | Stored ideal | Input phase | Tail |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in sorted(rows, key=lambda r: r["stored_utilisation"]):
        if r["stored_utilisation"] >= 0.95:
            break
        print(f"| {r['hidden']} | {r['banks']} | {r['rows']} | {r['macs']} | {r['density']} | {r['io_lanes']} | "
              f"{r['cycles_per_timestep']} | {r['stored_ideal']:.1f} | {r['input_phase_cycles']} | {r['tail_cycles']} |")


if __name__ == "__main__":
    main()
