# amaranth: UnusedElaboratable=no
"""SparseMatVec against the golden pre-activations: Amaranth's simulator, then cocotb on the Verilog."""

import json

import numpy as np
import pytest
from amaranth.hdl import Value
from amaranth.sim import Simulator

from helpers import SIMULATORS, UnitBank, write_verilog
from lstm_hw.config.randconfig import random_config
from lstm_hw.config.schema import parse_config
from lstm_hw.errors import ConfigError
from lstm_hw.emit.files import design_files
from lstm_hw.generators.mvm import (CHAIN_MAX, CHUNK_BITS, SparseMatVec, chain_groups, chunk_bounds, rom_words,
                                    vector_address)
from lstm_hw.model.design import build_design
from lstm_hw.model.golden import layer_preact, run_golden
from lstm_hw.model.sums import format_sum_bits, h_codes, input_ranges, need_sum_bits, sum_offset
from lstm_hw.model.weights import random_weights
from lstm_hw.numerics.fixed import signed_bits
from lstm_hw.sim.runner import run_cocotb

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
    # MAC chains: a plain adder tree; chains of 3 and 2; one chain of 7 (no tree).
    "chain1": {"sparsity": {"banks": 6, "density": 0.5}, "hardware": {"rows": 4, "mac_chain": 1},
               "model": {"input_size": 5, "hidden_size": 6}},
    "chain3_uneven": {"sparsity": {"banks": 5, "density": 0.6}, "hardware": {"rows": 4, "mac_chain": 3},
                      "model": {"input_size": 7, "hidden_size": 6}},
    "chain7_whole": {"sparsity": {"banks": 7, "density": 0.5}, "hardware": {"rows": 2, "mac_chain": 7},
                     "model": {"input_size": 6, "hidden_size": 8}},
    # One pass: the recurrent phase must wait out the input phase's partial-sum write.
    "one_pass": {"sparsity": {"banks": 3, "density": 0.5}, "hardware": {"rows": 8},
                 "model": {"input_size": 3, "hidden_size": 2, "num_layers": 1}},
}


def vector_writes(plan, v, buf):
    for col, val in enumerate(v):
        bank, addr = vector_address(plan, col)
        yield {"buf": buf, "bank": bank, "addr": addr, "data": int(val)}


def run_and_check(design, vecs, firsts, *, layer=0, writable=False, max_sum_bits=0):
    """Write each vector, run a step on it, and compare every pass with the golden pre-activations."""
    plan = design.layers[layer]
    dut = SparseMatVec(plan=plan, quant=design.config.quant, chain=design.config.hardware.mac_chain,
                       writable=writable, max_sum_bits=max_sum_bits)
    got = []

    async def bench(ctx):
        # h_ready always high: the recurrent phase starts as early as the partial sums allow,
        # so any hazard between the phases' partial-sum writes and reads shows in the results.
        ctx.set(dut.h_ready, 1)
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
            rows, cycle, go = [], 1, []  # the command was taken in cycle 0
            while len(rows) < plan.passes:
                if ctx.get(dut.h_go):
                    go.append(cycle)
                await ctx.tick()
                cycle += 1
                if ctx.get(dut.o.valid):
                    assert ctx.get(dut.o.payload["pass"]) == len(rows)
                    rows.append([ctx.get(dut.o.payload.z[r]) for r in range(plan.rows)])
            got.append(np.array(rows).reshape(-1))
            assert go == [dut.x_cycles], "h_go: once, x_cycles after the command"

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
    return dut


@pytest.mark.parametrize("name", CONFIGS)
def test_mvm_matches_golden(name):
    design = build_design(parse_config(CONFIGS[name]))
    plan = design.layers[0]
    rng = np.random.default_rng(7)
    fmt = design.config.quant.activation
    vecs = [rng.integers(fmt.min_int, fmt.max_int + 1, plan.columns) for _ in range(3)]
    run_and_check(design, vecs, [0, 1, 0])


def test_mvm_input_gap_is_tight(monkeypatch):
    """One cycle less than ``input_gap`` between the phases reads a stale partial sum."""
    design = build_design(parse_config(CONFIGS["one_pass"]))
    plan = design.layers[0]
    rng = np.random.default_rng(3)
    fmt = design.config.quant.activation
    vecs = [rng.integers(fmt.min_int, fmt.max_int + 1, plan.columns) for _ in range(3)]
    gap = run_and_check(design, vecs, [0, 0, 0]).input_gap
    assert plan.passes == 1 and gap > 0
    monkeypatch.setattr(SparseMatVec, "input_gap", property(lambda self: gap - 1))
    with pytest.raises(AssertionError, match="not equal"):
        run_and_check(design, vecs, [0, 0, 0])


