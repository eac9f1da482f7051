"""Calibration of the analytical resource model (lstm_hw.synth.estimate) against Yosys, design by design.

    nice -n 10 python benchmarks/estimate.py [--only NAME ...] [--work DIR] [--synth-only | --table | --fit]

For every design of :data:`CASES` (overrides of the embedded default config) it
generates the Verilog and reuses the ``lstm-hw report`` figures stored in
benchmarks/results/estimate.json when they synthesized byte-identical Verilog
(:func:`lstm_hw.synth.report.verilog_digest`); otherwise it synthesizes the
design with Yosys (:func:`lstm_hw.synth.report.build_report`, one at a time).
It stores the Yosys counts, the LUT and FF of each unit of the netlist and the
model's estimate, and prints the Markdown table of model against Yosys that
docs/measurements.md shows, each LUT and FF error also with the design left
out of the fit (:func:`left_out_fits`). ``--table`` prints the table from the
stored results without generating or synthesizing anything; ``--fit`` prints
the logic coefficients (:data:`lstm_hw.synth.estimate.LOGIC`) that the stored
results give; ``--synth-only`` stops after the synthesis; ``--work`` keeps
each Yosys run (its netlist, log and sources) in a folder of that directory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path

from lstm_hw.config.schema import parse_config
from lstm_hw.model.design import build_design
from lstm_hw.synth.report import build_report, verilog_digest
from lstm_hw.synth.yosys import _FF_INVERTIBLE as FF_INVERTIBLE
from lstm_hw.synth.yosys import FLIP_FLOPS, LUTS_PER_LUTRAM, SRLS

from suite import load_results

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "estimate.json"
#: The resources compared, as report's counts name them.
KEYS = ("dsps", "bram36", "luts", "ffs")

CASES = {
    "default": {},
    "w4 a8": {"quant": {"weight": {"bits": 4, "frac": 3}, "activation": {"bits": 8, "frac": 5}}},
    "w12 dense": {"quant": {"weight": {"bits": 12, "frac": 10}}, "sparsity": {"density": 1.0}},
    "unstructured d0.25": {"model": {"input_size": 16, "hidden_size": 32, "num_layers": 1},
                           "sparsity": {"density": 0.25, "pattern": "unstructured"}},
    "banks8 rows2": {"model": {"input_size": 16, "hidden_size": 16, "num_layers": 1},
                     "sparsity": {"banks": 8}, "hardware": {"rows": 2}},
    "rows8 chain2": {"model": {"input_size": 8, "hidden_size": 24, "num_layers": 1},
                     "hardware": {"rows": 8, "mac_chain": 2}},
    "chain1": {"model": {"num_layers": 1}, "hardware": {"mac_chain": 1}},
    "lut64": {"model": {"num_layers": 1}, "activation": {"method": "lut", "segments": 64}},
    "quadratic16": {"model": {"num_layers": 1}, "activation": {"method": "quadratic", "segments": 16}},
    "taylor3 act12": {"model": {"num_layers": 1}, "quant": {"activation": {"bits": 12, "frac": 9}},
                      "activation": {"method": "taylor", "taylor_order": 3, "segments": 16}},
    "io_lanes4": {"model": {"input_size": 16, "hidden_size": 16, "num_layers": 1},
                  "hardware": {"io_lanes": 4}},
    "ram": {"hardware": {"weights": "ram"}},
    "head (digits)": {"model": {"input_size": 8, "hidden_size": 32, "num_layers": 1, "return_sequences": False,
                                "output_size": 10},
                      "sparsity": {"density": 0.25, "head_density": 0.5}},
    "I64 H64": {"model": {"input_size": 64, "hidden_size": 64, "num_layers": 1}},
    "I32 H128 banks8 d0.25": {"model": {"input_size": 32, "hidden_size": 128, "num_layers": 1},
                              "sparsity": {"banks": 8, "density": 0.25}},
    "rows1 H64": {"model": {"input_size": 16, "hidden_size": 64, "num_layers": 1}, "hardware": {"rows": 1}},
    "ram I64 H64": {"model": {"input_size": 64, "hidden_size": 64, "num_layers": 1},
                    "hardware": {"weights": "ram"}},
    "w20 a20": {"model": {"num_layers": 1}, "quant": {"weight": {"bits": 20, "frac": 16},
                                                      "activation": {"bits": 20, "frac": 14}}},
    "I128 H256": {"model": {"input_size": 128, "hidden_size": 256, "num_layers": 1}},
    "w24 a24": {"model": {"input_size": 8, "hidden_size": 16, "num_layers": 1},
                "quant": {"weight": {"bits": 24, "frac": 20}, "activation": {"bits": 24, "frac": 18}}},
    "ram sum_bits 24": {"model": {"input_size": 16, "hidden_size": 32, "num_layers": 1},
                        "hardware": {"weights": "ram", "sum_bits": 24}},
    "I64 H64 banks2 rows8": {"model": {"input_size": 64, "hidden_size": 64, "num_layers": 1},
                             "sparsity": {"banks": 2}, "hardware": {"rows": 8}},
    "mixed: L2 head io2 banks8": {"model": {"input_size": 16, "hidden_size": 32, "num_layers": 2, "output_size": 5},
                                  "sparsity": {"banks": 8, "density": 0.125, "head_density": 0.25},
                                  "activation": {"segments": 64}, "hardware": {"io_lanes": 2}},
    "mixed: ram quadratic chain2": {"model": {"input_size": 12, "hidden_size": 24, "num_layers": 1},
                                    "sparsity": {"density": 0.25},
                                    "activation": {"method": "quadratic"},
                                    "hardware": {"rows": 2, "mac_chain": 2, "weights": "ram"}},
    "mixed: taylor2 w6": {"model": {"input_size": 10, "hidden_size": 16, "num_layers": 1},
                          "quant": {"weight": {"bits": 6, "frac": 4}},
                          "activation": {"method": "taylor", "taylor_order": 2, "segments": 8}},
    "mixed: dense w16 banks8 rows8 chain8": {"model": {"input_size": 24, "hidden_size": 32, "num_layers": 1},
                                             "quant": {"weight": {"bits": 16, "frac": 12}},
                                             "sparsity": {"banks": 8, "density": 1.0},
                                             "hardware": {"rows": 8, "mac_chain": 8}},
}


def source_state() -> str:
    """The commit measured, and whether the generator's sources differed from it."""
    def git(*a):
        return subprocess.run(["git", *a], cwd=HERE.parent, capture_output=True, text=True).stdout.strip()
    dirty = git("status", "--porcelain", "--", "lstm_hw", "generators")
    return git("rev-parse", "--short", "HEAD") + (" with uncommitted generator changes" if dirty else "")


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def unit_counts(netlist_path: Path, depth: int = 4) -> dict:
    """LUTs (logic; LUTRAM and SRL apart) and FFs of each unit of a netlist, by the first ``depth`` names of the
    instance path of the public net they drive (a LUT whose output has no public name: the unit of the
    nearest cell it feeds that has one)."""
    data = json.loads(netlist_path.read_text())
    module = max(data["modules"].values(), key=lambda m: len(m.get("cells", {})))
    names = {}
    for net, info in module.get("netnames", {}).items():
        if not info.get("hide_name"):
            for bit in info["bits"]:
                if isinstance(bit, int) and (bit not in names or len(net) < len(names[bit])):
                    names[bit] = net
    sinks: dict = {}
    outputs: dict = {}
    pins: dict = {}                     # net bit -> (cell type, port) of its sinks
    for name, cell in module["cells"].items():
        for port, direction in cell["port_directions"].items():
            for bit in cell["connections"][port]:
                if not isinstance(bit, int):
                    continue
                if direction == "input":
                    sinks.setdefault(bit, []).append(name)
                    pins.setdefault(bit, []).append((cell["type"], port))
                else:
                    outputs.setdefault(name, []).append(bit)

    def lut(cell: dict) -> bool:
        """A LUT as report counts it: LUT1-LUT6, or an INV feeding anything but flip-flop pins."""
        if cell["type"] != "INV":
            return cell["type"].startswith("LUT")
        return not all(t in FLIP_FLOPS and p in FF_INVERTIBLE for bit in cell["connections"]["O"]
                       for t, p in pins.get(bit, []))

    def unit_of(net: str) -> str:
        parts = net.split(".")[:-1]
        return ".".join(parts[:depth]) or "(top)"

    memo: dict = {}

    def unit(cell: str, seen=()) -> str:
        if cell in memo:
            return memo[cell]
        for bit in outputs.get(cell, []):
            if bit in names:
                memo[cell] = unit_of(names[bit])
                return memo[cell]
        found = "(unnamed)"
        if len(seen) < 8:
            for bit in outputs.get(cell, []):
                for nxt in sinks.get(bit, []):
                    if nxt not in seen:
                        found = unit(nxt, seen + (cell,))
                        if found != "(unnamed)":
                            break
                if found != "(unnamed)":
                    break
        memo[cell] = found
        return found

    out: dict = {}
    for name, cell in module["cells"].items():
        t = cell["type"]
        counts = {"luts": int(lut(cell)), "lutram": LUTS_PER_LUTRAM.get(t, 0) + SRLS.get(t, 0),
                  "ffs": int(t in FLIP_FLOPS)}
        if any(counts.values()):
            out.setdefault(unit(name), Counter()).update(counts)
    return {u: dict(c) for u, c in sorted(out.items())}


