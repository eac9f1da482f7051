"""Activation methods: table error and cost, and their effect on a whole LSTM's output.

    python benchmarks/activations.py

Part 1 (goal figures): for each method at 32 and 64 table entries, the
maximum and mean absolute error of sigmoid and tanh over every code of the
default 16-bit pre-activation format (s16.11 in, s16.14 out), against
float64, with the cost of one unit (multipliers, table bits). hls4ml's default
for comparison: one 1024-entry table, max error about 3.9e-3 (sigmoid on
[-8, 8)) and 7.8e-3 (tanh on [-4, 4)).

Part 2 (end-to-end effect): one fixed model (input 16, hidden 32, one layer,
density 0.5, seeded random weights) run by the bit-exact golden model with
each method, on 32 sequences of 25 steps with x uniform in [-1, 1], against
a float64 LSTM with exact sigmoid/tanh and the weights as stored. Only the
activation method changes between rows. Also ``auto`` at two bounds.

Prints Markdown tables and writes benchmarks/results/activations.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lstm_hw.config.schema import parse_config
from lstm_hw.model.design import build_design
from lstm_hw.model.golden import float_lstm, run_golden_real
from lstm_hw.numerics.activations import VARIANTS, build_table, variant_name

RESULTS = Path(__file__).parent / "results" / "activations.json"
MODEL = {"model": {"input_size": 16, "hidden_size": 32, "num_layers": 1, "seed": 3}}


def table_figures() -> list[dict]:
    q = parse_config({}).quant
    rows = []
    for method, order in VARIANTS:
        for segments in (32, 64):
            row = {"method": variant_name(method, order), "segments": segments}
            for fn, rng in (("sigmoid", 8.0), ("tanh", 4.0)):
                t = build_table(fn, method, in_fmt=q.preact, out_fmt=q.nonlin, segments=segments, range_real=rng,
                                coef_bits=18, rounding="half_up", order=order)
                row[f"{fn}_max"], row[f"{fn}_mean"] = t.errors()
                row["multipliers"] = t.multipliers
                row[f"{fn}_table_bits"] = t.table_bits
            rows.append(row)
    return rows


def lstm_figures() -> list[dict]:
    x = np.random.default_rng(11).uniform(-1, 1, (32, 25, MODEL["model"]["input_size"]))
    cases = [({"method": m, "taylor_order": o, "segments": s}, f"{variant_name(m, o)}, {s} entries")
             for m, o in VARIANTS for s in (16, 64)]
    cases += [({"method": "auto", "max_error": b}, f"auto, max_error {b:g}") for b in (2e-3, 5e-4)]
    rows = []
    for act, label in cases:
        design = build_design(parse_config({**MODEL, "activation": act}))
        y = run_golden_real(design, x)
        err = np.abs(y - float_lstm(design, x, quantized_weights=True))
        info = design.tables.describe()
        rows.append({"case": label, "method": info["method"] + (str(info.get("taylor_order", "")) if info["method"] == "taylor" else ""),
                     "segments": info["segments"], "multipliers_per_unit": info["multipliers_per_unit"],
                     "table_bits": sum(info[k]["table_bits"] for k in ("sigmoid", "tanh_gate", "tanh_cell")),
                     "max_abs_error": float(err.max()), "mean_abs_error": float(err.mean())})
    return rows


def main() -> None:
    tables, lstm = table_figures(), lstm_figures()
    print("| Method | Entries | Multipliers | Sigmoid max | Sigmoid mean | Tanh max | Tanh mean | Table bits (sigmoid + tanh) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in tables:
        print(f"| {r['method']} | {r['segments']} | {r['multipliers']} | {r['sigmoid_max']:.2e} | {r['sigmoid_mean']:.2e} "
              f"| {r['tanh_max']:.2e} | {r['tanh_mean']:.2e} | {r['sigmoid_table_bits'] + r['tanh_table_bits']} |")
    print()
    print("| Activations | Method | Entries | Multipliers per unit | Table bits (3 tables) | LSTM max abs error | Mean |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in lstm:
        print(f"| {r['case']} | {r['method']} | {r['segments']} | {r['multipliers_per_unit']} | {r['table_bits']} "
              f"| {r['max_abs_error']:.2e} | {r['mean_abs_error']:.2e} |")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"tables": tables, "lstm": lstm}, indent=2) + "\n")


if __name__ == "__main__":
    main()
