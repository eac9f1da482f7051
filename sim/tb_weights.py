"""cocotb bench: weight images loaded through ``s_axis_weights`` between, and during, transfers of the data
stream, following a script; every transfer's outputs against the golden model of the weights it should use.

Environment variables (set by tests/sim/test_weights.py):

``LSTM_HW_META``     the generated ``<top>.json``
``LSTM_HW_SCRIPT``   ``.json``: a list of steps, each one of
                     ``{"run": k}`` send transfer ``k``;
                     ``{"load": name}`` send image ``name`` (``tlast`` on its last word);
                     ``{"load": name, "during": k, "after": n}`` send transfer ``k`` and, once ``n`` of its
                     beats are in, image ``name`` alongside;
                     ``{"stalled": k, "cycles": n}`` start sending transfer ``k`` and check that for ``n``
                     cycles the core takes none of it and gives no output; the next load lets it in;
                     ``{"ok": 0 or 1}`` check ``weights_ok``, three cycles on;
                     ``{"reset": n}`` wait for every output so far, then hold ``aresetn`` low ``n`` cycles;
                     ``{"reset_during": name, "after": n}`` wait for every output so far, send image
                     ``name`` and hold ``aresetn`` low (16 cycles) once ``n`` of its words are in, dropping
                     the rest
``LSTM_HW_DATA``     ``.npz``: ``t<k>`` transfer ``k``'s element codes, ``e<k>`` its expected output codes,
                     ``image_<name>`` an image's words
``LSTM_HW_RESULT``   ``.json`` written here: the checks' verdicts
``LSTM_HW_SEED``     the seed of the random idle cycles on both inputs and the output's backpressure

The outputs are cut into transfers at each ``m_axis_tlast`` and compared, in
order, with the transfers the script sent. An :class:`AxiStreamChecker`
watches all three stream ports.
"""

import json
import os

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge

from lstm_hw.sim.axis import StreamDriver, StreamMonitor, reset
from lstm_hw.sim.beats import beats_per_step, output_elements, transfer_beats
from lstm_hw.sim.bench import CycleStamps, split_transfers, start_top
from lstm_hw.sim.flow import RandomFlags, mode_rng


