"""cocotb testbench of the generated top: stream sequences in, once per flow mode, compare with the golden model.

Everything it needs comes through environment variables set by
:func:`lstm_hw.sim.top.simulate_top`:

``LSTM_HW_META``      the generated ``<top>.json`` (widths, sizes)
``LSTM_HW_X``         ``.npy`` input codes ``(N, T, I)``
``LSTM_HW_EXPECTED``  ``.npy`` golden output codes ``(N, T', H)``
``LSTM_HW_RESULT``    ``.json`` written here: per mode the output codes, mismatches, cycle stamps
``LSTM_HW_SEED``      the seed of every random idle and backpressure cycle
``LSTM_HW_MODES``     the flow modes, as :func:`lstm_hw.sim.flow.modes_to_json` writes them
``LSTM_HW_PROGRESS``  optional: a file to which the output timesteps received so far are appended,
                      a line at a time, at most about twice a second

All sequences stream once per mode, in the given order, in one simulation
without reset in between, each as one transfer (on a stateful design, with
``state_rst`` pulsed before it); the expectation is the same every time. Driver,
monitor and scoreboard stay apart: the driver only sends, the monitor only
records (with the cycle of each handshake), and the comparison happens per
mode against the expected array. An :class:`AxiStreamChecker` watches each
stream port from before reset; any protocol violation fails the test, and so
does any output beyond the expected ones.
"""

import json
import os
import time

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from lstm_hw.sim.axis import StreamDriver, StreamMonitor
from lstm_hw.sim.beats import beats_per_step, element_cycles, input_beats, output_elements
from lstm_hw.sim.bench import CycleStamps, pulse_state_rst, score, start_top
from lstm_hw.sim.flow import RandomFlags, mode_rng, modes_from_json


@cocotb.test()
async def stream_sequences(dut):
    meta = json.loads(open(os.environ["LSTM_HW_META"]).read())
    x = np.load(os.environ["LSTM_HW_X"])
    expected = np.load(os.environ["LSTM_HW_EXPECTED"])
    seed = int(os.environ.get("LSTM_HW_SEED", "1"))
    modes = modes_from_json(os.environ["LSTM_HW_MODES"])
    replay = f"seed {seed}, modes {', '.join(map(str, modes))} (replay: LSTM_HW_SEED={seed})"
    dut._log.info("%s", replay)
    n_seq, t_len, n_in = x.shape
    assert n_in == meta["input"]["elements_per_timestep"]
    n_out = expected.size
    lanes, per_step = meta["input"]["lanes"], meta["output"]["elements_per_timestep"]
    out_width = meta["output"]["tdata_width"] // lanes
    n_beats = n_out // per_step * beats_per_step(per_step, lanes)

    checkers = await start_top(dut)

    in_stamps = CycleStamps(dut.aclk, dut.s_axis_tvalid, dut.s_axis_tready)
    out_stamps = CycleStamps(dut.aclk, dut.m_axis_tvalid, dut.m_axis_tready)
    idle, stall = RandomFlags(), RandomFlags()
    monitor = StreamMonitor(dut, dut.aclk, "m_axis", backpressure=stall)   # raw beats, unpacked below
    driver = StreamDriver(dut, dut.aclk, "s_axis", idle=idle)
    # A stateful design carries its state across tlast: state_rst before each sequence starts it afresh.
    stateful = hasattr(dut, "state_rst")
    items = [input_beats([seq], lanes, meta["input"]["tdata_width"] // lanes) for seq in x]
    period = meta["cycles_per_group"] + meta["latency_cycles"]
    budget = 64 * period * max(1, n_seq * t_len) + 10_000

    results, failures = [], []
    result_path = os.environ["LSTM_HW_RESULT"]
    if os.environ.get("LSTM_HW_PROGRESS"):
        cocotb.start_soon(report_progress(dut.aclk, monitor, beats_per_step(per_step, lanes),
                                          os.environ["LSTM_HW_PROGRESS"]))
    for index, mode in enumerate(modes):
        idle.set(mode.idle, mode_rng(seed, index, 0))
        stall.set(mode.backpressure, mode_rng(seed, index, 1))
        first_in, first_out = len(in_stamps.cycles), len(monitor.items)
        for seq_items in items:
            if stateful:
                await pulse_state_rst(dut)
            await driver.send(seq_items)
        try:
            beats = (await monitor.wait_for(first_out + n_beats, timeout_cycles=budget))[first_out:]
        except AssertionError as e:
            failures.append(f"mode {mode.name}: {e}")
            results.append({"mode": mode.name, "timeout": True, "received": len(monitor.items) - first_out,
                            "wanted": n_beats})
            break
        try:
            got = output_elements(beats, lanes, out_width, meta["output"]["bits"], per_step)
        except ValueError as e:
            failures.append(f"mode {mode.name}: m_axis_tdata packing: {e}")
            results.append({"mode": mode.name, "timeout": False, "output": np.zeros(expected.shape).tolist(),
                            "mismatches": n_out, "last_ok": False, "input_cycles": [], "output_cycles": []})
            continue
        result = score([(v, last) for v, last, _ in got], list(expected))
        for k, (t, h), have, want in result.mismatches[:10]:
            dut._log.error("mode %s: mismatch at (seq, t, h) = (%d, %d, %d): got %d, expected %d",
                           mode.name, k, t, h, have, want)
        if result.mismatches:
            failures.append(f"mode {mode.name}: {len(result.mismatches)} of {n_out} outputs differ from golden")
        if not result.last_ok:
            failures.append(f"mode {mode.name}: m_axis_tlast is not exactly on each sequence's last element")
        results.append({"mode": mode.name, "timeout": False, "output": np.stack(result.values).tolist(),
                        "mismatches": len(result.mismatches), "last_ok": result.last_ok,
                        "input_cycles": element_cycles(in_stamps.cycles[first_in:], n_in, lanes),
                        "output_cycles": element_cycles(out_stamps.cycles[first_out:first_out + n_beats],
                                                         per_step, lanes)})
    if os.environ.get("LSTM_HW_PROGRESS"):
        with open(os.environ["LSTM_HW_PROGRESS"], "a") as f:
            f.write(f"{len(monitor.items) // beats_per_step(per_step, lanes)}\n")
    # Nothing may follow the last expected output.
    await ClockCycles(dut.aclk, 2 * period + 16)
    stray = len(monitor.items) - len(modes) * n_beats if len(results) == len(modes) else 0
    if stray:
        failures.append(f"{stray} output beats beyond the expected {len(modes) * n_beats}")
    violations = [checker.report() for checker in checkers if checker.total]
    with open(result_path, "w") as f:
        json.dump({"seed": seed, "modes": results, "stray_outputs": stray,
                   "protocol_violations": sum(c.total for c in checkers)}, f)
    for report in violations:
        dut._log.error("%s", report)
    failures += violations
    for failure in failures:
        dut._log.error("%s", failure)
    assert not failures, f"{replay}:\n" + "\n".join(failures)


async def report_progress(clk, monitor, beats_per_step: int, path: str, every: int = 256):
    """Append the output timesteps received so far to ``path`` when they change, at most twice a second."""
    shown, last = -1, 0.0
    while True:
        await ClockCycles(clk, every)
        done = len(monitor.items) // beats_per_step
        if done != shown and time.monotonic() - last >= 0.5:
            with open(path, "a") as f:
                f.write(f"{done}\n")
            shown, last = done, time.monotonic()
