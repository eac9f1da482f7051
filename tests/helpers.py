"""Helpers shared by the tests: the command line's, exact numerics, pictures, Amaranth benches, and weights
and models made the way users bring them. Test files import from here, never from each other."""

import math
import re
import struct
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
