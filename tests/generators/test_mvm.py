"""SparseMatVec against the golden pre-activations, in Amaranth's simulator."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from lstm_hw.config import Config, parse_config
from lstm_hw.design import build_design
from lstm_hw.generators.mvm import SparseMatVec
from lstm_hw.golden import layer_preact

CONFIGS = {
    "default": {},
    "dense_r1": {"sparsity": {"banks": 3, "density": 1.0}, "hardware": {"rows": 1},
                 "model": {"input_size": 5, "hidden_size": 7}},
    "sparse_r2_trunc": {"sparsity": {"banks": 5, "density": 0.3}, "hardware": {"rows": 2},
                        "model": {"input_size": 4, "hidden_size": 9}, "quant": {"rounding": "truncate"}},
    "r8_b1": {"sparsity": {"banks": 1, "density": 0.25}, "hardware": {"rows": 8},
              "model": {"input_size": 3, "hidden_size": 5}},
    "r12_bw1": {"sparsity": {"banks": 11, "density": 1.0}, "hardware": {"rows": 12},
                "model": {"input_size": 2, "hidden_size": 9, "num_layers": 1}},
}


def vector_writes(plan, v, buf):
    for col, val in enumerate(v):
        yield {"buf": buf, "bank": col // plan.bank_width, "addr": col % plan.bank_width, "data": int(val)}


@pytest.mark.parametrize("name", CONFIGS)
def test_mvm_matches_golden(name):
    design = build_design(parse_config(CONFIGS[name]))
    plan = design.layers[0]
    rng = np.random.default_rng(7)
    fmt = design.config.quant.activation
    vecs = [rng.integers(fmt.min_int, fmt.max_int + 1, plan.columns) for _ in range(3)]
    firsts = [0, 1, 0]
    dut = SparseMatVec(plan=plan, quant=design.config.quant)
    got = []

    async def bench(ctx):
        for step, (v, first) in enumerate(zip(vecs, firsts)):
            buf = step % 2
            for wr in vector_writes(plan, v, buf):
                ctx.set(dut.wr.valid, 1)
                ctx.set(dut.wr.payload, wr)
                await ctx.tick()
            ctx.set(dut.wr.valid, 0)
            ctx.set(dut.cmd.valid, 1)
            ctx.set(dut.cmd.payload, {"buf": buf, "first": first})
            await ctx.tick().until(dut.cmd.ready)
            ctx.set(dut.cmd.valid, 0)
            rows = []
            while len(rows) < plan.passes:
                await ctx.tick()
                if ctx.get(dut.o.valid):
                    assert ctx.get(dut.o.payload["pass"]) == len(rows)
                    rows.append([ctx.get(dut.o.payload.z[r]) for r in range(plan.rows)])
            got.append(np.array(rows).reshape(-1))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    src = plan.hw_rows()
    for v, first, g in zip(vecs, firsts, got):
        v = v.copy()
        if first:
            v[plan.input_size:] = 0
        want = layer_preact(design, plan, v[None])[0]
        np.testing.assert_array_equal(g[src >= 0], want[src[src >= 0]])
        assert not np.any(g[src < 0]), "padding rows must be zero"
