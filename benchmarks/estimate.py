"""Calibration of the analytical resource model (lstm_hw.synth.estimate) against Yosys, design by design.

    nice -n 10 python benchmarks/estimate.py [--only NAME ...] [--table]

For every design of :data:`CASES` (overrides of the embedded default config) it
generates the Verilog and reuses the ``lstm-hw report`` figures stored in
benchmarks/results/estimate.json when they synthesized byte-identical Verilog
(:func:`lstm_hw.synth.report.verilog_digest`); otherwise it synthesizes the
design with Yosys (:func:`lstm_hw.synth.report.build_report`, one at a time).
It stores the Yosys counts, the LUT and FF of each unit of the netlist and the
model's estimate, and prints the Markdown table of model against Yosys that
docs/measurements.md shows. ``--table`` prints the table from the stored
results without generating or synthesizing anything.
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
from lstm_hw.synth.yosys import FLIP_FLOPS, LUTS_PER_LUTRAM, SRLS, cell_hierarchy

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
}


def source_state() -> str:
    """The commit measured, and whether the generator's sources differed from it."""
    def git(*a):
        return subprocess.run(["git", *a], cwd=HERE.parent, capture_output=True, text=True).stdout.strip()
    dirty = git("status", "--porcelain", "--", "lstm_hw", "generators")
    return git("rev-parse", "--short", "HEAD") + (" with uncommitted generator changes" if dirty else "")


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def unit_counts(netlist_path: Path, depth: int = 3) -> dict:
    """LUTs (logic, LUTRAM and SRL) and FFs of each unit of a netlist, by its instance path's first ``depth`` names."""
    cells = json.loads(netlist_path.read_text())
    module = next(iter(m for m in cells["modules"].values() if m.get("attributes", {}).get("top")), None)
    if module is None:
        module = max(cells["modules"].values(), key=lambda m: len(m.get("cells", {})))
    out: dict = {}
    for name, cell in module["cells"].items():
        t = cell["type"]
        luts = (1 if t.startswith("LUT") else LUTS_PER_LUTRAM.get(t, 0) + SRLS.get(t, 0))
        ffs = 1 if t in FLIP_FLOPS else 0
        if not luts and not ffs:
            continue
        unit = ".".join(cell_hierarchy(name)[:depth]) or "(top)"
        c = out.setdefault(unit, Counter())
        c["luts"] += luts
        c["ffs"] += ffs
    return {unit: dict(c) for unit, c in sorted(out.items())}


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


def with_estimate(row: dict) -> dict:
    """The row with the model's figures for its design, as the model gives them now."""
    from lstm_hw.synth.estimate import estimate
    t0 = time.perf_counter()
    est = estimate(build_design(parse_config(row["overrides"])))
    return {**row, "estimate": est, "estimate_ms": round(1000 * (time.perf_counter() - t0), 1)}


def error(est, syn) -> float | None:
    return None if not syn else 100.0 * (est - syn) / syn


def table(rows: list[dict]) -> str:
    lines = ["| Design | MACs | DSP48E1 model / Yosys | BRAM36 model / Yosys | LUT model / Yosys (error) "
             "| FF model / Yosys (error) | fmax model / Yosys MHz |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        e, y = r["estimate"], r["yosys"]

        def exact(key, fmt="d"):
            mark = "" if e[key] == y[key] else " ✗"
            return f"{e[key]:{fmt}} / {y[key]:{fmt}}{mark}"

        def rel(key):
            err = error(e[key], y[key])
            return f"{e[key]:,} / {y[key]:,} ({err:+.1f}%{' ✗' if abs(err) > 15 else ''})"
        lines.append(f"| {r['case']} | {r['macs']} | {exact('dsps')} | {exact('bram36', 'g')} | {rel('luts')} "
                     f"| {rel('ffs')} | {e['fmax_mhz']:.0f} / {y['fmax_mhz']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", choices=list(CASES), help="designs to run (default: all)")
    ap.add_argument("--table", action="store_true", help="print the table of the stored results only")
    ap.add_argument("--synth-only", action="store_true", help="synthesize, and leave the model and table out")
    ap.add_argument("--work", type=Path, help="keep the Yosys runs here (default: a temp dir)")
    args = ap.parse_args()
    previous = load_results(RESULTS)
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
    rows = [with_estimate(previous[n]) for n in CASES if n in previous]
    save({r["case"]: r for r in rows})
    print(table(rows))


if __name__ == "__main__":
    main()
