"""Bank-balanced against unstructured sparsity on the same engine: PE utilisation and cycles.

    python benchmarks/sparsity.py

One LSTM layer, input 64, hidden 64 (W_ih and W_hh 256 x 64 each), 8 banks,
4 rows at once (32 MACs), the default seeded random weights. Each matrix is
pruned on its own; a bank's load is its W_ih load plus its W_hh load (the
two phases of a step). Unstructured
magnitude pruning (as ESE does) keeps the same number of weights, but the
hardware must give every bank as many slots as the fullest bank needs; the
figures come from the generator's own schedule (the same cycles the RTL runs,
see benchmarks/core.py for the simulated check).

Prints a Markdown table and writes benchmarks/results/sparsity.json.
"""

from __future__ import annotations

import json
from pathlib import Path

from lstm_hw.config.schema import parse_config
from lstm_hw.model.design import build_design
from lstm_hw.numerics.sparsity import bank_loads

RESULTS = Path(__file__).parent / "results" / "sparsity.json"


def main() -> None:
    rows = []
    for density in (0.5, 0.25, 0.125):
        for pattern in ("bank_balanced", "unstructured"):
            cfg = parse_config({"model": {"input_size": 64, "hidden_size": 64, "num_layers": 1},
                                "sparsity": {"banks": 8, "density": density, "pattern": pattern},
                                "hardware": {"rows": 4}})
            layer = build_design(cfg).layers[0]
            # W_ih and W_hh are banked (and pruned) each on its own: a row's slots are k_x + k_h.
            ih, hh = (bank_loads(w, layer.banks) for w in (layer.w_float[:, :64], layer.w_float[:, 64:]))
            rows.append({"density": density, "pattern": pattern, "nnz": layer.nnz, "k": layer.k,
                         "mean_bank_load": float(ih.mean() + hh.mean()),
                         "max_bank_load": f"{int(ih.max())} + {int(hh.max())}",
                         "stored": layer.stored, "pe_utilisation": layer.nnz / layer.stored,
                         "issue_cycles_per_timestep": layer.issue_cycles,
                         "ideal_cycles_per_timestep": layer.nnz / (layer.banks * layer.rows)})
    print("| Density | Pattern | Non-zeros | Slots per bank | Bank load mean / max | PE utilisation "
          "| MAC cycles per step (ideal) |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['density']:g} | {r['pattern'].replace('_', '-')} | {r['nnz']} | {r['k']} "
              f"| {r['mean_bank_load']:.2f} / {r['max_bank_load']} | {r['pe_utilisation']:.1%} "
              f"| {r['issue_cycles_per_timestep']} ({r['ideal_cycles_per_timestep']:.0f}) |")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
