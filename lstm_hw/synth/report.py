"""``lstm-hw report``: does a design fit its part, how fast can it clock, what throughput does it give.

:func:`build_report` generates the design into a temporary directory,
synthesizes it with Yosys (:mod:`lstm_hw.synth.yosys`) and gathers every figure
into one JSON-ready dict; :func:`format_text` prints it. The figures that need
no synthesis (:func:`operations`, :func:`throughput`, :func:`verdict`) are
plain functions of the metadata and the counts, so they can be checked alone.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from . import yosys as synth
from ..config.parts import Part, parse_part
from ..model.design import Design

__all__ = ["build_report", "verilog_digest", "operations", "throughput", "utilization", "verdict", "format_text", "DEPTH_RULE",
           "OPS_RULE"]

#: Elementwise operations per hidden unit and timestep: 4 bias adds, 5 activations
#: (3 sigmoid, 2 tanh), f*c, i*g, their sum and o*tanh(c).
ELEMENTWISE_PER_UNIT = 4 + 5 + 4

OPS_RULE = ("operations per timestep: 2 per multiply-accumulate (the non-zero weights for real, all "
            f"4H(I+H) weights for effective, dense-equivalent), plus {ELEMENTWISE_PER_UNIT} per hidden unit "
            "(4 bias adds, 5 activations, 3 multiplies and 1 add of the cell update) and a head's bias adds")
DEPTH_RULE = ("logic levels: LUTs, MUXF7/8 and CARRY4s (each one level, as Vivado counts) on the deepest path "
              "between flip-flops, DSP48E1s, block RAMs, distributed RAM/SRLs and ports of the flattened Yosys "
              "netlist. Clock estimate: 1.5 ns (clock-to-out, setup, skew) + 0.5 ns per LUT level with its net, "
              "0.3 per MUXF, 0.5 per CARRY4 entered from the fabric and 0.12 per chained CARRY4, plus DSP/BRAM "
              "output delays when their P/output registers are unused; scaled by the speed grade (-2: x0.87, "
              "-3: x0.77). An estimate, not timing closure: run build.tcl in Vivado for that")

#: Resources checked against the part: (key in the counts, name, attribute of parts.Device).
_RESOURCES = (("luts", "LUT", "luts"), ("ffs", "FF", "ffs"), ("dsps", "DSP48E1", "dsps"),
              ("bram36", "BRAM36", "bram36"))


def operations(meta: dict) -> dict:
    """Operations per timestep, real (stored non-zeros) and effective (dense-equivalent); see :data:`OPS_RULE`."""
    real = effective = 0
    for layer in meta["layers"]:
        i, h = layer["input_size"], layer["hidden_size"]
        elementwise = ELEMENTWISE_PER_UNIT * h
        real += 2 * layer["nnz"] + elementwise
        effective += 2 * 4 * h * (i + h) + elementwise
    head = meta.get("head")
    if head:
        real += 2 * head["nnz"] + head["output_size"]
        effective += 2 * head["output_size"] * head["input_size"] + head["output_size"]
    return {"real_per_timestep": real, "effective_per_timestep": effective}


def throughput(meta: dict, clock_mhz: float | None = None) -> dict:
    """Timestep rate, latency and GOP/s at ``clock_mhz`` (default: the design's)."""
    clock = float(clock_mhz if clock_mhz is not None else meta["clock_mhz"])
    ops = operations(meta)
    cycles, ideal = meta["cycles_per_timestep"], meta["ideal_cycles_per_timestep"]

    def gops(n, c):
        return round(n * clock / c / 1000.0, 3)  # ops/cycle x MHz = Mop/s; /1000: GOP/s

    return {
        "clock_mhz": clock,
        "cycles_per_timestep": cycles,
        "ideal_cycles_per_timestep": ideal,
        "latency_cycles": meta["latency_cycles"],
        "latency_us": round(meta["latency_cycles"] / clock, 3),
        "timesteps_per_second": round(clock * 1e6 / cycles, 1),
        **ops,
        "real_gops": gops(ops["real_per_timestep"], cycles),
        "effective_gops": gops(ops["effective_per_timestep"], cycles),
        "ideal_real_gops": gops(ops["real_per_timestep"], ideal),
        "ideal_effective_gops": gops(ops["effective_per_timestep"], ideal),
    }


def utilization(counts: dict, part: Part) -> dict:
    """Per resource: used, available and percent of the part."""
    out = {}
    for key, _, attr in _RESOURCES:
        available = getattr(part.device, attr)
        out[key] = {"used": counts[key], "available": available,
                    "percent": round(100.0 * counts[key] / available, 2)}
    return out


def verdict(util: dict) -> dict:
    """Whether everything fits, and by how much each overflowing resource is over."""
    names = {key: name for key, name, _ in _RESOURCES}
    over = [{"resource": names[key], "used": u["used"], "available": u["available"],
             "over": u["used"] - u["available"], "percent": u["percent"]}
            for key, u in util.items() if u["used"] > u["available"]]
    fullest = max(util, key=lambda key: util[key]["percent"])
    return {"fits": not over, "overflows": over,
            "fullest": {"resource": names[fullest], "percent": util[fullest]["percent"]}}


def _weight_memory(design: Design, counts: dict) -> dict:
    """Weight and index bits of every MVM ROM, against the block RAM allocated to the whole design."""
    plans = list(design.layers) + ([design.head] if design.head is not None else [])
    weight_bits = design.config.quant.weight.bits
    bits = sum(p.stored * (weight_bits + p.index_bits) for p in plans)
    bram_bits = int(counts["bram36"] * 36 * 1024)
    return {"weight_index_bits": bits, "bram_bits": bram_bits,
            "efficiency": round(bits / bram_bits, 4) if bram_bits else None}


def verilog_digest(sources: dict[str, bytes]) -> str:
    """SHA-256 of the Verilog sources (names and contents, in order): which design a synthesis saw."""
    h = hashlib.sha256()
    for name, content in sources.items():
        h.update(f"{name}\0{len(content)}\0".encode())
        h.update(content)
    return h.hexdigest()


def build_report(design: Design, *, yosys: str | None = None, progress=None, keep_dir: str | Path | None = None,
                 files: dict[str, bytes] | None = None) -> dict:
    """Generate (unless ``files`` holds the design's files already), synthesize and analyse ``design``.

    Every figure comes as a JSON-ready dict. ``progress`` (:mod:`lstm_hw.progress`)
    is told each stage as it starts: generate, synthesize (and each Yosys pass), analyse.
    """
    from ..emit.files import design_files, write_files
    from ..progress import stage

    def say(name):
        stage(progress, name)
    config = design.config
    part = parse_part(config.hardware.part)
    command = synth.find_yosys(yosys)      # fail before the slow part
    version = synth.yosys_version(command)
    top = config.hardware.top

    say("generate")
    files = files if files is not None else design_files(design)
    meta = json.loads(files[f"{top}.json"])
    with tempfile.TemporaryDirectory(prefix="lstm-hw-report-") as tmp:
        work = Path(keep_dir) if keep_dir else Path(tmp)
        write_files(work, files, force=True)
        say(f"synthesize: {command[-1]} ({version.split(' (')[0]}), synth_xilinx")
        netlist = synth.synthesize(meta["sources"], top, work, command, progress=progress)

    say("analyse")
    counts = synth.resource_counts(netlist)
    util = utilization(counts, part)
    macs = synth.mac_dsps(netlist)
    depth = synth.logic_depth(netlist, part.speed_grade)
    clock = float(meta["clock_mhz"])
    return {
        "top": top,
        "part": {"name": part.name, "device": part.device.name, "family": part.device.family,
                 "package": part.package, "speed_grade": part.speed_grade},
        "synthesis": {"tool": version, "command": f"synth_xilinx -family xc7 -top {top} -flatten -noiopad -noclkbuf",
                      "verilog_sha256": verilog_digest({name: files[name] for name in meta["sources"]})},
        "resources": {k: v for k, v in counts.items() if k != "cells"},
        "cells": counts["cells"],
        "utilization": util,
        "verdict": verdict(util),
        "dsp": {
            "total": counts["dsps"],
            "mac_arrays": len(macs),
            "macs": meta["macs"],
            "other": counts["dsps"] - len(macs),
            "mac_operand_and_product_registers_absorbed": sum(
                1 for d in macs if d["AREG"] >= 1 and d["BREG"] >= 1 and d["MREG"] == 1),
            "mac_accumulator_in_dsp": sum(1 for d in macs if d["PREG"] == 1),
        },
        "weight_memory": _weight_memory(design, counts),
        "timing": {**depth, "clock_mhz": clock, "meets_clock_estimate": depth["estimated_fmax_mhz"] >= clock,
                   "rule": DEPTH_RULE},
        "performance": {**throughput(meta, clock), "rule": OPS_RULE},
    }


def _pct(u: dict) -> str:
    return f"{u['percent']:.1f}%"


def format_text(rep: dict) -> str:
    """The report as an engineer reads it."""
    r, u, d, t, p = rep["resources"], rep["utilization"], rep["dsp"], rep["timing"], rep["performance"]
    part = rep["part"]
    lines = [
        f"{rep['top']} on {part['name']} ({part['family']} {part['device']}, speed grade {part['speed_grade']})",
        f"synthesis: {rep['synthesis']['tool']}, {rep['synthesis']['command']} (out of context)",
        "",
        f"{'resource':<10} {'used':>9} {'available':>10} {'util':>7}",
        f"{'LUT':<10} {r['luts']:>9} {u['luts']['available']:>10} {_pct(u['luts']):>7}   "
        f"logic {r['lut_logic']}, LUTRAM {r['lutram_luts']}, SRL {r['srl_luts']}",
        f"{'FF':<10} {r['ffs']:>9} {u['ffs']['available']:>10} {_pct(u['ffs']):>7}",
        f"{'DSP48E1':<10} {r['dsps']:>9} {u['dsps']['available']:>10} {_pct(u['dsps']):>7}   "
        f"MAC arrays {d['mac_arrays']} (macs {d['macs']}), activation and cell units {d['other']}",
        f"{'BRAM36':<10} {r['bram36']:>9g} {u['bram36']['available']:>10} {_pct(u['bram36']):>7}   "
        f"RAMB36E1 {r['ramb36']}, RAMB18E1 {r['ramb18']} (a RAMB18E1 is half a BRAM36)",
        f"also: CARRY4 {r['carry4']}, MUXF7 {r['muxf7']}, MUXF8 {r['muxf8']}, latches {r['latches']}"
        + (f", unmapped {', '.join(r['unmapped'])}" if r["unmapped"] else ""),
    ]
    v = rep["verdict"]
    if v["fits"]:
        lines.append(f"verdict: fits {part['name']} (fullest: {v['fullest']['resource']} at {v['fullest']['percent']:.1f}%)")
    else:
        over = "; ".join(f"{o['resource']} needs {o['used']:g} of {o['available']} ({o['percent']:.0f}%, "
                         f"{o['over']:g} over)" for o in v["overflows"])
        lines.append(f"verdict: DOES NOT FIT {part['name']}: {over}")
    lines.append(f"MAC DSP48E1s: {d['mac_operand_and_product_registers_absorbed']} of {d['mac_arrays']} with "
                 f"operand and product registers inside, {d['mac_accumulator_in_dsp']} with the chain sum (P register) inside")
    w = rep["weight_memory"]
    if w["bram_bits"]:
        lines.append(f"weight memory: {w['weight_index_bits']} weight+index bits in {w['bram_bits']} block-RAM bits "
                     f"({100 * w['efficiency']:.1f}% efficiency)")
    else:
        lines.append(f"weight memory: {w['weight_index_bits']} weight+index bits, all in LUTs (no block RAM)")
    lp, pp = t["levels_path"], t["period_path"]
    lines += [
        "",
        f"logic depth: {t['levels']} levels ({_cells(lp['cells'])})",
        f"  from {lp['from']}",
        f"  to   {lp['to']}",
        f"clock estimate: {t['estimated_period_ns']:.2f} ns worst path, fmax ~{t['estimated_fmax_mhz']:.0f} MHz "
        f"(speed grade {t['speed_grade']}); clock_mhz {t['clock_mhz']:g} "
        + ("is within the estimate" if t["meets_clock_estimate"] else "is above the estimate"),
        f"  worst path: {pp['levels']} levels ({_cells(pp['cells'])})",
        f"  from {pp['from']}",
        f"  to   {pp['to']}",
        f"  rule: {t['rule']}.",
        "",
        f"cycles per timestep: {p['cycles_per_timestep']} (ideal {p['ideal_cycles_per_timestep']:g}); "
        f"latency {p['latency_cycles']} cycles = {p['latency_us']:g} us at {p['clock_mhz']:g} MHz; "
        f"{p['timesteps_per_second'] / 1e6:.3g} M timesteps/s",
        f"throughput at {p['clock_mhz']:g} MHz: {p['real_gops']:.3f} GOP/s real ({p['real_per_timestep']} ops/timestep), "
        f"{p['effective_gops']:.3f} GOP/s effective ({p['effective_per_timestep']} dense-equivalent ops/timestep)",
        f"  at the ideal cycle count: {p['ideal_real_gops']:.3f} GOP/s real, {p['ideal_effective_gops']:.3f} GOP/s effective",
        f"  {p['rule']}.",
    ]
    return "\n".join(lines)


def _cells(cells: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in cells.items()) or "none"
