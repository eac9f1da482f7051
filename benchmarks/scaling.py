"""Scaling with hidden size: generation time and cycles per timestep, as a plot (docs/scaling.png).

    python benchmarks/scaling.py [--hidden 16 32 ... 1024] [--sim-max-hidden 256] [--steps 6]

One layer, input = hidden, density 0.125, 8 banks x 8 rows (64 MACs), the
default formats. For each hidden size: ``lstm-hw generate`` in a child
process (wall time and peak memory), the metadata's ideal and predicted
cycles per timestep, and, up to ``--sim-max-hidden``, the cycles per
timestep measured at steady state under Verilator (bit-exact against the
golden model). Writes benchmarks/results/scaling.json and docs/scaling.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from lstm_hw.compression.compress import config_toml
from lstm_hw.config.schema import parse_config
from lstm_hw.model.design import build_design

from measure import generate_timed, random_codes, simulate_timed, steady_cycles_per_step

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "scaling.json"
PLOT = HERE.parent / "docs" / "scaling.png"
DENSITY, BANKS, ROWS = 0.125, 8, 8


def overrides(hidden: int) -> dict:
    return {"model": {"input_size": hidden, "hidden_size": hidden, "num_layers": 1},
            "sparsity": {"banks": BANKS, "density": DENSITY}, "hardware": {"rows": ROWS}}


def measure_point(hidden: int, simulate: bool, steps: int, work: Path) -> dict:
    config = parse_config(overrides(hidden))
    path = work / f"h{hidden}.toml"
    path.write_text(config_toml(config))
    gen = generate_timed(path, work / f"h{hidden}")
    meta = json.loads((work / f"h{hidden}" / f"{config.hardware.top}.json").read_text())
    row = {"hidden_size": hidden, "input_size": hidden, **gen, "macs": meta["macs"],
           "ideal_cycles_per_timestep": meta["ideal_cycles_per_timestep"],
           "predicted_cycles_per_timestep": meta["cycles_per_timestep"]}
    if simulate:
        design = build_design(config)
        sim = simulate_timed(design, random_codes(design, 1, steps), build_dir=work / f"h{hidden}-sim")
        if not sim["passed"]:
            raise SystemExit(f"hidden {hidden}: the RTL differs from the golden model")
        row["measured_cycles_per_timestep"] = steady_cycles_per_step(sim["result"].output_cycles, hidden, steps)
        row["verilator_build_s"] = sim["build_s"]
    return row


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = [r["hidden_size"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax1.plot(h, [r["generation_s"] for r in rows], "o-", label="generation time (s)")
    ax1.set_xscale("log", base=2)
    ax1.set_yscale("log")
    ax1.set_xlabel("hidden size (input = hidden)")
    ax1.set_ylabel("lstm-hw generate, wall seconds")
    ax1.grid(True, which="both", alpha=0.3)
    mem = ax1.twinx()
    mem.plot(h, [r["generation_peak_rss_mib"] for r in rows], "s--", color="tab:gray", label="peak memory (MiB)")
    mem.set_ylabel("peak memory, MiB")
    lines = ax1.get_lines() + mem.get_lines()
    ax1.legend(lines, [line.get_label() for line in lines], loc="upper left")
    ax1.set_title("Generation")

    ax2.plot(h, [r["ideal_cycles_per_timestep"] for r in rows], "-", label="ideal: nnz / MACs")
    ax2.plot(h, [r["predicted_cycles_per_timestep"] for r in rows], "--", label="metadata-predicted")
    sim = [r for r in rows if "measured_cycles_per_timestep" in r]
    ax2.plot([r["hidden_size"] for r in sim], [r["measured_cycles_per_timestep"] for r in sim], "o",
             label="measured in RTL simulation (Verilator)")
    ax2.set_xscale("log", base=2)
    ax2.set_yscale("log")
    ax2.set_xlabel("hidden size (input = hidden)")
    ax2.set_ylabel("cycles per timestep")
    ax2.grid(True, which="both", alpha=0.3)
    ax2.legend(loc="upper left")
    ax2.set_title(f"Cycles per timestep, {BANKS * ROWS} MACs")
    fig.suptitle(f"1 layer, density {DENSITY}, {BANKS} banks x {ROWS} rows, 8-bit weights")
    fig.tight_layout()
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, nargs="*", default=[16, 32, 64, 128, 256, 512, 1024])
    ap.add_argument("--sim-max-hidden", type=int, default=256, help="simulate up to this hidden size")
    ap.add_argument("--steps", type=int, default=6,
                    help="timesteps per simulation (at least 2; 6 gives an even number of intervals after the "
                         "first, since a stream-bound design may alternate between two periods)")
    ap.add_argument("--plot-only", action="store_true", help="redraw the plot from scaling.json")
    args = ap.parse_args()
    if args.plot_only:
        plot(json.loads(RESULTS.read_text())["results"], PLOT)
        return
    os.environ["CCACHE_DISABLE"] = "1"
    rows = []
    with tempfile.TemporaryDirectory(prefix="lstm-hw-scaling-") as tmp:
        for hidden in args.hidden:
            print(f"[{time.strftime('%H:%M:%S')}] hidden {hidden}", file=sys.stderr, flush=True)
            rows.append(measure_point(hidden, hidden <= args.sim_max_hidden, args.steps, Path(tmp)))
            r = rows[-1]
            print(f"    generated in {r['generation_s']} s ({r['generation_peak_rss_mib']} MiB); cycles/step ideal "
                  f"{r['ideal_cycles_per_timestep']:g}, predicted {r['predicted_cycles_per_timestep']}, measured "
                  f"{r.get('measured_cycles_per_timestep', '—')}", file=sys.stderr, flush=True)
    # Sizes not run this time keep their earlier figures.
    kept = [r for r in (json.loads(RESULTS.read_text())["results"] if RESULTS.exists() else [])
            if r["hidden_size"] not in args.hidden]
    rows = sorted(kept + rows, key=lambda r: r["hidden_size"])
    RESULTS.write_text(json.dumps({"density": DENSITY, "banks": BANKS, "rows": ROWS, "results": rows}, indent=2) + "\n")
    plot(rows, PLOT)
    print(f"wrote {RESULTS} and {PLOT}", file=sys.stderr)


if __name__ == "__main__":
    main()
