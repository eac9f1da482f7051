"""Utilisation with interleaved sequences, measured at the ports of the generated Verilog.

    python benchmarks/interleave.py [--sim verilator|icarus] [--only NAME ...]

For each case and each ``hardware.interleave`` N it builds the design,
streams groups of N random sequences through the generated RTL under cocotb
(each group a transfer, its sequences' timesteps taking turns), checks every
output bit-exact against the golden model, and measures the steady state from
the output handshakes: the cycles from one output timestep of a sequence to
its next (a group period), over the last transfer. Per-step cycles are that
÷ N. Utilisation is useful multiplies (non-zero weights) ÷ (MACs × measured
cycles per step), the ideal being the metadata's ``ideal_cycles_per_timestep``.

Prints a Markdown table and writes benchmarks/results/interleave.json (cases
left out with --only keep their previous figures there).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

from lstm_hw.config.schema import parse_config
from lstm_hw.model.design import build_design
from lstm_hw.sim.top import simulate_top

from measure import random_codes

DENSE16 = {"quant": {"weight": {"bits": 16, "frac": 12}}, "sparsity": {"density": 1.0}}

#: name: (config, interleave values). The koios shape on its own 41 x 16 MACs, in fewer MACs on banks that
#: divide its sizes, and mapped by a budget of its 656 MACs (hardware.macs); hidden 64 on 1,024 MACs (32
#: useful cycles a step); and the default design.
CASES = {
    "default (I5 H12 L2, 32 MACs)": ({}, (1, 2)),
    "koios shape (I100 H64, dense), 41 banks x 16 rows, 656 MACs": (
        {**DENSE16, "model": {"input_size": 100, "hidden_size": 64, "num_layers": 1},
         "sparsity": {"banks": 41, "density": 1.0}, "hardware": {"rows": 16, "io_lanes": 4, "mac_chain": 6}},
        (1, 2)),
    "koios shape (I100 H64, dense), 4 banks x 128 rows, 512 MACs": (
        {**DENSE16, "model": {"input_size": 100, "hidden_size": 64, "num_layers": 1},
         "sparsity": {"banks": 4, "density": 1.0}, "hardware": {"rows": 128, "io_lanes": 4}},
        (1, 2)),
    "koios shape (I100 H64, dense), macs = 656": (
        {**DENSE16, "model": {"input_size": 100, "hidden_size": 64, "num_layers": 1},
         "hardware": {"macs": 656, "io_lanes": 4}},
        (1, 2)),
    "I64 H64, dense, 8 banks x 128 rows, 1,024 MACs": (
        {**DENSE16, "model": {"input_size": 64, "hidden_size": 64, "num_layers": 1},
         "sparsity": {"banks": 8, "density": 1.0}, "hardware": {"rows": 128, "io_lanes": 8}},
        (1, 2, 4)),
}

#: Groups streamed (one transfer each) and timesteps per sequence.
GROUPS, STEPS = 2, 6

RESULTS = Path(__file__).parent / "results" / "interleave.json"


def with_interleave(config: dict, n: int) -> dict:
    return {**config, "hardware": {**config.get("hardware", {}), "interleave": n}}


def run_case(name: str, config: dict, n: int, sim: str) -> dict:
    design = build_design(parse_config(with_interleave(config, n)))
    x = random_codes(design, GROUPS * n, STEPS)
    with tempfile.TemporaryDirectory(prefix="lstm-hw-bench-") as work:
        res = simulate_top(design, x, sim=sim, build_dir=work)
    if not res.passed:
        raise SystemExit(f"{name}, interleave {n}: {res.mismatches} mismatches against the golden model")
    meta = res.meta
    per_step = meta["output"]["elements_per_timestep"]          # the stamps are per element
    starts = np.asarray(res.output_cycles[::per_step], dtype=np.int64)
    last = starts[-STEPS * n:]                                  # the last transfer's output timesteps
    periods = last[n:] - last[:-n]                              # each sequence's step to its next
    group = float(periods[n:].mean())                           # after the first group period
    ideal = meta["ideal_cycles_per_timestep"]
    mapping = {key: meta["mapping"][key] for key in ("rows", "banks")} if "mapping" in meta else None
    return {"case": name, "interleave": n, "macs": meta["macs"], "mapping": mapping,
            "ideal_cycles_per_timestep": ideal,
            "predicted_cycles_per_group": meta["cycles_per_group"], "measured_cycles_per_group": group,
            "measured_cycles_per_timestep": group / n, "utilisation": ideal * n / group,
            "tail_cycles": [layer["tail_cycles"] for layer in meta["layers"]], "sim": sim,
            "bit_exact_outputs": int(res.output.size)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", choices=["verilator", "icarus"], default="verilator")
    ap.add_argument("--only", nargs="*", help="case names to run (default: all)")
    args = ap.parse_args()
    rows = []
    for name, (config, values) in CASES.items():
        if args.only and name not in args.only:
            continue
        for n in values:
            row = run_case(name, config, n, args.sim)
            rows.append(row)
            print(f"{name}, interleave {n}: {row['measured_cycles_per_timestep']:.2f} cycles/step "
                  f"(ideal {row['ideal_cycles_per_timestep']:g}, {row['utilisation']:.1%})", file=sys.stderr, flush=True)
    print("| Case | MACs | Interleave | Ideal cycles/step | Cycles/group predicted / measured | Cycles/step | "
          "Utilisation |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['case']} | {r['macs']} | {r['interleave']} | {r['ideal_cycles_per_timestep']:g} "
              f"| {r['predicted_cycles_per_group']} / {r['measured_cycles_per_group']:g} "
              f"| {r['measured_cycles_per_timestep']:.2f} | {r['utilisation']:.1%} |")
    previous = json.loads(RESULTS.read_text())["results"] if RESULTS.exists() else []
    merged = {(r["case"], r["interleave"]): r for r in previous if r["case"] in CASES}
    merged.update({(r["case"], r["interleave"]): r for r in rows})
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": f"{platform.machine()}, {platform.python_version()}",
                                   "results": [merged[k] for k in sorted(merged, key=lambda k: (
                                       list(CASES).index(k[0]), k[1]))]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