# 16-bit weights and activations over 4 dense banks: a 38-bit sum in three chunks.
WIDE = {"model": {"input_size": 6, "hidden_size": 5, "num_layers": 1},
        "quant": {"weight": {"bits": 16, "frac": 10}},
        "sparsity": {"banks": 4, "density": 1.0}, "hardware": {"rows": 2}}


@pytest.mark.parametrize("sign", [1, -1])
def test_mvm_extreme_sums(sign):
    """Every weight at one end of its format and the bias at the same end: the sum reaches the edge
    of ``sum_bits`` (rounding offset included) without wrapping, through the carry-pipelined tree."""
    config = parse_config(WIDE)
    q = config.quant
    design = build_design(config, {
        name: np.full(arr.shape, -1e9 * sign if name.startswith("weight") else 1e9 * sign)
        for name, arr in random_weights(config).items()})
    plan = design.layers[0]
    assert np.all(plan.w == (q.weight.min_int if sign > 0 else q.weight.max_int))
    act = q.activation
    ends = [np.full(plan.columns, act.min_int), np.full(plan.columns, act.max_int),
            np.where(np.arange(plan.columns) % 2, act.min_int, act.max_int)]
    dut = run_and_check(design, ends, [0, 0, 1])
    assert len(chunk_bounds(dut.sum_bits)) == 3
    # The sum did reach beyond the pre-activation range: these outputs saturate.
    want = layer_preact(design, plan, ends[0][None])[0]
    assert np.all(np.abs(want) == (q.preact.max_int if sign > 0 else -q.preact.min_int))


@pytest.mark.parametrize("layer, sign", [(0, 1), (0, -1), (1, 1), (1, -1)])
def test_loadable_sum_bits_hold_any_weights(layer, sign):
    """With ``writable`` the sums are as wide as the formats need, whatever the weights: every weight and
    bias at one end of its format, the inputs at the ends that drive the rows furthest (layer 0's x over
    the activation format, every h, and a later layer's x, within [-1, 1]) run bit-exact, and need the
    top bit."""
    config = parse_config({**WIDE, "model": {"input_size": 8, "hidden_size": 4, "num_layers": 2}})  # no padding slots
    q = config.quant
    design = build_design(config, {
        name: np.full(arr.shape, -1e9 * sign if name.startswith("weight") else 1e9 * sign)
        for name, arr in random_weights(config).items()})
    plan, act = design.layers[layer], q.activation
    h_lo, h_hi = h_codes(act)
    x_lo, x_hi = (act.min_int, act.max_int) if layer == 0 else (h_lo, h_hi)
    lo = np.r_[np.full(plan.input_size, x_lo), np.full(plan.hidden, h_lo)]
    hi = np.r_[np.full(plan.input_size, x_hi), np.full(plan.hidden, h_hi)]
    dut = run_and_check(design, [lo, hi], [0, 0], layer=layer, writable=True)
    w = plan.w.astype(np.int64)
    start = (plan.b.astype(np.int64) << q.bias_shift) + dut.rounding_offset
    sums = np.stack([(w * lo).sum(axis=1), (w * hi).sum(axis=1)]) + start
    edge = max(int(sums.max()), -int(sums.min()) - 1)
    assert edge < 1 << (dut.sum_bits - 1)
    assert edge >= 1 << (dut.sum_bits - 2)       # one bit less would not do: the bound is tight


def test_capped_loadable_sum_bits():
    """``max_sum_bits`` (``hardware.sum_bits``) narrows writable sums to what these weights need, which the
    inputs driving the widest row to its top and its bottom (x over the activation format, h within [-1, 1])
    still run bit-exact in; one bit less is refused."""
    design = build_design(parse_config(CONFIGS["default"]))
    plan, q = design.layers[0], design.config.quant
    need = need_sum_bits(plan, q)
    assert need < format_sum_bits(plan, q)
    (x_lo, x_hi), (h_lo, h_hi) = input_ranges(plan, q)
    w = plan.w.astype(np.int64)
    lo_in = np.r_[np.full(plan.input_size, x_lo), np.full(plan.hidden, h_lo)]
    hi_in = np.r_[np.full(plan.input_size, x_hi), np.full(plan.hidden, h_hi)]
    top, bottom = np.where(w > 0, hi_in, lo_in), np.where(w > 0, lo_in, hi_in)
    start = (plan.b.astype(np.int64) << q.bias_shift) + sum_offset(q)
    hi, lo = (w * top).sum(axis=1) + start, (w * bottom).sum(axis=1) + start
    assert max(int(hi.max()), -int(lo.min()) - 1) >= 1 << (need - 2)     # one bit less would not do
    dut = run_and_check(design, [top[int(hi.argmax())], bottom[int(lo.argmin())]], [0, 0], writable=True,
                        max_sum_bits=need)
    assert dut.sum_bits == need
    assert SparseMatVec(plan=plan, quant=q, writable=True, max_sum_bits=99).sum_bits == format_sum_bits(plan, q)
    with pytest.raises(ConfigError, match=f"hardware.sum_bits: is {need - 1}, but layer 0's gate sums need {need}"):
        SparseMatVec(plan=plan, quant=q, writable=True, max_sum_bits=need - 1)


