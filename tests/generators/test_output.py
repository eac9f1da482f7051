# amaranth: UnusedElaboratable=no
"""OutputFIFO in Amaranth's simulator: steps reserved through the credit and written at random, beats read
with random backpressure; the beats and ``credit.room`` against a Python model, and the stated latency."""

import numpy as np
import pytest
from amaranth.hdl import signed

from helpers import flags_code, run_testbench, step_flags
from lstm_hw.generators.output import OutputFIFO

SHAPE = signed(10)
#: name: (lanes, group, groups a step, steps, slack, registered): packed beats (a layer's groups of h,
#: a head's single results) and stored words handed out in beats.
CASES = {
    "packed_pairs": (4, 2, 5, 2, 0, True),
    "packed_single": (1, 1, 3, 2, 0, True),
    "head_like": (3, 1, 7, 1, 6, False),
    "words": (2, 4, 3, 2, 0, True),
    "words_whole_beats": (3, 6, 2, 1, 3, False),
}


def make(name):
    lanes, group, groups, steps, slack, registered = CASES[name]
    return OutputFIFO(shape=SHAPE, lanes=lanes, group=group, groups=groups, steps=steps, slack=slack,
                      registered=registered), lanes, group, groups


def random_steps(rng, group, groups, count):
    """``count`` steps of ``groups`` groups; only a step's last group has padding lanes (as a layer's last pass)."""
    steps = []
    for _ in range(count):
        real = [group] * (groups - 1) + [int(rng.integers(1, group + 1))]
        steps.append({"flags": int(rng.integers(8)),
                      "groups": [([int(v) for v in rng.integers(-512, 512, group)], r) for r in real]})
    return steps


def step_beats(step, lanes):
    """The model: a step's real values in order, ``lanes`` a beat (the last zero-filled), the step's flags on its
    last beat (zero on the others)."""
    values = [v for data, real in step["groups"] for v in data[:real]]
    beats = [values[n:n + lanes] for n in range(0, len(values), lanes)]
    return [{"data": b + [0] * (lanes - len(b)), "flags": step["flags"] if n == len(beats) - 1 else 0}
            for n, b in enumerate(beats)]


def word_ends(step, lanes, group, packs):
    """Per beat of :func:`step_beats`: the beat ends a FIFO word (every beat packed, a group's last beat else)."""
    if packs:
        return [True] * len(step_beats(step, lanes))
    ends = []
    for _, real in step["groups"]:
        n = -(-real // lanes)
        ends += [False] * (n - 1) + [True]
    return ends


def group_payload(data, real, group, end, flags):
    return {"data": data, **({"ok": (1 << real) - 1} if group > 1 else {}), "end": end, "flags": step_flags(flags)}


@pytest.mark.parametrize("name", CASES)
def test_matches_model_under_backpressure(name):
    """Steps start whenever ``room`` allows (and their reservations are far enough apart), their groups come
    at random after it, ``o`` stalls at random: every beat arrives, and ``room`` is the credit model's."""
    dut, lanes, group, groups = make(name)
    rng = np.random.default_rng(len(name))
    steps = random_steps(rng, group, groups, 40)
    want = [beat for step in steps for beat in step_beats(step, lanes)]
    ends = [end for step in steps for end in word_ends(step, lanes, group, dut.packs)]
    got, reserved_at, freed_at, rooms = [], [], [], []

    async def bench(ctx):
        started, sending, next_group = 0, 0, 0   # steps reserved; the step being written, its next group
        cycle = 0
        while len(got) < len(want):
            room = ctx.get(dut.credit.room)
            rooms.append(bool(room))
            reserve = (started < len(steps) and room and rng.random() < 0.5
                       and (not reserved_at or cycle - reserved_at[-1] >= dut.room_latency))
            ctx.set(dut.credit.reserve, reserve)
            # A step's groups come after its reservation (in the cycle after, at the earliest).
            send = sending < started and rng.random() < 0.6
            ctx.set(dut.i.valid, send)
            if send:
                data, real = steps[sending]["groups"][next_group]
                ctx.set(dut.i.payload, group_payload(data, real, group, next_group == groups - 1,
                                                     steps[sending]["flags"]))
            ready = rng.random() < (0.2 if cycle % 200 < 60 else 0.8)   # stretches of heavy backpressure
            ctx.set(dut.o.ready, ready)
            _, _, valid, beat = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and ready:
                if ends[len(got)]:
                    freed_at.append(cycle)
                got.append({"data": [int(v) for v in beat.data], "flags": flags_code(beat.flags)})
            if reserve:
                reserved_at.append(cycle)
                started += 1
            if send:
                next_group = (next_group + 1) % groups
                sending += next_group == 0
            cycle += 1
            assert cycle < 100 * len(want), "the FIFO stalled"

    run_testbench(dut, bench)
    assert got == want
    assert all(sum(word_ends(step, lanes, group, dut.packs)) == dut.words for step in steps)
    # The credit: room while the words of the reservations it has seen, less the reads it has seen, leave
    # room for another step.
    model = [dut.words * sum(r <= t - dut.room_latency for r in reserved_at)
             - sum(f <= t - dut.free_latency for f in freed_at) <= dut.depth - dut.words
             for t in range(len(rooms))]
    if CASES[name][-1]:
        model[0] = False   # a register, out of reset
    assert rooms == model
    assert not all(rooms), "the credit never ran out: the test did not reach the FIFO's depth"


@pytest.mark.parametrize("name", CASES)
def test_latency(name):
    """A step into the empty FIFO, ``o`` ready: its first beat comes ``latency`` cycles after the group that
    completes the first FIFO word."""
    dut, lanes, group, groups = make(name)
    step = random_steps(np.random.default_rng(3), group, groups, 1)[0]
    first_word = min(lanes // group, groups) - 1 if dut.packs else 0
    seen = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for cycle in range(40):
            ctx.set(dut.credit.reserve, cycle == 2)
            n = cycle - 4                     # groups back to back from cycle 4
            ctx.set(dut.i.valid, 0 <= n < groups)
            if 0 <= n < groups:
                data, real = step["groups"][n]
                ctx.set(dut.i.payload, group_payload(data, real, group, n == groups - 1, step["flags"]))
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            if valid:
                seen.append(cycle)

    run_testbench(dut, bench)
    assert seen[0] == 4 + first_word + dut.latency
    assert len(seen) == len(step_beats(step, lanes))


def test_checks_parameters():
    with pytest.raises(ValueError, match="divide"):
        OutputFIFO(shape=SHAPE, lanes=3, group=2, groups=1, steps=1, registered=False)
    with pytest.raises(ValueError, match="groups"):
        OutputFIFO(shape=SHAPE, lanes=2, group=1, groups=0, steps=1, registered=False)
    with pytest.raises(ValueError, match="slack"):
        OutputFIFO(shape=SHAPE, lanes=2, group=1, groups=1, steps=1, slack=-1, registered=False)
    with pytest.raises(TypeError, match="registered"):
        OutputFIFO(shape=SHAPE, lanes=2, group=1, groups=1, steps=1, registered=1)
