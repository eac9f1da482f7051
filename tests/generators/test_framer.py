# amaranth: UnusedElaboratable=no
"""Framer in Amaranth's simulator: seeded random transfers (some ending inside a timestep), idle cycles,
backpressure and state_rst pulses; every output beat and its flags against a Python model of the framing."""

import numpy as np
import pytest
from amaranth.hdl import signed

from helpers import run_testbench
from lstm_hw.generators.framer import Framer

#: name: (lanes, elements, sequence_length, stateful)
CASES = {
    "one_beat": (1, 1, 0, False),
    "lanes2_i5": (2, 5, 0, False),
    "t3": (1, 2, 3, False),
    "t1_lanes3_i7": (3, 7, 1, False),
    "t4_lanes2_i4": (2, 4, 4, False),
    "stateful": (1, 3, 0, True),
    "stateful_one_beat": (4, 3, 0, True),
}


def frame(beats, resets, *, lanes, elements, sequence_length, stateful):
    """The expected output ``(data, first, last, tlast)`` per beat.

    ``beats`` are the accepted input beats ``(data, last, cycle)``; ``resets``, the cycles with
    ``state_rst`` high. A transfer's end inside a step completes it with zero beats.
    """
    per = -(-elements // lanes)
    out, place, count, step_start = [], 0, 0, None
    seq_start = True                   # without stateful: the next step starts a sequence
    for data, last, cycle in beats:
        if place == 0:
            if stateful:
                first = step_start is None or any(step_start <= c < cycle for c in resets)
            else:
                first = seq_start
            step_start = cycle
        ends = last or place == per - 1
        pads = per - 1 - place if last else 0
        rows = [(data, False)] + [([0] * lanes, True)] * pads
        for n, (values, _) in enumerate(rows):
            final = n == len(rows) - 1 and ends
            seq_end = final and (last or (sequence_length and count == sequence_length - 1))
            out.append((values, final and first, bool(seq_end), final and last))
        place = 0 if ends else place + 1
        if ends:
            count = 0 if (last or (sequence_length and count == sequence_length - 1)) else count + 1
            seq_start = last or bool(sequence_length and count == 0)
    return out


@pytest.mark.parametrize("name", CASES)
def test_beats_and_flags_match_model(name):
    lanes, elements, length, stateful = CASES[name]
    dut = Framer(shape=signed(8), lanes=lanes, elements=elements, sequence_length=length, stateful=stateful)
    rng = np.random.default_rng(len(name) + 7 * lanes)
    per = dut.beats
    # Transfers of whole steps and, one in four, a few beats more (a step the transfer cuts short).
    beats = []
    for _ in range(24):
        n = int(rng.integers(1, 7)) * per + (int(rng.integers(1, per)) if per > 1 and rng.random() < 0.25 else 0)
        for b in range(n):
            beats.append(([int(v) for v in rng.integers(-128, 128, lanes)], b == n - 1))
    accepted, resets, seen = [], [], []

    async def bench(ctx):
        pending = iter(beats)
        beat = next(pending, None)
        cycle = 0
        while beat is not None or ctx.get(dut.o.valid):
            send = beat is not None and rng.random() < 0.7
            ready = rng.random() < 0.7
            rst = stateful and rng.random() < 0.05
            ctx.set(dut.i.valid, send)
            if beat is not None:
                ctx.set(dut.i.payload, {"data": beat[0], "last": beat[1]})
            ctx.set(dut.o.ready, ready)
            ctx.set(dut.state_rst, rst)
            _, _, i_ready, o_valid, o_payload = await ctx.tick().sample(dut.i.ready, dut.o.valid, dut.o.payload)
            if rst:
                resets.append(cycle)
            if o_valid and ready:
                f = o_payload.flags
                seen.append(([int(v) for v in o_payload.data], bool(f.first), bool(f.last), bool(f.tlast)))
            if send and i_ready:
                accepted.append((beat[0], beat[1], cycle))
                beat = next(pending, None)
            cycle += 1
            assert cycle < 20 * len(beats), "the framer stalled"

    run_testbench(dut, bench)
    assert len(accepted) == len(beats)
    assert seen == frame(accepted, resets, lanes=lanes, elements=elements, sequence_length=length,
                         stateful=stateful)
    # The cases cut steps short, and (stateful) reset the state between transfers and inside them.
    assert any(values == [0] * lanes and tlast for values, _, _, tlast in seen) or per == 1
    assert not stateful or resets


@pytest.mark.parametrize("kwargs, error, message", [
    ({"lanes": 0}, ValueError, "lanes must be at least 1"),
    ({"elements": True}, TypeError, "elements must be an integer"),
    ({"sequence_length": -1}, ValueError, "sequence_length must be at least 0"),
    ({"stateful": 1}, TypeError, "stateful must be a bool"),
    ({"stateful": True, "sequence_length": 4}, ValueError, "stateful framer has no sequence_length"),
])
def test_parameters_are_checked(kwargs, error, message):
    args = {"shape": signed(8), "lanes": 1, "elements": 2, "sequence_length": 0, "stateful": False, **kwargs}
    with pytest.raises(error, match=message):
        Framer(**args)