def test_every_h_is_within_h_codes():
    """The bound the loadable sums rest on: every layer's h is o tanh(c), so within [-1, 1], whatever the
    inputs and weights (here the largest the formats hold, and saturating inputs)."""
    for seed in range(12):
        config = parse_config(random_config(np.random.default_rng(seed)))
        weights = {k: v * 50 for k, v in random_weights(config).items()}
        design = build_design(config, weights)
        if design.head is not None:
            continue
        act = design.config.quant.activation
        x = np.random.default_rng(seed).choice([act.min_int, act.max_int, 0], (2, 5, config.model.input_size))
        y = run_golden(design, x)
        lo, hi = h_codes(act)
        assert lo <= y.min() and y.max() <= hi, f"seed {seed}"


def test_mvm_sum_bits_from_the_weights():
    """``sum_bits`` bounds the sums these weights can make, tightly: the input that drives the
    widest row to its top (and to its bottom) runs bit-exact, and that sum needs every bit."""
    design = build_design(parse_config(CONFIGS["default"]))
    plan, q = design.layers[0], design.config.quant
    act = q.activation
    dut = SparseMatVec(plan=plan, quant=q)
    w = plan.w.astype(np.int64)
    start = (plan.b.astype(np.int64) << (q.product.frac - q.bias_format.frac)) + dut.rounding_offset
    top = np.where(w > 0, act.max_int, act.min_int)     # per row, the input that maximises it
    bottom = np.where(w > 0, act.min_int, act.max_int)
    hi, lo = (w * top).sum(axis=1) + start, (w * bottom).sum(axis=1) + start
    width = dut.sum_bits
    assert -(1 << (width - 1)) <= lo.min() and hi.max() < 1 << (width - 1)
    assert max(hi.max(), -lo.min() - 1) >= 1 << (width - 2)   # one bit less would not do
    # Far below what the weight format alone allows (every weight at its most negative code).
    assert width < signed_bits(0, plan.banks * plan.k * q.weight.min_int * act.min_int)
    vecs = [top[int(hi.argmax())], bottom[int(lo.argmin())]]
    run_and_check(design, vecs, [0, 0])


def test_all_zero_weights_generate():
    """Weights and biases that are all zero (sums of a bit or two) still make a design, head included."""
    config = parse_config({"model": {"input_size": 3, "hidden_size": 4, "num_layers": 1, "output_size": 2},
                           "quant": {"rounding": "truncate"}})
    design = build_design(config, {name: np.zeros_like(arr) for name, arr in random_weights(config).items()})
    files = design_files(design)
    assert any(name.endswith(".v") for name in files)
    run_and_check(design, [np.full(design.layers[0].columns, design.config.quant.activation.max_int)], [0])


@pytest.mark.parametrize("rows, banks, depth, w_bits, idx_bits", [(1, 1, 1, 4, 1), (3, 5, 7, 8, 3), (2, 9, 4, 16, 6)])
def test_rom_words_fields(rows, banks, depth, w_bits, idx_bits):
    """Each PE's (w, idx) comes back out of its field of the shared word, negative weights included."""
    rng = np.random.default_rng(rows * 100 + banks)
    w = rng.integers(-(1 << (w_bits - 1)), 1 << (w_bits - 1), (rows, banks, depth))
    w[0, 0, 0] = -(1 << (w_bits - 1))
    idx = rng.integers(0, 1 << idx_bits, (rows, banks, depth))
    words = rom_words(w, idx, w_bits, idx_bits)
    entry = w_bits + idx_bits
    assert len(words) == depth and all(0 <= word < 1 << (entry * rows * banks) for word in words)
    for a, word in enumerate(words):
        for lane in range(rows):
            for bank in range(banks):
                field = word >> (entry * (lane * banks + bank)) & ((1 << entry) - 1)
                got_w = field & ((1 << w_bits) - 1)
                got_w -= (got_w >> (w_bits - 1)) << w_bits          # back to signed
                assert (got_w, field >> w_bits) == (w[lane, bank, a], idx[lane, bank, a])


