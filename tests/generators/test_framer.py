# amaranth: UnusedElaboratable=no
"""Framer in Amaranth's simulator: seeded random transfers (some ending inside a timestep), idle cycles,
backpressure and state_rst pulses; every output beat and its flags against a Python model of the framing."""

import numpy as np
import pytest
from amaranth.hdl import signed

from helpers import run_testbench
from lstm_hw.generators.framer import Framer

#: name: (lanes, elements, sequence_length, stateful, interleave)
CASES = {
    "one_beat": (1, 1, 0, False, 1),
    "lanes2_i5": (2, 5, 0, False, 1),
    "t3": (1, 2, 3, False, 1),
    "t1_lanes3_i7": (3, 7, 1, False, 1),
    "t4_lanes2_i4": (2, 4, 4, False, 1),
    "stateful": (1, 3, 0, True, 1),
    "stateful_one_beat": (4, 3, 0, True, 1),
    "interleave2_one_beat": (1, 1, 0, False, 2),
    "interleave3_lanes2_i5": (2, 5, 0, False, 3),
    "interleave2_t3": (1, 2, 3, False, 2),
    "interleave4_t1_lanes3_i7": (3, 7, 1, False, 4),
}


def frame(beats, resets, *, lanes, elements, sequence_length, stateful, interleave=1):
    """The expected output ``(data, first, last, tlast)`` per beat.

    ``beats`` are the accepted input beats ``(data, last, cycle)``; ``resets``, the cycles with
    ``state_rst`` high. Steps come in groups of ``interleave``, one per sequence; a transfer ends with a
    group: its end inside a step completes the step, and the group, with zero beats. A group's steps all
    start from zero state after a sequence's end, and all are ``last`` on a ``sequence_length``-th
    timestep; only the group's last step carries ``tlast`` (and, without a sequence_length, ``last``).
    """
    per = -(-elements // lanes)
    out, place, seq, count, step_start = [], 0, 0, 0, None
    seq_start = True                   # without stateful: the next group starts its sequences

    def step_flags(final, first, group_end, tlast):
        seq_end = group_end and tlast or bool(sequence_length and count == sequence_length - 1)
        return final and first, final and bool(seq_end), final and group_end and tlast

    for data, last, cycle in beats:
        if place == 0:
            if stateful:
                first = step_start is None or any(step_start <= c < cycle for c in resets)
            else:
                first = seq_start
            step_start = cycle
        ends = last or place == per - 1
        # The rest of the step, then of the group, in zero beats when the transfer ends here.
        pads = (per - 1 - place + (interleave - 1 - seq) * per) if last else 0
        rows = [data] + [[0] * lanes] * pads
        s, p = seq, place
        for n, values in enumerate(rows):
            final = p == per - 1 if last else (n == 0 and ends)
            out.append((values, *step_flags(final, first, s == interleave - 1, last)))
            if final and s == interleave - 1:
                count = 0 if (last or (sequence_length and count == sequence_length - 1)) else count + 1
                seq_start = last or bool(sequence_length and count == 0)
            if final:
                s = (s + 1) % interleave
            p = 0 if final else p + 1
        seq, place = (0, 0) if last else (s, p)
    return out


@pytest.mark.parametrize("name", CASES)
def test_beats_and_flags_match_model(name):
    lanes, elements, length, stateful, interleave = CASES[name]
    dut = Framer(shape=signed(8), lanes=lanes, elements=elements, sequence_length=length, stateful=stateful,
                 interleave=interleave)
    rng = np.random.default_rng(len(name) + 7 * lanes)
    per = dut.beats
    # Transfers of whole groups of steps and, one in four, a few beats more (a step or group the transfer cuts
    # short).
    beats, group = [], per * interleave
    for _ in range(24):
        n = int(rng.integers(1, 7)) * group + (int(rng.integers(1, group)) if group > 1 and rng.random() < 0.25
                                               else 0)
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
                         stateful=stateful, interleave=interleave)
    # The cases cut steps (or groups) short, and (stateful) reset the state between transfers and inside them.
    assert any(values == [0] * lanes and tlast for values, _, _, tlast in seen) or per * interleave == 1
    assert not stateful or resets


@pytest.mark.parametrize("kwargs, error, message", [
    ({"lanes": 0}, ValueError, "lanes must be at least 1"),
    ({"elements": True}, TypeError, "elements must be an integer"),
    ({"sequence_length": -1}, ValueError, "sequence_length must be at least 0"),
    ({"stateful": 1}, TypeError, "stateful must be a bool"),
    ({"stateful": True, "sequence_length": 4}, ValueError, "stateful framer has no sequence_length"),
    ({"interleave": 0}, ValueError, "interleave must be at least 1"),
    ({"stateful": True, "interleave": 2}, ValueError, "stateful framer has one sequence"),
])
def test_parameters_are_checked(kwargs, error, message):
    args = {"shape": signed(8), "lanes": 1, "elements": 2, "sequence_length": 0, "stateful": False, **kwargs}
    with pytest.raises(error, match=message):
        Framer(**args)
