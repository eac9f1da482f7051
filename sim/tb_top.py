"""cocotb testbench of the generated top: stream sequences in, compare with the golden model.

Everything it needs comes through environment variables set by
:func:`lstm_hw.sim.top.simulate_top`:

``LSTM_HW_META``      the generated ``<top>.json`` (widths, sizes)
``LSTM_HW_X``         ``.npy`` input codes ``(N, T, I)``
``LSTM_HW_EXPECTED``  ``.npy`` golden output codes ``(N, T', H)``
``LSTM_HW_RESULT``    ``.json`` written here: output codes, mismatches, cycle stamps
``LSTM_HW_SEED``, ``LSTM_HW_IDLE``, ``LSTM_HW_BACKPRESSURE``
                      seeded probability of an idle input cycle / a not-ready output cycle

Driver, monitor and scoreboard stay apart: the driver only sends, the monitor
only records (with the cycle of each handshake), and the comparison happens at
the end against the expected array. An :class:`AxiStreamChecker` watches each
stream port from before reset; any protocol violation fails the test.
"""

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from lstm_hw.sim.axis import StreamDriver, StreamMonitor, reset
from lstm_hw.sim.axis_checker import AxiStreamChecker


def _flags(rng, p):
    while True:
        yield bool(p > 0 and rng.random() < p)


class CycleStamps:
    """Records the cycle number of every handshake on a valid/ready pair."""

    def __init__(self, clk, valid, ready):
        self.cycles = []
        self._clk, self._valid, self._ready = clk, valid, ready
        cocotb.start_soon(self._run())

    async def _run(self):
        n = 0
        while True:
            await RisingEdge(self._clk)
            n += 1
            if self._valid.value == 1 and self._ready.value == 1:
                self.cycles.append(n)


@cocotb.test()
async def stream_sequences(dut):
    meta = json.loads(open(os.environ["LSTM_HW_META"]).read())
    x = np.load(os.environ["LSTM_HW_X"])
    expected = np.load(os.environ["LSTM_HW_EXPECTED"])
    seed = int(os.environ.get("LSTM_HW_SEED", "1"))
    dut._log.info("seed %d (replay with LSTM_HW_SEED=%d)", seed, seed)
    rng = np.random.default_rng(seed)
    n_seq, t_len, n_in = x.shape
    assert n_in == meta["input"]["elements_per_timestep"]
    n_out = expected.size

    cocotb.start_soon(Clock(dut.aclk, 10, unit="ns").start())
    dut.s_axis_tvalid.value = 0
    dut.m_axis_tready.value = 0
    checkers = [AxiStreamChecker(dut, dut.aclk, port, rst=dut.aresetn) for port in ("s_axis", "m_axis")]
    await reset(dut, dut.aclk, "aresetn", active_low=True, cycles=16)
    # AXI4-Stream: a source raises tvalid only after the first edge with aresetn high.
    await RisingEdge(dut.aclk)

    in_stamps = CycleStamps(dut.aclk, dut.s_axis_tvalid, dut.s_axis_tready)
    out_stamps = CycleStamps(dut.aclk, dut.m_axis_tvalid, dut.m_axis_tready)
    monitor = StreamMonitor(dut, dut.aclk, "m_axis", signed_width=meta["output"]["bits"],
                            backpressure=_flags(rng, float(os.environ.get("LSTM_HW_BACKPRESSURE", "0"))))
    driver = StreamDriver(dut, dut.aclk, "s_axis", idle=_flags(rng, float(os.environ.get("LSTM_HW_IDLE", "0"))))
    items = [(int(v), bool(t == t_len - 1 and i == n_in - 1))
             for seq in x for t, row in enumerate(seq) for i, v in enumerate(row)]
    cocotb.start_soon(driver.send(items))
    budget = 64 * (meta["cycles_per_timestep"] + meta["latency_cycles"]) * max(1, n_seq * t_len) + 10_000
    got = await monitor.wait_for(n_out, timeout_cycles=budget)

    values = np.array([v for v, _ in got], dtype=np.int64).reshape(expected.shape)
    lasts = np.array([last for _, last in got], dtype=bool).reshape(expected.shape)
    want_last = np.zeros(expected.shape, dtype=bool)
    want_last[:, -1, -1] = True
    mismatch = np.argwhere(values != expected)
    with open(os.environ["LSTM_HW_RESULT"], "w") as f:
        json.dump({"output": values.tolist(), "mismatches": len(mismatch),
                   "protocol_violations": sum(c.total for c in checkers),
                   "input_cycles": in_stamps.cycles, "output_cycles": out_stamps.cycles[:n_out]}, f)
    for idx in mismatch[:10]:
        dut._log.error("mismatch at (seq, t, h) = %s: got %d, expected %d",
                       tuple(int(v) for v in idx), values[tuple(idx)], expected[tuple(idx)])
    violations = [checker.report() for checker in checkers if checker.total]
    for report in violations:
        dut._log.error("%s", report)
    assert not violations, "\n".join(violations)
    assert len(mismatch) == 0, f"{len(mismatch)} of {values.size} outputs differ from the golden model"
    assert np.array_equal(lasts, want_last), "m_axis_tlast is not exactly on each sequence's last element"
