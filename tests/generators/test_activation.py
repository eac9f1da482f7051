# amaranth: UnusedElaboratable=no
"""PWLActivation against PWLTable.eval: Amaranth's simulator, then cocotb on the Verilog.

The helpers ``run_stream`` and ``write_verilog`` also serve ``test_cell.py``.
"""

import json

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Const, Fragment, Module, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import Out
from amaranth.sim import Simulator

from lstm_hw.activations import PWLTable
from lstm_hw.cell import ActivationTables
from lstm_hw.config import parse_config
from lstm_hw.generators.activation import PWLActivation, activation_unit
from lstm_hw.sim.runner import run_cocotb

SIMULATORS = ["icarus", "verilator"]

CONFIGS = {
    "default": {},
    # 10-bit input whose sigmoid range spans all 2**9 magnitudes; 1.0 does not fit s8.7.
    "small_truncate": {"quant": {"rounding": "truncate", "preact": {"bits": 10, "frac": 6},
                                 "nonlin": {"bits": 8, "frac": 7}},
                       "activation": {"segments": 8, "coef_bits": 10}},
    # range_codes == 2**(bits-1) at 16 bits.
    "full_range": {"quant": {"preact": {"bits": 16, "frac": 12}}, "activation": {"sigmoid_range": 8.0}},
    # One code per segment: seg_shift = 0, no dx bits.
    "one_code_segments": {"quant": {"preact": {"bits": 8, "frac": 2}}, "activation": {"tanh_range": 8.0}},
}
# Input formats up to this many codes are simulated exhaustively in Amaranth.
EXHAUSTIVE_CODES = 1 << 12
RANDOM_CODES = 2048


def tables(name: str) -> ActivationTables:
    return ActivationTables.from_config(parse_config(CONFIGS[name]))


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


def probe_codes(table: PWLTable, rng) -> np.ndarray:
    """Every code of a small input format; else every edge and random codes, shuffled.

    Edges: both sides of each segment boundary and of the range, 0, +-1, min and max.
    """
    fmt = table.in_fmt
    if fmt.max_int - fmt.min_int < EXHAUSTIVE_CODES:
        codes = fmt.codes()
    else:
        bounds = np.arange(table.segments + 1) << table.seg_shift
        edges = (bounds[:, None] + np.array([-1, 0, 1])).ravel()
        codes = np.concatenate([edges, -edges, [fmt.min_int, fmt.max_int],
                                rng.integers(fmt.min_int, fmt.max_int + 1, RANDOM_CODES)])
        codes = np.unique(np.clip(codes, fmt.min_int, fmt.max_int))
    return rng.permutation(codes)


@pytest.mark.parametrize("fn", ["sigmoid", "tanh_gate", "tanh_cell"])
@pytest.mark.parametrize("config", CONFIGS)
def test_matches_table(config, fn):
    table = getattr(tables(config), fn)
    codes = probe_codes(table, np.random.default_rng(1))
    dut = PWLActivation(table=table)
    latency, got = run_stream(dut, [int(x) for x in codes])
    assert latency == dut.latency
    want = table.eval(codes)
    mismatch = np.flatnonzero(np.array(got) != want)
    assert mismatch.size == 0, [(int(codes[k]), got[k], int(want[k])) for k in mismatch[:10]]


def test_interface():
    table = tables("default").sigmoid
    unit = activation_unit(table)
    assert isinstance(unit, PWLActivation) and unit.table is table
    assert unit.i.payload.shape() == table.in_fmt.shape()
    assert unit.o.payload.shape() == table.out_fmt.shape()
    Fragment.get(unit, None)  # elaborates on its own
    with pytest.raises(TypeError, match="PWLTable"):
        PWLActivation(table="sigmoid")
    with pytest.raises(TypeError, match="no activation unit"):
        activation_unit(object())


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", SIMULATORS)
def test_exhaustive_verilog(sim, tmp_path, monkeypatch):
    """Every input code of the default sigmoid and tanh, back to back, in one Verilog top."""
    t = tables("default")
    units = {"sigmoid": PWLActivation(table=t.sigmoid), "tanh": PWLActivation(table=t.tanh_gate)}
    write_verilog(UnitBank(units), tmp_path / "activations.v", "activations", monkeypatch)
    codes = t.sigmoid.in_fmt.codes()
    np.save(tmp_path / "x.npy", codes)
    spec = {"stimulus": str(tmp_path / "x.npy"), "units": {}}
    for name, unit in units.items():
        np.save(tmp_path / f"{name}.npy", unit.table.eval(codes))
        spec["units"][name] = {"expected": str(tmp_path / f"{name}.npy"), "out_bits": unit.table.out_fmt.bits,
                               "latency": unit.latency}
    result = run_cocotb(sim=sim, sources=[tmp_path / "activations.v"], toplevel="activations",
                        test_module="lstm_hw.sim.tb_activation", build_dir=tmp_path / sim,
                        env={"TB_SPEC": json.dumps(spec)})
    assert result == (1, 0), f"see {tmp_path / sim / 'test.log'}"
