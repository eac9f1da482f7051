# amaranth: UnusedElaboratable=no
"""GateGather and CellLanes in Amaranth's simulator: seeded random passes with idle cycles, against the unit
order of the schedule and the golden cell update with a cell state per unit; the stated latencies."""

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.lib import data
from amaranth.sim import Simulator

from lstm_hw.config.schema import parse_config
from lstm_hw.generators.lanes import GATES, CellLanes, GateGather, cell_slots
from lstm_hw.generators.mvm import SparseMatVec
from lstm_hw.model.design import build_design
from lstm_hw.numerics.cell import cell_update

#: Every row-lane arrangement: units over 4 or 2 passes (1 and 2 rows), one unit a pass, 2 and 3 units a pass
#: with a padded last pass, and more lanes than units (one pass, one cell-state entry).
CASES = {
    "rows1": {"model": {"input_size": 2, "hidden_size": 3}, "hardware": {"rows": 1}},
    "rows2": {"model": {"input_size": 2, "hidden_size": 5}, "hardware": {"rows": 2}},
    "rows4": {"model": {"input_size": 3, "hidden_size": 4}},
    "rows8_padded": {"model": {"input_size": 2, "hidden_size": 5}, "hardware": {"rows": 8}},
    "rows12_padded": {"model": {"input_size": 2, "hidden_size": 7}, "sparsity": {"banks": 3},
                      "hardware": {"rows": 12}},
    "rows12_one_pass": {"model": {"input_size": 2, "hidden_size": 2}, "sparsity": {"banks": 3},
                        "hardware": {"rows": 12}},
}


def make(name):
    design = build_design(parse_config(CASES[name]))
    return design, design.layers[0]


def gates_layout(design):
    """A unit's four gates, pre-activation codes."""
    return data.StructLayout({g: design.config.quant.preact.shape() for g in GATES})


def run(dut, bench):
    top = Module()   # a sync domain even for a gather without registers (four rows and more)
    top.domains.sync = ClockDomain()
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def units_of_pass(plan, n):
    """The model of the schedule: the hidden units whose last gates pass ``n`` holds, by cell lane, and the
    rows of their gates in the pass (and, with fewer than 4 rows, in the passes before)."""
    if plan.rows >= 4:
        lanes = plan.units_per_pass
        return {u: n * lanes + u for u in range(lanes) if n * lanes + u < plan.hidden}
    per_unit = 4 // plan.rows
    return {0: n // per_unit} if n % per_unit == per_unit - 1 else {}


@pytest.mark.parametrize("name", CASES)
def test_gather_matches_schedule(name):
    design, plan = make(name)
    mvm = SparseMatVec(plan=plan, quant=design.config.quant)
    dut = GateGather(plan=plan, gates=gates_layout(design), results=mvm.signature.members["o"].signature)
    fmt = design.config.quant.preact
    rng = np.random.default_rng(len(name))
    checked = 0

    async def bench(ctx):
        nonlocal checked
        rows = []          # the z of the passes so far, in row order
        for step in range(4):
            n = 0
            while n < plan.passes:
                valid = rng.random() < 0.7
                z = [int(v) for v in rng.integers(fmt.min_int, fmt.max_int + 1, plan.rows)]
                ctx.set(dut.i.valid, valid)
                ctx.set(dut.i.payload, {"pass": n, "z": z})
                _, _, o_valid, units = await ctx.tick().sample(dut.o.valid, dut.o.payload)
                if not valid:
                    assert not o_valid, f"step {step}: a unit without a pass"
                    continue
                rows += z
                want = units_of_pass(plan, n)
                assert o_valid == bool(want), f"step {step} pass {n}"
                for u, j in want.items():
                    # Unit j's gates: 4 consecutive rows of the schedule, ending in this pass.
                    first_row = len(rows) - plan.rows + 4 * u if plan.rows >= 4 else len(rows) - 4
                    assert [int(units.gates[u][g]) for g in GATES] == rows[first_row:first_row + 4]
                    checked += 1
                if plan.units_per_pass > 1:
                    assert int(units.ok) == sum(1 << u for u in want), f"step {step} pass {n}"
                if want and cell_slots(plan) > 1:
                    assert int(units.slot) == min(want.values()) // plan.units_per_pass
                n += 1

    run(dut, bench)
    assert checked == 4 * plan.hidden
    assert dut.latency == 0


@pytest.mark.parametrize("name", CASES)
def test_cell_lanes_match_cell_update(name):
    """Steps of random gates, the first of each sequence from ``c = 0``: every ``h`` against the golden cell
    update with each unit's cell state carried from step to step, ``latency`` cycles after its gates."""
    design, plan = make(name)
    dut = CellLanes(design=design, plan=plan)
    assert dut.gates == gates_layout(design)
    lanes, slots, fmt = plan.units_per_pass, cell_slots(plan), design.config.quant.preact
    rng = np.random.default_rng(len(name) + 1)
    firsts = [True] + [bool(rng.integers(0, 3) == 0) for _ in range(7)]
    state = {}
    want, got = {}, {}

    async def bench(ctx):
        cycle = 0
        for first in firsts:
            ctx.set(dut.first, first)
            slot = 0
            while slot < slots:
                valid = rng.random() < 0.7
                units = [slot * lanes + u < plan.hidden for u in range(lanes)]
                gates = [{g: int(v) for g, v in zip(GATES, rng.integers(fmt.min_int, fmt.max_int + 1, 4))}
                         for _ in range(lanes)]
                ctx.set(dut.i.valid, valid)
                ctx.set(dut.i.payload, {"gates": gates, **({"ok": sum(1 << u for u in range(lanes) if units[u])}
                                                          if lanes > 1 else {}),
                                        **({"slot": slot} if slots > 1 else {})})
                if valid:
                    hs = []
                    for u in range(lanes):
                        if not units[u]:
                            continue
                        c_prev = 0 if first else state[u, slot]
                        g = gates[u]
                        c, h = cell_update(g["i"], g["f"], g["g"], g["o"], c_prev, design.tables, design.cell)
                        state[u, slot] = int(c)
                        hs.append(int(h))
                    want[cycle + dut.latency] = hs
                    slot += 1
                await sample(ctx, cycle)
                cycle += 1
            for _ in range(dut.latency):      # the step's last c_t written before the next step reads it
                ctx.set(dut.i.valid, 0)
                await sample(ctx, cycle)
                cycle += 1

    async def sample(ctx, cycle):
        _, _, valid, out = await ctx.tick().sample(dut.o.valid, dut.o.payload)
        if valid:
            ok = int(out.ok) if lanes > 1 else 1
            got[cycle] = [int(out.data[u]) for u in range(lanes) if ok >> u & 1]

    run(dut, bench)
    assert got == want


def test_checks_parameters():
    design, plan = make("rows4")
    gates = gates_layout(design)
    results = SparseMatVec(plan=plan, quant=design.config.quant).signature.members["o"].signature
    with pytest.raises(TypeError, match="gates"):
        GateGather(plan=plan, gates=None, results=results)
    with pytest.raises(TypeError, match="results"):
        GateGather(plan=plan, gates=gates, results=None)
    with pytest.raises(TypeError, match="Design"):
        CellLanes(design=None, plan=plan)