def category(unit: str) -> str:
    """The unit of the logic model (:data:`lstm_hw.synth.estimate.CATEGORIES`) that a netlist unit (an instance
    path, :func:`unit_counts`) belongs to."""
    parts = unit.split(".")
    if not (parts[0].startswith("layer") or parts[0] == "head"):
        return "top"
    if len(parts) == 1:
        return "layer"
    if parts[1] == "cells":
        return "activation" if len(parts) >= 4 else "cell"
    if parts[1] == "mvm":
        return {"acc": "accumulator", "store": "vector"}.get(parts[2] if len(parts) > 2 else "", "matrix")
    return "layer"


def save(rows: dict) -> None:
    """Write *rows* into :data:`RESULTS` over what it holds now, in the order of :data:`CASES`."""
    merged = {**load_results(RESULTS), **rows}
    RESULTS.write_text(json.dumps({
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "results": [merged[n] for n in CASES if n in merged]}, indent=2) + "\n")


def run_case(name: str, overrides: dict, previous: dict, work: Path) -> dict:
    from lstm_hw.emit.files import design_files
    design = build_design(parse_config(overrides))
    files = design_files(design)
    meta = json.loads(files[f"{design.config.hardware.top}.json"])
    digest = verilog_digest({source: files[source] for source in meta["sources"]})
    old = previous.get(name)
    if old and old.get("overrides") == overrides and old.get("yosys", {}).get("verilog_sha256") == digest:
        say(f"{name}: synthesized Verilog unchanged, figures reused")
        yosys = old["yosys"]
    else:
        say(f"{name}: synthesize (lstm-hw report)")
        keep = work / name.replace(" ", "_")
        keep.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        rep = build_report(design, files=files, keep_dir=keep)
        yosys = {**{k: rep["resources"][k] for k in KEYS}, "lut_logic": rep["resources"]["lut_logic"],
                 "lutram_luts": rep["resources"]["lutram_luts"], "ramb18": rep["resources"]["ramb18"],
                 "ramb36": rep["resources"]["ramb36"], "fmax_mhz": rep["timing"]["estimated_fmax_mhz"],
                 "seconds": round(time.perf_counter() - t0), "tool": rep["synthesis"]["tool"],
                 "verilog_sha256": digest, "date": date.today().isoformat(), "commit": source_state(),
                 "units": unit_counts(keep / "yosys_netlist.json")}
        say(f"{name}: {yosys['dsps']} DSP, {yosys['bram36']:g} BRAM36, {yosys['luts']} LUT, {yosys['ffs']} FF "
            f"in {yosys['seconds']} s")
    return {"case": name, "overrides": overrides, "macs": meta["macs"], "yosys": yosys}


