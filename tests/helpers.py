"""Helpers shared by the tests: the command line's, exact numerics, pictures, Amaranth benches, and weights
and models made the way users bring them. Test files import from here, never from each other."""

import math
import os
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from amaranth.back import verilog
from amaranth.hdl import Const, Module, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import Out
from amaranth.sim import Simulator
from click.testing import CliRunner
from hypothesis import strategies as st

from lstm_hw.cli import main
from lstm_hw.model.weights import random_weights
from lstm_hw.numerics.fixed import Fixed

SIMULATORS = ["icarus", "verilator"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# -- the command line ----------------------------------------------------------------------------

SMALL_TOML = """\
[model]
input_size = 3
hidden_size = 4
num_layers = 1
[sparsity]
banks = 2
"""


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


PROGRESS_LINE = re.compile(r"^\[ *\d+\.\d s\] ")


def assert_one_line_error(result, *needles):
    """Exit code 2 and one ``error:`` line; before it, at most the progress lines of a run past a second."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [line for line in result.stderr.splitlines() if not PROGRESS_LINE.match(line)]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert "Traceback" not in result.output


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def simulator_off_by(wrong_words: int):
    """A stand-in for ``lstm_hw.sim.top.simulate_top`` whose last ``wrong_words`` output words are one too high."""
    from lstm_hw.sim import top

    def simulate_top(design, codes, **_):
        expected = top.run_golden(design, codes)
        output = expected.copy()
        output.flat[output.size - wrong_words:] += 1
        mode = top.ModeResult(mode=top.FlowMode("given"), output=output, mismatches=wrong_words, last_ok=True,
                              input_cycles=[], output_cycles=[])
        return top.SimResult(sim="icarus", seed=1, expected=expected, modes=(mode,), failed_checks=0,
                             protocol_violations=0, stray_outputs=0, meta={})
    return simulate_top


# -- exact numerics ------------------------------------------------------------------------------

def exact_round(value: Fraction, mode: str) -> int:
    """The specified rounding of an exact rational: ties up, or towards -inf."""
    if mode == "half_up":
        return math.floor(value + Fraction(1, 2))
    assert mode == "truncate"
    return math.floor(value)


def clamp(v: int, lo: int, hi: int) -> int:
    return min(max(v, lo), hi)


@st.composite
def formats(draw, max_bits=24, min_frac=-8, max_frac=30):
    signed = draw(st.booleans())
    bits = draw(st.integers(2 if signed else 1, max_bits))
    return Fixed(bits, draw(st.integers(min_frac, max_frac)), signed)


# -- pictures ------------------------------------------------------------------------------------

def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# -- Amaranth benches ----------------------------------------------------------------------------

def run_stream(dut, payloads) -> tuple[int, list]:
    """Feed ``payloads`` to ``dut.i`` one per cycle; return ``(latency, outputs)``.

    Asserts that the outputs leave one per cycle, back to back, as many as went in.
    """
    seen = []

    async def bench(ctx):
        for cycle in range(len(payloads) + dut.latency + 2):
            if cycle < len(payloads):
                ctx.set(dut.i.payload, payloads[cycle])
            ctx.set(dut.i.valid, cycle < len(payloads))
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid:
                seen.append((cycle, payload))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert len(seen) == len(payloads)
    first = seen[0][0]
    assert [cycle for cycle, _ in seen] == list(range(first, first + len(payloads))), "output is not back to back"
    return first, [payload for _, payload in seen]


def run_testbench(dut, bench) -> None:
    """Run the async ``bench`` on ``dut`` in Amaranth's simulator, with a clock on its sync domain."""
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def write_verilog(component, path, name: str, monkeypatch) -> None:
    """Write ``component`` as Verilog module ``name``, leaving out the constant ready of always-ready ports."""
    monkeypatch.setenv("AMARANTH_USE_YOSYS", "builtin")
    members = (Value.cast(value) for _, _, value in component.signature.flatten(component))
    ports = [value for value in members if not isinstance(value, Const)]
    path.write_text(verilog.convert(component, name=name, emit_src=False, ports=ports))


class UnitBank(wiring.Component):
    """Components side by side under one top; each one's ports keep its name as prefix."""

    def __init__(self, units: dict):
        self._units = units
        super().__init__({name: Out(unit.signature) for name, unit in units.items()})

    def elaborate(self, platform):
        m = Module()
        for name, unit in self._units.items():
            m.submodules[name] = unit
            wiring.connect(m, wiring.flipped(getattr(self, name)), unit)
        return m


# -- weights and models --------------------------------------------------------------------------


def contiguous_bbs(w: np.ndarray, banks: int, density: float) -> np.ndarray:
    """The BBS paper's pattern: each row cut into ``banks`` contiguous blocks, the largest ``density`` share kept."""
    out = np.zeros_like(w)
    for cols in np.array_split(np.arange(w.shape[1]), banks):
        keep = max(1, round(density * len(cols)))
        top = cols[np.argsort(-np.abs(w[:, cols]), axis=1, kind="stable")[:, :keep]]
        np.put_along_axis(out, top, np.take_along_axis(w, top, axis=1), axis=1)
    return out


def bbs_weights(config):
    """Seeded weights pruned to contiguous banks over [W_ih | W_hh], as a user of the BBS paper would bring them."""
    w = random_weights(config)
    for k in range(config.model.num_layers):
        ih, hh = w[f"weight_ih_l{k}"], w[f"weight_hh_l{k}"]
        both = contiguous_bbs(np.concatenate([ih, hh], axis=1), config.sparsity.banks, config.sparsity.density)
        w[f"weight_ih_l{k}"], w[f"weight_hh_l{k}"] = both[:, :ih.shape[1]], both[:, ih.shape[1]:]
    return w


class RunsCode:
    """Unpickling this object creates the file ``marker``: the harm a model file could do, made visible."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def trapped_model(path, marker):
    """A PyTorch file with a real LSTM state_dict and an object whose unpickling writes ``marker``."""
    import torch
    state = dict(torch.nn.LSTM(3, 4).state_dict())
    state["payload"] = RunsCode(marker)
    torch.save(state, path)
    return path


# -- Vivado scripts under tclsh ------------------------------------------------------------------

TCLSH = shutil.which("tclsh")

# Sources a script with every command Tcl does not know (all of Vivado's) caught
# by `unknown`, which records the call. Queries get answers so that the scripts
# go on: objects come back as "cell:NAME", "pin:NAME", "intf:NAME", "run:NAME";
# set_property is remembered per object and get_property reads it back; a few
# answers come from STUB_* variables of the environment (see run_tcl). The calls
# are printed after the script, one a line, marked \x1e and split by \x1f; the
# properties as \x1d-marked lines (object, name, value). An error in the script
# goes to stderr, with exit code 1, as in `vivado -mode batch`.
TCL_RECORDER = r"""
set ::calls {}
set ::props [dict create]
proc stub {name default} { expr {[info exists ::env($name)] ? $::env($name) : $default} }
set ::busifs [expr {[info exists ::env(STUB_NO_BUSIF)] ? {} :
                   [info exists ::env(STUB_BUSIFS)] ? $::env(STUB_BUSIFS) : {s_axis m_axis}}]
proc remember {object name value} { dict set ::props $object $name $value }
proc recall {object name} {
    switch -- $name {
        SLACK { return [stub STUB_WNS 0.125] }
        STATUS {
            set step [expr {$object eq "run:synth_1" ? "synth_design" : "route_design"}]
            return [stub STUB_STATUS_[string range $object 4 end] "$step Complete!"]
        }
        CONFIG.PCW_IO_IO_PLL_FREQMHZ { return 1000.000 }
        CONFIG.PCW_ACT_FPGA0_PERIPHERAL_FREQMHZ {
            if {[info exists ::env(STUB_FCLK)]} { return $::env(STUB_FCLK) }
            set name CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ
        }
    }
    if {[dict exists $::props $object $name]} { return [dict get $::props $object $name] }
    return ""
}
proc unknown {args} {
    lappend ::calls $args
    set last [lindex $args end]
    switch -- [lindex $args 0] {
        ipx::current_core { return core0 }
        current_fileset { return sources_1 }
        current_project { return project0 }
        ipx::get_bus_interfaces { return [lsearch -inline $::busifs [lindex $args 1]] }
        get_board_parts { return [lsearch -all -inline -glob [stub STUB_BOARD_PARTS ""] $last] }
        get_bd_cells { return cell:$last }
        get_bd_pins { return pin:$last }
        get_bd_intf_pins { return intf:$last }
        get_runs { return run:$last }
        get_files { return file:$last }
        get_timing_paths { return path:worst }
        make_wrapper { return wrapper:[lindex $args end] }
        get_property { return [recall $last [lindex $args 1]] }
        set_property {
            if {[lindex $args 1] eq "-dict"} {
                dict for {name value} [lindex $args 2] { remember $last $name $value }
            } else {
                remember $last [lindex $args 1] [lindex $args 2]
            }
        }
    }
    return ""
}
set script [file normalize [lindex $argv 0]]
set argv [lrange $argv 1 end]
set argc [llength $argv]
set failed [catch {source $script} message]
foreach call $::calls { puts "\x1e[join $call \x1f]" }
dict for {object values} $::props {
    dict for {name value} $values { puts "\x1d$object\x1f$name\x1f$value" }
}
if {$failed} {
    puts stderr $message
    exit 1
}
"""


@dataclass
class TclRun:
    """A script's run under :data:`TCL_RECORDER`: exit code, its own output, the calls and properties."""

    returncode: int
    stdout: str
    stderr: str
    calls: list[list[str]]
    props: dict[str, dict[str, str]]

    def commands(self) -> list[str]:
        return [c[0] for c in self.calls]

    def first(self, command: str) -> list[str]:
        return next(c for c in self.calls if c[0] == command)


def run_tcl(script: Path, *args, cwd: Path, env: dict | None = None) -> TclRun:
    """Run ``script`` (with ``args`` as its argv) under tclsh and the recorder; ``env`` adds STUB_* answers:
    STUB_WNS (the SLACK of the worst path, 0.125), STUB_STATUS_<run> (its STATUS; "<last step> Complete!"),
    STUB_FCLK (the FCLK the PS7 makes; default: the one asked for), STUB_BOARD_PARTS (installed board parts,
    none), STUB_NO_BUSIF (no AXI4-Stream interface found by ipx), STUB_BUSIFS (those ipx finds, default
    "s_axis m_axis")."""
    harness = cwd / "harness.tcl"
    harness.write_text(TCL_RECORDER)
    proc = subprocess.run([TCLSH, str(harness), str(script), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=60)
    calls, props, own = [], {}, []
    for line in proc.stdout.split("\n"):   # not splitlines(): it splits at the markers too
        if line.startswith("\x1e"):
            calls.append(line[1:].split("\x1f"))
        elif line.startswith("\x1d"):
            obj, name, value = line[1:].split("\x1f")
            props.setdefault(obj, {})[name] = value
        else:
            own.append(line)
    return TclRun(proc.returncode, "\n".join(own).strip("\n"), proc.stderr, calls, props)


def tcl_option(call: list[str], name: str) -> str:
    """The word after ``name`` in a recorded call."""
    return call[call.index(name) + 1]


FLAG_BITS = {"first": 0, "last": 1, "tlast": 2}


def step_flags(code: int, layout=None) -> dict:
    """A timestep's flags (``generators.beats.STEP_FLAGS``, or the fields of ``layout``) from a 3-bit code:
    first, last, tlast from bit 0."""
    names = FLAG_BITS if layout is None else [name for name, _ in layout]
    return {name: code >> FLAG_BITS[name] & 1 for name in names}


def flags_code(flags) -> int:
    """The 3-bit code of a simulated step flags value (absent flags zero): the inverse of :func:`step_flags`."""
    return sum(int(flags[name]) << FLAG_BITS[name] for name, _ in flags.shape())


def flags_mask(layout) -> int:
    """The bits of a 3-bit flags code that ``layout`` carries."""
    return sum(1 << FLAG_BITS[name] for name, _ in layout)
