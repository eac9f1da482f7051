"""Verilog, metadata and constraints for a design, written all or nothing.

Output is a pure function of (config, weights): Verilog is emitted without
source locations by Amaranth's builtin Yosys, and JSON keys keep a fixed order.
"""

from __future__ import annotations

import json
import os
import tempfile
from importlib import resources
from pathlib import Path

from . import __version__
from .design import Design
from .errors import UsageError

__all__ = ["build_top", "verilog_text", "metadata", "design_files", "write_files"]


def build_top(design: Design):
    from .generators.top import LSTMTop
    return LSTMTop(design=design)


def verilog_text(top, name: str) -> str:
    os.environ["AMARANTH_USE_YOSYS"] = "builtin"  # a system Yosys would change the output
    from amaranth.back import verilog
    return verilog.convert(top, name=name, emit_src=False)


def _latency(top) -> int:
    """Cycles from the last input beat of ``x_t`` to the first output beat of ``h_t`` (or ``y_t``), idle pipeline."""
    layers = top.layers
    if top.head is not None:  # the head starts once the last layer has passed it all of h_t
        return sum(1 + layer.last_output_cycles for layer in layers) + 1 + top.head.first_output_cycles
    through = sum(1 + layer.last_output_cycles for layer in layers[:-1])
    return through + 1 + layers[-1].first_output_cycles


def _head_metadata(top) -> dict | None:
    if top.head is None:
        return None
    p = top.design.head
    return {
        "input_size": p.input_size, "output_size": p.outputs, "banks": p.banks, "bank_width": p.bank_width,
        "weights_per_bank": p.k, "macs": p.banks * p.rows, "nnz": p.nnz, "stored_weights": p.stored, "pe_utilisation": round(p.nnz / p.stored, 4),
        "ideal_cycles_per_timestep": round(p.nnz / (p.banks * p.rows), 3),
        "issue_cycles_per_timestep": p.issue_cycles,
        "compute_cycles_per_timestep": top.head.step_cycles,
        "stream_cycles_per_timestep": top.head.stream_cycles,
    }


def metadata(design: Design, top) -> dict:
    c = design.config
    fmt, out_fmt = design.io_format, design.output_format
    name = c.hardware.top
    per_layer = []
    for layer in top.layers:
        p = layer.plan
        per_layer.append({
            "input_size": p.input_size, "hidden_size": p.hidden, "banks": p.banks, "bank_width": p.bank_width,
            "weights_per_bank": p.k, "rows": p.rows, "passes": p.passes, "macs": p.banks * p.rows,
            "nnz": p.nnz, "stored_weights": p.stored, "pe_utilisation": round(p.nnz / p.stored, 4),
            "ideal_cycles_per_timestep": round(p.nnz / (p.banks * p.rows), 3),
            "issue_cycles_per_timestep": p.issue_cycles,
            "compute_cycles_per_timestep": layer.step_cycles,
            "stream_cycles_per_timestep": p.input_size + p.hidden,
        })
    head = _head_metadata(top)
    stages = per_layer + ([head] if head else [])
    meta = {
        "generator": f"lstm-hw {__version__}",
        "top": name,
        "part": c.hardware.part,
        "clock_mhz": c.hardware.clock_mhz,
        "sources": [f"{name}.v"],
        "constraints": [f"{name}.xdc"],
        "input": {"bits": fmt.bits, "frac": fmt.frac, "tdata_width": design.tdata_width,
                  "elements_per_timestep": c.model.input_size},
        "output": {"bits": out_fmt.bits, "frac": out_fmt.frac, "tdata_width": design.output_tdata_width,
                   "elements_per_timestep": design.output_size, "return_sequences": c.model.return_sequences},
        "macs": sum(x["macs"] for x in stages),
        "cycles_per_timestep": max(max(x["compute_cycles_per_timestep"], x["stream_cycles_per_timestep"])
                                   for x in stages),
        "ideal_cycles_per_timestep": max(x["ideal_cycles_per_timestep"] for x in stages),
        "latency_cycles": _latency(top),
        "layers": per_layer,
        "head": head,
        "activation": design.tables.describe(),
        "config": c.to_dict(),
    }
    if head is None:
        del meta["head"]  # without a head the metadata stays exactly as before
    return meta


def design_files(design: Design) -> dict[str, bytes]:
    """Every output file, by name, fully rendered in memory."""
    top = build_top(design)
    c = design.config
    name = c.hardware.top
    meta = metadata(design, top)
    xdc = resources.files("lstm_hw.constraints").joinpath("clock.xdc").read_text()
    xdc = xdc.format(top=name, part=c.hardware.part, clock_mhz=f"{c.hardware.clock_mhz:g}",
                     period_ns=f"{1000.0 / c.hardware.clock_mhz:.3f}")
    return {
        f"{name}.v": verilog_text(top, name).encode(),
        f"{name}.json": (json.dumps(meta, indent=2) + "\n").encode(),
        f"{name}.xdc": xdc.encode(),
    }


def write_files(out_dir: str | Path, files: dict[str, bytes], *, force: bool = False) -> list[Path]:
    """Write ``files`` into ``out_dir``; refuse a non-empty directory unless ``force``.

    Each file goes to a temporary name first and is renamed into place, so a
    failure leaves no partial file, and existing files are only replaced whole.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(f"{out}: directory is not empty (use --force to overwrite)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        staged = []
        for name, content in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out)
            staged.append((Path(tmp), out / name))
            with os.fdopen(fd, "wb") as f:
                f.write(content)
    except OSError as e:
        for tmp, _ in locals().get("staged", []):
            tmp.unlink(missing_ok=True)
        raise UsageError(f"{out}: cannot write ({e.strerror or e})") from None
    umask = os.umask(0)
    os.umask(umask)
    for tmp, final in staged:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give what open() would have
        os.replace(tmp, final)
    return [final for _, final in staged]
