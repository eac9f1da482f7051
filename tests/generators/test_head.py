# amaranth: UnusedElaboratable=no
"""DenseHead against the golden head in Amaranth's simulator: values, ``last``, flow control and timing.

The generated Verilog of the head runs end to end in tests/generators/test_top.py
(configs ``head_*`` of tests/configs.py) under Icarus and Verilator.
"""

import numpy as np
import pytest
from amaranth.sim import Simulator

from helpers import flags_code, flags_mask, step_flags
from lstm_hw.generators.beats import PORT_FLAGS
from lstm_hw.config.schema import parse_config
from lstm_hw.generators.head import DenseHead
from lstm_hw.model.design import build_design
from lstm_hw.model.golden import head_output

CONFIGS = {
    "dense_o3": {"model": {"input_size": 2, "hidden_size": 7, "output_size": 3}, "sparsity": {"banks": 3}},
    "sparse_o10_trunc": {"model": {"input_size": 3, "hidden_size": 9, "output_size": 10},
                         "sparsity": {"banks": 2, "head_density": 0.4},
                         "quant": {"rounding": "truncate", "output": {"bits": 10, "frac": 4}}},
    # s6.5 reaches only +-1: many outputs saturate, both ways.
    "saturating": {"model": {"input_size": 2, "hidden_size": 16, "output_size": 5}, "sparsity": {"banks": 4},
                   "quant": {"output": {"bits": 6, "frac": 5}}},
    "o1_h1": {"model": {"input_size": 1, "hidden_size": 1, "output_size": 1}, "sparsity": {"banks": 1},
              "quant": {"output": {"bits": 16, "frac": 18}}},
    "bank_width_1": {"model": {"input_size": 2, "hidden_size": 6, "output_size": 4},
                     "sparsity": {"banks": 6, "head_density": 0.5}},
}


def make_design(name):
    return build_design(parse_config(CONFIGS[name]))


def run_head(design, h, flags, *, idle=(0,), ready=(1,), cycles=20_000, dut=None):
    """Stream ``h`` ``(T, H)`` into a DenseHead (``dut`` or a new one), each step with its flags (a 3-bit code,
    :func:`helpers.step_flags`; the head carries ``tlast`` alone); return ``(outputs (value, flags code),
    in_cycles, out_cycles)``.

    ``idle`` and ``ready`` are repeating patterns: an input cycle with valid low, output ready.
    Also checks the stream rules on ``o``: while valid waits, valid and payload stay.
    """
    dut = dut or DenseHead(design=design)
    items = [(int(v), flags[t] if j == h.shape[1] - 1 else 0) for t, row in enumerate(h) for j, v in enumerate(row)]
    n_out = h.shape[0] * design.head.outputs
    got, in_cycles, out_cycles = [], [], []

    async def bench(ctx):
        pending = iter(items)
        cur = next(pending, None)
        held = None
        for cycle in range(cycles):
            if len(got) == n_out:
                return
            r = ready[cycle % len(ready)]
            send = cur is not None and not idle[cycle % len(idle)]
            ctx.set(dut.o.ready, r)
            ctx.set(dut.i.valid, send)
            if send:
                ctx.set(dut.i.payload, {"data": [cur[0]], "flags": step_flags(cur[1], PORT_FLAGS)})
            _, _, i_ready, o_valid, o_payload = await ctx.tick().sample(dut.i.ready, dut.o.valid, dut.o.payload)
            beat = (int(o_payload.data[0]), flags_code(o_payload.flags))
            if held is not None:
                assert o_valid and beat == held, "o withdrew valid or changed its payload before the handshake"
            held = beat if o_valid and not r else None
            if send and i_ready:
                in_cycles.append(cycle)
                cur = next(pending, None)
            if o_valid and r:
                got.append(beat)
                out_cycles.append(cycle)
        raise AssertionError(f"only {len(got)} of {n_out} outputs")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got, in_cycles, out_cycles


def random_h(design, steps, seed):
    fmt = design.io_format
    rng = np.random.default_rng(seed)
    h = rng.integers(fmt.min_int, fmt.max_int + 1, (steps, design.config.model.hidden_size))
    h[0] = fmt.max_int      # extremes: the widest sums
    h[-1, ::2] = fmt.min_int
    return h


def check(design, h, flags, got):
    """The values against the golden head; each step's flags on its last output, zero on the others."""
    want = head_output(design, h)
    values = np.array([v for v, _ in got]).reshape(want.shape)
    np.testing.assert_array_equal(values, want)
    want_flags = np.zeros(want.shape, dtype=int)
    want_flags[:, -1] = [code & flags_mask(PORT_FLAGS) for code in flags]
    np.testing.assert_array_equal(np.array([code for _, code in got]).reshape(want.shape), want_flags)


@pytest.mark.parametrize("name", CONFIGS)
def test_matches_golden_head(name):
    design = make_design(name)
    h = random_h(design, 5, seed=2)
    flags = [1, 6, 0, 3, 7]
    got, _, _ = run_head(design, h, flags)
    check(design, h, flags, got)


@pytest.mark.parametrize("name", ["dense_o3", "sparse_o10_trunc", "o1_h1"])
def test_idle_input_and_backpressure(name):
    design = make_design(name)
    h = random_h(design, 6, seed=3)
    flags = [7, 0, 2, 1, 4, 6]
    got, _, _ = run_head(design, h, flags, idle=(0, 1, 1, 0, 1), ready=(1, 0, 0, 1, 0, 0, 0))
    check(design, h, flags, got)


def test_saturates_both_ways():
    design = make_design("saturating")
    want = head_output(design, random_h(design, 5, seed=2))
    fmt = design.output_format
    assert (want == fmt.max_int).any() and (want == fmt.min_int).any()


@pytest.mark.parametrize("name", CONFIGS)
def test_timing_matches_docstring_figures(name):
    """Back-to-back input and ready output: latency and period as the unit states them."""
    design = make_design(name)
    dut = DenseHead(design=design)
    steps, n_in, n_out = 5, design.config.model.hidden_size, design.head.outputs
    h = random_h(design, steps, seed=4)
    _, in_cycles, out_cycles = run_head(design, h, [0] * (steps - 1) + [7], dut=dut)
    # the step starts the cycle after its last element arrives
    assert out_cycles[0] - in_cycles[n_in - 1] == 1 + dut.first_output_cycles
    starts = out_cycles[::n_out]
    period = max(dut.step_cycles, dut.stream_cycles)
    assert set(np.diff(starts)[1:].tolist()) == {period}
    assert dut.step_cycles == n_out * design.head.k + 1


def test_checks_parameters():
    with pytest.raises(TypeError, match="design"):
        DenseHead(design=None)
    with pytest.raises(ValueError, match="output_size"):
        DenseHead(design=build_design(parse_config({})))
    with pytest.raises(TypeError):
        DenseHead(make_design("dense_o3"))  # keyword-only
