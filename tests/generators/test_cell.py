# amaranth: UnusedElaboratable=no
"""CellUpdate against cell_update: Amaranth's simulator, then cocotb on the Verilog."""

import json

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from helpers import SIMULATORS, run_stream, write_verilog
from lstm_hw.config.schema import parse_config
from lstm_hw.generators.cell import CellUpdate
from lstm_hw.generators.fixed import delay
from lstm_hw.numerics.cell import ActivationTables, CellMath, cell_update
from lstm_hw.sim.runner import run_cocotb

CONFIGS = {
    "default": {},
    # Truncation; f*c needs no alignment, i*g does; o*tanh(c) scales up into an
    # activation format that cannot hold 1.0.
    "small_truncate": {"quant": {"rounding": "truncate", "preact": {"bits": 10, "frac": 6},
                                 "nonlin": {"bits": 6, "frac": 4}, "cell": {"bits": 10, "frac": 6},
                                 "activation": {"bits": 10, "frac": 9}},
                       "activation": {"segments": 8, "coef_bits": 10}},
}
GATES = ("i", "f", "g", "o")
# Share of each field drawn from the edge codes instead of uniformly.
EDGE_SHARE = 0.25


class CellBench(wiring.Component):
    """A :class:`CellUpdate` whose ``c_prev`` comes in with the gates and is delayed by ``c_lag``
    here, as the layer's cell-state memory read would deliver it: one stream in, one out."""

    def __init__(self, cell: CellUpdate):
        self.cell = cell
        layout = data.StructLayout({**{name: f.shape for name, f in cell.i.payload.shape()},
                                    "c": cell.math.cell.shape()})
        super().__init__({"i": In(stream.Signature(layout, always_ready=True)),
                          "o": Out(cell.o.signature)})

    @property
    def latency(self) -> int:
        return self.cell.latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.cell = cell = self.cell
        m.d.comb += [cell.i.valid.eq(self.i.valid), cell.c_prev.eq(delay(m, self.i.payload.c, cell.c_lag, name="c"))]
        m.d.comb += [cell.i.payload[name].eq(self.i.payload[name]) for name in GATES]
        wiring.connect(m, wiring.flipped(self.o), cell.o)
        return m


def arithmetic(name: str) -> tuple[ActivationTables, CellMath]:
    config = parse_config(CONFIGS[name])
    return ActivationTables.from_config(config), CellMath.from_config(config)


def vectors(tables: ActivationTables, math: CellMath, count: int, seed: int) -> dict[str, np.ndarray]:
    """Random codes per input field; a share sits on the edges, and some rows drive c_t into saturation."""
    rng = np.random.default_rng(seed)
    formats = {**{name: getattr(tables, "tanh_gate" if name == "g" else "sigmoid").in_fmt for name in GATES},
               "c": math.cell}
    out = {}
    for name, fmt in formats.items():
        codes = rng.integers(fmt.min_int, fmt.max_int + 1, count)
        edges = np.array([fmt.min_int, fmt.max_int, 0, -1, 1])
        on_edge = rng.random(count) < EDGE_SHARE
        codes[on_edge] = rng.choice(edges, on_edge.sum())
        out[name] = codes
    # f -> 1, c_prev at either end, i * g -> +-1: c_t = c_prev +- 1 saturates.
    rows = rng.choice(count, count // 8, replace=False)
    sign = rng.choice([-1, 1], rows.size)
    out["f"][rows] = formats["f"].max_int
    out["i"][rows] = formats["i"].max_int
    out["g"][rows] = np.where(sign > 0, formats["g"].max_int, formats["g"].min_int)
    out["c"][rows] = np.where(sign > 0, formats["c"].max_int, formats["c"].min_int) - sign * rng.integers(0, 4, rows.size)
    return out


def expected(tables: ActivationTables, math: CellMath, v: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    c, h = cell_update(v["i"], v["f"], v["g"], v["o"], v["c"], tables, math)
    return {"c": c, "h": h}


@pytest.mark.parametrize("config", CONFIGS)
def test_matches_cell_update(config):
    tables, math = arithmetic(config)
    dut = CellBench(CellUpdate(tables=tables, math=math))
    v = vectors(tables, math, 1500, seed=3)
    latency, got = run_stream(dut, [{name: int(codes[n]) for name, codes in v.items()} for n in range(len(v["c"]))])
    assert latency == dut.latency
    want = expected(tables, math, v)
    for name in ("c", "h"):
        out = np.array([getattr(payload, name) for payload in got])
        bad = np.flatnonzero(out != want[name])
        assert bad.size == 0, [({k: int(x[n]) for k, x in v.items()}, int(out[n]), int(want[name][n]))
                               for n in bad[:10]]


@pytest.mark.parametrize("config", CONFIGS)
def test_vectors_saturate(config):
    """The vectors drive c_t to both ends of its format, and h_t too where 1.0 does not fit."""
    tables, math = arithmetic(config)
    want = expected(tables, math, vectors(tables, math, 1500, seed=3))
    fields = {"c": math.cell}
    if math.activation.max_int < 1 << math.activation.frac:
        fields["h"] = math.activation
    for name, fmt in fields.items():
        assert (want[name].min(), want[name].max()) == (fmt.min_int, fmt.max_int), name


def test_checks_parameters():
    tables, math = arithmetic("default")
    with pytest.raises(TypeError, match="ActivationTables"):
        CellUpdate(tables=None, math=math)
    with pytest.raises(TypeError, match="CellMath"):
        CellUpdate(tables=tables, math=None)
    with pytest.raises(ValueError, match="nonlin format"):
        CellUpdate(tables=tables, math=arithmetic("small_truncate")[1])


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", SIMULATORS)
def test_verilog_matches_cell_update(sim, tmp_path, monkeypatch):
    """Random vectors, back to back, through the generated Verilog."""
    tables, math = arithmetic("default")
    dut = CellBench(CellUpdate(tables=tables, math=math))
    write_verilog(dut, tmp_path / "cell_update.v", "cell_update", monkeypatch)
    v = vectors(tables, math, 4000, seed=5)
    spec = {"latency": dut.latency, "stimulus": {}, "expected": {},
            "in_layout": {name: [f.offset, f.width] for name, f in dut.i.payload.shape()},
            "out_layout": {name: [f.offset, f.width] for name, f in dut.o.payload.shape()}}
    for kind, arrays in (("stimulus", v), ("expected", expected(tables, math, v))):
        for name, codes in arrays.items():
            path = tmp_path / f"{kind}_{name}.npy"
            np.save(path, codes)
            spec[kind][name] = str(path)
    result = run_cocotb(sim=sim, sources=[tmp_path / "cell_update.v"], toplevel="cell_update",
                        test_module="lstm_hw.sim.tb_cell", build_dir=tmp_path / sim,
                        env={"TB_SPEC": json.dumps(spec)})
    assert result == (1, 0), f"see {tmp_path / sim / 'test.log'}"
