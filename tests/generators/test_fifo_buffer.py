# amaranth: UnusedElaboratable=no
"""BufferedFIFO against Amaranth's SyncFIFOBuffered, side by side in one simulation: the same seeded random
writes and reads, every cycle's flags and head entry equal, and the first entry out after the stated latency."""

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import fifo
from amaranth.sim import Simulator

from lstm_hw.generators.fifo_buffer import BufferedFIFO

WIDTH = 7


#: (write share, read share) of the phases: filling up, draining, even.
PHASES = [(0.8, 0.3), (0.3, 0.8), (0.6, 0.6), (0.9, 0.1), (0.5, 0.9)]


@pytest.mark.parametrize("depth", [2, 3, 5, 8, 9, 17])
def test_matches_sync_fifo_buffered(depth):
    """Phases that fill it to full and drain it to empty: the same every cycle."""
    rng = np.random.default_rng(depth)
    dut, ref = BufferedFIFO(shape=WIDTH, depth=depth), fifo.SyncFIFOBuffered(width=WIDTH, depth=depth)
    top = Module()
    top.submodules.dut, top.submodules.ref = dut, ref
    seen = {"full": 0, "empty": 0}
    first = {}   # the first write's cycle, and the first cycle with an entry on r

    async def bench(ctx):
        for cycle in range(150 * len(PHASES)):
            write_share, read_share = PHASES[cycle // 150]
            w_en, r_en, data = rng.random() < write_share, rng.random() < read_share, int(rng.integers(1 << WIDTH))
            for port, value in ((dut.w.valid, w_en), (ref.w_en, w_en), (dut.w.payload, data), (ref.w_data, data),
                                (dut.r.ready, r_en), (ref.r_en, r_en)):
                ctx.set(port, value)
            _, _, *got = await ctx.tick().sample(dut.w.ready, dut.r.valid, dut.r.payload,
                                                 ref.w_rdy, ref.r_rdy, ref.r_data)
            w_rdy, r_valid, r_data, ref_w_rdy, ref_r_rdy, ref_r_data = got
            assert (w_rdy, r_valid) == (ref_w_rdy, ref_r_rdy), f"cycle {cycle}"
            if w_en:
                first.setdefault("write", cycle)
            if r_valid:
                first.setdefault("read", cycle)
            if r_valid:
                assert r_data == ref_r_data, f"cycle {cycle}"
            seen["full"] += not w_rdy
            seen["empty"] += not r_valid

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen["full"] and seen["empty"], seen
    assert first["read"] - first["write"] == dut.latency


def test_checks_parameters():
    with pytest.raises(ValueError, match="depth"):
        BufferedFIFO(shape=WIDTH, depth=1)
