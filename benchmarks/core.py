"""Core figures for README: generation time, and cycles per timestep measured in RTL simulation.

    python benchmarks/core.py [--sim verilator|icarus] [--steps 4] [--only NAME ...]

For every case it builds the design (timed: config -> weights -> schedule ->
Verilog text, in this process), streams one random sequence through the
generated Verilog under cocotb, checks every output bit-exact against the
golden model, and measures the steady-state cycles per timestep from the
cycle stamps of the output handshakes (first beat of step t+1 minus first beat
of step t, averaged over the steps after the first). Ideal is nnz(W) / MACs,
the cycles the MAC array needs with every multiplier busy every cycle.

Prints Markdown tables and writes the figures to benchmarks/results/core.json
(cases left out with --only keep their previous figures there).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lstm_hw.config.schema import parse_config
from lstm_hw.emit.files import design_files
from lstm_hw.model.design import build_design
from lstm_hw.model.golden import float_lstm, run_golden_real
from lstm_hw.sim.top import simulate_top

from measure import random_codes, steady_cycles_per_step

CASES = {
    "default (I5 H12 L2)": {},
    "I64 H64, 16 MACs": {"model": {"input_size": 64, "hidden_size": 64, "num_layers": 1}},
    "I64 H64, 64 MACs": {"model": {"input_size": 64, "hidden_size": 64, "num_layers": 1},
                         "sparsity": {"banks": 8}, "hardware": {"rows": 8}},
    "I64 H64, 256 MACs": {"model": {"input_size": 64, "hidden_size": 64, "num_layers": 1},
                          "sparsity": {"banks": 16}, "hardware": {"rows": 16}},
    "I128 H256, 16 MACs": {"model": {"input_size": 128, "hidden_size": 256, "num_layers": 1}},
    "I128 H256, 128 MACs": {"model": {"input_size": 128, "hidden_size": 256, "num_layers": 1},
                            "sparsity": {"banks": 8}, "hardware": {"rows": 16}},
    "I128 H128, 64 MACs": {"model": {"input_size": 128, "hidden_size": 128, "num_layers": 1},
                           "sparsity": {"banks": 8, "density": 0.125}, "hardware": {"rows": 8}},
    "I128 H128, 512 MACs, 2 lanes": {"model": {"input_size": 128, "hidden_size": 128, "num_layers": 1},
                                     "sparsity": {"banks": 32}, "hardware": {"rows": 16, "io_lanes": 2}},
    "I128 H128, 1024 MACs, 4 lanes": {"model": {"input_size": 128, "hidden_size": 128, "num_layers": 1},
                                      "sparsity": {"banks": 64}, "hardware": {"rows": 16, "io_lanes": 4}},
    # The shortest steps of the utilisation sweep at 16 row lanes (32 passes of one slot a phase).
    "I128 H128 d 0.125, 256 MACs, 4 lanes": {"model": {"input_size": 128, "hidden_size": 128, "num_layers": 1},
                                             "sparsity": {"banks": 16, "density": 0.125},
                                             "hardware": {"rows": 16, "io_lanes": 4}},
    "I128 H128 d 0.125, 512 MACs, 4 lanes": {"model": {"input_size": 128, "hidden_size": 128, "num_layers": 1},
                                             "sparsity": {"banks": 32, "density": 0.125},
                                             "hardware": {"rows": 16, "io_lanes": 4}},
    # More cell lanes (rows / 4 = 32) than banks: each pass's h written back in groups, as many as the banks.
    "I64 H64 dense, 1024 MACs, 8 lanes": {"model": {"input_size": 64, "hidden_size": 64, "num_layers": 1},
                                          "sparsity": {"banks": 8, "density": 1.0},
                                          "hardware": {"rows": 128, "io_lanes": 8}},
    "I100 H64 dense, 512 MACs, 4 lanes": {"model": {"input_size": 100, "hidden_size": 64, "num_layers": 1},
                                          "sparsity": {"banks": 4, "density": 1.0},
                                          "hardware": {"rows": 128, "io_lanes": 4}},
}

RESULTS = Path(__file__).parent / "results" / "core.json"


def run_case(name: str, overrides: dict, sim: str, steps: int) -> dict:
    t0 = time.perf_counter()
    design = build_design(parse_config(overrides))
    files = design_files(design)
    gen_s = time.perf_counter() - t0
    top = design.config.hardware.top
    meta = json.loads(files[f"{top}.json"])
    model = design.config.model
    x = random_codes(design, 1, steps)
    with tempfile.TemporaryDirectory(prefix="lstm-hw-bench-") as work:
        t1 = time.perf_counter()
        res = simulate_top(design, x, sim=sim, build_dir=work)
        sim_s = time.perf_counter() - t1
    if not res.passed:
        raise SystemExit(f"{name}: {res.mismatches} mismatches against the golden model")
    # Accuracy in NumPy (no simulation needed: the RTL is bit-exact with the golden model):
    # 16 sequences of 20 steps, x uniform in [-1, 1], against a float64 LSTM with
    # exact sigmoid/tanh and the same pruned weights, as stored (datapath error
    # alone) and unquantized (everything the hardware changes but the pruning).
    xr = np.random.default_rng(7).uniform(-1, 1, (16, 20, model.input_size))
    y = run_golden_real(design, xr)
    err_datapath = np.abs(y - float_lstm(design, xr, quantized_weights=True)[:, -y.shape[1]:])
    err_total = np.abs(y - float_lstm(design, xr)[:, -y.shape[1]:])
    h = model.hidden_size
    measured = steady_cycles_per_step(res.output_cycles, h, steps)
    ideal = meta["ideal_cycles_per_timestep"]
    return {
        "case": name, "input_size": model.input_size, "hidden_size": h, "num_layers": model.num_layers,
        "density": design.config.sparsity.density, "banks": design.config.sparsity.banks,
        "rows": design.config.hardware.rows, "macs": meta["macs"],
        "ideal_cycles_per_timestep": ideal, "predicted_cycles_per_timestep": meta["cycles_per_timestep"],
        "measured_cycles_per_timestep": measured, "utilisation": ideal / measured,
        "latency_cycles": meta["latency_cycles"], "generation_s": round(gen_s, 2),
        "verilog_kib": round(sum(len(files[source]) for source in meta["sources"]) / 1024), "simulation_s": round(sim_s, 1), "sim": sim,
        "bit_exact_outputs": int(res.output.size),
        "max_abs_error_datapath": float(err_datapath.max()), "mean_abs_error_datapath": float(err_datapath.mean()),
        "max_abs_error_vs_float_weights": float(err_total.max()),
        "mean_abs_error_vs_float_weights": float(err_total.mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", choices=["verilator", "icarus"], default="verilator")
    ap.add_argument("--steps", type=int, default=4, help="timesteps simulated per case (at least 2)")
    ap.add_argument("--only", nargs="*", help="case names to run (default: all)")
    args = ap.parse_args()
    if args.steps < 2:
        ap.error("--steps must be at least 2")
    rows = []
    for name, overrides in CASES.items():
        if args.only and name not in args.only:
            continue
        row = run_case(name, overrides, args.sim, args.steps)
        rows.append(row)
        print(f"{name}: {row['measured_cycles_per_timestep']:.1f} cycles/step (ideal {row['ideal_cycles_per_timestep']:.0f},"
              f" {row['utilisation']:.1%}), generated in {row['generation_s']} s", file=sys.stderr, flush=True)
    print("| Case | MACs | Ideal cycles/step | Measured cycles/step | Utilisation | Latency (cycles) | Generation (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['case']} | {r['macs']} | {r['ideal_cycles_per_timestep']:.0f} | {r['measured_cycles_per_timestep']:.0f} "
              f"| {r['utilisation']:.1%} | {r['latency_cycles']} | {r['generation_s']:.1f} |")
    print()
    print("| Case | Max abs error, datapath | Mean | Max abs error vs float weights | Mean |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['case']} | {r['max_abs_error_datapath']:.2e} | {r['mean_abs_error_datapath']:.2e} "
              f"| {r['max_abs_error_vs_float_weights']:.2e} | {r['mean_abs_error_vs_float_weights']:.2e} |")
    # Cases not run this time keep their previous figures.
    previous = json.loads(RESULTS.read_text())["results"] if RESULTS.exists() else []
    merged = {r["case"]: r for r in previous if r["case"] in CASES}
    merged.update({r["case"]: r for r in rows})
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": f"{platform.machine()}, {platform.python_version()}",
                                   "results": [merged[name] for name in CASES if name in merged]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
