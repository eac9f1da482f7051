"""LSTMTop end to end: bit-exact with the golden model, timing equal to the metadata.

Tier 2 runs the top in Amaranth's simulator; tier 3 runs the generated Verilog
under Icarus and Verilator through cocotb. Configs cover dense and sparse,
1 and 2 layers, awkward sizes (banks that do not divide I+H, B = 1),
every row-lane arrangement (1, 2, 4, 8, 12 rows), return_sequences on/off,
and dense and sparse heads (one of them the throughput bottleneck).
"""

import numpy as np
import pytest
from amaranth.sim import Simulator

from lstm_hw.config.schema import parse_config
from lstm_hw.emit.files import metadata
from lstm_hw.generators.top import LSTMTop
from lstm_hw.model.design import build_design
from lstm_hw.model.golden import interleave_steps, run_golden
from lstm_hw.sim.beats import beats_per_step, element_cycles, input_beats, output_elements

from configs import E2E_CONFIGS, INTERLEAVE_CONFIGS

CONFIGS = E2E_CONFIGS


def make_input(design, n_seq, t_len, seed=0):
    fmt = design.io_format
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1.0, (n_seq, t_len, design.config.model.input_size))
    x[0, 0, 0] = 1e9   # extremes of the format saturate on the way in
    x[-1, -1, -1] = -1e9
    return fmt.quantize(x)


