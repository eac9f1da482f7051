"""cocotb bench: a stream of transfers through the generated top, framed as ``sequence_length`` and ``stateful``
say, with ``state_rst`` pulses between transfers; each transfer's outputs against the golden model's.

Environment variables (set by tests/sim/test_framing.py):

``LSTM_HW_META``       the generated ``<top>.json``
``LSTM_HW_TRANSFERS``  ``.npz``: ``codes``, every transfer's element codes end to end; ``lengths``, the
                       elements of each (a transfer may end inside a timestep); ``resets``, per transfer,
                       pulse ``state_rst`` before it
``LSTM_HW_EXPECTED``   ``.npz``: ``codes``, the expected output codes end to end; ``lengths``, per transfer
``LSTM_HW_RESULT``     ``.json`` written here: per transfer its output codes, and the checks' verdicts
``LSTM_HW_SEED``       the seed of the random idle input and output backpressure cycles

The input's ``tlast`` comes on each transfer's last beat, and the output's
must come on the last beat of that transfer's outputs, nowhere else. An
:class:`AxiStreamChecker` watches both stream ports.
"""

import json
import os

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from lstm_hw.sim.axis import StreamDriver, StreamMonitor
from lstm_hw.sim.beats import beats_per_step, output_elements, transfer_beats
from lstm_hw.sim.bench import pulse_state_rst, split_transfers, start_top
from lstm_hw.sim.flow import RandomFlags, mode_rng


@cocotb.test()
async def stream_transfers(dut):
    meta = json.loads(open(os.environ["LSTM_HW_META"]).read())
    sent = np.load(os.environ["LSTM_HW_TRANSFERS"])
    want = np.load(os.environ["LSTM_HW_EXPECTED"])
    seed = int(os.environ.get("LSTM_HW_SEED", "1"))
    lanes = meta["input"]["lanes"]
    in_width = meta["input"]["tdata_width"] // lanes
    out_width, per_step = meta["output"]["tdata_width"] // lanes, meta["output"]["elements_per_timestep"]
    transfers = np.split(sent["codes"], np.cumsum(sent["lengths"])[:-1])
    expected = [e.tolist() for e in np.split(want["codes"], np.cumsum(want["lengths"])[:-1])]
    n_beats = sum(len(e) // per_step * beats_per_step(per_step, lanes) for e in expected)

    checkers = await start_top(dut)

    idle, stall = RandomFlags(), RandomFlags()
    idle.set(0.3, mode_rng(seed, 0, 0))
    stall.set(0.3, mode_rng(seed, 0, 1))
    monitor = StreamMonitor(dut, dut.aclk, "m_axis", backpressure=stall)
    driver = StreamDriver(dut, dut.aclk, "s_axis", idle=idle)
    for codes, pulse in zip(transfers, sent["resets"]):
        if pulse:
            if not hasattr(dut, "state_rst"):
                raise AssertionError("state_rst pulses need a stateful design")
            await pulse_state_rst(dut)
        await driver.send(transfer_beats(codes, meta["input"]["elements_per_timestep"], lanes, in_width))
    period = meta["cycles_per_group"] + meta["latency_cycles"]
    budget = 64 * period * (len(sent["codes"]) // max(1, meta["input"]["elements_per_timestep"]) + 1) + 10_000
    failures = []
    try:
        await monitor.wait_for(n_beats, timeout_cycles=budget)
    except AssertionError as e:
        failures.append(f"outputs: {e}")
    await ClockCycles(dut.aclk, 2 * period + 16)

    # The output beats, cut into transfers at each tlast, against the expectation.
    got, current = split_transfers(monitor.items)
    if current:
        failures.append(f"{len(current)} output beats after the last tlast")
    values = []
    for k, beats in enumerate(got):
        try:
            values.append([v for v, _, _ in output_elements(beats, lanes, out_width, meta["output"]["bits"],
                                                             per_step)])
        except ValueError as e:
            failures.append(f"transfer {k}: m_axis_tdata packing: {e}")
            values.append([])
    if len(values) != len(expected):
        failures.append(f"{len(values)} output transfers (tlast), expected {len(expected)}")
    for k, (have, should) in enumerate(zip(values, expected)):
        if have != should:
            wrong = sum(a != b for a, b in zip(have, should)) + abs(len(have) - len(should))
            failures.append(f"transfer {k}: {wrong} of {len(should)} outputs differ from golden")
    violations = [checker.report() for checker in checkers if checker.total]
    failures += violations
    with open(os.environ["LSTM_HW_RESULT"], "w") as f:
        json.dump({"outputs": values, "failures": failures}, f)
    for failure in failures:
        dut._log.error("%s", failure)
    assert not failures, f"seed {seed}:\n" + "\n".join(failures)
