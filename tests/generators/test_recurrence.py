# amaranth: UnusedElaboratable=no
"""HWriter and StepControl in Amaranth's simulator, against Python models: the h writes into the vector store's
column map, ahead of the loader's; the steps of a layer around a behavioural matrix unit, loader and FIFO."""

import numpy as np
import pytest

from helpers import flags_code, run_testbench, step_flags
from lstm_hw.config.schema import h_write_group, parse_config
from lstm_hw.generators.mvm import vector_address
from lstm_hw.generators.recurrence import HWriter, StepControl
from lstm_hw.model.design import build_design

#: A hidden unit a cycle (several io lanes, one through the writer), a pass's units at once (2, 3, 4 of
#: them, with fewer, as many or more io lanes; the last pass padded), or a pass's units in groups.
WRITER_CASES = {
    "one_unit": {"model": {"input_size": 3, "hidden_size": 5}, "sparsity": {"banks": 2}},
    "one_unit_lanes3": {"model": {"input_size": 4, "hidden_size": 6}, "sparsity": {"banks": 4},
                        "hardware": {"io_lanes": 3}},
    "pass_of_2_lanes4": {"model": {"input_size": 6, "hidden_size": 9}, "sparsity": {"banks": 4},
                         "hardware": {"rows": 8, "io_lanes": 4}},
    "pass_of_3": {"model": {"input_size": 2, "hidden_size": 7}, "sparsity": {"banks": 3},
                  "hardware": {"rows": 12, "io_lanes": 3}},
    "pass_of_4_lanes2": {"model": {"input_size": 3, "hidden_size": 10}, "sparsity": {"banks": 5},
                         "hardware": {"rows": 16, "io_lanes": 2}},
    # 6 cell lanes, 4 banks: a pass's h in groups of 3 (through a queue), the last one padded.
    "pass_of_6_in_3s": {"model": {"input_size": 5, "hidden_size": 11}, "sparsity": {"banks": 4},
                        "hardware": {"rows": 24}},
}


def random_write(rng, plan, fmt):
    return {"buf": int(rng.integers(2)), "bank": int(rng.integers(plan.banks)),
            "addr": int(rng.integers(plan.bank_width)), "data": int(rng.integers(fmt.min_int, fmt.max_int + 1))}


def as_write(payload):
    return {"buf": int(payload.buf), "bank": int(payload.bank), "addr": int(payload.addr), "data": int(payload.data)}


