# amaranth: UnusedElaboratable=no
"""VectorLoader in Amaranth's simulator: seeded random vectors with idle cycles, ``hold`` and a consumer that
frees the halves late; every write against the vector store's column map, the halves against a Python model."""

import numpy as np
import pytest

from helpers import flags_code, run_testbench, step_flags
from lstm_hw.config.schema import parse_config
from lstm_hw.generators.loader import VectorLoader
from lstm_hw.generators.mvm import vector_address
from lstm_hw.model.design import build_design

#: name: (config, the plan's stage): a layer's x, or the head's h; partial last beats and banks that
#: do not divide the vector.
CASES = {
    "i5_b2_lanes1": ({"model": {"input_size": 5, "hidden_size": 3}, "sparsity": {"banks": 2}}, "layer"),
    "i7_b3_lanes3": ({"model": {"input_size": 7, "hidden_size": 4}, "sparsity": {"banks": 3},
                      "hardware": {"io_lanes": 3}}, "layer"),
    "i6_b4_lanes2": ({"model": {"input_size": 6, "hidden_size": 5}, "sparsity": {"banks": 4},
                      "hardware": {"io_lanes": 2}}, "layer"),
    "i1_b1": ({"model": {"input_size": 1, "hidden_size": 2}, "sparsity": {"banks": 1}}, "layer"),
    "head_h9_b3_lanes2": ({"model": {"input_size": 2, "hidden_size": 9, "output_size": 2}, "sparsity": {"banks": 3},
                           "hardware": {"io_lanes": 2}}, "head"),
}


def make(name):
    config, stage = CASES[name]
    design = build_design(parse_config(config))
    plan = design.head if stage == "head" else design.layers[0]
    return VectorLoader(plan=plan, shape=design.io_format.shape(), lanes=design.lanes), plan, design


@pytest.mark.parametrize("name", CASES)
def test_writes_and_halves_match_model(name):
    dut, plan, design = make(name)
    lanes, length, fmt = design.lanes, plan.input_size, design.io_format
    rng = np.random.default_rng(len(name))
    vectors = [([int(v) for v in rng.integers(fmt.min_int, fmt.max_int + 1, length)], int(rng.integers(8)))
               for _ in range(30)]
    beats = [(values[n:n + lanes], flags if n + lanes >= length else 0, (v, n))
             for v, (values, flags) in enumerate(vectors) for n in range(0, length, lanes)]
    loaded = []   # the vectors, as their halves fill

    async def bench(ctx):
        full, flags = [False, False], [0, 0]          # the model of the halves
        fill, use, free_at = 0, 0, None                # half being filled; half the consumer reads next
        pending = iter(beats)
        beat = next(pending, None)
        cycle = 0
        while len(loaded) < len(vectors):
            hold = rng.random() < 0.2
            send = beat is not None and rng.random() < 0.7
            # The consumer frees its half a few cycles after it shows full.
            free = full[use] and free_at is not None and cycle >= free_at
            ctx.set(dut.hold, hold)
            ctx.set(dut.i.valid, send)
            if send:
                ctx.set(dut.i.payload, {"data": beat[0] + [0] * (lanes - len(beat[0])), "flags": step_flags(beat[1])})
            ctx.set(dut.halves.free.valid, free)
            ctx.set(dut.halves.free.payload, use)
            _, _, ready, halves_full, halves_flags, *ports = await ctx.tick().sample(
                dut.i.ready, dut.halves.full, dut.halves.flags,
                *(s for port in dut.wr for s in (port.valid, port.payload)))
            assert [halves_full >> h & 1 for h in range(2)] == full, f"cycle {cycle}: full"
            assert [flags_code(halves_flags[h]) for h in range(2)] == flags, f"cycle {cycle}: flags"
            assert ready == (not full[fill] and not hold), f"cycle {cycle}: ready"
            writes = sorted((int(p.buf), int(p.bank), int(p.addr), int(p.data))
                            for valid, p in zip(ports[::2], ports[1::2]) if valid)
            if send and ready:
                v, start = beat[2]
                assert writes == sorted((fill, *vector_address(plan, start + e), value)
                                        for e, value in enumerate(beat[0])), f"cycle {cycle}: writes"
                if start + lanes >= length:        # the vector's last beat: its half is full next cycle
                    full[fill], flags[fill] = True, beat[1]
                    loaded.append(v)
                    if fill == use:
                        free_at = cycle + 1 + int(rng.integers(0, 6))
                    fill ^= 1
                beat = next(pending, None)
            else:
                assert writes == [], f"cycle {cycle}: writes without a beat"
            if free:
                full[use] = False
                use ^= 1
                free_at = cycle + 1 + int(rng.integers(0, 6)) if full[use] else None
            cycle += 1
            assert cycle < 50 * len(beats), "the loader stalled"

    run_testbench(dut, bench)
    assert loaded == list(range(len(vectors)))


def test_checks_parameters():
    _, plan, design = make("i7_b3_lanes3")
    with pytest.raises(TypeError, match="LayerPlan"):
        VectorLoader(plan=None, shape=design.io_format.shape(), lanes=1)
    with pytest.raises(ValueError, match="lanes"):
        VectorLoader(plan=plan, shape=design.io_format.shape(), lanes=plan.banks + 1)