def test_chain_groups():
    assert chain_groups(1) == [[0]]
    assert chain_groups(5) == [[0, 1, 2], [3, 4]]
    assert chain_groups(41) == [list(range(s, s + n)) for s, n in zip(
        [0, 4, 8, 12, 16, 20, 24, 28, 32, 35, 38], [4] * 8 + [3] * 3)]
    for banks in range(1, 80):
        groups = chain_groups(banks)
        assert [b for g in groups for b in g] == list(range(banks))      # every bank once, in order
        sizes = [len(g) for g in groups]
        assert max(sizes) <= CHAIN_MAX and max(sizes) - min(sizes) <= 1
        assert len(groups) == -(-banks // CHAIN_MAX)                     # the fewest chains
    with pytest.raises(ValueError, match="banks must be at least 1"):
        chain_groups(0)


def test_chunk_bounds():
    assert chunk_bounds(15) == [(0, 15)]
    assert chunk_bounds(16) == [(0, 8), (8, 16)]
    assert chunk_bounds(17) == [(0, 9), (9, 17)]
    assert chunk_bounds(30) == [(0, 15), (15, 30)]
    assert chunk_bounds(38) == [(0, 13), (13, 26), (26, 38)]
    for width in range(1, 100):
        bounds = chunk_bounds(width)
        assert bounds[0][0] == 0 and bounds[-1][1] == width
        assert all(hi == lo2 for (_, hi), (lo2, _) in zip(bounds, bounds[1:]))
        assert all(0 < hi - lo <= CHUNK_BITS for lo, hi in bounds)
        assert len(bounds) == -(-width // CHUNK_BITS)


# Two units in one Verilog top, so each simulator builds once: the default
# (4 rows x 4 banks, sparse) and an awkward one (banks that do not divide
# I + H, two rows, truncation).
COCOTB_UNITS = ("default", "sparse_r2_trunc")
COCOTB_STEPS = 5


def unit_spec(name: str, rng) -> tuple[SparseMatVec, dict]:
    """A unit and its bench spec: random steps (the first and one later marked ``first``), golden outputs."""
    design = build_design(parse_config(CONFIGS[name]))
    plan, quant = design.layers[0], design.config.quant
    dut = SparseMatVec(plan=plan, quant=quant, chain=design.config.hardware.mac_chain)
    fmt = quant.activation
    wr_layout = dut.wr.payload.shape()
    cmd_layout = dut.cmd.payload.shape()
    o_layout = dut.o.payload.shape()
    src = plan.hw_rows()
    spec = {"writes": [], "cmds": [], "expected": [], "timeout": 0}
    for step in range(COCOTB_STEPS):
        v = rng.integers(fmt.min_int, fmt.max_int + 1, plan.columns)
        v[rng.random(plan.columns) < 0.1] = rng.choice([fmt.min_int, fmt.max_int])
        first = step in (0, 3)
        spec["writes"].append([word(wr_layout, wr) for wr in vector_writes(plan, v, step % 2)])
        spec["cmds"].append(word(cmd_layout, {"buf": step % 2, "first": int(first)}))
        if first:
            v = v.copy()
            v[plan.input_size:] = 0
        z = np.zeros(src.size, dtype=np.int64)
        z[src >= 0] = layer_preact(design, plan, v[None])[0][src[src >= 0]]
        for p in range(plan.passes):
            rows = z[p * plan.rows:(p + 1) * plan.rows]
            spec["expected"].append(word(o_layout, {"pass": p, "z": [int(x) for x in rows]}))
    spec["timeout"] = dut.x_cycles + plan.passes * plan.k_h + dut.latency + 2
    return dut, spec


def word(layout, fields) -> int:
    """The packed unsigned word of a struct payload."""
    return Value.cast(layout.const(fields)).value


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", SIMULATORS)
def test_mvm_verilog(sim, tmp_path, monkeypatch):
    rng = np.random.default_rng(11)
    units, spec = {}, {"units": {}}
    for name in COCOTB_UNITS:
        units[name], spec["units"][name] = unit_spec(name, rng)
    write_verilog(UnitBank(units), tmp_path / "mvm.v", "mvm", monkeypatch)
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    result = run_cocotb(sim=sim, sources=[tmp_path / "mvm.v"], toplevel="mvm",
                        test_module="lstm_hw.sim.tb_mvm", build_dir=tmp_path / sim,
                        env={"TB_SPEC": json.dumps(spec)})
    assert result == (1, 0), f"see {tmp_path / sim / 'test.log'}"