def amaranth_run(design, x, ready_pattern=None):
    """Stream ``x`` through LSTMTop in Amaranth's simulator; return (top, outputs, handshake cycles per element).

    The weight ROMs are Amaranth memories here (``rom_files`` off), as the simulator runs them."""
    top = LSTMTop(design=design)
    lanes, n_in, n_out_step = design.lanes, design.config.model.input_size, design.output_size
    items = input_beats(x, lanes, design.tdata_width // lanes)
    n_beats = len(run_golden(design, x).reshape(-1, n_out_step)) * beats_per_step(n_out_step, lanes)
    beats, stamps = [], {"in": [], "out": []}

    async def clock(ctx):
        while True:
            ctx.set(top.aclk, 0)
            await ctx.delay(5e-9)
            ctx.set(top.aclk, 1)
            await ctx.delay(5e-9)

    async def bench(ctx):
        ctx.set(top.aresetn, 0)
        for _ in range(16):
            await ctx.tick()
        ctx.set(top.aresetn, 1)
        pending = iter(items)
        cur = next(pending, None)
        for cycle in range(200_000):
            if len(beats) == n_beats:
                return
            ready = 1 if ready_pattern is None else ready_pattern[cycle % len(ready_pattern)]
            ctx.set(top.m_axis_tready, ready)
            ctx.set(top.s_axis_tvalid, cur is not None)
            if cur is not None:
                ctx.set(top.s_axis_tdata, cur[0])
                ctx.set(top.s_axis_tlast, cur[1])
            _, _, s_ready, m_valid, m_data, m_last = await ctx.tick().sample(
                top.s_axis_tready, top.m_axis_tvalid, top.m_axis_tdata, top.m_axis_tlast)
            if cur is not None and s_ready:
                stamps["in"].append(cycle)
                cur = next(pending, None)
            if m_valid and ready:
                beats.append((m_data, bool(m_last)))
                stamps["out"].append(cycle)
        raise AssertionError(f"only {len(beats)} of {n_beats} output beats")

    sim = Simulator(top)
    sim.add_process(clock)
    sim.add_testbench(bench)
    sim.run()
    # Sign extension and zero unused lanes are checked here.
    got = output_elements(beats, lanes, design.output_tdata_width // lanes, design.output_format.bits, n_out_step)
    stamps = {"in": element_cycles(stamps["in"], n_in, lanes), "out": element_cycles(stamps["out"], n_out_step, lanes)}
    return top, [(v, last) for v, last, _ in got], stamps


def check_outputs(design, x, got):
    want = run_golden(design, x)
    values = np.array([v for v, _ in got]).reshape(want.shape)
    lasts = np.array([last for _, last in got]).reshape(want.shape)
    np.testing.assert_array_equal(values, want)
    want_last = np.zeros(want.shape, dtype=bool)
    want_last[:, -1, -1] = True
    np.testing.assert_array_equal(lasts, want_last)


def check_timing(design, top, x, in_cycles, out_cycles):
    """Idle-start latency and steady-state period, measured, equal the metadata figures.

    Only with return_sequences: otherwise the first output waits for the whole sequence.
    """
    meta = metadata(design, top, sources=[])
    n_in, n_out = design.config.model.input_size, meta["output"]["elements_per_timestep"]
    if design.config.model.return_sequences:
        assert out_cycles[0] - in_cycles[n_in - 1] == meta["latency_cycles"]
        starts = out_cycles[::n_out][:x.shape[1]]
        periods = np.diff(starts)[1:]  # first step included the idle start
        assert set(periods.tolist()) == {meta["cycles_per_timestep"]}


@pytest.mark.parametrize("name", CONFIGS)
def test_top_amaranth(name):
    design = build_design(parse_config(CONFIGS[name]))
    x = make_input(design, 2, 4)
    top, got, stamps = amaranth_run(design, x)
    check_outputs(design, x, got)
    check_timing(design, top, x, stamps["in"], stamps["out"])


def test_stream_bound_layer_averages_the_metadata_period():
    """A stream-bound layer may alternate between two periods; over whole pairs of steps they
    average the metadata's cycles per timestep (the loads plus the h writes through the port)."""
    design = build_design(parse_config({"model": {"input_size": 64, "hidden_size": 64, "num_layers": 1},
                                        "sparsity": {"banks": 8, "density": 0.125}, "hardware": {"rows": 8}}))
    x = make_input(design, 1, 8)
    top, got, stamps = amaranth_run(design, x)
    check_outputs(design, x, got)
    meta = metadata(design, top, sources=[])
    layer = meta["layers"][0]
    assert layer["stream_cycles_per_timestep"] > layer["compute_cycles_per_timestep"]
    periods = np.diff(stamps["out"][::64])[1:7]   # six intervals after the first
    assert periods.mean() == meta["cycles_per_timestep"]


def test_top_amaranth_backpressure():
    """Output stalls (the FIFO credit path) change nothing in the values."""
    design = build_design(parse_config(CONFIGS["r8_last_only"]))
    x = make_input(design, 3, 5, seed=4)
    _, got, _ = amaranth_run(design, x, ready_pattern=[1, 0, 0, 1, 0])
    check_outputs(design, x, got)


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
@pytest.mark.parametrize("name", CONFIGS)
def test_top_cocotb(name, sim, tmp_path):
    """Three sequences in each of the four flow modes, one simulation: bit-exact, tlast, protocol, no strays."""
    from lstm_hw.sim.flow import FLOW_MODES, flow_modes
    from lstm_hw.sim.top import simulate_top
    design = build_design(parse_config(CONFIGS[name]))
    x = make_input(design, 3, 3, seed=11)
    res = simulate_top(design, x, sim=sim, build_dir=tmp_path, seed=3, modes=flow_modes(idle=0.25, backpressure=0.4))
    assert res.passed, res.summary()
    assert tuple(m.mode.name for m in res.modes) == FLOW_MODES
    # The modes really differ in flow: random stalls move the output handshakes.
    steady, both = (np.diff(res.modes[FLOW_MODES.index(n)].output_cycles) for n in ("steady", "both"))
    assert not np.array_equal(steady, both), f"the both mode stalled no output\n{res.summary()}"


# -- interleaved sequences -----------------------------------------------------------------------

def interleaved_input(design, groups, t_len, seed=0):
    """``groups`` groups of ``interleave`` sequences of ``t_len`` steps: the sequences, and the stream's order."""
    n = design.config.hardware.interleave
    x = make_input(design, groups * n, t_len, seed=seed)
    return x, interleave_steps(x, n)


@pytest.mark.parametrize("name", INTERLEAVE_CONFIGS)
def test_interleaved_top_amaranth(name):
    """Each group a transfer, its sequences' timesteps taking turns: bit-exact, tlast once a group, and the
    measured timing the metadata's: idle-start latency, and in steady state the same sequence's outputs
    ``cycles_per_group`` apart."""
    design = build_design(parse_config(INTERLEAVE_CONFIGS[name]))
    n = design.config.hardware.interleave
    x, sent = interleaved_input(design, 2, 6, seed=n)
    top, got, stamps = amaranth_run(design, sent)
    want = interleave_steps(run_golden(design, x), n)
    np.testing.assert_array_equal(np.array([v for v, _ in got]).reshape(want.shape), want)
    lasts = np.array([last for _, last in got]).reshape(want.shape)
    assert lasts[:, -1, -1].all() and lasts.sum() == want.shape[0]
    meta = metadata(design, top, sources=[])
    assert meta["interleave"] == n and meta["cycles_per_group"] == n * meta["cycles_per_timestep"]
    if design.config.model.return_sequences:
        per_step = meta["output"]["elements_per_timestep"]
        assert stamps["out"][0] - stamps["in"][design.config.model.input_size - 1] == meta["latency_cycles"]
        starts = np.array(stamps["out"][::per_step])
        group_periods = (starts[n:] - starts[:-n]).tolist()
        assert min(group_periods) == group_periods[-1] == meta["cycles_per_group"], group_periods


def test_interleave_one_is_the_plain_design():
    """interleave = 1 is the contract without interleaving: the same Verilog."""
    from lstm_hw.emit.files import design_files
    base = design_files(build_design(parse_config(CONFIGS["lanes4_parallel_head"])))
    same = design_files(build_design(parse_config({**CONFIGS["lanes4_parallel_head"],
                                                   "hardware": {**CONFIGS["lanes4_parallel_head"]["hardware"],
                                                                "interleave": 1}})))
    assert {k: v for k, v in base.items() if k.endswith(".v")} == {k: v for k, v in same.items() if k.endswith(".v")}


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
@pytest.mark.parametrize("name", INTERLEAVE_CONFIGS)
def test_interleaved_top_cocotb(name, sim, tmp_path):
    """Two groups in each of the four flow modes (random idle input and backpressure among them), one
    simulation: bit-exact, tlast, the protocol checker on both ports, no strays."""
    from lstm_hw.sim.flow import flow_modes
    from lstm_hw.sim.top import simulate_top
    design = build_design(parse_config(INTERLEAVE_CONFIGS[name]))
    x, _ = interleaved_input(design, 2, 3, seed=11)
    res = simulate_top(design, x, sim=sim, build_dir=tmp_path, seed=5, modes=flow_modes(idle=0.25, backpressure=0.4))
    assert res.passed, res.summary()
    np.testing.assert_array_equal(res.output, run_golden(design, x))
