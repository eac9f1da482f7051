"""The benchmark suite: one table of speed, utilisation, resources and throughput for six designs.

    python benchmarks/suite.py [--only NAME ...] [--no-sim] [--no-golden] [--no-lint]
                               [--synth] [--synth-timeout S] [--report-json NAME=FILE ...]

Designs: ``tiny`` (the embedded default), ``digits`` (the shape of
examples/digits.py), ``hidden64`` and ``hidden256`` (the cases of
benchmarks/report.py), ``ese`` (examples/ese_timit.toml) and ``koios`` (the
shape and numbers of VTR's koios ``lstm.v``: I100 H64, dense, Q4.12, 41 x 16
= 656 MACs, as many as its multipliers). For each:

1. ``lstm-hw generate`` in a child process: wall time and peak memory.
2. Verilator lint of the generated Verilog with the reviewed waivers.
3. The golden model on a batch of sequences, on one core (best run).
4. The generated Verilog under Verilator against the golden model, bit-exact:
   the build time, the simulation speed, and the cycles per timestep at
   steady state from the handshake stamps (benchmarks/measure.py).
5. Resources from Yosys (``lstm-hw report``): taken from
   benchmarks/results/report.json for the designs report.py covers, from an
   earlier run of this suite on the same config, from ``--report-json``
   (the output of ``lstm-hw report --json``), or, with ``--synth``,
   synthesized here (killed after ``--synth-timeout`` seconds).
6. Throughput at 200 MHz (``lstm_hw.synth.report.throughput``) with the measured
   cycles per timestep (the metadata's prediction where not simulated).

Prints stage lines on stderr, the Markdown table on stdout, and writes
benchmarks/results/suite.json (designs left out keep their previous figures).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path

from lstm_hw.compression.compress import config_toml
from lstm_hw.config.schema import load_config, parse_config
from lstm_hw.model.design import build_design
from lstm_hw.sim.tools import verilator_lint
from lstm_hw.synth.report import throughput, verilog_digest

import report as report_bench
from measure import generate_timed, golden_speed, random_codes, simulate_timed, steady_cycles_per_step

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "suite.json"
REPORT_RESULTS = HERE / "results" / "report.json"
#: benchmarks/weights.py's results, whose "rom" syntheses are this suite's designs.
WEIGHTS_RESULTS = (HERE / "results" / "weights_fit.json", HERE / "results" / "weights.json")
WAIVER = Path(str(resources.files("lstm_hw.constraints").joinpath("amaranth.vlt")))
CLOCK_MHZ = 200.0


@dataclass(frozen=True)
class Case:
    """One design of the suite and how much of it to run."""

    config: dict | Path          # overrides of the default config, or a TOML file
    sequences: int               # simulated in RTL
    steps: int                   # timesteps per simulated sequence
    golden_batch: int            # sequences per golden-model call
    golden_steps: int
    report_case: str | None = None   # the benchmarks/report.py case with the same config


CASES = {
    "tiny": Case({}, 2, 16, 64, 16, report_case="default (I5 H12 L2)"),
    "digits": Case({"model": {"input_size": 8, "hidden_size": 32, "num_layers": 1, "return_sequences": False,
                              "output_size": 10},
                    "sparsity": {"banks": 4, "density": 0.25}}, 4, 8, 64, 8),
    "hidden64": Case(report_bench.CASES["I64 H64"], 1, 8, 64, 16, report_case="I64 H64"),
    "hidden256": Case(report_bench.CASES["I128 H256"], 1, 4, 64, 16, report_case="I128 H256"),
    "ese": Case(HERE.parent / "examples" / "ese_timit.toml", 1, 3, 8, 4),
    # VTR koios lstm.v's shape and numbers (I100 H64, dense, Q4.12, 656 multipliers) for logic per MAC;
    # chains of 6 DSP48E1s (7 per lane instead of 11 at the default 4: a cycle more latency, 4 LUTs per MAC less)
    "koios": Case({"model": {"input_size": 100, "hidden_size": 64, "num_layers": 1},
                   "quant": {"weight": {"bits": 16, "frac": 12}},
                   "sparsity": {"banks": 41, "density": 1.0},
                   "hardware": {"rows": 16, "part": "xc7k325tffg900-2", "io_lanes": 4, "mac_chain": 6}},
                  1, 8, 64, 16),
}


def source_state() -> str:
    """The commit measured, and whether the generator's sources differed from it."""
    def git(*a):
        return subprocess.run(["git", *a], cwd=HERE.parent, capture_output=True, text=True).stdout.strip()
    dirty = git("status", "--porcelain", "--", "lstm_hw", "generators")
    return git("rev-parse", "--short", "HEAD") + (" with uncommitted generator changes" if dirty else "")


