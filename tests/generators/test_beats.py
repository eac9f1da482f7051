# amaranth: UnusedElaboratable=no
"""BeatPacker and WordQueue in Amaranth's simulator: seeded random groups, idle cycles and backpressure,
every beat against a small Python model, and the stated latencies."""

import numpy as np
import pytest
from amaranth.hdl import signed
from amaranth.sim import Simulator

from helpers import flags_code, flags_mask, run_testbench, step_flags
from lstm_hw.generators.beats import PORT_FLAGS, STEP_FLAGS, BeatPacker, WordQueue

SHAPE = signed(8)


def random_groups(rng, group, count):
    """``count`` groups: random values, a random prefix of real lanes (most groups full), ``end`` on each
    step's last group (steps of 1 to 7 groups) and random flags (a 3-bit code) per step."""
    groups, left, flags = [], 0, 0
    for _ in range(count):
        if left == 0:
            left, flags = int(rng.integers(1, 8)), int(rng.integers(8))
        left -= 1
        real = group if rng.random() < 0.6 else int(rng.integers(1, group + 1))
        groups.append({"data": [int(v) for v in rng.integers(-128, 128, group)], "real": real,
                       "end": left == 0, "flags": flags})
    return groups


def payload(g, group, *, flags=STEP_FLAGS):
    """``g`` as the components' group payload: ``ok`` marks the real lanes; the ``flags`` layout's flags."""
    return {"data": g["data"], **({"ok": (1 << g["real"]) - 1} if group > 1 else {}),
            **({"end": g["end"], "flags": step_flags(g["flags"], flags)} if flags is not None else {})}


def real_values(g):
    return [v if e < g["real"] else 0 for e, v in enumerate(g["data"])]


# -- BeatPacker ------------------------------------------------------------------------------------

def packed(groups, lanes):
    """The model: ``(closing group, beat data, flags)``: whole groups in order, padding and unused lanes
    zero, a beat closed when full or by a step's last group, which gives it its flags."""
    beats, cur = [], []
    for n, g in enumerate(groups):
        cur += real_values(g)
        if len(cur) == lanes or g["end"]:
            beats.append((n, cur + [0] * (lanes - len(cur)), g["flags"] if g["end"] else 0))
            cur = []
    return beats


@pytest.mark.parametrize("lanes,group", [(3, 1), (4, 2), (6, 3), (8, 2)])
def test_packer_matches_model(lanes, group):
    rng = np.random.default_rng(lanes * 10 + group)
    dut = BeatPacker(shape=SHAPE, lanes=lanes, group=group)
    groups = random_groups(rng, group, 300)
    sent, got = [], []

    async def bench(ctx):
        pending = iter(groups)
        g = next(pending, None)
        cycle = 0
        while g is not None:
            send = rng.random() < 0.7
            ctx.set(dut.i.valid, send)
            # Idle cycles carry garbage, which must not get in.
            ctx.set(dut.i.payload, payload(g if send else random_groups(rng, group, 1)[0], group))
            _, _, valid, beat = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid:
                got.append((cycle, [int(v) for v in beat.data], flags_code(beat.flags)))
            if send:
                sent.append(cycle)
                g = next(pending, None)
            cycle += 1

    run_testbench(dut, bench)
    want = [(sent[n] + dut.latency, data, flags) for n, data, flags in packed(groups, lanes)]
    assert got == want


@pytest.mark.parametrize("lanes", [1, 2])
def test_packer_of_one_group_a_beat(lanes):
    """A group as wide as the beat is the beat, combinationally: no register at all."""
    rng = np.random.default_rng(lanes)
    dut = BeatPacker(shape=SHAPE, lanes=lanes, group=lanes)
    groups = random_groups(rng, lanes, 100)

    async def bench(ctx):
        for g in groups:
            valid = bool(rng.integers(2))
            ctx.set(dut.i.valid, valid)
            ctx.set(dut.i.payload, payload(g, lanes))
            (_, beat, flags), = packed([g], lanes)
            assert (ctx.get(dut.o.valid), [int(v) for v in ctx.get(dut.o.payload.data)],
                    flags_code(ctx.get(dut.o.payload.flags))) == (valid, beat, flags)

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()


# -- WordQueue -------------------------------------------------------------------------------------

def split(groups, per, flags, ok=False):
    """The model: each group's real values ``per`` a beat (zero past them), with ``ok`` the lanes that hold
    them, with ``flags``, the group's flags on its last beat if it ends its step (else zero).
    Returns the beats and, for each, whether it is its word's last."""
    beats, finals = [], []
    for g in groups:
        values = real_values(g)[:g["real"]]
        parts = [values[c:c + per] for c in range(0, len(values), per)]
        for c, part in enumerate(parts):
            beat = {"data": part + [0] * (per - len(part)), **({"ok": (1 << len(part)) - 1} if ok else {})}
            if flags is not None:
                beat["flags"] = g["flags"] & flags_mask(flags) if g["end"] and c == len(parts) - 1 else 0
            beats.append(beat)
            finals.append(c == len(parts) - 1)
    return beats, finals