@pytest.mark.parametrize("name", WRITER_CASES)
def test_writer_matches_model(name):
    config = parse_config(WRITER_CASES[name])
    design = build_design(config)
    plan, fmt, group = design.layers[0], design.io_format, h_write_group(config)
    dut = HWriter(plan=plan, shape=fmt.shape(), group=group, lanes=config.hardware.io_lanes)
    H, I = plan.hidden, plan.input_size
    writes = -(-H // group)
    assert dut.writes == writes
    rng = np.random.default_rng(len(name))
    steps = [{"buf": int(rng.integers(2)), "emit": bool(rng.integers(2)), "flags": int(rng.integers(8)),
              "h": [int(v) for v in rng.integers(fmt.min_int, fmt.max_int + 1, writes * group)]} for _ in range(12)]
    counts = {"h": 0, "load": 0, "out": 0, "done": 0}

    async def bench(ctx):
        for s, step in enumerate(steps):
            ctx.set(dut.step.buf, step["buf"])
            ctx.set(dut.step.emit, step["emit"])
            ctx.set(dut.step.flags, step_flags(step["flags"]))
            k = 0
            while k < writes:
                valid = rng.random() < 0.7
                units = range(k * group, (k + 1) * group)
                ctx.set(dut.i.valid, valid)
                ctx.set(dut.i.payload, {"data": step["h"][k * group:(k + 1) * group],
                                        **({"ok": sum(1 << e for e, j in enumerate(units) if j < H)} if group > 1
                                           else {})})
                loads = [(rng.random() < 0.5, random_write(rng, plan, fmt)) for _ in dut.load]
                for port, (lv, lp) in zip(dut.load, loads):
                    ctx.set(port.valid, lv)
                    ctx.set(port.payload, lp)
                _, _, busy, done, o_valid, o, *ports = await ctx.tick().sample(
                    dut.busy, dut.done, dut.o.valid, dut.o.payload,
                    *(x for port in dut.wr for x in (port.valid, port.payload)))
                got = [(bool(v), as_write(p) if v else None) for v, p in zip(ports[::2], ports[1::2])]
                end = k == writes - 1
                if valid:
                    # Unit j to column I + j of the half the step does not read; padding lanes write nothing.
                    want = []
                    for e, j in enumerate(units):
                        bank, addr = vector_address(plan, I + j)
                        want.append((True, {"buf": 1 - step["buf"], "bank": bank, "addr": addr,
                                            "data": step["h"][j]}) if j < H else (False, None))
                    counts["h"] += 1
                else:
                    want = [(lv, lp if lv else None) for lv, lp in loads] + [(False, None)] * (group - len(loads))
                    counts["load"] += any(lv for lv, _ in loads)
                assert got == want, f"step {s} group {k}"
                assert (busy, done) == (valid, valid and end)
                assert o_valid == (valid and step["emit"])
                if o_valid:
                    counts["out"] += 1
                    assert [int(v) for v in o.data] == step["h"][k * group:(k + 1) * group]
                    assert (bool(o.end), flags_code(o.flags)) == (end, step["flags"])
                    if group > 1:
                        assert int(o.ok) == sum(1 << e for e, j in enumerate(units) if j < H)
                counts["done"] += done
                k += valid

    run_testbench(dut, bench)
    assert dut.latency == 0     # every check above is in the group's own cycle
    assert counts["done"] == len(steps) and counts["load"] > 0
    assert counts["out"] == writes * sum(step["emit"] for step in steps)


# -- StepControl ----------------------------------------------------------------------------------

@pytest.mark.parametrize("emit_all", [True, False])
def test_control_matches_model(emit_all):
    """Around a behavioural loader (vectors arrive at random), matrix unit (input phases of random length,
    ``h_go`` as soon as ``h_ready``, recurrent phases of random length), h writer (the step's last h at
    random after its ``h_go``) and FIFO credit (``room`` at random): every output against the model, and
    the steps commanded in order with their sequence flags."""
    rng = np.random.default_rng(1 + emit_all)
    dut = StepControl(emit_all=emit_all)
    vectors = [int(rng.integers(8)) for _ in range(60)]   # each vector's step flags, as a 3-bit code
    ran = []

    async def bench(ctx):
        full, flags = [False, False], [0, 0]
        arrived = 0                                       # vectors into the halves so far
        q = 0                                             # the model's next half to command
        pend = {"buf": 0, "flags": 0, "emit": False}
        running = dict(pend)
        pending_h, done_at = False, None
        mvm, left = "idle", 0                             # matrix unit: idle, input, wait, recurrent
        cycle = 0
        while len(ran) < len(vectors):
            half = arrived % 2
            if arrived < len(vectors) and not full[half] and rng.random() < 0.4:
                full[half], flags[half] = True, vectors[arrived]
                arrived += 1
            ctx.set(dut.halves.full, full[0] | full[1] << 1)
            ctx.set(dut.halves.flags, [step_flags(code) for code in flags])
            room = rng.random() < 0.7
            done = pending_h and cycle >= done_at
            ctx.set(dut.credit.room, room)
            ctx.set(dut.done, done)
            ctx.set(dut.cmd.ready, mvm == "idle")
            h_ready = ctx.get(dut.h_ready)
            assert h_ready == ((not pending_h or done) and (not pend["emit"] or room)), f"cycle {cycle}"
            h_go = mvm == "wait" and h_ready
            ctx.set(dut.h_go, h_go)
            _, _, cmd_valid, cmd, free_valid, free, reserve, *step = await ctx.tick().sample(
                dut.cmd.valid, dut.cmd.payload, dut.halves.free.valid, dut.halves.free.payload,
                dut.credit.reserve, dut.step.buf, dut.step.emit, dut.step.flags, dut.first)
            assert cmd_valid == full[q] and (int(cmd.buf), int(cmd.first)) == (q, flags[q] & 1), f"cycle {cycle}"
            assert (free_valid, reserve) == (h_go, h_go and pend["emit"]), f"cycle {cycle}"
            assert [int(step[0]), int(step[1]), flags_code(step[2]), int(step[3])] == [
                running["buf"], running["emit"], running["flags"], running["flags"] & 1], f"cycle {cycle}"
            if h_go:
                assert int(free) == pend["buf"]
            # The environment and the model move on.
            if mvm == "idle" and cmd_valid:
                pend = {"buf": q, "flags": flags[q], "emit": emit_all or bool(flags[q] & 2)}
                q ^= 1
                mvm, left = "input", int(rng.integers(1, 5))
            elif mvm == "input":
                left -= 1
                mvm = "wait" if left == 0 else mvm
            elif mvm == "wait" and h_go:
                full[pend["buf"]] = False
                ran.append(dict(pend))
                running, pending_h, done_at = dict(pend), True, cycle + int(rng.integers(1, 9))
                mvm, left = "recurrent", int(rng.integers(1, 6))
            elif mvm == "recurrent":
                left -= 1
                mvm = "idle" if left == 0 else mvm
            if done and not h_go:
                pending_h = False
            cycle += 1
            assert cycle < 100 * len(vectors), "the steps stalled"

    run_testbench(dut, bench)
    # Each vector ran once, in order, alternating halves, with its flags; it emits when it ends a sequence.
    assert [step["buf"] for step in ran] == [n % 2 for n in range(len(vectors))]
    assert [step["flags"] for step in ran] == vectors
    assert [step["emit"] for step in ran] == [emit_all or bool(v & 2) for v in vectors]


def test_checks_parameters():
    design = build_design(parse_config(WRITER_CASES["one_unit"]))
    with pytest.raises(TypeError, match="LayerPlan"):
        HWriter(plan=None, shape=design.io_format.shape(), group=1, lanes=1)
    with pytest.raises(ValueError, match="group"):
        HWriter(plan=design.layers[0], shape=design.io_format.shape(), group=3, lanes=1)
    with pytest.raises(TypeError, match="emit_all"):
        StepControl(emit_all=1)
