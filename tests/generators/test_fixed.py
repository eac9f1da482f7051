"""The Amaranth expressions of generators/fixed.py against their golden namesakes in lstm_hw.numerics."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from lstm_hw.generators.fixed import requantize, saturate
from lstm_hw.numerics import Fixed, ROUNDING_MODES, requantize as golden_requantize, saturate as golden_saturate


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
