# amaranth: UnusedElaboratable=no
"""The Amaranth expressions of generators/fixed.py against their golden namesakes in lstm_hw.numerics.fixed."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from lstm_hw.generators.fixed import delay_taps, requantize, saturate
from lstm_hw.numerics.fixed import Fixed, ROUNDING_MODES, requantize as golden_requantize, saturate as golden_saturate


def evaluate(build, shape, codes):
    """Drive every code into a ``shape`` signal and read the comb expression ``build(signal)``."""
    m = Module()
    x = Signal(shape)
    y = build(x)
    out = Signal(y.shape())
    m.d.comb += out.eq(y)
    got = []

    async def bench(ctx):
        for code in codes:
            ctx.set(x, int(code))
            got.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return np.array(got, dtype=np.int64)


# (value shape, format): narrower, equal and wider values, signed and unsigned either side.
CASES = [(signed(12), Fixed(6, 2)), (signed(6), Fixed(6, 0)), (signed(4), Fixed(8, 0)),
         (unsigned(9), Fixed(5, 1)), (signed(9), Fixed(5, 0, signed=False)), (signed(7), Fixed(2, 0))]


@pytest.mark.parametrize("shape, fmt", CASES, ids=[f"{s}->{f}" for s, f in CASES])
def test_saturate_every_code(shape, fmt):
    lo, hi = (-(1 << (shape.width - 1)), 1 << (shape.width - 1)) if shape.signed else (0, 1 << shape.width)
    codes = np.arange(lo, hi)
    got = evaluate(lambda x: saturate(x, fmt), shape, codes)
    np.testing.assert_array_equal(got, golden_saturate(codes, fmt))


@pytest.mark.parametrize("mode", ROUNDING_MODES)
@pytest.mark.parametrize("src_frac, dst", [(7, Fixed(6, 3)), (3, Fixed(6, 3)), (2, Fixed(8, 4))])
def test_requantize_every_code(mode, src_frac, dst):
    codes = np.arange(-(1 << 10), 1 << 10)
    got = evaluate(lambda x: requantize(x, src_frac, dst, mode), signed(11), codes)
    np.testing.assert_array_equal(got, golden_requantize(codes, src_frac, dst, mode))


def test_delay_taps_one_chain():
    """Each tap is the input that many cycles late; the taps share one chain of registers."""
    m = Module()
    x = Signal(4)
    taps = delay_taps(m, x, [3, 0, 1, 3], name="x")
    outs = [Signal(4, name=f"o{n}") for n in range(len(taps))]
    m.d.comb += [o.eq(t) for o, t in zip(outs, taps)]
    assert taps[1] is x and taps[0] is taps[3]
    assert (taps[2].name, taps[3].name) == ("x_d1", "x_d3")  # tap 3 continues tap 1's chain
    seen = []

    async def bench(ctx):
        for code in range(12):
            ctx.set(x, code)
            seen.append([ctx.get(o) for o in outs])
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    for t, row in enumerate(seen):
        assert row == [max(t - 3, 0), t, max(t - 1, 0), max(t - 3, 0)]


def test_delay_taps_bad_taps():
    with pytest.raises(ValueError, match="non-negative"):
        delay_taps(Module(), Signal(), [1, -1])