def features(row: dict) -> dict:
    """The logic model's features of the row's design (:func:`lstm_hw.synth.estimate.unit_features`)."""
    from lstm_hw.synth.estimate import design_units, unit_features
    return unit_features(design_units(build_design(parse_config(row["overrides"]))))


def with_estimate(row: dict, left_out: dict) -> dict:
    """The row with the model's figures for its design, and its logic LUTs and FFs with ``left_out``'s
    coefficients (a fit on the other designs)."""
    from lstm_hw.synth.estimate import estimate, logic_counts
    t0 = time.perf_counter()
    est = estimate(build_design(parse_config(row["overrides"])))
    ms = round(1000 * (time.perf_counter() - t0), 1)
    logic = logic_counts(features(row), left_out)
    return {**row, "estimate": est, "estimate_ms": ms,
            "left_out": {"luts": round(logic["luts"]) + est["lutram_luts"], "ffs": round(logic["ffs"])}}


def error(est, syn) -> float:
    return 100.0 * (est - syn) / syn


def table(rows: list[dict]) -> str:
    lines = ["| Design | MACs | DSP48E1 model / Yosys | BRAM36 model / Yosys | LUT model / Yosys (error; left out) "
             "| FF model / Yosys (error; left out) | fmax model / Yosys MHz |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        e, y, loo = r["estimate"], r["yosys"], r["left_out"]

        def exact(key, fmt="d"):
            mark = "" if e[key] == y[key] else " ✗"
            return f"{e[key]:{fmt}} / {y[key]:{fmt}}{mark}"

        def rel(key):
            err, out = error(e[key], y[key]), error(loo[key], y[key])
            miss = " ✗" if max(abs(err), abs(out)) > 15 else ""
            return f"{e[key]:,} / {y[key]:,} ({err:+.1f}%; {out:+.1f}%){miss}"
        lines.append(f"| {r['case']} | {r['macs']} | {exact('dsps')} | {exact('bram36', 'g')} | {rel('luts')} "
                     f"| {rel('ffs')} | {e['fmax_mhz']:.0f} / {y['fmax_mhz']:.0f} |")
    return "\n".join(lines)


def category_counts(units: dict) -> dict:
    """Yosys's logic LUTs and FFs per unit of the logic model (:func:`category`)."""
    out: dict = {}
    for unit, counts in units.items():
        c = out.setdefault(category(unit), Counter())
        c.update({"luts": counts["luts"], "ffs": counts["ffs"]})
    return out


def fit(rows: list[dict], feats: list[dict]) -> dict:
    """:data:`lstm_hw.synth.estimate.LOGIC` fitted on ``rows`` (their designs' :func:`features` in ``feats``):
    per resource and unit, the non-negative coefficients of its features that best give Yosys's counts of
    that unit over the designs (least squares on errors relative to each design's total, so that small
    designs weigh as much as large ones)."""
    import numpy as np
    from scipy.optimize import nnls
    from lstm_hw.synth.estimate import CATEGORIES
    measured = [category_counts(r["yosys"]["units"]) for r in rows]
    out = {}
    for res in ("luts", "ffs"):
        out[res] = {}
        for cat in CATEGORIES:
            names = sorted({k for f in feats for k in f[cat]})
            x = np.array([[f[cat][k] for k in names] for f in feats], dtype=float)
            y = np.array([m.get(cat, {}).get(res, 0) for m in measured], dtype=float)
            w = 1.0 / np.maximum(np.array([r["yosys"][res] for r in rows], dtype=float), 1.0)
            coef, _ = nnls(x * w[:, None], y * w)
            out[res][cat] = {k: round(float(c), 4) for k, c in zip(names, coef)}
    return out


def left_out_fits(rows: list[dict], feats: list[dict]) -> list[dict]:
    """For each row, :func:`fit` on every other row."""
    return [fit(rows[:i] + rows[i + 1:], feats[:i] + feats[i + 1:]) for i in range(len(rows))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", choices=list(CASES), help="designs to run (default: all)")
    ap.add_argument("--table", action="store_true", help="print the table of the stored results only")
    ap.add_argument("--fit", action="store_true",
                    help="print the logic model's coefficients (lstm_hw.synth.estimate.LOGIC) fitted on the stored "
                         "results")
    ap.add_argument("--synth-only", action="store_true", help="synthesize, and leave the model and table out")
    ap.add_argument("--work", type=Path, help="keep the Yosys runs here (default: a temp dir)")
    args = ap.parse_args()
    previous = load_results(RESULTS)
    if args.fit:
        rows = [previous[n] for n in CASES if n in previous]
        print(json.dumps(fit(rows, [features(r) for r in rows]), indent=4))
        return
    if not args.table:
        with tempfile.TemporaryDirectory(prefix="lstm-hw-estimate-") as tmp:
            work = args.work or Path(tmp)
            for name, overrides in CASES.items():
                if args.only and name not in args.only:
                    continue
                previous[name] = run_case(name, overrides, previous, work)
                save({name: previous[name]})
    if args.synth_only:
        return
    rows = [previous[n] for n in CASES if n in previous]
    rows = [with_estimate(r, coefs) for r, coefs in zip(rows, left_out_fits(rows, [features(r) for r in rows]))]
    save({r["case"]: r for r in rows})
    print(table(rows))


if __name__ == "__main__":
    main()