@cocotb.test()
async def load_weights(dut):
    with open(os.environ["LSTM_HW_META"]) as f:
        meta = json.load(f)
    with open(os.environ["LSTM_HW_SCRIPT"]) as f:
        script = json.load(f)
    data = np.load(os.environ["LSTM_HW_DATA"])
    seed = int(os.environ.get("LSTM_HW_SEED", "1"))
    lanes = meta["input"]["lanes"]
    in_width = meta["input"]["tdata_width"] // lanes
    out_width, per_step = meta["output"]["tdata_width"] // lanes, meta["output"]["elements_per_timestep"]
    per_in = meta["input"]["elements_per_timestep"]

    def beats(k):
        return transfer_beats(data[f"t{k}"], per_in, lanes, in_width)

    def image(name):
        words = [int(w) for w in data[f"image_{name}"]]
        return [(w, n == len(words) - 1) for n, w in enumerate(words)]

    checkers = await start_top(dut)
    idle, weights_idle, stall = RandomFlags(), RandomFlags(), RandomFlags()
    idle.set(0.3, mode_rng(seed, 0, 0))
    stall.set(0.3, mode_rng(seed, 0, 1))
    weights_idle.set(0.3, mode_rng(seed, 0, 2))
    monitor = StreamMonitor(dut, dut.aclk, "m_axis", backpressure=stall)
    driver = StreamDriver(dut, dut.aclk, "s_axis", idle=idle)
    loader = StreamDriver(dut, dut.aclk, "s_axis_weights", idle=weights_idle)
    taken = CycleStamps(dut.aclk, dut.s_axis_tvalid, dut.s_axis_tready)            # beats taken
    words = CycleStamps(dut.aclk, dut.s_axis_weights_tvalid, dut.s_axis_weights_tready)   # image words taken
    period = meta["cycles_per_group"] + meta["latency_cycles"]
    failures, sent, stalled = [], [], None

    def expected_beats():
        return sum(len(data[f"e{k}"]) // per_step * beats_per_step(per_step, lanes) for k in sent)

    async def drain():
        steps = sum(len(data[f"t{k}"]) for k in sent) // max(1, per_in) + 1
        try:
            await monitor.wait_for(expected_beats(), timeout_cycles=64 * period * steps + 10_000)
        except AssertionError as e:
            failures.append(f"outputs: {e}")

    for n, step in enumerate(script):
        dut._log.info("step %d: %s", n, step)
        if "run" in step:
            sent.append(step["run"])
            await driver.send(beats(step["run"]))
        elif "load" in step and "during" in step:
            sent.append(step["during"])
            before = len(taken.cycles)
            task = cocotb.start_soon(driver.send(beats(step["during"])))
            while len(taken.cycles) < before + step["after"]:
                await RisingEdge(dut.aclk)
            await loader.send(image(step["load"]))
            await task
        elif "load" in step:
            await loader.send(image(step["load"]))
            if stalled is not None:
                await stalled
                stalled = None
        elif "stalled" in step:
            sent.append(step["stalled"])
            before, outputs = len(taken.cycles), len(monitor.items)
            stalled = cocotb.start_soon(driver.send(beats(step["stalled"])))
            await ClockCycles(dut.aclk, step["cycles"])
            if len(taken.cycles) != before or len(monitor.items) != outputs:
                failures.append(f"step {n}: the core took {len(taken.cycles) - before} beats and gave "
                                f"{len(monitor.items) - outputs} outputs without good weights")
        elif "ok" in step:
            await ClockCycles(dut.aclk, 3)      # the loader judges an image a cycle after its last word
            if int(dut.weights_ok.value) != step["ok"]:
                failures.append(f"step {n}: weights_ok is {dut.weights_ok.value}, expected {step['ok']}")
        elif "reset" in step:
            await drain()
            await reset(dut, dut.aclk, "aresetn", active_low=True, cycles=step["reset"])
            await RisingEdge(dut.aclk)
        elif "reset_during" in step:
            await drain()
            before = len(words.cycles)
            task = cocotb.start_soon(loader.send(image(step["reset_during"])))
            while len(words.cycles) < before + step["after"]:
                await RisingEdge(dut.aclk)
            task.cancel()
            loader.abort()
            await reset(dut, dut.aclk, "aresetn", active_low=True, cycles=16)
            await RisingEdge(dut.aclk)
        else:
            raise ValueError(f"step {n}: unknown step {step}")
    await drain()
    await ClockCycles(dut.aclk, 2 * period + 16)

    got, current = split_transfers(monitor.items)
    if current:
        failures.append(f"{len(current)} output beats after the last tlast")
    if len(got) != len(sent):
        failures.append(f"{len(got)} output transfers (tlast), expected {len(sent)}")
    for k, beats_out in zip(sent, got):
        try:
            have = [v for v, _, _ in output_elements(beats_out, lanes, out_width, meta["output"]["bits"], per_step)]
        except ValueError as e:
            failures.append(f"transfer {k}: m_axis_tdata packing: {e}")
            continue
        want = data[f"e{k}"].tolist()
        if have != want:
            wrong = sum(a != b for a, b in zip(have, want)) + abs(len(have) - len(want))
            failures.append(f"transfer {k}: {wrong} of {len(want)} outputs differ from golden")
    failures += [checker.report() for checker in checkers if checker.total]
    with open(os.environ["LSTM_HW_RESULT"], "w") as f:
        json.dump({"failures": failures, "words": len(words.cycles)}, f)
    for failure in failures:
        dut._log.error("%s", failure)
    assert not failures, f"seed {seed}:\n" + "\n".join(failures)