def say(name: str, text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {text}", file=sys.stderr, flush=True)


def case_config(case: Case):
    return load_config(case.config) if isinstance(case.config, Path) else parse_config(case.config)


def synth_child(config_path: Path, timeout: float) -> dict:
    """``lstm-hw report --json`` in a child process group, killed after *timeout* s; figures or the reason."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "lstm_hw", "report", str(config_path), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"synthesized": False, "reason": f"Yosys did not finish within {timeout:g} s", "seconds": timeout}
    seconds = round(time.perf_counter() - t0)
    if proc.returncode != 0:
        return {"synthesized": False, "seconds": seconds,
                "reason": f"lstm-hw report failed: {err.decode(errors='replace').strip().splitlines()[-1:]}"}
    return {"synthesized": True, "source": "benchmarks/suite.py --synth", "seconds": seconds,
            **synth_figures(json.loads(out))}


def synth_figures(rep: dict) -> dict:
    """The figures of an ``lstm-hw report`` the table uses."""
    res = rep["resources"]
    return {"dsp": rep["dsp"]["total"], "dsp_macs": rep["dsp"]["mac_arrays"], "lut": res["luts"], "ff": res["ffs"],
            "bram36": res["bram36"], "tool": rep["synthesis"]["tool"],
            "synth_cycles_per_timestep": rep["performance"]["cycles_per_timestep"],
            "verilog_sha256": rep["synthesis"].get("verilog_sha256")}


def report_row(report_case: str | None) -> dict | None:
    """benchmarks/report.py's row of ``report_case`` (:data:`REPORT_RESULTS`), or None."""
    if not report_case or not REPORT_RESULTS.exists():
        return None
    return {r["case"]: r for r in json.loads(REPORT_RESULTS.read_text())}.get(report_case)


def known_synthesis(name: str, case: Case, toml: str, meta: dict, previous: dict, given: dict,
                    synth: bool = False, *, verilog_sha256: str) -> dict | None:
    """Synthesis figures made elsewhere for this exact design, or None.

    A figure counts only if its design had this config (report.py's cases and
    weights.py's "rom" designs are the same configs; earlier suite rows carry their config) and the same
    MACs, and it is current only if it synthesized the very Verilog generated
    now (*verilog_sha256*, :func:`lstm_hw.synth.report.verilog_digest`). Otherwise
    the generator changed since: without *synth* such a figure is returned
    marked ``stale`` (the table flags it, saying whether the schedule changed
    too), with *synth* it is not returned, so that the design is synthesized
    again.
    """
    candidates = []
    if name in given:
        rep = json.loads(Path(given[name]).read_text())
        candidates.append({"synthesized": True, "source": f"lstm-hw report --json ({given[name]})",
                           **synth_figures(rep)})
    row = report_row(case.report_case)
    if row is not None:
        candidates.append({"synthesized": True, "source": f"benchmarks/results/report.json ({case.report_case})",
                           "seconds": row.get("seconds"), **synth_figures(row)})
    for path in WEIGHTS_RESULTS:       # benchmarks/weights.py's "rom" design: this case's config
        rom = load_results(path).get(name, {}).get("rom", {})
        if "synthesis" in rom and name in CASES and toml == config_toml(case_config(CASES[name])):
            s = rom["synthesis"]
            candidates.append({"synthesized": True, "source": f"benchmarks/results/{path.name} (rom)",
                               "seconds": s.get("seconds"), "dsp": s["dsps"], "dsp_macs": s["dsp_macs"],
                               "lut": s["luts"], "ff": s["ffs"], "bram36": s["bram36"], "tool": s["tool"],
                               "synth_cycles_per_timestep": rom["cycles_per_timestep"],
                               "verilog_sha256": s["verilog_sha256"]})
    old = previous.get(name, {})
    if old.get("config_toml") == toml and old.get("synthesis", {}).get("synthesized"):
        candidates.append(old["synthesis"])
    same_macs = [c for c in candidates if c["dsp_macs"] == meta["macs"]]
    for cand in same_macs:
        if cand.get("verilog_sha256") == verilog_sha256:
            return cand
    if same_macs and not synth:
        cand = same_macs[0]
        if cand["synth_cycles_per_timestep"] != meta["cycles_per_timestep"]:
            why = (f"synthesized when the design took {cand['synth_cycles_per_timestep']}"
                   f" cycles per timestep (now {meta['cycles_per_timestep']})")
        else:
            why = "synthesized from other Verilog (same schedule)"
        return {**cand, "stale": why}
    return None


def run_case(name: str, case: Case, args, previous: dict, work: Path) -> dict:
    config = case_config(case)
    toml = config_toml(config)
    config_path = work / f"{name}.toml"
    config_path.write_text(toml)
    model = config.model
    row: dict = {"case": name, "date": date.today().isoformat(), "commit": source_state(), "config_toml": toml,
                 "input_size": model.input_size, "hidden_size": model.hidden_size, "num_layers": model.num_layers,
                 "density": config.sparsity.density, "banks": config.sparsity.banks, "rows": config.hardware.rows,
                 "weight_bits": config.quant.weight.bits, "part": config.hardware.part}

    say(name, "generate (lstm-hw generate, child process)")
    out = work / name
    row.update(generate_timed(config_path, out))
    top = config.hardware.top
    meta = json.loads((out / f"{top}.json").read_text())
    verilog = [out / source for source in meta["sources"]]
    row.update(verilog_mib=round(sum(v.stat().st_size for v in verilog) / 2**20, 1), macs=meta["macs"],
               ideal_cycles_per_timestep=meta["ideal_cycles_per_timestep"],
               predicted_cycles_per_timestep=meta["cycles_per_timestep"], layers=meta["layers"])
    say(name, f"generated in {row['generation_s']} s, peak {row['generation_peak_rss_mib']} MiB, "
              f"{row['verilog_mib']} MiB of Verilog")

    if not args.no_lint:
        say(name, "verilator --lint-only -Wall with the waivers")
        t0 = time.perf_counter()
        warnings = verilator_lint(verilog, top, WAIVER, wall=True)
        row.update(lint_warnings=len(warnings), lint_s=round(time.perf_counter() - t0, 1))
        if warnings:
            say(name, f"lint: {len(warnings)} warnings, first: {warnings[0]}")

    design = build_design(config)
    if not args.no_golden:
        say(name, f"golden model, {case.golden_batch} x {case.golden_steps} steps, one core")
        row.update(golden_speed(design, batch=case.golden_batch, steps=case.golden_steps))
    elif previous.get(name, {}).get("config_toml") == toml:   # the same model: keep its golden figures
        row.update({k: v for k, v in previous[name].items() if k.startswith("golden_")})

    if not args.no_sim:
        say(name, f"Verilator: {case.sequences} x {case.steps} steps against the golden model")
        x = random_codes(design, case.sequences, case.steps)
        sim = simulate_timed(design, x, build_dir=work / f"{name}-sim")
        res = sim.pop("result")
        if res.meta != meta:   # the simulated design is built in this process, the generated one in a child
            raise SystemExit(f"{name}: the generator changed while the suite ran (the simulated design's "
                             "metadata differs from the generated one's); run again")
        if not sim["passed"]:
            raise SystemExit(f"{name}: the RTL differs from the golden model ({sim['mismatches']} mismatches)")
        # Per-step outputs time the steps; without them (return_sequences = false) the outputs of
        # back-to-back sequences do, divided by their steps. (The inputs would not: the loader
        # runs up to two steps ahead of the compute, so over a short sequence they come too fast.)
        beats = meta["output"]["elements_per_timestep"]
        if model.return_sequences:
            measured = steady_cycles_per_step(res.output_cycles, beats, case.steps)
        else:
            measured = steady_cycles_per_step(res.output_cycles, beats, case.sequences) / case.steps
        row.update(verilator_build_s=sim["build_s"], verilator_run_s=sim["run_s"],
                   simulated_cycles=sim["simulated_cycles"], simulated_cycles_per_s=sim["cycles_per_s"],
                   verilator_timesteps_per_s=round(case.sequences * case.steps / sim["run_s"], 1),
                   bit_exact_outputs=int(res.output.size), measured_cycles_per_timestep=measured,
                   measured_from="output" if model.return_sequences else "sequence outputs")
        say(name, f"bit-exact; build {sim['build_s']} s, {measured:.1f} cycles/step "
                  f"(predicted {meta['cycles_per_timestep']}, ideal {meta['ideal_cycles_per_timestep']:g})")
    elif name in previous and previous[name].get("config_toml") == toml \
            and previous[name].get("predicted_cycles_per_timestep") == meta["cycles_per_timestep"]:
        keep = ("verilator_build_s", "verilator_run_s", "simulated_cycles", "simulated_cycles_per_s",
                "verilator_timesteps_per_s", "bit_exact_outputs", "measured_cycles_per_timestep", "measured_from")
        row.update({k: previous[name][k] for k in keep if k in previous[name]})

    digest = verilog_digest({source: (out / source).read_bytes() for source in meta["sources"]})
    synth = known_synthesis(name, case, toml, meta, previous, args.report_json, args.synth, verilog_sha256=digest)
    if synth is None and args.synth:
        say(name, f"synthesize (lstm-hw report, at most {args.synth_timeout:.0f} s)")
        synth = synth_child(config_path, args.synth_timeout)
    if synth is None:
        synth = {"synthesized": False, "reason": "not synthesized (run with --synth)"}
    row["synthesis"] = synth
    say(name, "resources: " + (f"{synth['dsp']} DSP, {synth['lut']} LUT, {synth['ff']} FF, {synth['bram36']:g} BRAM36"
                                f" ({synth['source']}{'; ' + synth['stale'] if 'stale' in synth else ''})"
                                if synth["synthesized"] else synth["reason"]))

    cycles = row.get("measured_cycles_per_timestep", meta["cycles_per_timestep"])
    perf = throughput({**meta, "cycles_per_timestep": cycles}, CLOCK_MHZ)
    dsps = synth["dsp"] if synth["synthesized"] else None
    row.update(cycles_per_timestep=cycles, cycles_source="measured" if "measured_cycles_per_timestep" in row
               else "predicted", utilisation=meta["ideal_cycles_per_timestep"] / cycles,
               real_gops=perf["real_gops"], effective_gops=perf["effective_gops"],
               real_gops_per_dsp=perf["real_gops"] / dsps if dsps else None,
               real_gops_per_mac=perf["real_gops"] / meta["macs"], dsp_limit_gops=2 * CLOCK_MHZ / 1000)
    return row


def _f(v, fmt: str, missing: str = "—") -> str:
    return missing if v is None else format(v, fmt)


def table(rows: list[dict]) -> str:
    lines = ["| Design | Shape | MACs | Generation s (peak MiB) | Verilator build s | Verilator timesteps/s "
             "(cycles/s) | Golden seq/s (timesteps/s) | Cycles/step ideal / actual | Utilisation | DSP | LUT | FF "
             "| BRAM36 | GOP/s real / effective | GOP/s per DSP (limit 0.4) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        s = r["synthesis"]
        shape = f"I{r['input_size']} H{r['hidden_size']} L{r['num_layers']}, d {r['density']:g}, w{r['weight_bits']}"
        actual = f"{r['cycles_per_timestep']:.0f}" + ("" if r["cycles_source"] == "measured" else " (predicted)")
        sim = (f"{r['verilator_timesteps_per_s']:g} ({r['simulated_cycles_per_s']:,})"
               if "verilator_timesteps_per_s" in r else "—")
        gold = (f"{r['golden_sequences_per_s']:,.0f} ({r['golden_timesteps_per_s']:,})"
                if "golden_sequences_per_s" in r else "—")
        mark = " *" if s.get("stale") else ""
        res = ([f"{s['dsp']}{mark}", f"{s['lut']:,}{mark}", f"{s['ff']:,}{mark}", f"{s['bram36']:g}{mark}"]
               if s["synthesized"] else ["not synthesized"] + [""] * 3)
        per_dsp = (f"{r['real_gops_per_dsp']:.3f}" if r["real_gops_per_dsp"] is not None
                   else f"{r['real_gops_per_mac']:.3f} per MAC")
        lines.append(f"| {r['case']} | {shape} | {r['macs']} | {r['generation_s']:.1f} ({r['generation_peak_rss_mib']})"
                     f" | {_f(r.get('verilator_build_s'), '.0f')} | {sim} | {gold} "
                     f"| {r['ideal_cycles_per_timestep']:.0f} / {actual} | {r['utilisation']:.1%} | "
                     + " | ".join(res) + f" | {r['real_gops']:.2f} / {r['effective_gops']:.2f} | {per_dsp} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", choices=list(CASES), help="designs to run (default: all)")
    ap.add_argument("--no-sim", action="store_true", help="skip the Verilator runs (keep earlier figures)")
    ap.add_argument("--no-golden", action="store_true", help="skip the golden-model speed (keep earlier figures)")
    ap.add_argument("--no-lint", action="store_true", help="skip Verilator lint")
    ap.add_argument("--synth", action="store_true", help="synthesize designs with no synthesis figures yet")
    ap.add_argument("--synth-timeout", type=float, default=3600, help="seconds per synthesis (default 3600)")
    ap.add_argument("--report-json", nargs="*", default=[], metavar="NAME=FILE",
                    help="use this `lstm-hw report --json` output for design NAME")
    ap.add_argument("--work", type=Path, help="keep the generated designs and builds here (default: a temp dir)")
    args = ap.parse_args()
    given = dict(item.split("=", 1) for item in args.report_json)
    unknown = set(given) - set(CASES)
    if unknown:
        ap.error(f"--report-json: unknown designs {sorted(unknown)}")
    args.report_json = given
    os.environ["CCACHE_DISABLE"] = "1"    # Verilator build times are cold builds
    previous = load_results()
    ran = {}
    with tempfile.TemporaryDirectory(prefix="lstm-hw-suite-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name, case in CASES.items():
            if args.only and name not in args.only:
                continue
            ran[name] = run_case(name, case, args, previous, work.resolve())
            save(ran)   # after every design: the big ones are slow
    rows = load_results()
    print(table([rows[n] for n in CASES if n in rows]))
    stale = [f"{n}: {rows[n]['synthesis']['stale']}" for n in CASES if n in rows and "stale" in rows[n]["synthesis"]]
    if stale:
        print("\n* Synthesized at an earlier revision of the generator: " + "; ".join(stale) + ".")


def load_results(path: Path | None = None) -> dict:
    """The per-design rows of a results file (``{"results": [{"case": ...}, ...]}``, by default :data:`RESULTS`)
    by design name; none if absent."""
    path = RESULTS if path is None else path
    return {r["case"]: r for r in json.loads(path.read_text())["results"]} if path.exists() else {}


def save(rows: dict, path: Path | None = None, **header) -> None:
    """Write *rows* into *path* over what it holds now (another run may have added designs), in suite order,
    after the machine and *header* (default: :data:`RESULTS` with the clock)."""
    path = RESULTS if path is None else path
    merged = {**load_results(path), **rows}
    path.parent.mkdir(exist_ok=True)
    header = header or {"clock_mhz": CLOCK_MHZ}
    path.write_text(json.dumps({
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        **header, "results": [merged[n] for n in CASES if n in merged]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