@pytest.mark.parametrize("lanes,per,flags,always_ready,ok", [
    (4, 1, None, True, False), (4, 2, STEP_FLAGS, False, False), (6, 3, PORT_FLAGS, False, False),
    (2, 1, STEP_FLAGS, False, False), (3, 3, STEP_FLAGS, False, False), (9, 3, STEP_FLAGS, True, False),
    (6, 2, None, True, True), (8, 4, PORT_FLAGS, False, True)])
@pytest.mark.parametrize("hold", [False, True])
def test_queue_matches_model(lanes, per, flags, always_ready, ok, hold):
    """Words sent at random (never more than the FIFO holds), beats taken at random: the beats (with
    ``ok``, the lanes holding values), the stream rules on ``o``, and ``taken`` exactly with each word's
    last beat."""
    rng = np.random.default_rng(lanes * 100 + per + hold)
    dut = WordQueue(shape=SHAPE, lanes=lanes, per=per, depth=3, flags=flags, always_ready=always_ready, hold=hold,
                    ok=ok)
    groups = random_groups(rng, lanes, 200)
    want, finals = split(groups, per, flags, ok)
    beats, moved, taken = [], [], []

    async def bench(ctx):
        pending = iter(groups)
        g = next(pending, None)
        waiting, held, cycle = 0, None, 0
        while len(beats) < len(want):
            send = g is not None and waiting < dut.depth and rng.random() < 0.6
            ready = always_ready or rng.random() < 0.6
            ctx.set(dut.i.valid, send)
            ctx.set(dut.i.payload, payload(g if send else random_groups(rng, lanes, 1)[0], lanes, flags=flags))
            if not always_ready:
                ctx.set(dut.o.ready, ready)
            _, _, valid, beat, took = await ctx.tick().sample(dut.o.valid, dut.o.payload, dut.taken)
            now = {"data": [int(v) for v in beat.data], **({"ok": int(beat.ok)} if ok else {}),
                   **({"flags": flags_code(beat.flags)} if flags is not None else {})}
            if held is not None:
                assert valid and now == held, f"cycle {cycle}: o withdrew or changed a waiting beat"
            held = now if valid and not ready else None
            if valid and ready:
                beats.append(now)
                moved.append(cycle)
            if took:
                taken.append(cycle)
            waiting += send - took
            if send:
                g = next(pending, None)
            cycle += 1
            assert cycle < 20 * len(groups), "the queue stalled"

    run_testbench(dut, bench)
    assert beats == want
    assert taken == [cycle for cycle, final in zip(moved, finals) if final]


@pytest.mark.parametrize("lanes,per", [(4, 1), (6, 2)])
@pytest.mark.parametrize("hold", [False, True])
def test_queue_latency(lanes, per, hold):
    """A word into the empty queue shows its first beat ``latency`` cycles later (a cycle later with ``hold``)."""
    dut = WordQueue(shape=SHAPE, lanes=lanes, per=per, depth=4, flags=STEP_FLAGS, hold=hold)
    assert dut.latency == WordQueue(shape=SHAPE, lanes=lanes, per=per, depth=4, flags=STEP_FLAGS).latency + hold
    seen = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for cycle in range(12):
            ctx.set(dut.i.valid, cycle == 3)
            ctx.set(dut.i.payload, {"data": list(range(1, lanes + 1)), "ok": (1 << lanes) - 1, "end": 1, "flags": step_flags(7)})
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            if valid:
                seen.append(cycle)

    run_testbench(dut, bench)
    assert seen == list(range(3 + dut.latency, 3 + dut.latency + lanes // per))


def test_checks_parameters():
    with pytest.raises(ValueError, match="multiple of group"):
        BeatPacker(shape=SHAPE, lanes=3, group=2)
    with pytest.raises(ValueError, match="group"):
        BeatPacker(shape=SHAPE, lanes=2, group=0)
    with pytest.raises(ValueError, match="multiple of per"):
        WordQueue(shape=SHAPE, lanes=4, per=3, depth=2, flags=STEP_FLAGS)
    with pytest.raises(ValueError, match="at least 2"):
        WordQueue(shape=SHAPE, lanes=1, per=1, depth=2, flags=STEP_FLAGS)
    with pytest.raises(TypeError, match="flags"):
        WordQueue(shape=SHAPE, lanes=2, per=1, depth=2, flags=1)
    with pytest.raises(TypeError, match="hold must be a bool"):
        WordQueue(shape=SHAPE, lanes=2, per=1, depth=2, flags=STEP_FLAGS, hold=1)
    with pytest.raises(TypeError):
        BeatPacker(SHAPE, 2, 1)  # keyword-only
